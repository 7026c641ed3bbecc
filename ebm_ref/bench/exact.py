r"""Benchmark suite ``exact``: enumeration of log Z (``python -m ebm_ref bench exact``).

Lines (each with the plain-NumPy baseline timed in the same run):

* ``rbm_log_z``: :func:`ebm_ref.exact.log_partition` of an RBM with 20
  visible x 64 hidden units (the 2^20 visible states are enumerated, the 64
  hiddens summed out); ``ratio_to_floor`` compares with ``softplus_floor``,
  a tight parallel Numba loop (this module's) doing only the 2^20 x 64
  ``nb_softplus`` evaluations in 2^10 chunks (targets: >= 2x NumPy, <= 1.5x
  the floor).
* ``ising_log_z``: :func:`ebm_ref.exact.log_partition` of the periodic 5x5
  lattice (2^25 states; targets: < 1 s on 2 cores, >= 20x NumPy).

Only the public function is timed, with the path it chooses itself.

Each Numba figure is given for 1 and 2 threads (``numba.set_num_threads``);
``quick=True`` uses 16 x 64 and 4 x 4. Times are the best of 3 runs
(NumPy: of 1), after a warm-up call that also compiles; ``cpu_seconds``
(all threads) is given next to each wall time because on a shared machine
the wall time includes waiting for a core. NumPy may use several BLAS
threads for its matrix products.
"""

from __future__ import annotations

import math
import time

import numba
import numpy as np
from numba import prange

from .._jit import pjit
from .._numerics import nb_softplus
from ..energies import RBM, Ising
from ..exact import log_partition

__all__ = ["run"]

#: The floor loop runs in 2^10 parallel chunks, as exact enumeration does.
_FLOOR_CHUNK_BITS = 10


@pjit
def _softplus_floor(a, n_states, chunk_bits, out):
    """``n_states x len(a)`` softplus evaluations in prange chunks (the floor).

    The argument moves by ``(i & 255) * 1e-3`` per state so that nothing can
    be hoisted out of the state loop. No input checks.
    """
    m = a.shape[0]
    n_chunks = 1 << chunk_bits
    chunk_len = n_states // n_chunks
    for ch in prange(n_chunks):
        acc = 0.0
        for i in range(ch * chunk_len, (ch + 1) * chunk_len):
            x = (i & 255) * 1e-3
            for j in range(m):
                acc += nb_softplus(a[j] + x)
        out[ch] = acc


def _numpy_chunked_log_sum(n_bits, chunk, log_terms):
    """``log sum_i exp(log_terms(bits_i))`` over all ``2^n_bits`` bit rows, in chunks.

    ``log_terms`` maps an ``(m, n_bits)`` 0/1 array (state ``i`` in binary,
    most significant bit first) to its ``m`` log-terms; a running maximum
    keeps the sum finite.
    """
    shifts = np.arange(n_bits - 1, -1, -1)
    top, total = -np.inf, 0.0
    for start in range(0, 1 << n_bits, chunk):
        idx = np.arange(start, min(start + chunk, 1 << n_bits))
        terms = log_terms(((idx[:, None] >> shifts) & 1).astype(np.float64))
        m = terms.max()
        if m > top:
            total = total * math.exp(top - m) if np.isfinite(top) else 0.0
            top = m
        total += np.exp(terms - top).sum()
    return top + math.log(total)


def _numpy_rbm_log_z(W, b_v, b_h, chunk=1 << 14):
    """Plain NumPy: enumerate visible states in chunks, free energy, running logsumexp."""
    return _numpy_chunked_log_sum(
        W.shape[0], chunk, lambda v: v @ b_v + np.logaddexp(0.0, v @ W + b_h).sum(axis=1)
    )


def _numpy_ising_log_z(J, h, chunk=1 << 16):
    """Plain NumPy: enumerate spin states in chunks, energies by matmul, running logsumexp."""

    def neg_energy(bits):
        s = 2.0 * bits - 1.0
        return 0.5 * np.einsum("ni,ni->n", s @ J, s) + s @ h

    return _numpy_chunked_log_sum(J.shape[0], chunk, neg_energy)


