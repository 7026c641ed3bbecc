"""What runs on a worker: thread limits, the task call, result checking.

Kept apart from the driver so that a worker process imports as little as
possible before its thread limits are set.
"""

from __future__ import annotations

import os
import socket
import time
import traceback

# NUMBA_NUM_THREADS is not among them: Numba rereads it at every compilation
# and refuses a value other than the size of its already launched pool;
# numba.set_num_threads limits the threads used instead.
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def init_worker(threads):
    """Process-pool initializer: cap Numba's and BLAS's threads at ``threads``.

    The environment variables reach BLAS libraries not yet loaded (and
    processes the task starts); the runtime setters reach those already
    loaded.
    """
    for var in _THREAD_VARS:
        os.environ[var] = str(threads)
    set_threads(threads)


def set_threads(threads):
    """Set this thread's Numba thread count and the process's OpenBLAS count."""
    import numba

    from .._threads import capped_numba_threads, openblas_thread_controls

    numba.set_num_threads(capped_numba_threads(threads))
    controls = openblas_thread_controls()
    if controls is not None:
        controls[1](int(threads))


def _normalise(results, settings):
    """Check ``fn``'s return value and convert it to plain types.

    Scalars become ``bool``, ``int``, ``float`` or ``str``; arrays (and
    lists) become ndarrays of a bool, integer or float dtype.
    """
    import numbers

    import numpy as np

    if not isinstance(results, dict):
        raise TypeError(f"the task returned {type(results).__name__}; it must return a dict of results.")
    out = {}
    for k, v in results.items():
        if not isinstance(k, str):
            raise TypeError(f"the task's result names must be str; got {k!r}.")
        if k in settings:
            raise ValueError(f"the task's result {k!r} has the name of a setting; rename it.")
        if isinstance(v, (bool, np.bool_)):
            out[k] = bool(v)
        elif isinstance(v, numbers.Integral):
            out[k] = int(v)
        elif isinstance(v, (float, np.floating)):
            out[k] = float(v)
        elif isinstance(v, str):
            out[k] = v
        elif isinstance(v, (np.ndarray, list, tuple)):
            a = np.asarray(v)
            if a.dtype.kind not in "biuf":
                raise TypeError(f"the task's result {k!r} must be a bool, int or float array; got dtype {a.dtype}.")
            out[k] = a
        else:
            raise TypeError(
                f"the task's result {k!r} must be a bool, int, float, str or numeric array; "
                f"got {type(v).__name__}."
            )
    return out


def execute(fn, settings, seed, threads, attempt):
    """Run one task; never raises for the task's own errors.

    Returns a payload dict: ``results`` (normalised) or ``error`` (the
    formatted traceback), ``seconds``, ``host``, ``pid``. ``attempt`` only
    makes resubmissions distinct (Dask keys tasks by their arguments).
    """
    from .. import limit_threads

    t0 = time.perf_counter()
    payload = {"host": socket.gethostname(), "pid": os.getpid(), "attempt": attempt}
    try:
        if threads is None:
            res = fn(dict(settings), seed)
        else:
            with limit_threads(threads):
                res = fn(dict(settings), seed)
        payload["results"] = _normalise(res, settings)
        payload["error"] = None
    except Exception:  # the task's own failure: recorded, the sweep goes on
        payload["results"] = None
        payload["error"] = traceback.format_exc()
    payload["seconds"] = time.perf_counter() - t0
    return payload
