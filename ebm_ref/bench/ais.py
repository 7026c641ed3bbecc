r"""Benchmark: AIS on a 784 x 500 RBM (``python -m ebm_ref bench ais``).

The full run: 100 chains and :math:`10^4` inverse temperatures,
timed once end to end, against

* ``numpy_gibbs``: the same number of plain-NumPy block-Gibbs steps
  (h|v then v|h, batched over the 100 chains with BLAS matrix products),
  the baseline the target is stated against;
* ``numpy_ais``: a plain-NumPy AIS step (the Gibbs step plus the
  importance-weight update), for information.

Both NumPy loops run a subset of the steps (``numpy_steps``, best of 3) and
are scaled linearly to the full count (each step costs the same); the JSON
lines say so. ``cpu_seconds`` (process CPU time, all threads) of the AIS run shows
its cost independently of other load on a shared machine: wall time on
``t`` idle cores is about ``cpu_seconds / t``. ``quick=True`` shrinks
everything for a smoke test.

The RBM has ``W ~ N(0, 0.1^2)`` and zero biases, so about half the units
are on: the visible and hidden sums of the Numba kernel skip inactive units,
and this is their costly case.
"""

from __future__ import annotations

import time

import numpy as np

from .._numerics import sigmoid, softplus
from ..energies import RBM
from ..estimate import ais, betas
from . import best_time


def _numpy_gibbs(rbm, v, n_steps, rng):
    """Plain-NumPy block Gibbs at beta = 1, batched over chains."""
    p = rbm.params
    W, b_v, b_h = p["W"], p["b_v"], p["b_h"]
    for _ in range(n_steps):
        ph = sigmoid(v @ W + b_h)
        h = (rng.random(ph.shape) < ph).astype(np.float64)
        pv = sigmoid(h @ W.T + b_v)
        v = (rng.random(pv.shape) < pv).astype(np.float64)
    return v


def _numpy_ais(rbm, v, bs, rng):
    """Plain-NumPy AIS steps along ``bs`` (the same path as the kernel)."""
    p = rbm.params
    W, b_v, b_h = p["W"], p["b_v"], p["b_h"]
    b_A = b_v
    logw = np.zeros(v.shape[0])
    for k in range(1, len(bs)):
        b0, b1 = bs[k - 1], bs[k]
        a = v @ W + b_h
        logw += (b1 - b0) * (v @ (b_v - b_A)) + (softplus(b1 * a) - softplus(b0 * a)).sum(1)
        h = (rng.random(a.shape) < sigmoid(b1 * a)).astype(np.float64)
        pv = sigmoid((1 - b1) * b_A + b1 * (h @ W.T + b_v))
        v = (rng.random(pv.shape) < pv).astype(np.float64)
    return logw


def run(quick=False):
    """Yield JSON-ready dicts: AIS time, NumPy times, ratios."""
    if quick:
        V, H, n_chains, n_betas, numpy_steps = 64, 32, 16, 200, 50
    else:
        V, H, n_chains, n_betas, numpy_steps = 784, 500, 100, 10_000, 200
    gen = np.random.default_rng(0)
    rbm = RBM(0.1 * gen.standard_normal((V, H)), np.zeros(V), np.zeros(H))
    bs = betas(n_betas)
    # Compile (or load from cache) outside the timing.
    ais(rbm, 2, betas(3), seed=0)

    # The long AIS run is timed once (best of 3 in quick mode); the NumPy
    # subsets are short, so they take the best of 3.
    t_ais = cpu_ais = float("inf")
    for _ in range(3 if quick else 1):
        t0, c0 = time.perf_counter(), time.process_time()
        res = ais(rbm, n_chains, bs, seed=1)
        t_ais = min(t_ais, time.perf_counter() - t0)
        cpu_ais = min(cpu_ais, time.process_time() - c0)
    n_steps = n_betas - 2  # transitions (Gibbs steps) made by AIS

    v0 = (gen.random((n_chains, V)) < 0.5).astype(np.float64)
    t_np = best_time(lambda: _numpy_gibbs(rbm, v0, numpy_steps, gen)) * n_steps / numpy_steps
    sub = np.linspace(0.0, 1.0, numpy_steps + 1)
    t_np_ais = best_time(lambda: _numpy_ais(rbm, v0, sub, gen)) * (n_betas - 1) / numpy_steps

    common = {"V": V, "H": H, "n_chains": n_chains, "n_betas": n_betas}
    yield {
        "kernel": "ais_rbm",
        **common,
        "seconds": round(t_ais, 3),
        "cpu_seconds": round(cpu_ais, 3),
        "gibbs_steps_per_s": round(n_chains * n_steps / t_ais, 1),
        "log_z": res.log_z,
        "stderr": res.stderr,
    }
    for kernel, t, what, done in (
        ("numpy_gibbs", t_np, "batched steps", n_steps),
        ("numpy_ais", t_np_ais, "AIS steps (Gibbs + weights)", n_betas - 1),
    ):
        yield {
            "kernel": kernel,
            **common,
            "seconds_scaled": round(t, 3),
            "measured_steps": numpy_steps,
            "note": f"timed {numpy_steps} {what}, scaled linearly to {done}",
            "ratio_numba_speedup": round(t / t_ais, 3),
        }
