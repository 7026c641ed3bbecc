"""Ctrl-C reaches long library calls within 2 s and leaves the process usable.

Each child process (``test_interrupt.sigint_roundtrip``) runs, with 2 Numba
threads, one call that would take far longer than a minute (hours, by the
sizes below), receives SIGINT one second after it started, must answer
with ``KeyboardInterrupt`` within 2 s, then repeats a short call it made
before the long one and must get the same bits: the interrupted call left
no worker running and no state behind. The short call also compiles the
kernels before the signal, so the answer time measures the chunking, not
Numba's compiler.

Sizes (each long call at this machine's speed, 2 threads):

* ``gibbs``: RBM 784 x 500, 1000 chains, 10^6 steps (~37 ms a step: ~10 h).
* ``langevin`` (MALA): MLP (2, 64, 64), 1000 chains, 10^9 steps.
* ``ais``: RBM 100 x 50, 1000 chains, 10^6 temperatures (~5 ms each: ~1.4 h).
* ``exact.log_partition``: RBM 30 x 2000, 2^30 states of 2000 hidden units
  (~2 * 10^12 multiply-adds: tens of minutes).

Deterministic apart from timing; the 2 s bound is the issue's requirement
(chunks target 0.25 s, so the answer is normally ~0.3 s).
"""

from __future__ import annotations

import pytest

from test_interrupt import sigint_roundtrip

_HEAD = """
    import os
    os.environ["NUMBA_NUM_THREADS"] = "2"
    import numpy as np
    import ebm_ref
    from ebm_ref.energies import RBM, MLPEnergy
    from ebm_ref import samplers, estimate, exact

    def rbm(V, H, scale, seed):
        r = np.random.default_rng(seed)
        return RBM(scale * r.standard_normal((V, H)), 0.1 * r.standard_normal(V), 0.1 * r.standard_normal(H))

    def same(a, b):
        return all(np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True) for x, y in zip(a, b))
"""

_CALLS = {
    "gibbs": """
        m = rbm(784, 500, 0.01, 0)
        x0 = (np.random.default_rng(1).random((1000, 784)) < 0.5).astype(float)
        short = lambda: samplers.gibbs(m, x0[:300], 3, seed=5, thin=1)
        long = lambda: samplers.gibbs(m, x0, 10**6, seed=5)
        key = lambda r: (r.x, r.trace, r.energies)
    """,
    "langevin": """
        m = MLPEnergy((2, 64, 64), seed=0)
        x0 = np.random.default_rng(1).standard_normal((1000, 2))
        short = lambda: samplers.langevin(m, x0[:50], 20, 0.01, seed=5, adjust=True, thin=4)
        long = lambda: samplers.langevin(m, x0, 10**9, 0.01, seed=5, adjust=True)
        key = lambda r: (r.x, r.trace, r.energies, r.acceptance_rate)
    """,
    "ais": """
        m = rbm(100, 50, 0.1, 0)
        short = lambda: estimate.ais(m, 50, estimate.betas(100), seed=5)
        long = lambda: estimate.ais(m, 1000, estimate.betas(10**6), seed=5)
        key = lambda r: (r.log_weights, r.x)
    """,
    "log_partition": """
        m = rbm(30, 2000, 0.01, 0)
        small = rbm(12, 40, 0.5, 1)
        short = lambda: exact.log_partition(small, return_error=True)
        long = lambda: exact.log_partition(m)
        key = lambda r: r
    """,
}

_TAIL = """
    before = key(short())
    print("READY", flush=True)
    try:
        long()
    except KeyboardInterrupt:
        print("INTERRUPTED", flush=True)
    else:
        raise SystemExit("the long call finished: it was not long enough")
    assert same(before, key(short())), "the call after the interrupt differs"
    print("AGAIN-OK", flush=True)
"""


@pytest.mark.parametrize("name", sorted(_CALLS))
def test_ctrl_c_stops_a_long_call_and_the_next_call_works(name):
    import textwrap

    code = textwrap.dedent(_HEAD) + textwrap.dedent(_CALLS[name]) + textwrap.dedent(_TAIL)
    answered, output = sigint_roundtrip(code, delay=1.0, answer_within=2.0)
    assert "INTERRUPTED" in output and "AGAIN-OK" in output
