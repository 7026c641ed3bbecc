"""Checks and allocation shared by every public sampler (the wrapper layer).

A public sampler: ``prepare`` (validate, copy ``x0`` to a C-contiguous
float64 ``(n_chains, d)`` array, derive the per-chain RNG rows, allocate the
trace) -> a jitted driver that writes row ``c`` of every output only from
chain ``c`` -> ``finish`` (shape the result like ``x0``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._interrupt import PROGRESS_DELAY, run_chunked
from .._jit import jit_inline
from .._rng import STREAM_SAMPLE, as_seed_sequence, chain_states
from .._threads import one_thread_blas
from .._validation import check_nonneg_int, check_positive
from ._result import SampleResult

__all__ = [
    "Prepared", "prepare", "finish", "check_step_size", "unsupported", "rows_blockwise", "BLOCK", "run_steps",
]


@dataclass
class Prepared:
    """Validated inputs of one sampler call."""

    x: np.ndarray  # (n_chains, d) float64, C-contiguous, a copy of x0
    was_1d: bool
    n_steps: int
    thin: int
    rng: np.ndarray  # (n_chains, 4) uint64 xoshiro rows
    trace: np.ndarray  # (n_saved, n_chains, d); (0, n_chains, d) when thin == 0


def prepare(model, x0, n_steps, seed, thin=0, stream=STREAM_SAMPLE):
    """Validate the common arguments of a sampler and allocate its outputs.

    ``x0`` must hold states of ``model.domain`` (docs/conventions.md); it is never
    mutated. ``n_steps`` and ``thin`` are non-negative ints.
    """
    n_steps = check_nonneg_int(n_steps, "n_steps")
    thin = check_nonneg_int(thin, "thin")
    check_int64(n_steps, "n_steps")
    check_int64(thin, "thin")
    x2d, was_1d = model.check_states(x0, "x0")
    x = np.array(x2d, dtype=np.float64, order="C", copy=True)
    ss = as_seed_sequence(seed)
    rng = chain_states(ss, x.shape[0], stream)
    n_saved = n_steps // thin if thin > 0 else 0
    try:
        trace = np.empty((n_saved, x.shape[0], x.shape[1]), dtype=np.float64)
    except (MemoryError, ValueError):  # numpy's message names neither argument
        raise ValueError(
            f"`n_steps` // `thin` = {n_saved} saved states of {x.shape[0]} chains x {x.shape[1]} units "
            f"({n_saved * x.shape[0] * x.shape[1] * 8:.3g} bytes) do not fit in memory; raise `thin` "
            f"or lower `n_steps`."
        ) from None
    return Prepared(x, was_1d, n_steps, thin, rng, trace)


def check_int64(value, name):
    """Refuse a count the int64 kernels cannot hold (it would overflow, not run)."""
    if value > _INT64_MAX:
        raise ValueError(f"`{name}` must be at most 2**63 - 1 = {_INT64_MAX} (an int64 count); got {value}.")
    return value


_INT64_MAX = 2**63 - 1


def run_steps(prep, step, label):
    """Call ``step(t0, count)`` over the run's ``prep.n_steps`` steps in chunks of about 0.25 s.

    Why: a jitted driver (or a pool of worker threads) does not see Ctrl-C
    until it returns; between chunks it does (``ebm_ref._interrupt``), so a
    sampler stops within about a second and the process stays usable. The
    drivers take the first step's global index ``t0`` and keep every
    per-chain carry in the arrays of ``prep`` (docs/processes.md), so the
    result is bit-identical to one call however the steps are cut. On a
    terminal a progress line labelled ``label`` appears once the run has
    taken ``PROGRESS_DELAY`` seconds (``EBM_REF_PROGRESS=0`` turns it off).
    A run of 0 steps calls ``step(0, 0)`` once (the drivers' final energies).
    """
    if prep.n_steps == 0:
        step(0, 0)
        return
    run_chunked(step, prep.n_steps, progress=label, progress_delay=PROGRESS_DELAY)


def finish(prep, energies, acceptance_rate=None):
    """Build the :class:`SampleResult`, shaping ``x`` like ``x0``."""
    x = prep.x[0] if prep.was_1d else prep.x
    trace = prep.trace if prep.thin > 0 else None
    return SampleResult(x=x, acceptance_rate=acceptance_rate, trace=trace, energies=energies)


def check_step_size(step_size, name="step_size"):
    """A finite real > 0 (docs/conventions.md)."""
    return check_positive(step_size, name)


def unsupported(sampler, model, supported):
    """``TypeError`` naming the sampler, the model and the models it takes."""
    return TypeError(
        f"`{sampler}` does not support {type(model).__name__}; it supports: {', '.join(supported)}."
    )


# --------------------------------------------------------------------------
# Jitted per-step helpers shared by the drivers (one copy of the Metropolis
# test and of the trace/thinning rule). ``t`` counts steps from the start of
# the whole run, so a driver called on consecutive chunks of steps (with
# ``t0`` the number of steps already done) writes the same trace rows.


@jit_inline
def trace_slot(t, thin):
    """Row of the trace that stores the state after step ``t``, or -1 when that state is not kept."""
    if thin > 0 and (t + 1) % thin == 0:
        return (t + 1) // thin - 1
    return -1


@jit_inline
def mh_accept(u, log_alpha):
    """Metropolis test ``log u < min(0, log_alpha)``."""
    return math.log(u) < min(0.0, log_alpha)


@jit_inline
def record(trace, c, xc, t, thin):
    """After step ``t`` (0-based, from the start of the run): save ``xc`` in its trace row (``trace_slot``)."""
    k = trace_slot(t, thin)
    if k >= 0:
        trace[k, c, :] = xc

# Fixed batch size of every BLAS call on chains (see ``rows_blockwise``).
BLOCK = 128


def rows_blockwise(fn, x, fill=0.0, block=BLOCK):
    """Apply a row-wise batch function ``fn`` in zero-padded blocks of ``block`` rows.

    Why: OpenBLAS may round row ``i`` of ``A @ B`` differently for different
    numbers of rows of ``A`` (measured: rows of a 10-row product differ in
    the last bits from the same rows inside a 1024-row product), which would
    break chain-prefix invariance (see ``docs/conventions.md``). With every call on exactly
    ``block`` rows, chain ``c`` always sits at row ``c mod block`` of a
    product of the same shape, and no BLAS mixes the contents of different
    rows; measured bit-identical for rows of 128-row blocks inside a 1024-row
    product and across positions. ``fill`` pads the last block. Every call
    runs on one OpenBLAS thread (``one_thread_blas``).
    """
    n = x.shape[0]
    n_pad = -(-n // block) * block
    xp = np.full((n_pad, x.shape[1]), fill, dtype=np.float64)
    xp[:n] = x
    # one BLAS thread, whatever the caller's setting: a multi-threaded
    # OpenBLAS product rounds differently (measured: RBM 784 x 500 energies
    # of 128-row blocks at 1 and 2 threads up to 1.1e-13 apart), and another
    # Python thread's pin may change the process-wide setting mid-call
    with one_thread_blas():
        out = [np.asarray(fn(xp[b : b + block])) for b in range(0, n_pad, block)]
    return np.concatenate(out, axis=0)[:n]

