"""Benchmark suite ``energies``: cost of each primitive relative to ``energy``.

``python -m ebm_ref bench energies`` prints one JSON line per (model,
primitive): the best-of-``repeat`` wall time per sample, its ratio to
``energy(x)`` timed in the same run, and for ``MLPEnergy`` the cost
targets (``hessian_diag <= (d + 3) x energy``, ``grad_params_of_hessian_diag
<= 3 x hessian_diag``). Plain-NumPy baselines timed in the same run:

* ``energy``: the textbook forward pass (``logaddexp`` activations);
* ``hessian_diag``: the textbook forward recursion that propagates both the
  input Jacobian and the per-coordinate second derivatives through the
  layers (plain NumPy, batched matrix products: twice those of ``energy``);
* ``LatentEnergy.energy``: ``scipy.special.logsumexp`` over the grid of
  ``E(y, z_j)`` computed coordinate-wise.

Clocks: ``us_per_sample`` and the ratios use the best-of-``repeat`` *CPU*
time of the process (``time.process_time``), which on a loaded shared machine
is far more stable than wall time; the best wall time (``best_time``) is
reported too, as ``wall_us_per_sample``.

BLAS threads: the timings run with OpenBLAS pinned to one thread when its
control symbol can be found (restored afterwards), and every line says so in
``blas_threads``. On a small shared machine a multi-threaded OpenBLAS
spin-waits for busy cores and single GEMMs vary by two orders of magnitude
between calls, which makes ratios meaningless.
"""

from __future__ import annotations

import time

import numpy as np

from .._threads import blas_threads
from ._mlp import plain_energy, plain_hessian_diag
from . import best_time

__all__ = ["run"]


def _cpu_time(fn, repeat):
    """Minimum CPU time of the process over ``repeat`` calls of ``fn``."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def _timed(calls, repeat):
    """``{name: (cpu, wall)}`` best times; a warm-up call first."""
    out = {}
    for name, fn in calls.items():
        fn()
        out[name] = (_cpu_time(fn, repeat), best_time(fn, repeat=repeat))
    return out


def _line(model, prim, n, cpu, wall, t_energy, threads):
    return {
        "model": model,
        "primitive": prim,
        "n": n,
        "us_per_sample": round(1e6 * cpu / n, 4),
        "samples_per_s": round(n / cpu, 1),
        "ratio_to_energy": round(cpu / t_energy, 3),
        "wall_us_per_sample": round(1e6 * wall / n, 4),
        "blas_threads": threads,
    }


def _primitive_calls(model, x, v, c):
    """The six primitives of ``model`` at ``x`` (``v``, ``c``: the mixed-derivative directions)."""
    return {
        "energy": lambda: model.energy(x),
        "grad_x": lambda: model.grad_x(x),
        "hessian_diag": lambda: model.hessian_diag(x),
        "grad_params": lambda: model.grad_params(x),
        "grad_params_of_grad_x": lambda: model.grad_params_of_grad_x(x, v),
        "grad_params_of_hessian_diag": lambda: model.grad_params_of_hessian_diag(x, c),
    }


def _mlp_lines(d, n, repeat, threads):
    from ..energies import MLPEnergy

    rng = np.random.default_rng(d)
    model = MLPEnergy((d, 64, 64), "softplus", seed=0)
    x = rng.standard_normal((n, d))
    v = rng.standard_normal((n, d))
    c = rng.standard_normal((n, d))
    name = f"MLPEnergy(d={d}, hidden=64x64, softplus)"
    times = _timed(_primitive_calls(model, x, v, c), repeat)
    base = _timed(
        {
            "energy": lambda: plain_energy(model, x),
            "hessian_diag": lambda: plain_hessian_diag(model, x),
        },
        repeat,
    )
    targets = {"hessian_diag": ("energy", d + 3.0), "grad_params_of_hessian_diag": ("hessian_diag", 3.0)}
    t_energy = times["energy"][0]
    for prim, (cpu, wall) in times.items():
        line = _line(name, prim, n, cpu, wall, t_energy, threads)
        if prim in targets:
            ref, limit = targets[prim]
            ratio = cpu / times[ref][0]
            line["target"] = f"<= {limit:g} x {ref}"
            line["ratio_to_target_ref"] = round(ratio, 3)
            line["meets_target"] = bool(ratio <= limit)
        if prim in base:
            line["numpy_baseline"] = (
                "textbook forward pass (logaddexp)" if prim == "energy" else "NumPy forward J and S recursion"
            )
            line["ratio_to_numpy"] = round(cpu / base[prim][0], 3)
        yield line


def _latent_lines(n, repeat, threads):
    from scipy import special

    from ..datasets import ellipse_data
    from ..energies.latent import LatentEnergy

    model = LatentEnergy([1.7, 1.2], beta=1.0)
    y = ellipse_data(n, 0)
    rng = np.random.default_rng(1)
    v = rng.standard_normal((n, 2))
    c = rng.standard_normal((n, 2))
    times = _timed(_primitive_calls(model, y, v, c), repeat)
    zg = model.z_grid
    w = model.params["w"]
    m = zg.size

    def plain():
        E = (y[:, 0:1] - w[0] * np.cos(zg)) ** 2 + (y[:, 1:2] - w[1] * np.sin(zg)) ** 2
        return -(special.logsumexp(-E, axis=1) - np.log(m))

    t_plain = _timed({"plain": plain}, repeat)["plain"][0]
    name = f"LatentEnergy(|z_grid|={m}, beta=1)"
    t_energy = times["energy"][0]
    for prim, (cpu, wall) in times.items():
        line = _line(name, prim, n, cpu, wall, t_energy, threads)
        if prim == "energy":
            line["numpy_baseline"] = "scipy logsumexp over the grid"
            line["ratio_to_numpy"] = round(cpu / t_plain, 3)
        yield line


def run(quick=False):
    """Yield the JSON-able result lines (``quick``: 500 samples, 2 repeats)."""
    n = 500 if quick else 10_000
    repeat = 2 if quick else 7
    with blas_threads(1) as threads:
        for d in (2, 20):
            yield from _mlp_lines(d, n, repeat, threads)
        yield from _latent_lines(n, repeat, threads)
