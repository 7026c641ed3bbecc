r"""Lines ``score_matching_peers`` of the ``ssm`` suite: exact score matching against its peers.

Cases: ``MLPEnergy((d, 64, 64))``, softplus, ``d = 2, 20, 100``, batch
1024 (256 with ``quick``). Each line gives milliseconds per loss plus
parameter gradient of

* ebm_ref: ``ScoreMatching().value_and_grad(model, x)`` (hand-derived
  Hessian diagonal and mixed derivatives, docs/models.md);
* ``numpy``: the careful-NumPy forward recursion and hand-written reverse
  pass of :class:`._peers_numpy.NumpyScoreMatching`;
* ``torch``: autograd, the Hessian trace as ``d`` ``autograd.grad`` calls
  with ``create_graph=True`` (:class:`._peers_torch.TorchScoreMatching`);
* ``jax``: ``jax.value_and_grad`` of a loss whose Laplacian is the diagonal
  of ``jax.hessian`` per sample (``vmap``), jitted; its compile time is
  ``compile_s["jax"]`` (:class:`._peers_jax.JaxScoreMatching`),

with ``ratio_vs_fastest_peer`` (> 1: ebm_ref is faster than every peer)
and the fastest peer's name. ``compile_s["ebm_ref"]`` is the first
``value_and_grad`` call on the model (NumPy: nothing to compile, so it is
one call's cost plus first-touch effects). All implementations are timed
in one interleaved loop (best of 5, 2 with ``quick``), each timed call
after an idle pause and untimed warm-up calls (``_peers.SETTLE``; none
with ``quick``). 1-thread lines come from a child process pinned to one
core with every thread count at 1, then 2-thread lines from the calling
process, with the 1 -> 2 speed-ups.
``python -m ebm_ref.bench._sm_bench [--quick] [--child]`` prints them.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from . import best_interleaved
from ._peers import SETTLE, build_peers, child_main, one_thread_child, peer_fields

__all__ = ["run"]

DIMS = (2, 20, 100)


def _measure(quick):
    import numba

    from .._threads import limit_threads

    threads = numba.get_num_threads()
    with limit_threads(threads):
        return [_measure_d(d, quick, threads) for d in DIMS]


def _measure_d(d, quick, threads):
    from ..energies import MLPEnergy
    from ..objectives import ScoreMatching
    from ._peers_jax import JaxScoreMatching
    from ._peers_numpy import NumpyScoreMatching
    from ._peers_torch import TorchScoreMatching

    n = 256 if quick else 1024
    repeat = 2 if quick else 5
    model = MLPEnergy((d, 64, 64), activation="softplus", seed=0)
    x = np.random.default_rng(d).standard_normal((n, d))
    sm = ScoreMatching()
    compile_s = {"ebm_ref": None, "jax": None}
    t0 = time.perf_counter()
    sm.value_and_grad(model, x)
    compile_s["ebm_ref"] = time.perf_counter() - t0

    def numpy_peer():
        peer = NumpyScoreMatching(model, n)
        return lambda: peer.value_and_grad(x)

    def torch_peer(torch):
        peer = TorchScoreMatching(torch, model, threads)
        return lambda: peer.value_and_grad(x)

    def jax_peer(jax):
        peer = JaxScoreMatching(jax, model, x)
        compile_s["jax"] = peer.compile_s
        return peer.value_and_grad

    impls = {"ebm_ref": lambda: sm.value_and_grad(model, x),
             **build_peers({"numpy": numpy_peer, "torch": torch_peer, "jax": jax_peer})}
    live = {k: f for k, f in impls.items() if not isinstance(f, str)}
    for f in live.values():
        f()
    times = dict(zip(live, best_interleaved(list(live.values()), repeat, None if quick else SETTLE)))
    ms = {k: 1e3 * times[k] if k in times else impls[k] for k in impls}
    ebm_ms = ms.pop("ebm_ref")
    return {
        "bench": "score_matching_peers",
        "kernel": "ScoreMatching.value_and_grad",
        "model": f"MLPEnergy(({d}, 64, 64), softplus)",
        "d": d,
        "batch": n,
        **peer_fields(ebm_ms, ms, compile_s, threads, "ms_per_value_and_grad", higher_is_better=False),
    }


def run(quick=False):
    """Yield the 1-thread lines (child process), then the 2-thread lines with speed-ups."""
    one = one_thread_child("_sm_bench", quick)
    yield from one
    for line, ref in zip(_measure(quick), one):
        line["speedup_1_to_2_threads"] = ref["ebm_ref"] / line["ebm_ref"]
        line["peers_speedup_1_to_2_threads"] = {
            k: ref["peers"][k] / v if isinstance(v, float) and isinstance(ref["peers"].get(k), float) else None
            for k, v in line["peers"].items()
        }
        yield line


if __name__ == "__main__":
    child_main(sys.argv[1:], _measure, run)
