r"""Benchmark: one score-matching ``value_and_grad`` on ``MLPEnergy``.

Cases: ``MLPEnergy((d, 64, 64))``, softplus, batch 1024, for
``d = 2`` and ``d = 20``. Each line reports the time of one
``ScoreMatching().value_and_grad(model, x)`` (loss, Hessian diagonal and
the two mixed parameter derivatives), the time of one ``energy(x)`` plus one
``grad_params(x)`` measured in the same run (the cost of one likelihood-style
gradient: the NumPy/BLAS reference of this suite), their ratio and the
target ratio ``d + 6`` (exact Hessian-diagonal propagation costs O(d) times
a forward pass). Also reported: samples per second of the score-matching
step and, as ``breakdown``, the time of each of the four primitives it calls
(``grad_x``, ``hessian_diag``, ``grad_params_of_grad_x``,
``grad_params_of_hessian_diag``), so a slow line points at its primitive.
Times are the best of interleaved repeats (7, or 3 with ``quick``).
"""

from __future__ import annotations

import numpy as np

from . import best_interleaved

__all__ = ["run"]


def run(quick=False):
    """Yield one dict per case (see the module docstring)."""
    from ..energies import MLPEnergy
    from ..objectives import ScoreMatching

    repeat = 3 if quick else 7
    n = 1024
    sm = ScoreMatching()
    for d in (2, 20):
        model = MLPEnergy((d, 64, 64), activation="softplus", seed=0)
        x = np.random.default_rng(d).standard_normal((n, d))

        def sm_step():
            return sm.value_and_grad(model, x)

        def base_step():
            model.energy(x)
            return model.grad_params(x)

        g = model.grad_x(x)
        ones = np.ones_like(x)
        parts = {
            "grad_x": lambda: model.grad_x(x),
            "hessian_diag": lambda: model.hessian_diag(x),
            "grad_params_of_grad_x": lambda: model.grad_params_of_grad_x(x, g),
            "grad_params_of_hessian_diag": lambda: model.grad_params_of_hessian_diag(x, ones),
        }
        fns = [sm_step, base_step, *parts.values()]
        for fn in fns:
            fn()
        times = best_interleaved(fns, repeat)
        t_sm, t_base = times[0], times[1]
        ratio = t_sm / t_base
        yield {
            "kernel": "ScoreMatching.value_and_grad",
            "model": f"MLPEnergy(({d}, 64, 64), softplus)",
            "batch": n,
            "seconds": t_sm,
            "samples_per_s": n / t_sm,
            "baseline": "energy + grad_params (NumPy/BLAS)",
            "baseline_seconds": t_base,
            "ratio": ratio,
            "target_ratio": d + 6,
            "meets_target": bool(ratio <= d + 6),
            "breakdown": dict(zip(parts, times[2:])),
        }
