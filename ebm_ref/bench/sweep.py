r"""Benchmark: a CPU-bound sweep on 1 vs 2 local workers (``python -m ebm_ref bench sweep``).

Sixteen tasks, each a single-chain Gibbs run on a 64-spin Ising model
(:func:`ebm_ref.samplers.gibbs`; one chain runs on one thread whatever the
thread count, so a task uses one core). The same sweep runs on the local
process pool of :func:`ebm_ref.sweep.run` with ``workers=1`` and
``workers=2``, timed end to end as a user sees it: worker start-up
(spawned interpreters importing NumPy, Numba and ebm_ref, and loading the
cached kernels), task submission, results. The line reports both wall
times, their ratio (the target is >= 1.7 on 2 idle cores) and the summed
task time of each run (``task_seconds``: what the tasks themselves took
on their workers), so start-up cost and contention can be told apart.
Both sweeps must give byte-identical tables; the line says whether they
did.

On a machine shared with other work, the ratio measures the share of the
two cores this run got: compare it with ``cpu_count`` and the load.
"""

from __future__ import annotations

import os
import time

import numpy as np

__all__ = ["run", "bench_task"]


def bench_task(settings, seed):
    """One CPU-bound task: ``n_steps`` single-site Gibbs sweeps of one chain."""
    from ..energies import Ising
    from ..samplers import gibbs

    model = Ising.random(64, 0.3, seed=int(settings["model_seed"]))
    res = gibbs(model, np.ones((1, 64)), int(settings["n_steps"]), seed)
    return {"energy": float(res.energies[0]), "mean_spin": float(res.x.mean())}


def run(quick=False):
    """Yield one JSON-ready dict: wall times for 1 and 2 workers and their ratio."""
    from .. import sweep
    from .._threads import available_cores

    n_steps = 5_000 if quick else 100_000
    grid = {"model_seed": list(range(16)), "n_steps": [n_steps]}
    # compile (or load from the cache) once here, so both runs find the cache warm
    bench_task({"model_seed": 0, "n_steps": 1}, np.random.SeedSequence(0))
    out = {}
    tables = {}
    for workers in (1, 2):
        t0 = time.perf_counter()
        recs = sweep.run(bench_task, grid, 0, workers=workers, progress=False)
        out[workers] = time.perf_counter() - t0
        tables[workers] = sweep.table(recs)
        out[f"task_{workers}"] = float(sum(r.seconds for r in recs))
    yield {
        "kernel": "sweep_local_pool",
        "n_tasks": 16,
        "n_steps_per_task": n_steps,
        "seconds_1_worker": round(out[1], 3),
        "seconds_2_workers": round(out[2], 3),
        "speedup_2_vs_1": round(out[1] / out[2], 3),
        "task_seconds_1_worker": round(out["task_1"], 3),
        "task_seconds_2_workers": round(out["task_2"], 3),
        "identical_tables": bool(tables[1].tobytes() == tables[2].tobytes()),
        "cores": available_cores(),
        "cpu_count": os.cpu_count(),
        "load_avg_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "quick": bool(quick),
    }
