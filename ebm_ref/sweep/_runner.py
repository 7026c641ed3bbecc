r"""The sweep driver: grid expansion, the run loop (retries, resume, progress), records.

Where the tasks run (process pool, executor, Dask) is ``_executors``.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import itertools
import os
import pickle
import queue as queue_mod
import sys

import numpy as np

from .._progress import ProgressLine
from .._rng import as_seed_sequence
from .._threads import available_cores
from .._validation import check_int
from . import _keys, _store, _worker
from ._executors import describe, open_executor

__all__ = ["run", "Record", "expand_grid", "available_cores", "load"]



class Record(dict):
    """One task's settings followed by its results, as one dict.

    A ``Record`` is a plain ``dict`` (``record["energy"]``) with extra
    attributes.

    Attributes
    ----------
    settings : dict
        The task's settings (plain Python values).
    results : dict
        What the task returned (scalars as ``bool``/``int``/``float``/``str``,
        arrays as ndarrays); empty for a failed task.
    error : str or None
        The traceback of a task that raised (or the reason it was lost with
        its worker); ``None`` when it finished.
    task : str
        The task's id (the name of its record files).
    seconds : float or None
        Wall time of the call on its worker.
    attempts : int
        1 + the number of resubmissions after a lost worker.
    """

    def __init__(self, settings, results, *, error=None, task="", seconds=None, attempts=1):
        super().__init__(settings)
        self.update(results)
        self.settings = dict(settings)
        self.results = dict(results)
        self.error = error
        self.task = task
        self.seconds = seconds
        self.attempts = attempts

    @property
    def ok(self):
        """True when the task finished without error."""
        return self.error is None

    def __repr__(self):
        state = "ok" if self.ok else "error"
        return f"Record({dict.__repr__(self)}, {state})"

    def __reduce__(self):
        return (_make_record, (self.settings, self.results, self.error, self.task, self.seconds, self.attempts))


def _make_record(settings, results, error, task, seconds, attempts):
    return Record(settings, results, error=error, task=task, seconds=seconds, attempts=attempts)


def expand_grid(grid):
    """The list of settings dicts of ``grid`` (see :func:`run`)."""
    if isinstance(grid, dict):
        names = list(grid)
        values = []
        for name in names:
            if not isinstance(name, str):
                raise TypeError(f"`grid` setting names must be str; got {name!r}.")
            v = grid[name]
            if isinstance(v, np.ndarray) and v.ndim == 1:
                v = v.tolist()
            if not isinstance(v, (list, tuple, range)):
                raise TypeError(
                    f"`grid[{name!r}]` must be a list of values (the grid is their Cartesian product); "
                    f"got {type(v).__name__}."
                )
            v = list(v)
            if not v:
                raise ValueError(f"`grid[{name!r}]` is empty; every setting needs at least one value.")
            values.append(v)
        tasks = [dict(zip(names, combo)) for combo in itertools.product(*values)]
    elif isinstance(grid, (list, tuple)):
        tasks = list(grid)
    else:
        raise TypeError(f"`grid` must be a dict of lists or a list of settings dicts; got {type(grid).__name__}.")
    if not tasks:
        raise ValueError("`grid` has no tasks.")
    return [_keys.check_settings(s, where=f"`grid` task {i}") for i, s in enumerate(tasks)]


def _fn_name(fn):
    if not callable(fn):
        raise TypeError(f"`fn` must be a callable fn(settings, seed) -> dict; got {type(fn).__name__}.")
    module, qual = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    if module is None or qual is None or "<" in qual:
        raise TypeError(
            f"`fn` must be a top-level function (worker processes import it by name); got {fn!r}."
        )
    try:
        pickle.dumps(fn)
    except Exception as exc:
        raise TypeError(f"`fn` {module}.{qual} cannot be pickled for the workers: {exc}") from None
    return f"{module}:{qual}"


class _SweepProgress:
    """The sweep's bar, ``sweep [####....] done/total, elapsed, ETA``, on stderr."""

    def __init__(self, total, enabled):
        self.total = total
        self.line = ProgressLine(sys.stderr, enabled=enabled, interval=0.2)

    def _render(self, done, failed, el):
        width = 24
        fill = int(width * done / self.total) if self.total else width
        eta = f", ~{el / done * (self.total - done):.0f} s left" if 0 < done < self.total else ""
        bad = f", {failed} failed" if failed else ""
        return f"sweep [{'#' * fill}{'.' * (width - fill)}] {done}/{self.total}{bad}, {el:.0f} s{eta}"

    def show(self, done, failed):
        self.line.show(lambda el: self._render(done, failed, el))

    def close(self, done, failed):
        self.line.show(lambda el: self._render(done, failed, el), final=True)


