"""Numba decorators used throughout the package, and Numba's threading layer.

``jit`` compiles serial kernels with the on-disk cache, so a new process does
not pay compilation again. ``pjit`` adds ``parallel=True`` for kernels whose
``prange`` iterations are independent (one chain, or one row, per iteration,
writing only their own outputs and never reducing across iterations: a
``prange`` reduction's rounding depends on the thread count).
``jit_nogil`` releases the GIL, for serial kernels that several Python
threads run at once on disjoint rows (the block-Gibbs draws).
``fastmath`` stays off: the reference path must keep IEEE semantics.

Importing this module chooses the threading layer of the ``pjit`` kernels
(docs/processes.md), before any of them runs. Numba's GNU OpenMP layer (its
choice on Linux when TBB cannot be found) kills a child made by ``fork``
once the parent has run a parallel kernel, and its workqueue layer aborts
when two Python threads launch parallel kernels at once; TBB is safe for
both. Numba looks for ``libtbb.so.12`` on the loader's path only, where the
``tbb`` wheel (a dependency) does not put it, so the library is loaded here
from the wheel's own file list; Numba's default order (TBB first) then
finds it, and the layer is also named explicitly. A layer the user chose
(``NUMBA_THREADING_LAYER``, a Numba config file, or
``numba.config.THREADING_LAYER`` set before the import) is left alone, and
so is a layer already started. The thread count and the results do not
depend on the layer: every kernel writes per-chain outputs only.

Where TBB was not selected, ``pjit`` kernels are wrapped in a guard that
raises a ``RuntimeError`` naming 'spawn' in a child made by ``fork`` after
the parent started GNU OpenMP, instead of letting Numba kill the child.
``pjit`` kernels are therefore called from Python only (they are the
drivers), never from other jitted code.
"""

import ctypes
import functools
import os
import sys

import numba
import numpy as np

__all__ = ["jit", "pjit", "jit_nogil", "jit_inline", "ON", "OFF", "threading_layer_choice", "ForkedAfterOpenMPError"]

jit = numba.njit(cache=True, fastmath=False)
# Serial kernels that Python threads run side by side (they release the GIL).
jit_nogil = numba.njit(cache=True, fastmath=False, nogil=True)


#: ``True`` and ``False`` for the flags one kernel passes to another. Numba
#: types a literal ``True`` or ``False`` argument as a literal and compiles
#: the callee, and everything it calls, once more for each value; a NumPy
#: boolean is typed as a plain ``bool``. (Four copies of the continuous
#: models' tile evaluator, each with the MLP kernel, made the Langevin
#: driver's first compilation take 38 s.)
ON = np.True_
OFF = np.False_


def jit_inline(fn):
    """Serial jit with ``inline="always"`` for tiny per-step helpers.

    Numba inlines these into the caller's own intermediate form, before
    type inference: right for a few arithmetic lines, costly for helpers
    with loops. Those stay plain ``jit`` functions (LLVM still inlines
    them where it pays): the RBM/GRBM AIS driver, with seven such helpers
    inlined into its ``prange`` body, took 35 s per signature to compile,
    and 10 s with them as ``jit`` (same bits, same speed).
    """
    return numba.njit(cache=True, fastmath=False, inline="always")(fn)


# The oldest TBB whose runtime Numba accepts (its own check, the interface
# version of oneTBB 2021.6).
_TBB_MIN_INTERFACE = 12060
_TBB_SONAME = "libtbb.so.12"


def _tbb_candidates():
    """Paths to try for TBB's runtime: the loader's search, then the ``tbb`` wheel's files."""
    yield _TBB_SONAME
    try:
        import importlib.metadata as metadata

        files = metadata.files("tbb") or ()
    except Exception:  # no such distribution, or unreadable metadata
        return
    for f in files:
        if f.name == _TBB_SONAME:
            yield str(f.locate())


def _load_tbb():
    """Load TBB's runtime process-wide; return its interface version, or ``None``.

    Loaded with ``RTLD_GLOBAL`` under its soname: Numba's own check and its
    ``tbbpool`` extension then find the library already in the process.
    """
    for path in _tbb_candidates():
        try:
            lib = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            version = int(lib.TBB_runtime_interface_version())
        except (OSError, AttributeError):
            continue
        if version >= _TBB_MIN_INTERFACE:
            return version
    return None


def _layer_started():
    """Whether Numba has already started a threading layer in this process."""
    try:
        from numba.np.ufunc import parallel
    except ImportError:  # pragma: no cover - Numba without the parallel backend
        return False
    return bool(getattr(parallel, "_is_initialized", False))


def _choose_threading_layer():
    """Select TBB unless the user chose a layer or one is running; return why.

    Returns one of ``"user"`` (a layer named by the user, left alone),
    ``"started"`` (a layer already running, left alone), ``"tbb"`` (TBB
    selected) or ``"unavailable"`` (no usable TBB: Numba's default stays).
    """
    if "NUMBA_THREADING_LAYER" in os.environ or str(numba.config.THREADING_LAYER).lower() != "default":
        return "user"
    if _layer_started():
        return "started"
    if _load_tbb() is None:
        return "unavailable"
    numba.config.THREADING_LAYER = "tbb"
    return "tbb"


_CHOICE = _choose_threading_layer()


def threading_layer_choice():
    """What this module did about Numba's threading layer at import.

    Returns
    -------
    str
        ``"tbb"`` (TBB selected), ``"user"`` (the user's choice kept),
        ``"started"`` (a layer was already running) or ``"unavailable"``
        (no usable TBB runtime; Numba's default layer is used, and a child
        made by ``fork`` after a parallel kernel is not safe: use
        ``spawn`` or ``forkserver``). ``numba.threading_layer()`` names
        the layer actually running once a parallel kernel has run.
    """
    return _CHOICE


class ForkedAfterOpenMPError(RuntimeError):
    """A parallel kernel called in a child made by ``fork`` after the parent used GNU OpenMP."""


_FORKED_AFTER_OMP = False


def _after_fork_in_child():
    """Mark the child unsafe if the parent had started Numba's GNU OpenMP layer."""
    global _FORKED_AFTER_OMP
    if sys.platform.startswith("linux") and _layer_started() and numba.threading_layer() == "omp":
        _FORKED_AFTER_OMP = True


def _refuse_forked_child(name):
    raise ForkedAfterOpenMPError(
        f"{name}: this process was made by fork() after its parent ran Numba parallel kernels on "
        "the GNU OpenMP threading layer, which cannot run in a forked child (Numba would kill the "
        "process). Start child processes with 'spawn' or 'forkserver' "
        "(multiprocessing.get_context('spawn')), or install the `tbb` package so that ebm_ref "
        "selects the fork-safe TBB layer (docs/processes.md)."
    )


class _ForkGuarded:
    """A ``parallel=True`` dispatcher that refuses to run in an unsafe forked child.

    Everything but the call is the dispatcher's (``py_func``, ``signatures``, ...).
    """

    def __init__(self, dispatcher):
        self._dispatcher = dispatcher
        functools.update_wrapper(self, dispatcher.py_func)

    def __call__(self, *args, **kwargs):
        if _FORKED_AFTER_OMP:
            _refuse_forked_child(self.__name__)
        return self._dispatcher(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._dispatcher, name)


_pjit = numba.njit(cache=True, fastmath=False, parallel=True)


def pjit(fn):
    """``njit(cache=True, parallel=True)``; guarded against an unsafe fork where TBB is not selected."""
    dispatcher = _pjit(fn)
    return dispatcher if _CHOICE == "tbb" else _ForkGuarded(dispatcher)


if _CHOICE != "tbb" and hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
