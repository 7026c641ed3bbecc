"""Numba decorators used throughout the package.

``jit`` compiles serial kernels with the on-disk cache, so a new process does
not pay compilation again. ``pjit`` adds ``parallel=True`` for kernels whose
``prange`` iterations are independent (one chain, or one row, per iteration,
writing only their own outputs and never reducing across iterations: a
``prange`` reduction's rounding depends on the thread count).
``jit_nogil`` releases the GIL, for serial kernels that several Python
threads run at once on disjoint rows (the block-Gibbs draws).
``fastmath`` stays off: the reference path must keep IEEE semantics.
"""

import numba

jit = numba.njit(cache=True, fastmath=False)
pjit = numba.njit(cache=True, fastmath=False, parallel=True)
# Serial kernels that Python threads run side by side (they release the GIL).
jit_nogil = numba.njit(cache=True, fastmath=False, nogil=True)


def jit_inline(fn):
    """Serial jit with ``inline="always"`` for tiny per-step helpers."""
    return numba.njit(cache=True, fastmath=False, inline="always")(fn)
