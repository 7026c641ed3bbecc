r"""Checks of third-party training objectives (docs/objectives.md).

* :func:`check_objective_grad`: the returned gradient is the exact gradient
  of the returned loss with the random numbers held fixed (finite
  differences with the same seed on both sides, docs/checking.md).
* :func:`compare_objective`: the loss (and gradient) agree with ebm_ref's
  objective of the same name -- exactly for deterministic objectives, in
  expectation over seeds for stochastic ones (two implementations cannot
  share random numbers).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from . import _diagnose as _dg
from ._gradcheck import GradCheckResult, check_grad
from ._objectivesuspects import _diagnose_exact, _term_suspects, _worst_rel

__all__ = ["check_objective_grad", "compare_objective", "ObjectiveComparison"]


def _split(out, what):
    """``(raw loss, raw grads or None)`` of a third-party return value."""
    if isinstance(out, tuple) and len(out) == 2:
        return out[0], out[1]
    if isinstance(out, tuple):
        raise _dg.BadResult("shape", f"{what} returned a tuple of {len(out)} items, expected (loss, grads)")
    return out, None


def _loss_and_grads(out, what="the loss function", expected=None):
    raw_loss, raw_grads = _split(out, what)
    loss = _dg.read_scalar(raw_loss, f"loss of {what}")
    if raw_grads is None:
        return loss, None
    if expected is None:
        if not isinstance(raw_grads, Mapping):
            raise _dg.BadResult("shape", f"grads of {what} is a {type(raw_grads).__name__}, expected a dict")
        expected = {k: np.shape(v) for k, v in raw_grads.items()}
        expected = {k: np.zeros(v) for k, v in expected.items()}
    return loss, _dg.read_dict(raw_grads, f"grads of {what}", expected)


def check_objective_grad(value_and_grad_fn, model, x, *, seed=0, rtol=1e-6, eps=None, n_directions=5):
    r"""Finite-difference check of a third-party loss gradient, seed held fixed.

    Parameters
    ----------
    value_and_grad_fn : callable
        ``value_and_grad_fn(params, x, seed) -> (loss, grads)`` with
        ``params`` and ``grads`` dicts of the parameter layout of ``model``
        (docs/models.md). The loss may be a NumPy, torch or JAX scalar of any
        floating type; its dtype sets the step and the tolerance.
    model : EnergyModel
        Supplies the parameters at which to check and the structural zeros
        (entries that are not parameters, e.g. the Ising ``J`` diagonal,
        whose gradient must be exactly 0).
    x : array_like of shape (n, d)
        Data (real, finite, non-empty).
    seed : int, default 0
        Passed unchanged to every call, so that a stochastic loss is a
        deterministic function of the parameters.
    rtol : float, default 1e-6
        Tolerance for a float64 loss; raised to ``64 eps_t^(2/3)`` for a loss
        of a coarser type ``t`` (float32: 1.6e-3).
    eps : float, optional
        Relative step (see :func:`check_grad`): ``6e-6`` for a float64 loss,
        ``eps_t^(1/3)`` for a coarser type (float32: 4.9e-3).
    n_directions : int, default 5

    Returns
    -------
    GradCheckResult
        ``result.passed``; ``result.assert_ok()`` raises. A loss that is not
        reproducible with the same seed fails with ``where=("seed", ...)``;
        a non-finite, complex or mis-shaped loss or gradient fails naming
        where it occurred. ``suspects`` names a constant factor (and
        ``"weights"`` when it is ``n`` or ``1/n``), a sign flip, an additive
        constant or a transposed block.

    Notes
    -----
    Central differences of :math:`\theta \mapsto L(\theta; x, \text{seed})`
    per entry (all entries when there are at most 200) and along random
    directions, compared with ``grads`` as in :func:`check_grad`:

    .. math::

        \frac{L(\theta + h e_j) - L(\theta - h e_j)}{2h} \approx
        \frac{\partial L}{\partial\theta_j},
        \qquad h = \epsilon \max(1, |\theta_j|).
    """
    if not callable(value_and_grad_fn):
        raise TypeError(f"`value_and_grad_fn` must be callable; got {type(value_and_grad_fn).__name__}.")
    if isinstance(seed, np.random.Generator):
        raise TypeError("`seed` must be an int or SeedSequence (a Generator would advance between calls).")
    x = _dg.check_input_array(x, "x")
    rtol = _dg.check_tol(rtol, "rtol")
    if eps is not None:
        eps = _dg.check_tol(eps, "eps")
    n_directions = _dg.check_count(n_directions, "n_directions", 0)
    params = {k: v.copy() for k, v in model.params.items()}
    name = "objective gradient"

    def call():
        with np.errstate(all="ignore"):
            return value_and_grad_fn({k: v.copy() for k, v in params.items()}, x.copy(), seed)

    out0 = call()
    try:
        raw_loss0, raw_grads0 = _split(out0, "value_and_grad_fn")
        if raw_grads0 is None:
            raise TypeError("`value_and_grad_fn` must return a pair (loss, grads dict).")
        loss0, grads0 = _loss_and_grads(out0, "value_and_grad_fn", params)
        loss1, _ = _loss_and_grads(call(), "value_and_grad_fn", params)
    except _dg.BadResult as bad:
        from ._gradcheck import _failure

        return _failure(name, bad.code, bad.message, ("params", "theta"), rtol, _dg.dtype_name(out0[0] if isinstance(out0, tuple) else out0))
    if loss1 != loss0:
        return GradCheckResult(np.inf, ("seed", seed), loss0, loss1, 1, rtol, "objective loss reproducible with the same seed")

    def f(theta):
        out = value_and_grad_fn(theta, x.copy(), seed)
        return _split(out, "value_and_grad_fn")[0]

    def g(theta):
        return raw_grads0

    with np.errstate(all="ignore"):
        return check_grad(
            f,
            g,
            params,
            eps=eps,
            rtol=rtol,
            n_directions=n_directions,
            seed=0,
            zero_mask=model.structural_zeros(),
            name=name,
            _n_samples=x.shape[0],
        )


@dataclass
class ObjectiveComparison(_dg.Report):
    """Report of :func:`compare_objective`.

    Attributes
    ----------
    name : str
        The ebm_ref objective compared with.
    mode : {"exact", "expectation"}
        Direct comparison (deterministic objective) or z-tests of means over
        ``n_seeds`` seeds (stochastic objective).
    value : dict
        ``got``, ``expected`` and ``error`` (relative error, or |z|) of the
        loss.
    grads : dict
        Worst gradient entry: ``key``, ``index``, ``got``, ``expected``,
        ``error``; empty when no gradient was given.
    threshold : float
        ``rtol`` (exact) or the Bonferroni z threshold (expectation).
    alpha : float or None
        False-failure rate of the expectation mode.
    note : str
        Why the comparison could not be made (non-finite, complex, shape).
    dtype : str
        Floating dtype of the third-party loss.
    suspects : tuple of str
        Codes of the explanations that fit (docs/checking.md).
    diagnosis : str or None
    """

    name: str
    mode: str
    value: dict = field(default_factory=dict)
    grads: dict = field(default_factory=dict)
    threshold: float = 0.0
    alpha: float | None = None
    note: str = ""
    dtype: str = "float64"
    suspects: tuple = ()
    diagnosis: str | None = None

    @property
    def passed(self):
        if self.note or "error" not in self.value:
            return False
        errs = [self.value["error"]] + ([self.grads["error"]] if self.grads else [])
        return all(e <= self.threshold for e in errs)

    def __str__(self):
        kind = "relative error" if self.mode == "exact" else "|z|"
        lines = [f"compare_objective {self.name} ({self.mode}; {kind} threshold {self.threshold:.4g}; dtype {self.dtype}):"]
        v = self.value
        lines.append(f"  loss: got {v.get('got')!r}, expected {v.get('expected')!r}, {kind} {v.get('error', 0.0):.3e}")
        if self.grads:
            g = self.grads
            lines.append(
                f"  grads: worst at {g['key']}{list(g['index'])}: got {g['got']!r}, expected {g['expected']!r}, "
                f"{kind} {g['error']:.3e}"
            )
        if self.note:
            lines = [lines[0], "  note: " + self.note]  # a structural error first and alone
        if self.diagnosis:
            lines.append("  diagnosis: " + self.diagnosis)
        lines.append("  -> " + ("ok" if self.passed else "MISMATCH"))
        return "\n".join(lines)



def _resolve(name, objective_kwargs):
    if not isinstance(name, str):
        if hasattr(name, "value_and_grad"):
            return name, type(name).__name__
        raise TypeError(f"`name` must be an objective name or an objective object; got {type(name).__name__}.")
    from .. import objectives

    cls = getattr(objectives, name, None)
    if cls is None:
        raise ValueError(f"`name` {name!r} is not an objective of ebm_ref.objectives.")
    return cls(**(objective_kwargs or {})), name


def compare_objective(
    name,
    value_fn,
    model,
    x,
    *,
    seed=0,
    rtol=1e-8,
    n_seeds=200,
    alpha=1e-4,
    objective_kwargs=None,
):
    r"""Compare a third-party loss (and gradient) with ebm_ref's objective ``name``.

    Parameters
    ----------
    name : str or objective
        Class name in :mod:`ebm_ref.objectives` (``"ScoreMatching"``,
        ``"RatioMatching"``, ``"CD"``, ``"EnergyDiscrepancy"``, ...), built
        with ``objective_kwargs``; or an already built objective.
    value_fn : callable
        ``value_fn(params, x, seed)`` returning the loss, or ``(loss,
        grads)`` to compare the gradient as well.
    model : EnergyModel
    x : array_like of shape (n, d)
        Data in the model's domain.
    seed : int, default 0
        Deterministic objectives: the seed of both calls. Stochastic: the
        third party gets ``seed, seed + 1, ...`` and ebm_ref
        ``seed + n_seeds, ...`` (independent draws either way).
    rtol : float, default 1e-8
        Tolerance of the exact mode (relative error as in
        :func:`compare_energy`).
    n_seeds : int, default 200
        Repetitions per side in the expectation mode.
    alpha : float, default 1e-4
        False-failure rate of the expectation mode (Bonferroni over the loss
        and every gradient entry).
    objective_kwargs : dict, optional
        Constructor arguments of the ebm_ref objective.

    Returns
    -------
    ObjectiveComparison

    Raises
    ------
    ValueError
        If ``name`` is not an ebm_ref objective.

    Notes
    -----
    ebm_ref's objective counts as deterministic when seeds ``seed`` and
    ``seed + 1`` give bit-identical results. Otherwise each loss and
    gradient entry is compared by Welch's statistic over the two sets of
    :math:`R` = ``n_seeds`` draws,

    .. math::

        z = \frac{\bar g - \bar e}{\sqrt{s_g^2/R + s_e^2/R}},

    and the comparison fails when some :math:`|z|` exceeds
    :math:`\Phi^{-1}(1 - \alpha / (2k))`, :math:`k` the number of compared
    quantities. An entry with zero variance on both sides is compared
    exactly (``rtol``). Stateful objectives (``PCD``, whose chains persist
    between calls) are not comparable this way; compare their ``CD``
    counterpart.
    """
    if not callable(value_fn):
        raise TypeError(f"`value_fn` must be callable; got {type(value_fn).__name__}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TypeError(f"`seed` must be a non-negative int (seeds seed, seed + 1, ... are used); got {seed!r}.")
    seed = int(seed)
    rtol = _dg.check_tol(rtol, "rtol")
    alpha = _dg.check_alpha(alpha)
    n_seeds = _dg.check_count(n_seeds, "n_seeds", 2)
    obj, label = _resolve(name, objective_kwargs)
    x = _dg.check_input_array(x, "x")
    params = model.params

    def ours(s):
        loss, grads = obj.value_and_grad(model, x, seed=s)
        return float(loss), {k: np.asarray(v, dtype=np.float64) for k, v in grads.items()}

    e0 = ours(seed)
    dtype = ["float64"]

    def theirs(s):
        with np.errstate(all="ignore"):
            out = value_fn({k: v.copy() for k, v in params.items()}, x.copy(), s)
        raw_loss = out[0] if isinstance(out, tuple) and out else out
        dtype[0] = _dg.dtype_name(raw_loss)
        return _loss_and_grads(out, "value_fn", e0[1] if isinstance(out, tuple) and len(out) == 2 else None)

    e1 = ours(seed + 1)
    for s_, e in ((seed, e0), (seed + 1, e1)):
        bad = [k for k, v in e[1].items() if not np.all(np.isfinite(v))]
        if not np.isfinite(e[0]) or bad:
            # fail closed on ebm_ref's side too: nothing finite to compare with
            what = "loss" if not np.isfinite(e[0]) else f"gradient of {bad[0]!r}"
            return ObjectiveComparison(
                label, "exact", threshold=rtol, suspects=("nonfinite",),
                note=f"ebm_ref's reference {what} is not finite at seed {s_} for this model and `x`; nothing was compared",
            )
    deterministic = e0[0] == e1[0] and all(np.array_equal(e0[1][k], e1[1][k]) for k in e0[1])
    mode = "exact" if deterministic else "expectation"
    try:
        g0 = theirs(seed)
    except _dg.BadResult as bad:
        return ObjectiveComparison(
            label, mode, threshold=rtol, note=bad.message, dtype=dtype[0], suspects=(bad.code,),
            diagnosis=_dg.join([f"{bad.message}: the comparison needs a real, finite loss (and gradient) of the right structure"]),
        )
    low = _dg.is_low_precision(dtype[0])
    if low and deterministic:
        rtol = max(rtol, _dg.ROUNDING_C * _dg.unit(dtype[0]))

    if deterministic:
        denom = max(abs(e0[0]), 1e-12)
        err = abs(g0[0] - e0[0]) / denom if np.isfinite(g0[0]) else np.inf
        rep = ObjectiveComparison(label, "exact", {"got": g0[0], "expected": e0[0], "error": float(err)}, threshold=rtol)
        if g0[1] is not None:
            scale = max(float(np.max(np.abs(v))) if v.size else 0.0 for v in e0[1].values())
            w = _worst_rel(g0[1], e0[1], scale)
            rep.grads = {"key": w[1], "index": w[2], "got": w[3], "expected": w[4], "error": w[0]}
        rep.dtype = dtype[0]
        _diagnose_exact(rep, g0, e0, rtol, x.shape[0], low)
        if not rep.passed:
            _term_suspects(rep, obj, model, x, g0, rtol)
        return rep

    try:
        g_runs = [g0] + [theirs(seed + i) for i in range(1, n_seeds)]
    except _dg.BadResult as bad:
        return ObjectiveComparison(
            label, mode, threshold=rtol, note=bad.message, dtype=dtype[0], suspects=(bad.code,),
            diagnosis=_dg.join([f"{bad.message}: the comparison needs a real, finite loss (and gradient) of the right structure"]),
        )
    e_runs = [ours(seed + n_seeds + i) for i in range(n_seeds)]

    def stacked(runs, k):
        return np.stack([r[1][k] for r in runs])

    gl = np.array([r[0] for r in g_runs])
    el = np.array([r[0] for r in e_runs])
    keys = list(e0[1]) if g0[1] is not None else []
    k_tests = 1 + sum(e0[1][k].size for k in keys)
    z_thr = float(-special.ndtri(alpha / (2.0 * k_tests)))

    def z_of(a, b):
        va = a.var(axis=0, ddof=1) / a.shape[0]
        vb = b.var(axis=0, ddof=1) / b.shape[0]
        se = np.sqrt(va + vb)
        diff = a.mean(axis=0) - b.mean(axis=0)
        with np.errstate(all="ignore"):
            z = np.abs(diff) / se
            scale = np.maximum(np.maximum(np.abs(a.mean(axis=0)), np.abs(b.mean(axis=0))), 1e-12)
            # zero variance on both sides: exact comparison mapped onto the z scale
            exact_bad = np.abs(diff) / scale > rtol
        z = np.where(se > 0, z, np.where(exact_bad, np.inf, 0.0))
        z = np.where(np.all(np.isfinite(a), axis=0), z, np.inf)
        return z, a.mean(axis=0), b.mean(axis=0)

    zl, gm, em = z_of(gl[:, None], el[:, None])
    rep = ObjectiveComparison(
        label,
        "expectation",
        {"got": float(gm[0]), "expected": float(em[0]), "error": float(zl[0])},
        threshold=z_thr,
        alpha=float(alpha),
    )
    worst = None
    for k in keys:
        z, gm, em = z_of(stacked(g_runs, k), stacked(e_runs, k))
        if z.size == 0:
            continue
        i = np.unravel_index(int(np.argmax(z)), z.shape)
        if worst is None or z[i] > worst["error"]:
            worst = {"key": k, "index": tuple(int(t) for t in i), "got": float(gm[i]), "expected": float(em[i]), "error": float(z[i])}
    if worst is not None:
        rep.grads = worst
    rep.dtype = dtype[0]
    if not rep.passed:
        ratio = float(gl.mean() / el.mean()) if el.mean() != 0 else None
        said, codes = [], []
        if ratio is not None:
            n = x.shape[0]
            if any(abs(ratio - t) <= 0.05 * abs(t) for t in (n, 1.0 / n)):
                codes += ["factor", "weights"]
                said.append(f"the mean loss is {ratio:.4g} times the reference, about n = {n} or 1/n (a missing or extra 1/n)")
            else:
                said.append(f"the mean loss differs from the reference by {float(gl.mean() - el.mean()):.6g} (ratio {ratio:.6g})")
        rep.suspects = tuple(codes)
        rep.diagnosis = _dg.join(said)
    return rep
