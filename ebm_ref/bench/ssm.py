r"""Benchmark: sliced score matching vs score matching on ``MLPEnergy``, as ``d`` grows.

Cases: ``MLPEnergy((d, 64, 64))``, softplus, batch 1024 (256 with
``quick``), ``d = 2, 20, 100``. Each line reports the time of one
``value_and_grad`` of ``SlicedScoreMatching()`` (one Rademacher direction),
of its variance-reduced form and of ``ScoreMatching()``, and the time of one
``energy(x)`` plus one ``grad_params(x)`` in the same run (the NumPy/BLAS
cost of one likelihood-style gradient, the unit of the ratios). SSM needs a
constant number of passes per sample (one ``grad_x``, one Hessian-vector
product and their parameter derivatives: no ``d``-dependence), while exact
score matching propagates the ``d`` columns of the input Jacobian to get the
Hessian diagonal, so its ratio grows like ``d``. ``target_ratio`` is the
bound 16 on the SSM ratio for every ``d`` (an O(1) count of passes with
room for the machine's noise); ``meets_target`` says whether it held.
Times are the best of interleaved repeats (7, or 3 with ``quick``).

Then the ``score_matching_peers`` lines of :mod:`ebm_ref.bench._sm_bench`:
exact score matching (``ScoreMatching().value_and_grad``) at the same
sizes against careful NumPy, torch autograd and jitted JAX, in ms per
value and gradient, with ``ratio_vs_fastest_peer``, ``fastest_peer`` and
``compile_s``, at 1 thread (a pinned child process) and 2 threads. Every
line of the suite carries ``cpu`` (model name and vector ISA).
"""

from __future__ import annotations

import numpy as np

from . import best_interleaved
from ._peers import cpu_info

__all__ = ["run"]

_TARGET = 16.0


def run(quick=False):
    """Yield one dict per dimension, then the peer lines (see the module docstring)."""
    from ._sm_bench import run as _run_peers

    cpu = cpu_info()
    for line in _ssm_lines(quick):
        yield {**line, "cpu": cpu}
    yield from _run_peers(quick)


def _ssm_lines(quick):
    from ..energies import MLPEnergy
    from ..objectives import ScoreMatching, SlicedScoreMatching

    repeat = 3 if quick else 7
    n = 256 if quick else 1024
    ssm = SlicedScoreMatching()
    ssm_vr = SlicedScoreMatching(variance_reduced=True)
    sm = ScoreMatching()
    for d in (2, 20, 100):
        model = MLPEnergy((d, 64, 64), activation="softplus", seed=0)
        x = np.random.default_rng(d).standard_normal((n, d))

        def base_step():
            model.energy(x)
            return model.grad_params(x)

        fns = [
            lambda: ssm.value_and_grad(model, x, 0),
            lambda: ssm_vr.value_and_grad(model, x, 0),
            lambda: sm.value_and_grad(model, x),
            base_step,
        ]
        for fn in fns:
            fn()
        t_ssm, t_vr, t_sm, t_base = best_interleaved(fns, repeat)
        yield {
            "kernel": "SlicedScoreMatching.value_and_grad",
            "model": f"MLPEnergy(({d}, 64, 64), softplus)",
            "batch": n,
            "seconds": t_ssm,
            "samples_per_s": n / t_ssm,
            "ssm_vr_seconds": t_vr,
            "score_matching_seconds": t_sm,
            "baseline": "energy + grad_params (NumPy/BLAS)",
            "baseline_seconds": t_base,
            "ratio": t_ssm / t_base,
            "ssm_vr_ratio": t_vr / t_base,
            "score_matching_ratio": t_sm / t_base,
            "target_ratio": _TARGET,
            "meets_target": bool(t_ssm / t_base <= _TARGET),
        }
