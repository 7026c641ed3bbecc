"""Where a sweep's tasks run: our own process pool, or an executor we are given.

``open_executor`` turns the ``executor`` argument of :func:`ebm_ref.sweep.run`
into a backend with ``submit``, ``recover`` (after a lost task) and
``close``; the run loop (``_runner``) never needs to know which it has.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing

from .._threads import available_cores
from .._validation import check_int
from ._worker import init_worker

#: How long to try to reach a Dask scheduler given by its address.
CONNECT_TIMEOUT = "10s"



class LocalPool:
    """Our own process pool, rebuilt when a worker dies."""

    def __init__(self, workers, threads):
        self.workers, self.threads = workers, threads
        self.generation = 0
        self.pool = self._new()

    def _new(self):
        # spawn: a fresh interpreter per worker; see run()'s Notes
        ctx = multiprocessing.get_context("spawn")
        return cf.ProcessPoolExecutor(
            max_workers=self.workers, mp_context=ctx, initializer=init_worker, initargs=(self.threads,)
        )

    def submit(self, *args):
        try:
            return self.pool.submit(*args)
        except cf.BrokenExecutor:
            # a worker died and the pool knows before its futures told us
            self.recover(self.generation)
            return self.pool.submit(*args)

    def recover(self, generation):
        """After a lost future of ``generation``: replace the pool if it broke."""
        if generation == self.generation and getattr(self.pool, "_broken", False):
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = self._new()
            self.generation += 1

    def close(self, cancel=False):
        self.pool.shutdown(wait=True, cancel_futures=cancel)


class ExternalPool:
    """An executor we were given (or a Dask client we connected)."""

    def __init__(self, executor, client=None):
        self.pool, self.client = executor, client
        self.generation = 0

    def submit(self, *args):
        return self.pool.submit(*args)

    def recover(self, generation):
        pass

    def close(self, cancel=False):
        if self.client is not None:  # we made the client: close it (and its executor)
            try:
                self.pool.shutdown(wait=not cancel)
            finally:
                self.client.close()


def is_dask_client(obj):
    return type(obj).__module__.split(".")[0] == "distributed" and hasattr(obj, "get_executor")


def connect(address):
    try:
        import distributed
    except ImportError:
        raise ImportError(
            f"`executor` {address!r} names a Dask scheduler, but dask.distributed is not installed "
            "(pip install 'ebm_ref[dask]')."
        ) from None
    try:
        client = distributed.Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ConnectionError(f"`executor`: cannot reach the Dask scheduler at {address!r} ({exc}).") from None
    return client


def open_executor(executor, workers, n_tasks):
    """(backend, window, threads, description)."""
    if workers is not None:
        workers = check_int(workers, "workers", minimum=1)
    if executor is None or (isinstance(executor, str) and executor == "local"):
        n = min(workers or available_cores(), n_tasks)
        threads = max(1, available_cores() // n)
        return LocalPool(n, threads), n, threads, f"local process pool, {n} workers x {threads} threads"
    if isinstance(executor, str):
        client = connect(executor)
        return (ExternalPool(client.get_executor(pure=False), client), workers or n_tasks, 1,
                f"dask scheduler {executor}")
    if is_dask_client(executor):
        return (ExternalPool(executor.get_executor(pure=False)), workers or n_tasks, 1,
                f"dask client {getattr(executor, 'scheduler', None) and executor.scheduler.address}")
    if isinstance(executor, cf.Executor):
        return ExternalPool(executor), workers or n_tasks, 1, type(executor).__name__
    raise TypeError(
        "`executor` must be None or 'local', a Dask scheduler address ('tcp://host:port'), a "
        f"distributed.Client or a concurrent.futures.Executor; got {type(executor).__name__}."
    )


def describe(executor):
    if executor is None or isinstance(executor, str):
        return executor or "local"
    return type(executor).__name__
