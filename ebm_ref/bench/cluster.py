r"""Benchmark suite ``cluster``: Swendsen-Wang and Wolff against checkerboard Gibbs.

Lines:

* ``cluster_vs_gibbs_tau``: the periodic L x L Ising lattice at the critical
  point :math:`\beta_c = \tfrac12\log(1+\sqrt2)` (L = 64; 16 with
  ``quick=True``), zero field. All chains start from the same states,
  equilibrated by Swendsen-Wang. For each sampler, the integrated
  autocorrelation time of :math:`|m| = |\sum_i s_i| / d` per step
  (:func:`ebm_ref.observables.integrated_autocorr_time`, Sokal's window,
  ``c = 5``, autocovariance pooled over the chains), the length of each
  series in units of that time (the estimate is reliable when this is well
  above ``c``), the seconds per step, spin updates per second (``d *
  n_chains`` per step for SW and Gibbs; the flipped-cluster sizes for
  Wolff) and the autocorrelation time in seconds for one chain (``tau *
  seconds per step / n_chains``; all chains run at once), in wall time and
  in process CPU time (``*_cpu_*``: less sensitive to other processes on a
  shared machine). Ratios: ``tau_ratio_gibbs_over_sw`` (target: >= 10 at
  L = 64) and the same in wall and CPU seconds. Wolff's ``tau`` is per single-cluster flip; ``tau_sweeps``
  rescales it by the mean cluster size over ``d`` (flips per sweep).

The series come from the ``trace`` of sampler calls of ``chunk`` steps
(one fresh seed per call). The costs are timed apart, without a trace:
the best of 3 of an ``n``-step call minus the best of 3 of a 0-step call
(checks, seeding and final energies), divided by ``n``. Numba uses its
default thread count; the line says which.
"""

from __future__ import annotations

import math
import time

import numba
import numpy as np

from ..energies import Ising
from ..observables import integrated_autocorr_time
from ..samplers import gibbs, swendsen_wang, wolff

__all__ = ["run"]

BETA_C = 0.5 * math.log(1.0 + math.sqrt(2.0))


def _abs_m_series(sampler, model, x, n_steps, seed, chunk):
    """``|m|`` after each step, ``(n_steps, n_chains)``; final states; mean cluster size."""
    d = x.shape[1]
    out = np.empty((n_steps, x.shape[0]))
    sizes = []
    done = 0
    k = 0
    while done < n_steps:
        n = min(chunk, n_steps - done)
        res = sampler(model, x, n, np.random.SeedSequence(seed, spawn_key=(k,)), thin=1)
        out[done : done + n] = np.abs(res.trace.sum(axis=2)) / d
        x = res.x
        if hasattr(res, "mean_cluster_size"):
            sizes.append(res.mean_cluster_size * n)
        done += n
        k += 1
    mean_size = float(np.sum(sizes) / (n_steps * x.shape[0])) if sizes else None
    return out, x, mean_size


def _step_cost(f, model, x, n):
    """Wall and CPU seconds per step (no trace): best of 3 of an ``n``-step
    call minus the best of 3 of a 0-step call (checks, seeding, energies)."""
    walls, cpus = {}, {}
    for k in (0, n):
        walls[k], cpus[k] = math.inf, math.inf
        for rep in range(3):
            t0, c0 = time.perf_counter(), time.process_time()
            f(model, x, k, rep)
            walls[k] = min(walls[k], time.perf_counter() - t0)
            cpus[k] = min(cpus[k], time.process_time() - c0)
    return (walls[n] - walls[0]) / n, (cpus[n] - cpus[0]) / n


def _bench(L, n_chains, n_burn, steps, n_time, chunk):
    model = Ising.lattice(L, BETA_C)
    d = L * L
    x0 = 2.0 * (np.random.default_rng(0).random((n_chains, d)) < 0.5) - 1.0
    # compile outside the timings
    for f in (swendsen_wang, wolff, gibbs):
        f(model, x0[:1], 1, 0, thin=1)
    x_eq = swendsen_wang(model, x0, n_burn, 1).x
    line = {
        "bench": "cluster_vs_gibbs_tau",
        "L": L,
        "beta": BETA_C,
        "n_chains": n_chains,
        "burn_in_sw_steps": n_burn,
        "numba_threads": numba.get_num_threads(),
    }
    for name, f in (("sw", swendsen_wang), ("wolff", wolff), ("gibbs", gibbs)):
        n = steps[name]
        series, _, size = _abs_m_series(f, model, x_eq, n, 2, chunk)
        tau = integrated_autocorr_time(series)
        per_step, cpu_per_step = _step_cost(f, model, x_eq, n_time[name])
        updates = size if name == "wolff" else d  # per chain and step
        line[f"{name}_steps"] = n
        line[f"{name}_tau"] = tau
        line[f"{name}_series_over_tau"] = n / tau
        line[f"{name}_s_per_step"] = per_step
        line[f"{name}_cpu_s_per_step"] = cpu_per_step
        line[f"{name}_spin_updates_per_s"] = updates * n_chains / per_step
        line[f"{name}_tau_seconds_per_chain"] = tau * per_step / n_chains
        line[f"{name}_tau_cpu_seconds_per_chain"] = tau * cpu_per_step / n_chains
        line[f"{name}_mean_abs_m"] = float(series.mean())
        if size is not None:
            line[f"{name}_mean_cluster_size"] = size
        if name == "wolff":
            line["wolff_tau_sweeps"] = tau * size / d
    line["tau_ratio_gibbs_over_sw"] = line["gibbs_tau"] / line["sw_tau"]
    line["tau_seconds_ratio_gibbs_over_sw"] = (
        line["gibbs_tau_seconds_per_chain"] / line["sw_tau_seconds_per_chain"]
    )
    line["tau_cpu_seconds_ratio_gibbs_over_sw"] = (
        line["gibbs_tau_cpu_seconds_per_chain"] / line["sw_tau_cpu_seconds_per_chain"]
    )
    line["target_tau_ratio"] = 10.0
    return line


def run(quick=False):
    """Yield the JSON-able result line of the suite (see the module docstring)."""
    if quick:
        yield _bench(16, 8, 50, {"sw": 400, "wolff": 800, "gibbs": 2000},
                     {"sw": 50, "wolff": 100, "gibbs": 200}, 200)
    else:
        yield _bench(64, 16, 100, {"sw": 2000, "wolff": 4000, "gibbs": 20000},
                     {"sw": 200, "wolff": 500, "gibbs": 2000}, 200)