def _thread_counts():
    return [t for t in (1, 2) if t <= numba.config.NUMBA_NUM_THREADS]


def _timed_threads(fn, repeat=3):
    """``{threads: (best wall seconds, CPU seconds of that run)}``.

    The CPU time (all threads, ``time.process_time``) is reported because
    the machine is shared: wall time then includes waiting for a core.
    The thread count is restored afterwards.
    """
    before = numba.get_num_threads()
    out = {}
    try:
        for t in _thread_counts():
            numba.set_num_threads(t)
            fn()
            best = (float("inf"), float("inf"))
            for _ in range(repeat):
                w0, c0 = time.perf_counter(), time.process_time()
                fn()
                best = min(best, (time.perf_counter() - w0, time.process_time() - c0))
            out[t] = best
    finally:
        numba.set_num_threads(before)
    return out


def _log_z_line(kernel, size, threads, sec, cpu, n_states, numpy_times, diff):
    """The fields every log Z line has (the NumPy baseline's wall and CPU seconds in ``numpy_times``)."""
    np_seconds, np_cpu = numpy_times
    return {
        "kernel": kernel,
        "size": size,
        "threads": threads,
        "seconds": sec,
        "cpu_seconds": cpu,
        "states_per_s": n_states / sec,
        "numpy_seconds": np_seconds,
        "numpy_cpu_seconds": np_cpu,
        "speedup_vs_numpy": np_seconds / sec,
        "abs_diff_vs_numpy": abs(diff),
    }


def run(quick=False):
    """Yield the JSON-line dicts of this suite (see the module docstring)."""
    V, H = (16, 64) if quick else (20, 64)
    L = 4 if quick else 5
    rng = np.random.default_rng(0)
    rbm = RBM(rng.normal(0.0, 0.3, (V, H)), rng.normal(0.0, 0.3, V), rng.normal(0.0, 0.3, H))
    p = rbm.params
    n_states = 1 << V  # V < H: the visibles are enumerated

    t0, c0 = time.perf_counter(), time.process_time()
    np_value = _numpy_rbm_log_z(p["W"], p["b_v"], p["b_h"])
    np_seconds, np_cpu = time.perf_counter() - t0, time.process_time() - c0

    cb = min(V, _FLOOR_CHUNK_BITS)
    floor_out = np.empty(1 << cb)
    b_h = np.ascontiguousarray(p["b_h"])
    floor = _timed_threads(lambda: _softplus_floor(b_h, n_states, cb, floor_out))

    value = log_partition(rbm)
    times = _timed_threads(lambda: log_partition(rbm))
    for t, (sec, cpu) in times.items():
        line = _log_z_line("rbm_log_z", f"{V}x{H}", t, sec, cpu, n_states, (np_seconds, np_cpu), value - np_value)
        line.update(
            floor_seconds=floor[t][0],
            ratio_to_floor=sec / floor[t][0],
            cpu_ratio_to_floor=cpu / floor[t][1],
            targets=">= 2x numpy, <= 1.5x floor",
        )
        yield line
    for t, (sec, cpu) in floor.items():
        yield {
            "kernel": "softplus_floor",
            "size": f"{n_states}x{H}",
            "threads": t,
            "seconds": sec,
            "cpu_seconds": cpu,
            "softplus_per_s": n_states * H / sec,
        }

    model = Ising.lattice(L, 0.44)
    pp = model.params
    t0, c0 = time.perf_counter(), time.process_time()
    np_value = _numpy_ising_log_z(pp["J"], pp["h"])
    np_seconds, np_cpu = time.perf_counter() - t0, time.process_time() - c0
    d = L * L
    value = log_partition(model)
    times = _timed_threads(lambda: log_partition(model))
    size = f"{L}x{L} periodic (2^{d} states)"
    for t, (sec, cpu) in times.items():
        line = _log_z_line("ising_log_z", size, t, sec, cpu, 1 << d, (np_seconds, np_cpu), value - np_value)
        line["targets"] = "< 1 s on 2 cores, >= 20x numpy"
        yield line
