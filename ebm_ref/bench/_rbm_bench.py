r"""Benchmark line ``rbm_block_gibbs`` of the ``samplers`` suite: RBM block Gibbs against its peers.

784 x 500 binary RBM, 1000 chains, float64 (``quick``: 64 x 32, 100
chains). Rates are chain-sweeps per second (one sweep: ``h | v`` then
``v | h``) of

* ebm_ref: the public :func:`ebm_ref.samplers.gibbs`, set-up excluded (an
  ``n``-sweep call minus a 0-sweep call, whose time is ``setup_s``: input
  checks, seeding and, for most of it, the final free energies). The
  sampler pins OpenBLAS to one thread and spreads its 128-chain blocks
  over the line's thread count of Python threads (docs/threads.md);
* ``gemm_ceiling``: the two matrix products ``v W`` and ``h W^T`` alone on
  the whole batch (one OpenBLAS call each at the line's thread count), the
  speed no sampler built on them can pass; ``step_over_matmuls`` is
  ebm_ref's time per sweep over theirs (target ``1 / 0.9``: at least 0.9
  of their rate; ``target_ratio``, 1.3, is for the rate over careful
  NumPy's, ``peers["numpy"]``);
* ``numpy_plain``: the textbook NumPy sweep (``bench.ais._numpy_gibbs``: fresh arrays), the
  suite's former reference, kept as ``speedup_vs_numpy``;
* the peers of :mod:`._peers` (careful NumPy, torch with
  ``torch.bernoulli``, JAX with a jitted ``fori_loop``), with
  ``ratio_vs_fastest_peer`` and the fastest peer's name.

All of them are timed in one interleaved loop (best of 5, 3 with
``quick``, of 5 sweeps; 3 with ``quick``), each timed call after an idle
pause and untimed warm-up calls (``_peers.SETTLE``; none with
``quick``). The 2-thread line is measured in the calling process, the
1-thread line in a child process pinned to one core with every thread
count (Numba, OpenBLAS, OpenMP, torch, XLA) at 1; the 2-thread line
carries the 1 -> 2 speed-up of each implementation.
``python -m ebm_ref.bench._rbm_bench [--quick] [--child]`` prints the lines.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from .._threads import limit_threads, openblas_thread_controls
from .ais import _numpy_gibbs
from ._peers import SETTLE, build_peers, child_main, interleaved_rates, one_thread_child, peer_fields

__all__ = ["run"]


def _measure(quick):
    import numba

    threads = numba.get_num_threads()
    with limit_threads(threads):
        line = _measure_at(quick, threads)
    line["blas_threads_pinned"] = openblas_thread_controls() is not None
    return [line]


def _measure_at(quick, threads):
    from ..energies import RBM
    from ..samplers import gibbs
    from ._peers_jax import JaxRBMGibbs
    from ._peers_numpy import NumpyRBMGibbs
    from ._peers_torch import TorchRBMGibbs

    V, H, n = (64, 32, 100) if quick else (784, 500, 1000)
    sweeps = 3 if quick else 5
    repeat = 3 if quick else 5
    r = np.random.default_rng(0)
    model = RBM(r.normal(0, 0.05, (V, H)), r.normal(0, 0.1, V), r.normal(0, 0.1, H))
    p = model.params
    W, b_v, b_h = p["W"], p["b_v"], p["b_h"]
    v0 = (r.random((n, V)) < 0.5).astype(np.float64)
    h0 = (r.random((n, H)) < 0.5).astype(np.float64)
    gen = np.random.default_rng(1)
    compile_s = {"ebm_ref": None, "jax": None}
    t0 = time.perf_counter()
    gibbs(model, v0[:1], 1, seed=0)  # compile / load the cache
    compile_s["ebm_ref"] = time.perf_counter() - t0

    def numpy_peer():
        peer = NumpyRBMGibbs(W, b_v, b_h, n, seed=2)
        return (lambda: peer.run(v0, sweeps), lambda: peer.run(v0, 0))

    def torch_peer(torch):
        peer = TorchRBMGibbs(torch, W, b_v, b_h, n, threads, seed=3)
        return (lambda: peer.run(v0, sweeps), lambda: peer.run(v0, 0))

    def jax_peer(jax):
        peer = JaxRBMGibbs(jax, W, b_v, b_h, v0, seed=4)
        compile_s["jax"] = peer.compile_s
        peer.run(1)
        return (lambda: peer.run(sweeps), lambda: peer.run(0))

    def nothing():
        return None

    impls = {
        "ebm_ref": (lambda: gibbs(model, v0, sweeps, seed=0), lambda: gibbs(model, v0, 0, seed=0)),
        # sweeps x (v W, h W^T), against doing nothing
        "gemm_ceiling": (lambda: [(v0 @ W, h0 @ W.T) for _ in range(sweeps)], nothing),
        "numpy_plain": (lambda: _numpy_gibbs(model, v0, sweeps, gen), nothing),
        **build_peers({"numpy": numpy_peer, "torch": torch_peer, "jax": jax_peer}),
    }
    for pair in impls.values():
        if not isinstance(pair, str):
            pair[0]()
    rates, setup = interleaved_rates(impls, n * sweeps, repeat, None if quick else SETTLE)
    rate_nb, rate_mm, rate_plain = rates.pop("ebm_ref"), rates.pop("gemm_ceiling"), rates.pop("numpy_plain")
    return {
        "bench": "rbm_block_gibbs",
        "shape": [V, H],
        "n_chains": n,
        "sweeps": sweeps,
        **peer_fields(rate_nb, rates, compile_s, threads, "chain_sweeps_per_s"),
        "setup_s": setup["ebm_ref"],
        "chain_sweeps_per_s": rate_nb,
        "gemm_ceiling_chain_sweeps_per_s": rate_mm,
        "step_over_matmuls": rate_mm / rate_nb if rate_nb and rate_mm else None,
        "target_step_over_matmuls": 1.0 / 0.9,
        "target_ratio": 1.3,
        "numpy_chain_sweeps_per_s": rate_plain,
        "speedup_vs_numpy": rate_nb / rate_plain if rate_nb and rate_plain else None,
    }


def _speedup(a, b):
    return a / b if isinstance(a, float) and isinstance(b, float) else None


def run(quick=False):
    """Yield the 1-thread line (child process), then the 2-thread line (this process)."""
    one = one_thread_child("_rbm_bench", quick)
    yield from one
    for line, ref in zip(_measure(quick), one):
        line["speedup_1_to_2_threads"] = _speedup(line["ebm_ref"], ref["ebm_ref"])
        line["peers_speedup_1_to_2_threads"] = {
            k: _speedup(v, ref["peers"].get(k)) for k, v in line["peers"].items()
        }
        yield line


if __name__ == "__main__":
    child_main(sys.argv[1:], _measure, run)
