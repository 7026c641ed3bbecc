r"""Benchmark: ULA and MALA on ``MLPEnergy`` (float64), Numba kernels vs NumPy.

Cases: ``d = 2`` with two hidden layers of 64 and 4096 chains;
``d = 100`` with two hidden layers of 256 and 1024 chains; softplus.
The reference is a batched plain-NumPy implementation of the same step with
the same hand-derived gradient (matrix products through BLAS on the whole
batch, ``numpy.random.Generator`` noise), timed in the same run. Each line
reports chain-steps per second of both and their ratio, at the default
thread count (Numba threads and BLAS threads both 2 here) and, from a
subprocess pinned to one core with ``NUMBA_NUM_THREADS=1`` and
``OPENBLAS_NUM_THREADS=1``, at one thread; the 2-thread lines also carry the
1 -> 2 thread speed-up of each implementation.

Each figure is the best of interleaved repeats (5, or 3 with ``quick``);
``ratio_vs_numpy_cpu_time`` is the same ratio in process CPU time, which
at one thread is the figure least disturbed by a busy machine (at two
threads it compares total CPU spent, not speed).
The Numba timing is of the public ``langevin`` call, so it includes the
per-call set-up (input checks, seeding, and the energy and gradient at the
initial states: measured ~13 ms for 4096 chains at d = 2, about one step's
worth), amortised over 50 steps (5 with ``quick``, where it weighs more).
The MLP kernel evaluates each layer's activations in one loop over its
units with a polynomial ``exp`` and ``log1p`` (no libm calls, no branches,
``np.divide`` instead of ``/``, whose zero-divisor check blocks
vectorisation), so LLVM vectorises it as NumPy's ``logaddexp`` / ``exp``
loops are. Before that change libm's scalar ``exp`` / ``log1p`` took about
half the kernel time and MALA at d = 2 ran at ~1.6x NumPy at one thread;
after it, measured in one run on the shared 2-core machine (one thread):
d = 2 ULA 2.98x, MALA 2.86x; d = 100 ULA 1.95x, MALA 1.87x (two threads:
5.6x, 4.5x, 2.9x, 3.0x). The results changed in their last bits only.
``run(quick=False)`` yields the dicts; the samplers suite includes it.
``python -m ebm_ref.bench._langevin_bench [--quick] [--child]`` prints them.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time

import numpy as np

from . import best_time

__all__ = ["run", "numpy_langevin"]

CASES = (
    # (d, hidden widths, n_chains)
    (2, (64, 64), 4096),
    (100, (256, 256), 1024),
)


def _softplus(z):
    return np.logaddexp(0.0, z)


def _sigmoid(z):
    # expit without SciPy's ufunc: the branch-free stable form
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _numpy_energy_grad(layers, w_out, b_out, x):
    """Batched softplus-MLP energy and hand-derived input gradient."""
    zs = []
    a = x
    for W, b in layers:
        z = a @ W.T + b
        zs.append(z)
        a = _softplus(z)
    e = a @ w_out + b_out
    delta = w_out * _sigmoid(zs[-1])
    for l in range(len(layers) - 1, 0, -1):
        delta = (delta @ layers[l][0]) * _sigmoid(zs[l - 1])
    g = delta @ layers[0][0]
    return e, g


def numpy_langevin(layers, w_out, b_out, x, n_steps, eta, adjust, gen):
    """Plain-NumPy ULA/MALA on the whole batch (the benchmark's reference)."""
    n, d = x.shape
    e, g = _numpy_energy_grad(layers, w_out, b_out, x)
    noise = math.sqrt(2.0 * eta)
    accepted = np.zeros(n)
    for _ in range(n_steps):
        xp = x - eta * g + noise * gen.standard_normal((n, d))
        ep, gp = _numpy_energy_grad(layers, w_out, b_out, xp)
        if adjust:
            fwd = np.sum((xp - x + eta * g) ** 2, axis=1)
            bwd = np.sum((x - xp + eta * gp) ** 2, axis=1)
            log_alpha = e - ep + (fwd - bwd) / (4.0 * eta)
            ok = np.log(gen.random(n)) < np.minimum(0.0, log_alpha)
            x = np.where(ok[:, None], xp, x)
            g = np.where(ok[:, None], gp, g)
            e = np.where(ok, ep, e)
            accepted += ok
        else:
            x, g, e = xp, gp, ep
    return x, accepted


def _measure(quick):
    import numba

    from ..energies import MLPEnergy
    from ..samplers import langevin
    from ._mlp import mlp_layers

    threads = numba.get_num_threads()
    out = []
    for d, widths, n_chains in CASES:
        if quick:
            n_chains = max(64, n_chains // 8)
        model = MLPEnergy((d, *widths), activation="softplus", seed=0)
        layers, w_out, b_out = mlp_layers(model)
        x0 = np.random.default_rng(0).normal(size=(n_chains, d))
        n_steps = 5 if quick else 50
        repeat = 3 if quick else 5
        # a step size with a MALA acceptance well inside (0, 1) on this model
        eta = 0.05 if d == 2 else 0.01
        langevin(model, x0[:4], 2, eta, seed=0, adjust=True)  # compile / load the cache
        for adjust in (False, True):
            gen = np.random.default_rng(1)

            def nb():
                langevin(model, x0, n_steps, eta, seed=1, adjust=adjust)

            def ref():
                numpy_langevin(layers, w_out, b_out, x0, n_steps, eta, adjust, gen)

            # interleaved short runs, minimum of each: on a shared machine a
            # burst of load then hits both implementations alike
            t_nb = t_np = c_nb = c_np = float("inf")
            for _ in range(repeat):
                c0 = time.process_time()
                t_nb = min(t_nb, best_time(nb, repeat=1))
                c1 = time.process_time()
                t_np = min(t_np, best_time(ref, repeat=1))
                c2 = time.process_time()
                c_nb = min(c_nb, c1 - c0)
                c_np = min(c_np, c2 - c1)
            rate_nb = n_chains * n_steps / t_nb
            rate_np = n_chains * n_steps / t_np
            out.append({
                "bench": "langevin_mlp",
                "kernel": "mala" if adjust else "ula",
                "model": f"MLPEnergy{(d, *widths)} softplus",
                "n_chains": n_chains,
                "n_steps": n_steps,
                "threads": threads,
                "chain_steps_per_s": rate_nb,
                "numpy_chain_steps_per_s": rate_np,
                "ratio_vs_numpy": rate_nb / rate_np,
                # CPU seconds instead of wall seconds: at one thread this is
                # the figure least disturbed by other processes
                "ratio_vs_numpy_cpu_time": c_np / c_nb,
                "target_ratio": 2.0 if d == 2 else 1.3,
            })
    return out


def _child_one_thread(quick):
    """Run the measurements pinned to one core, in a fresh process."""
    env = dict(os.environ, NUMBA_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "ebm_ref.bench._langevin_bench", "--child"]
    if quick:
        cmd.append("--quick")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600, check=True)
    return [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]


def run(quick=False):
    """Yield one dict per (case, kernel, thread count); see the module docstring."""
    one = _child_one_thread(quick)
    two = _measure(quick)
    for line in one:
        yield line
    for line, ref in zip(two, one):
        line = dict(line)
        line["speedup_1_to_2_threads"] = line["chain_steps_per_s"] / ref["chain_steps_per_s"]
        line["numpy_speedup_1_to_2_threads"] = (
            line["numpy_chain_steps_per_s"] / ref["numpy_chain_steps_per_s"]
        )
        yield line


def _main(argv):
    quick = "--quick" in argv
    if "--child" in argv:
        if hasattr(os, "sched_setaffinity"):
            cpus = sorted(os.sched_getaffinity(0))
            os.sched_setaffinity(0, {cpus[0]})
        for line in _measure(quick):
            print(json.dumps(line), flush=True)
        return
    for line in run(quick):
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    _main(sys.argv[1:])