def _record_from_file(meta, tid):
    """The Record of a stored task file (a failed task keeps no results)."""
    ok = meta.get("status") == "ok"
    return Record(meta["settings"], meta["results"] if ok else {}, error=None if ok else meta.get("error"),
                  task=tid, seconds=meta.get("seconds"), attempts=meta.get("attempts") or 1)


def _check_bool(value, name):
    if not isinstance(value, bool):
        raise TypeError(f"`{name}` must be True or False; got {type(value).__name__} {value!r}.")
    return value


def run(fn, grid, seed, *, executor=None, workers=None, out=None, resume=False, retries=0, progress=None):
    r"""Run ``fn`` over a grid of settings as independent, reproducible tasks.

    Parameters
    ----------
    fn : callable
        A top-level (importable, picklable) function ``fn(settings, seed) ->
        dict``: ``settings`` is one task's dict of settings and ``seed`` its
        :class:`numpy.random.SeedSequence` (pass it to any ebm_ref function
        as ``seed=``). It returns a dict of results: ``bool``, ``int``,
        ``float`` or ``str`` scalars (NumPy scalars are converted) and
        bool/int/float arrays; names must differ from the setting names.
    grid : dict of lists, or list of dicts
        A dict ``name -> list of values`` is the Cartesian product of the
        lists (the last name varies fastest, as in :func:`itertools.product`);
        a list gives the tasks' settings dicts explicitly. Setting values are
        bool, int, float, str, None or lists of them. Two tasks with equal
        settings are refused (they would be the same task).
    seed : int, numpy.random.SeedSequence or numpy.random.Generator
        The sweep's seed. A Generator is consumed (see the package's seeding
        convention); pass an int to be able to resume.
    executor : None, "local", str, distributed.Client or concurrent.futures.Executor
        Where tasks run. ``None``/``"local"``: a pool of local worker
        processes started for this call and shut down after it. A string
        other than ``"local"`` is a Dask scheduler address
        (``"tcp://host:port"``, needs ``dask.distributed``), connected to
        for this call. A ``distributed.Client`` or any
        ``concurrent.futures.Executor`` (``ProcessPoolExecutor``,
        ``client.get_executor()``, ...) is used as given and left open.
    workers : int, optional
        Local pool: the number of worker processes (default: the cores this
        process may use, at most one per task). Other executors: the most
        tasks submitted at once (default: all).
    out : str or path-like, optional
        A folder for durable results (see Notes). Without it results live
        only in the returned list.
    resume : bool, default False
        With ``out``: keep the tasks already finished there and run the
        rest. Tasks recorded as failed are run again.
    retries : int, default 0
        How many times a task lost with its worker (a killed process: the
        local pool raises ``BrokenProcessPool``; a Dask worker that died too
        often: ``KilledWorker``) is submitted again. A task that *raises* is
        not retried: it is recorded with its traceback and the others go on.
    progress : bool, optional
        Show a progress bar on stderr. Default: only when stderr is a
        terminal.

    Returns
    -------
    list of Record
        One per task, in grid order: a dict of the task's settings followed
        by its results, with ``.settings``, ``.results``, ``.error``
        (``None`` or the traceback), ``.ok``, ``.task``, ``.seconds``,
        ``.attempts``. :func:`table` turns the list into a structured array.

    Raises
    ------
    TypeError, ValueError
        For bad arguments (naming the argument), and for an ``out`` folder
        that belongs to a different sweep or is not empty (nothing is
        written then).
    ConnectionError
        When a Dask scheduler address cannot be reached.

    Notes
    -----
    **Seeds.** Task :math:`t` gets ``SeedSequence(seed.entropy,
    spawn_key=seed.spawn_key + h(settings_t))`` where :math:`h` is four
    32-bit words of the SHA-256 of a canonical, type-tagged encoding of the
    settings (``4`` and ``numpy.int64(4)`` encode alike, ``4`` and ``4.0``
    do not). Neither the task's position, nor the worker, nor the executor,
    nor the attempt enters it, so every record is bit-identical whatever
    the executor, the number of workers, the order of the grid, a retry or
    a resume.

    **Local pool.** Workers are started with the ``spawn`` method: a fresh
    interpreter each. ``fork`` copies a process whose Numba (OpenMP or
    workqueue) and OpenBLAS thread pools may already have run; the child
    inherits their locks in whatever state they were, without the threads,
    and can deadlock in its first parallel region or matrix product.
    ``forkserver`` would be safe too but is not available everywhere.

    **Threads.** Each local worker runs its tasks with
    ``max(1, cores // workers)`` Numba threads (at most ``NUMBA_NUM_THREADS``)
    and as many OpenBLAS threads (so ``workers x threads <= cores``: no
    oversubscription); tasks on any
    other executor (Dask included, whose workers run one task per thread
    slot) run with 1 Numba and 1 OpenBLAS thread. Results do not depend on
    thread counts, only times do.

    **Durable results.** With ``out``, every finished task is written at
    once, atomically, as ``out/tasks/<id>.json`` (settings, scalars, status,
    traceback) and ``out/tasks/<id>.npz`` (arrays), never as a pickle, and
    ``out/manifest.json`` records the function, the seed, every task's
    settings, the ebm_ref version and each run's environment. A folder whose
    manifest names another function or seed is refused, as is a non-empty
    folder without a manifest. :func:`load` reads a folder back.

    Examples
    --------
    Run as a script (``if __name__ == "__main__":``: the local pool spawns
    interpreters that import the main module):

    >>> from ebm_ref import sweep
    >>> from ebm_ref.sweep.tasks import ising_2d
    >>> grid = {"beta": [0.3, 0.5], "L": [4], "sampler": ["wolff"], "n_chains": [4],
    ...         "n_burn": [100], "n_steps": [1000], "thin": [1]}
    >>> recs = sweep.run(ising_2d, grid, seed=0, workers=2, out="ising4")  # doctest: +SKIP
    >>> sweep.table(recs)[["beta", "energy", "energy_err", "energy_exact"]]  # doctest: +SKIP
    """
    fn_name = _fn_name(fn)
    tasks = expand_grid(grid)
    ids = [_keys.task_id(s) for s in tasks]
    seen = {}
    for i, tid in enumerate(ids):
        if tid in seen:
            raise ValueError(f"`grid` tasks {seen[tid]} and {i} have the same settings {tasks[i]!r}.")
        seen[tid] = i
    ss = as_seed_sequence(seed)
    retries = check_int(retries, "retries", minimum=0)
    _check_bool(resume, "resume")
    if progress is not None:
        _check_bool(progress, "progress")
    if workers is not None:
        check_int(workers, "workers", minimum=1)
    if resume and out is None:
        raise ValueError("`resume=True` needs `out`, the folder of the sweep to resume.")

    records = {}
    store = None
    if out is not None:
        info = {"started": _store._now(), "environment": _store.environment(), "executor": describe(executor),
                "workers": workers, "n_tasks": len(tasks)}
        store = _store.Store.open(out, fn_name, ss, tasks, ids, resume, info)
        if resume:
            for tid in store.finished_ids() & set(ids):
                meta = store.read(tid)
                if meta is not None:
                    records[tid] = _record_from_file(meta, tid)

    todo = [i for i, tid in enumerate(ids) if tid not in records]
    backend = open_executor(executor, workers, len(todo)) if todo else None
    if store is not None:
        try:
            store.begin()
        except BaseException:
            if backend is not None:
                backend[0].close(cancel=True)
            raise
    bar = _SweepProgress(len(tasks), progress)  # None: only on a terminal
    failed = 0
    if todo:
        backend, window, threads, _ = backend
        attempts = {i: 0 for i in todo}
        queue = collections.deque(todo)
        pending = {}
        finished_q = queue_mod.SimpleQueue()
        cancel = True

        def submit(i):
            seed_i = _keys.task_seed(ss, tasks[i])
            try:
                fut = backend.submit(_worker.execute, fn, tasks[i], seed_i, threads, attempts[i])
            except cf.BrokenExecutor as exc:  # an executor we were given broke
                lost(i, exc, backend.generation)
            else:
                pending[fut] = (i, backend.generation)
                fut.add_done_callback(finished_q.put)

        def lost(i, exc, gen):
            backend.recover(gen)
            if attempts[i] < retries:
                attempts[i] += 1
                queue.appendleft(i)
            else:
                finish(i, {"results": None, "seconds": None,
                           "error": f"lost with its worker after {attempts[i] + 1} attempt(s): "
                                    f"{type(exc).__name__}: {exc}"})

        def finish(i, payload):
            nonlocal failed
            tid = ids[i]
            payload["attempts"] = attempts[i] + 1
            if store is not None:
                store.write(tid, tasks[i], payload)
            if payload["error"] is not None:
                failed += 1
            records[tid] = Record(tasks[i], payload["results"] or {}, error=payload["error"], task=tid,
                                  seconds=payload.get("seconds"), attempts=attempts[i] + 1)

        try:
            while queue or pending:
                while queue and len(pending) < window:
                    submit(queue.popleft())
                # finished futures arrive through their callbacks: O(1) per task
                # however many are in flight (cf.wait would scan them all)
                done = []
                try:
                    done.append(finished_q.get(timeout=0.25))
                    while True:
                        done.append(finished_q.get_nowait())
                except queue_mod.Empty:
                    pass
                for fut in done:
                    if fut not in pending:
                        continue
                    i, gen = pending.pop(fut)
                    try:
                        payload = fut.result()
                    except BaseException as exc:  # lost with its worker (or cancelled)
                        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                            raise
                        lost(i, exc, gen)
                    else:
                        finish(i, payload)
                bar.show(len(records), failed)
            cancel = False
        finally:
            backend.close(cancel=cancel)
    bar.close(len(records), failed)
    return [records[tid] for tid in ids]


def load(out):
    """Read the records of a sweep folder written by :func:`run`.

    Parameters
    ----------
    out : str or path-like
        The ``out`` folder of a sweep.

    Returns
    -------
    list of Record
        One per task of the manifest that has a record file (finished or
        failed), in the order the tasks were first listed.

    Raises
    ------
    ValueError
        If ``out`` has no sweep manifest.
    """
    import json
    import pathlib

    if not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"`out` must be a str or path-like folder; got {type(out).__name__}.")
    root = pathlib.Path(out)
    try:
        manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("format") != _store.FORMAT:
        raise ValueError(f"`out` {str(root)!r} is not an ebm_ref sweep folder (no valid manifest.json).")
    recs = []
    for tid, settings in manifest.get("tasks", {}).items():
        meta = _store.read_record_file(root / "tasks" / f"{tid}.json")
        if meta is None:
            continue
        recs.append(_record_from_file(meta, tid))
    return recs
