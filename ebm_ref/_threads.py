"""Thread-count control for Numba and the OpenBLAS that NumPy loaded.

Small problems run faster on one thread: with two pools (Numba's and
OpenBLAS's) each spinning on the same two cores, a 16 x 8 enumeration or a
batch-200 product was measured 10-50x slower than single-threaded. Results
never depend on the thread count (docs/threads.md), only the time does.

NumPy exposes no BLAS thread setter and ``threadpoolctl`` is not a
dependency, so the OpenBLAS entry points are looked up in the libraries the
process has mapped (Linux ``/proc/self/maps``); elsewhere, or with another
BLAS, the BLAS thread count is left alone. NumPy and SciPy wheels each
bring their own OpenBLAS, and Numba's ``np.dot`` (the MLP kernel's
products) calls SciPy's: both are set together.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import functools
import os
import threading

import numba

__all__ = [
    "openblas_thread_controls",
    "blas_threads",
    "one_thread_blas",
    "worker_pool",
    "limit_threads",
    "available_cores",
    "capped_numba_threads",
]

_NAMES = (
    "scipy_openblas_{}_num_threads64_",
    "scipy_openblas_{}_num_threads",
    "openblas_{}_num_threads64_",
    "openblas_{}_num_threads",
)


@functools.lru_cache(maxsize=None)
def openblas_thread_controls():
    """``(get, set)`` for every loaded OpenBLAS together, or ``None``.

    ``get()`` reads the first library's count (NumPy's, by path order),
    ``set(n)`` sets every library's. Looked up once per process: NumPy maps
    its BLAS when it is imported, and SciPy's is mapped here first (Numba
    loads it at its first ``np.dot``, too late for a cached look-up).
    Samplers call this on every call.
    """
    try:
        import scipy.linalg.cython_blas  # noqa: F401  (maps SciPy's OpenBLAS)
    except ImportError:  # pragma: no cover - scipy is a dependency
        pass
    try:
        with open("/proc/self/maps") as fh:
            paths = {line.split()[-1] for line in fh if "openblas" in line.lower() and "/" in line}
    except OSError:
        return None
    found = []
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for pattern in _NAMES:
            get_name, set_name = pattern.format("get"), pattern.format("set")
            if hasattr(lib, get_name) and hasattr(lib, set_name):
                getter, setter = getattr(lib, get_name), getattr(lib, set_name)
                getter.restype = ctypes.c_int
                setter.argtypes = [ctypes.c_int]
                found.append((getter, setter))
                break
    if not found:
        return None
    getters, setters = tuple(g for g, _ in found), tuple(s for _, s in found)

    def get():
        return getters[0]()

    def set_(n):
        for setter in setters:
            setter(int(n))

    return get, set_


@contextlib.contextmanager
def blas_threads(n):
    """Run the block with ``n`` OpenBLAS threads; yields ``n`` or a note if unchanged."""
    controls = openblas_thread_controls()
    if controls is None:
        yield "unchanged (OpenBLAS controls not found)"
        return
    getter, setter = controls
    before = getter()
    setter(int(n))
    try:
        yield int(n)
    finally:
        setter(before)


# Serialises the sections that pin OpenBLAS to one thread: the setting is
# process-wide, so two concurrent samplers must not restore it under each
# other. Re-entrant: ``gibbs`` holds it around the sampler and the final
# energies, and the sampler takes it again.
_BLAS_PIN = threading.RLock()
# OpenBLAS's thread count before the outermost pin, while a pin is held
# (None otherwise): what a forked child restores.
_UNPINNED = None


@contextlib.contextmanager
def one_thread_blas():
    """Pin OpenBLAS to one thread inside the block; yields whether it could.

    Besides making every product a single-threaded computation, this keeps
    OpenBLAS's own workers idle: after a multi-threaded call they spin for
    about 0.1 s (measured: a full core of CPU time during a 0.1 s sleep),
    which took a core from the sampler's threads.
    """
    global _UNPINNED
    controls = openblas_thread_controls()
    if controls is None:
        yield False
        return
    with _BLAS_PIN:
        outermost = _UNPINNED is None
        if outermost:
            _UNPINNED = controls[0]()
        try:
            with blas_threads(1):
                yield True
        finally:
            if outermost:
                _UNPINNED = None


def _after_fork_in_child():
    """A child forked while another thread held the pin: new lock, OpenBLAS's count as before the pin.

    The thread that held the lock does not exist in the child, so the
    inherited lock would never be released (the child's next ``gibbs``
    would wait forever), and its pin would never be undone.
    """
    global _BLAS_PIN, _UNPINNED
    _BLAS_PIN = threading.RLock()
    if _UNPINNED is not None:
        controls = openblas_thread_controls()
        if controls is not None:
            controls[1](_UNPINNED)
        _UNPINNED = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


_POOL = None  # (pid, size, executor): idle workers wait without spinning


def worker_pool(size):
    """A process-wide pool of at least ``size`` threads, rebuilt after a fork.

    Shared by the Python-thread parallel paths (block Gibbs, the MLP's
    score-matching pass): threads are started once per process, not per
    call.
    """
    global _POOL
    pid = os.getpid()
    if _POOL is None or _POOL[0] != pid or _POOL[1] < size:
        if _POOL is not None and _POOL[0] == pid:
            _POOL[2].shutdown(wait=False)
        _POOL = (pid, size, concurrent.futures.ThreadPoolExecutor(size, thread_name_prefix="ebm_ref_worker"))
    return _POOL[2]


def available_cores():
    """Cores this process may run on (its CPU affinity where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def capped_numba_threads(n):
    """``n`` clipped to ``[1, NUMBA_NUM_THREADS]``: the counts ``numba.set_num_threads`` accepts."""
    return max(1, min(int(n), numba.config.NUMBA_NUM_THREADS))


@contextlib.contextmanager
def limit_threads(n=1):
    """Run the block with ``n`` Numba threads and ``n`` OpenBLAS threads.

    Numba's count is capped by its pool size (``NUMBA_NUM_THREADS``, which a
    user may have set lower than the cores); both are restored afterwards.
    """
    old = numba.get_num_threads()
    numba.set_num_threads(capped_numba_threads(n))
    try:
        with blas_threads(n):
            yield
    finally:
        numba.set_num_threads(old)
