r"""Sweeps beyond one machine: a grid of settings as independent, reproducible tasks.

* :func:`run` — run ``fn(settings, seed) -> dict`` over a grid on a local
  process pool, any ``concurrent.futures`` executor or a Dask cluster, with
  durable per-task results, resume and retries;
* :func:`table` — the records as a NumPy structured array;
* :func:`load` — the records of a results folder;
* :func:`task_seed` — the seed a task gets (from the sweep seed and its
  settings only);
* :mod:`ebm_ref.sweep.tasks` — the built-in tasks of ``python -m ebm_ref
  sweep SPEC``.

Dask is imported only when a Dask scheduler or client is passed. See
``docs/sweeps.md`` for seeds, durability and running on a cluster.
"""

from ._cli import register_cli  # noqa: F401  (the ``sweep`` sub-command; not part of __all__)
from ._keys import canonical, task_id
from ._keys import task_seed as _task_seed
from ._runner import Record, load, run
from ._table import table

__all__ = ["run", "table", "load", "Record", "task_seed", "task_id", "canonical"]


def task_seed(seed, settings):
    """The :class:`numpy.random.SeedSequence` that :func:`run` passes to a task.

    Parameters
    ----------
    seed : int, numpy.random.SeedSequence or numpy.random.Generator
        The sweep's seed.
    settings : dict
        The task's settings.

    Returns
    -------
    numpy.random.SeedSequence
        ``SeedSequence(seed.entropy, spawn_key=seed.spawn_key + h)`` with
        ``h`` four 32-bit words of the SHA-256 of the canonical encoding of
        ``settings`` (:func:`canonical`).
    """
    from .._rng import as_seed_sequence
    from ._keys import check_settings

    return _task_seed(as_seed_sequence(seed), check_settings(settings, where="`settings`"))
