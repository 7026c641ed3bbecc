r"""Every finite-difference check of docs/models.md for one model, one level at a time.

=================================  ===========================================
checked                            against central differences of
=================================  ===========================================
``grad_x``                         ``sum_i energy(x)_i``
``hessian_diag``                   ``grad_x(x)[:, k]`` in ``x_k`` (h = 1e-5, G2)
``hessian_trace``                  ``hessian_diag(x).sum(-1)`` (exact identity)
``grad_params(x, w)``              ``sum_i w_i energy(x; theta)_i``
``grad_params_of_grad_x(x, v)``    ``sum v * grad_x(x; theta)``
``grad_params_of_hessian_diag``    ``sum c * hessian_diag(x; theta)``
single state                       the batch result's row 0, shapes of docs/conventions.md
=================================  ===========================================

Parameter differences go through ``model._with_params_unchecked`` so that
each entry of a constrained array (the symmetric Ising ``J``) moves alone:
every entry is an independent variable (docs/conventions.md); structural zeros must have
an exactly zero derivative.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import _diagnose as _dg
from ._gradcheck import GradCheckResult, _rel, check_grad

__all__ = ["DerivativeReport", "check_energy_derivatives"]


@dataclass
class DerivativeReport(_dg.Report):
    """Results of :func:`check_energy_derivatives`, one per quantity."""

    model: str
    results: dict = field(default_factory=dict)
    rtol: float = 1e-6

    @property
    def worst(self):
        """``(name, max_rel_error)`` of the worst check."""
        name = max(self.results, key=lambda k: self.results[k].max_rel_error)
        return name, self.results[name].max_rel_error

    @property
    def passed(self):
        return bool(self.results) and all(r.max_rel_error <= self.rtol for r in self.results.values())

    @property
    def suspects(self):
        """Codes of the explanations found by the failing checks (docs/checking.md)."""
        out = []
        for r in self.results.values():
            out.extend(c for c in getattr(r, "suspects", ()) if c not in out)
        return tuple(out)

    @property
    def diagnosis(self):
        parts = [f"{k}: {r.diagnosis}" for k, r in self.results.items() if getattr(r, "diagnosis", None)]
        return " ".join(parts) if parts else None

    def __str__(self):
        lines = [f"derivative checks for {self.model} (rtol {self.rtol:g}):"]
        for r in self.results.values():
            lines.append("  " + str(r))
        name, err = self.worst
        lines.append(f"  worst: {name} {err:.3e} -> {'ok' if self.passed else 'FAILED'}")
        return "\n".join(lines)



def _hessian_diag_check(model, x, rtol, eps=1e-5):
    g_an = model.hessian_diag(x)
    n, d = x.shape
    num = np.empty_like(g_an)
    for k in range(d):
        h = eps * np.maximum(1.0, np.abs(x[:, k]))
        xp = x.copy()
        xm = x.copy()
        xp[:, k] += h
        xm[:, k] -= h
        hh = xp[:, k] - xm[:, k]
        num[:, k] = (model.grad_x(xp)[:, k] - model.grad_x(xm)[:, k]) / hh
    floor = 1e-3 * max(1.0, float(np.max(np.abs(g_an))))
    # resolution of the difference of grad_x values (see _gradcheck's docstring)
    gx = np.abs(model.grad_x(x))
    noise = 10.0 * np.finfo(np.float64).eps * gx / (eps * np.maximum(1.0, np.abs(x)))
    worst = (0.0, (None, (0, 0)), float(g_an[0, 0]), float(num[0, 0]))
    for idx in np.ndindex(n, d):
        err = _rel(float(g_an[idx]), float(num[idx]), max(floor, noise[idx] / rtol))
        if err > worst[0]:
            worst = (err, (None, idx), float(g_an[idx]), float(num[idx]))
    return GradCheckResult(worst[0], worst[1], worst[2], worst[3], n * d, rtol, "hessian_diag")


def _params_check(model, scalar_of_model, grad_dict, name, rtol, seed):
    theta0 = model.params

    def f(theta):
        return scalar_of_model(model._with_params_unchecked(theta))

    return check_grad(
        f,
        lambda theta: grad_dict,
        theta0,
        rtol=rtol,
        seed=seed,
        zero_mask=model.structural_zeros(),
        name=name,
    )


def check_energy_derivatives(model, x, *, v=None, c=None, weights=None, rtol=1e-6, seed=0):
    r"""Run every finite-difference check of docs/models.md on ``model`` at ``x``.

    Parameters
    ----------
    model : EnergyModel
    x : array_like of shape (n, d)
        Points (any real values for binary models: the continuous extension).
    v, c : ndarray of shape (n, d), optional
        Weights of the mixed derivatives; drawn from N(0, 1) with ``seed``
        when omitted.
    weights : ndarray of shape (n,), optional
        Per-sample weights of ``grad_params``; drawn from U(0.5, 1.5) when
        omitted (so a missing ``1/n`` is caught).
    rtol : float, default 1e-6
        Finite and > 0.
    seed : int, default 0

    Raises
    ------
    ValueError, TypeError
        For an ``x`` with NaN/inf, empty or non-numeric, or an invalid ``rtol``.

    Returns
    -------
    DerivativeReport
        ``str(report)`` is a readable table; ``report.worst`` the worst
        relative error; ``report.assert_ok()`` raises if any check fails.
    """
    rtol = _dg.check_tol(rtol, "rtol")
    rng = np.random.default_rng(seed)
    x = _dg.check_input_array(x, "x")
    if x.ndim == 1:
        x = x[None, :]
    n, d = x.shape
    v = rng.standard_normal((n, d)) if v is None else np.asarray(v, dtype=np.float64)
    c = rng.standard_normal((n, d)) if c is None else np.asarray(c, dtype=np.float64)
    w = rng.uniform(0.5, 1.5, size=n) if weights is None else np.asarray(weights, dtype=np.float64)

    report = DerivativeReport(repr(model), rtol=rtol)
    report.results["grad_x"] = check_grad(
        lambda z: float(np.sum(model.energy(z))), model.grad_x, x, rtol=rtol, seed=seed, name="grad_x"
    )
    report.results["hessian_diag"] = _hessian_diag_check(model, x, rtol)

    tr = model.hessian_trace(x)
    hd = model.hessian_diag(x).sum(-1)
    err = float(np.max(np.abs(tr - hd) / np.maximum(1.0, np.abs(hd))))
    report.results["hessian_trace"] = GradCheckResult(err, (), float(tr[0]), float(hd[0]), n, rtol, "hessian_trace")

    # each parameter derivative is the gradient of a weighted sum of its primitive
    for name, primitive, weight, analytic in (
        ("grad_params", "energy", w, model.grad_params(x, w)),
        ("grad_params_of_grad_x", "grad_x", v, model.grad_params_of_grad_x(x, v)),
        ("grad_params_of_hessian_diag", "hessian_diag", c, model.grad_params_of_hessian_diag(x, c)),
    ):
        report.results[name] = _params_check(
            model, lambda m, p=primitive, a=weight: float(np.sum(a * getattr(m, p)(x))), analytic, name, rtol, seed
        )

    # single state: same numbers as row 0 of the batch, shapes of docs/conventions.md
    errs = []
    x0 = x[0]
    for meth, shape in (("energy", ()), ("grad_x", (d,)), ("hessian_diag", (d,))):
        single = np.asarray(getattr(model, meth)(x0))
        batch = np.asarray(getattr(model, meth)(x[:1]))[0]
        if single.shape != shape:
            errs.append(np.inf)
        else:
            errs.append(float(np.max(np.abs(single - batch))))
    report.results["single_state"] = GradCheckResult(
        max(errs), (), 0.0, 0.0, 3, rtol, "single_state"
    )
    return report
