r"""Compare a third-party energy implementation with ebm_ref, primitive by primitive.

A user's code is reached through plain callables that take the parameter
dict first (docs/models.md), so a PyTorch or JAX implementation is wrapped
in two lines (convert the dict to tensors, call, convert back).

The comparison runs at several parameter scales (the reference model's
parameters, slightly perturbed, times each scale), so that both the linear
regime and saturated units (|pre-activation| of hundreds, where a naive
``log(1 + exp(a))`` overflows) are visited.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from . import _diagnose as _dg

__all__ = ["QuantityComparison", "EnergyComparison", "compare_energy", "assert_energy_matches"]

PRIMITIVES = (
    "energy",
    "grad_x",
    "hessian_diag",
    "grad_params",
    "grad_params_of_grad_x",
    "grad_params_of_hessian_diag",
)


@dataclass
class QuantityComparison:
    """Worst disagreement of one primitive over every batch and scale.

    Attributes
    ----------
    name : str
        The primitive (``"energy"``, ``"grad_params"``, ...).
    max_abs_error, max_rel_error : float
        Worst absolute and relative error against the exact reference
        (``inf`` for a non-finite or complex output or a wrong shape / key
        set).
    score : float
        Worst error in units of the tolerance after the tolerance model
        (dtype allowance, accepted framework behaviour): passes iff <= 1.
    where : dict
        Where the worst error occurred: ``scale``, ``batch``, ``key``
        (parameter name, or ``None``), ``index`` (entry), as Python numbers.
    x : ndarray or None
        The input row at ``where`` for per-sample quantities, else the batch.
    got, expected : float
        The two values at ``where``.
    note : str
        Why a comparison could not be made (shape, keys, non-finite, complex).
    n_compared : int
        Number of entries compared.
    dtype : str
        Floating dtype of the third-party results (lowest precision seen).
    allowance : float
        The dtype allowance ``C eps_dtype`` relative to the quantity's scale
        (0 for float64).
    suspects : tuple of str
        Codes of the explanations that fit the numbers (docs/checking.md).
    diagnosis : str or None
        The same in a sentence.
    accepted : tuple of str
        Codes of documented behaviours accepted under their tolerance
        (``"float32"``, ``"softplus_threshold"``).
    worst_entries : list of dict
        The few worst entries of the worst batch.
    """

    name: str
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0
    where: dict = field(default_factory=dict)
    x: np.ndarray | None = field(default=None, repr=False)
    got: float = float("nan")
    expected: float = float("nan")
    note: str = ""
    n_compared: int = 0
    dtype: str = "float64"
    score: float = 0.0
    allowance: float = 0.0
    suspects: tuple = ()
    diagnosis: str | None = None
    accepted: tuple = ()
    strict: bool = False
    worst_entries: list = field(default_factory=list, repr=False)
    _per_sample: bool = field(default=True, repr=False)

    def passed(self, rtol=None):
        """Whether the primitive agrees (``rtol`` is the report's; kept for compatibility)."""
        if self.n_compared == 0 and not self.note:
            return False  # nothing compared is never a pass
        if self.strict and "softplus_threshold" in self.accepted:
            return False
        return bool(self.score <= 1.0)

    def describe(self, rtol):
        ok = self.passed(rtol)
        status = "ok" if ok else "MISMATCH"
        if self.note and self.max_rel_error == np.inf and "shape" in self.suspects:
            # a shape or key error first and alone: the numbers mean nothing then
            return f"{self.name}: {status}: {self.note} (at {self.where})"
        text = (
            f"{self.name} [{self.dtype}]: max rel error {self.max_rel_error:.3e}, max abs error "
            f"{self.max_abs_error:.3e}, score {self.score:.3g} ({self.n_compared} entries) {status}"
        )
        if self.accepted:
            text += f"\n    accepted: {', '.join(self.accepted)}" + (" (strict: not accepted)" if not ok and self.strict else "")
        if not ok:
            text += f"\n    worst at {self.where}: got {self.got!r}, expected {self.expected!r}"
            for e in self.worst_entries[1:]:
                text += f"\n    also at key={e['key']!r} index={e['index']}: got {e['got']!r}, expected {e['expected']!r}"
            if self.x is not None and self._per_sample:
                text += f"\n    input x = {np.array2string(np.asarray(self.x), precision=6)}"
            if self.note:
                text += f"\n    note: {self.note}"
        if self.diagnosis:
            text += f"\n    diagnosis: {self.diagnosis}"
        return text


@dataclass
class EnergyComparison:
    """Report of :func:`compare_energy`: one :class:`QuantityComparison` per primitive."""

    model: str
    rtol: float
    scales: tuple
    results: dict = field(default_factory=dict)
    strict: bool = False

    @property
    def passed(self):
        return bool(self.results) and all(r.passed(self.rtol) for r in self.results.values())

    @property
    def worst(self):
        """``(name, max_rel_error)`` of the worst primitive."""
        if not self.results:
            return None, 0.0
        name = max(self.results, key=lambda k: self.results[k].max_rel_error)
        return name, self.results[name].max_rel_error

    @property
    def failed(self):
        """Names of the primitives that disagree, in the order of the primitives."""
        return [k for k, r in self.results.items() if not r.passed(self.rtol)]

    @property
    def dtype(self):
        """Lowest-precision dtype received over every primitive."""
        names = [r.dtype for r in self.results.values()]
        return max(names, key=lambda n: _dg.EPS.get(n, 0.0)) if names else "float64"

    @property
    def suspects(self):
        """Codes of the explanations found, in order of appearance.

        Over the primitives that fail when the report fails (a behaviour
        accepted in a passing primitive does not explain a failure
        elsewhere), over every primitive when it passes.
        """
        out = []
        failed = set(self.failed)
        for r in self.results.values():
            if failed and r.name not in failed:
                continue
            out.extend(c for c in r.suspects if c not in out)
        return tuple(out)

    @property
    def diagnosis(self):
        """One sentence per primitive with a diagnosis (``None`` if none)."""
        parts = [f"{r.name}: {r.diagnosis}" for r in self.results.values() if r.diagnosis]
        return " ".join(parts) if parts else None

    def __str__(self):
        lines = [
            f"compare_energy against {self.model} (scales {self.scales}, rtol {self.rtol:g}, dtype {self.dtype}"
            + (f": allowance {_dg.ROUNDING_C:g} * eps({self.dtype}) * scale" if _dg.is_low_precision(self.dtype) else "")
            + (", strict" if self.strict else "")
            + "):"
        ]
        for r in self.results.values():
            lines.append("  " + r.describe(self.rtol))
        lines.append("  -> " + ("all match" if self.passed else f"MISMATCH in {', '.join(self.failed)}"))
        if self.suspects:
            lines.append(f"  suspects: {', '.join(self.suspects)}")
        return "\n".join(lines)

    def assert_ok(self):
        """Raise ``AssertionError`` carrying the report if a primitive disagrees."""
        if not self.passed:
            raise AssertionError(str(self))
        return self


# --------------------------------------------------------------------- models
def _perturbed_params(model, scale, rng, jitter):
    r"""Parameters of a model "drawn around" ``model`` at ``scale``.

    ``theta' = scale * (theta + jitter * rms(theta) * N(0, 1))``, with the
    noise symmetrised and zeroed on structural zeros for square arrays that
    carry them (Ising ``J``), so constraints survive. If the model still
    rejects the result, plain scaling is used (it keeps every linear
    constraint).
    """
    zeros = model.structural_zeros()
    base = model.params
    out = {}
    for k, p in base.items():
        rms = float(np.sqrt(np.mean(p * p))) if p.size else 0.0
        noise = rng.standard_normal(p.shape) * jitter * (rms if rms > 0 else 1.0)
        if k in zeros:
            if p.ndim == 2 and p.shape[0] == p.shape[1]:
                noise = 0.5 * (noise + noise.T)
            noise = np.where(zeros[k], 0.0, noise)
        out[k] = scale * (p + noise)
    try:
        return model.with_params(out)
    except ValueError:
        return model.with_params({k: scale * p for k, p in base.items()})


def _draw_batch(model, rng, n, extension):
    """Inputs: states of the domain (binary/spin) plus continuous points."""
    d = model.n_features
    if model.domain == "binary":
        states = rng.integers(0, 2, size=(n, d)).astype(np.float64)
    elif model.domain == "spin":
        states = 2.0 * rng.integers(0, 2, size=(n, d)) - 1.0
    else:
        return 2.0 * rng.standard_normal((n, d))
    if not extension:
        return states
    # the continuous extension (docs/conventions.md): GWG and finite differences use it
    cont = rng.uniform(-1.0, 2.0, size=(n, d)) if model.domain == "binary" else rng.uniform(-2.0, 2.0, size=(n, d))
    return np.concatenate([states, cont], axis=0)


# ----------------------------------------------------------------- comparison
def _call_user(fn, *args):
    # third-party code may overflow; the non-finite result is what we report
    with np.errstate(all="ignore"):
        return fn(*args)


def _reference(m, prim, x, aux):
    if prim in ("energy", "grad_x", "hessian_diag"):
        return getattr(m, prim)(x)
    return getattr(m, prim)(x, aux)


def _as_dict(value):
    if isinstance(value, Mapping):
        return dict(value)
    return {None: value}


class _Batch:
    """One compared batch of one primitive: the numbers the suspects are tested on."""

    def __init__(self, scale, batch, m, x, aux, got, ref, floor, allow):
        self.scale, self.batch, self.m, self.x, self.aux = scale, batch, m, x, aux
        self.got, self.ref, self.floor, self.allow = got, ref, floor, allow

    def pairs(self, name):
        return [
            (name if k is None else f"{name}[{k!r}]", self.got[k], self.ref[k], self.floor, self.allow[k])
            for k in self.ref
        ]

    def fits(self, other_ref, rtol):
        return all(_dg.fits(self.got[k], np.asarray(other_ref[k], dtype=np.float64), rtol, self.floor, self.allow[k]) for k in self.ref)


def _transposed_model(m):
    """``m`` with every non-symmetric square 2-D parameter transposed (None if there is none)."""
    params = m.params
    out, changed = {}, False
    for k, p in params.items():
        if p.ndim == 2 and p.shape[0] == p.shape[1] and not np.array_equal(p, p.T):
            out[k] = p.T.copy()
            changed = True
        else:
            out[k] = p
    return m._with_params_unchecked(out) if changed else None


#: one-parameter transformations tested by :func:`_param_suspects`: (code, factor, words)
_PARAM_TRANSFORMS = (
    ("param_sign", -1.0, "negated"),
    ("param_dropped", 0.0, "set to zero (its term dropped)"),
    ("param_scale", 2.0, "doubled"),
    ("param_scale", 0.5, "halved"),
)


def _fits_transformed(b, mt, name, key, c, chain, lin, rtol):
    """Whether batch ``b`` equals ``mt``'s ``name`` (times ``c`` on key ``key`` if ``chain``)."""
    try:
        with np.errstate(all="ignore"), (_dg.linearised_softplus() if lin else contextlib.nullcontext()):
            ref = _as_dict(_reference(mt, name, b.x, b.aux))
    except (ValueError, TypeError, NotImplementedError):
        return False
    ref = {k: np.asarray(v, dtype=np.float64) for k, v in ref.items()}
    if chain:
        ref[key] = c * ref[key]
    return all(np.all(np.isfinite(v)) for v in ref.values()) and b.fits(ref, rtol)


def _param_suspects(name, failing, rtol):
    r"""One parameter negated, zeroed, doubled or halved: ``got(theta) == ref(T theta)`` on every failing batch.

    The third-party code is taken to compute ebm_ref's formula at ``theta'``
    equal to ``theta`` with one array ``p`` multiplied by ``c`` (a sign,
    a dropped term, a missing or extra factor 2). Its energy and
    ``x``-derivatives are then ebm_ref's at ``theta'``; its parameter
    derivatives follow the chain rule, ``d/dp = c * (d/dp')(theta')`` and
    the other keys unchanged. Only ebm_ref's model is re-evaluated (four
    transformations per parameter array and failing batch); a code is named
    only when every failing batch fits to the comparison's tolerance.
    """
    codes, said = [], []
    if not failing:
        return codes, said
    chain = name.startswith("grad_params")
    for key in failing[0].m.params:
        for code, c, words in _PARAM_TRANSFORMS:
            ok = True
            for b in failing:
                params = b.m.params
                p = params[key]
                if p.size == 0 or not np.any(p):
                    ok = False  # the transformation changes nothing
                    break
                try:  # a model that refuses the transformed parameters cannot be what the user computed
                    mt = b.m._with_params_unchecked({k: (c * v if k == key else v) for k, v in params.items()})
                except (ValueError, TypeError):
                    ok = False
                    break
                # torch's linearised softplus is accepted here as everywhere (compare_energy's Notes)
                ways = (False, True) if _dg.uses_softplus(mt) else (False,)
                if not any(_fits_transformed(b, mt, name, key, c, chain, lin, rtol) for lin in ways):
                    ok = False
                    break
            if ok:
                codes.append(code)
                said.append(f"{name} equals the reference computed with parameter {key!r} {words}")
    return codes, said


def _suspects(name, failing, n_scales_passed, rtol, max_scale):
    """Test the usual suspects on the failing batches of one primitive."""
    codes, said = [], []
    pairs = [p for b in failing for p in b.pairs(name)]
    floor_of = lambda p: p[3]  # noqa: E731
    allow_of = lambda p: p[4]  # noqa: E731
    c, s = _dg.factor_suspects(pairs, rtol, floor_of, allow_of)
    codes += c
    said += s
    if not codes and name in ("energy", "grad_x", "hessian_diag"):
        c, s = _dg.offset_suspects([p for b in failing for p in b.pairs(name)], rtol, floor_of, allow_of)
        codes += c
        said += s
    if not codes:
        c, s = _dg.transpose_suspects(pairs, rtol, floor_of, allow_of)
        codes += c
        said += s
    if not codes:
        ok = True
        for b in failing:
            mt = _transposed_model(b.m)
            if mt is None or not b.fits(_as_dict(_reference(mt, name, b.x, b.aux)), rtol):
                ok = False
                break
        if ok and failing:
            codes.append("transpose")
            said.append(f"{name} equals the reference computed with the square weight matrix transposed")
    if not codes and name == "grad_params" and failing:
        for label, make in (("unweighted sum", lambda b: np.ones(b.x.shape[0])), ("plain mean", lambda b: np.full(b.x.shape[0], 1.0 / b.x.shape[0]))):
            if all(b.fits(b.m.grad_params(b.x, make(b)), rtol) for b in failing):
                codes.append("weights")
                said.append(f"grad_params ignores the per-sample weights (it equals the {label} over the batch)")
                break
    c, s = _param_suspects(name, failing, rtol)
    codes += c
    said += s
    if failing and n_scales_passed and len({b.scale for b in failing}) == 1 and max(b.scale for b in failing) == max_scale:
        codes.append("saturation")
        said.append(f"errors appear only at the largest parameter scale {failing[0].scale:g} (saturated units)")
    return codes, said


def _read(value, expected, what):
    if len(expected) == 1 and None in expected:
        return {None: _dg.read_array(value, what, shape=np.shape(expected[None]))}
    return _dg.read_dict(value, what, expected)


_PER_SAMPLE = ("energy", "grad_x", "hessian_diag")


def _compare_batch(res, k, raw, exp, m, x, aux, scale, b, rtol, atol, strict, state):
    """Compare one batch of primitive ``k``; updates ``res`` and ``state``."""
    dt = _dg.dtype_name(raw)
    res.dtype = _dg.lower_precision(res.dtype, dt)
    try:
        got = _read(raw, exp, f"`{k}` output")
    except _dg.BadResult as bad:
        state["codes"].append(bad.code)
        state["bad_scales"].add(scale)
        if bad.code == "nonfinite":
            state["nonfinite_scales"].add(scale)
        if res.score < np.inf or not res.note:
            res.score = res.max_rel_error = res.max_abs_error = np.inf
            res.note = bad.message + (" (non-finite output)" if bad.code == "nonfinite" else "")
            res.where = {"scale": scale, "batch": b}
            res.got, res.expected, res.worst_entries, res.x = float("nan"), float("nan"), [], None
            if bad.index is not None:
                res.where["index"] = bad.index
                res.got = bad.value
                key = bad.key
                if key in exp:
                    res.where["key"] = key
                    res.expected = float(exp[key][bad.index])
                if k in _PER_SAMPLE and bad.index:
                    res.x = x[bad.index[0]].copy()
        return
    low = _dg.is_low_precision(dt)
    u = _dg.unit(dt) if low else 0.0
    emax = max((float(np.max(np.abs(e))) if e.size else 0.0) for e in exp.values())
    floor = max(atol, 1e-3 * emax)
    allow = {kk: _dg.ROUNDING_C * u * (float(np.max(np.abs(e))) if e.size else 0.0) for kk, e in exp.items()}
    if low:
        res.allowance = max(res.allowance, _dg.ROUNDING_C * u)
    bscore, entries = 0.0, []
    for kk, e in exp.items():
        g = got[kk]
        res.n_compared += e.size
        if e.size == 0:
            continue
        absd = np.abs(g - e)
        rel = absd / np.maximum(np.abs(e), floor)
        res.max_abs_error = max(res.max_abs_error, float(np.max(absd)))
        res.max_rel_error = max(res.max_rel_error, float(np.max(rel)))
        sc = _dg.scores(g, e, rtol, floor, allow[kk])
        for flat in np.argsort(sc, axis=None)[::-1][:3]:
            i = np.unravel_index(int(flat), sc.shape)
            entries.append((float(sc[i]), kk, tuple(int(t) for t in i), float(g[i]), float(e[i])))
        bscore = max(bscore, float(np.max(sc)))
    effective = bscore
    lin_explains = False
    if bscore > 1.0 and _dg.uses_softplus(m):
        with _dg.linearised_softplus():
            lin = {kk: np.asarray(v, dtype=np.float64) for kk, v in _as_dict(_reference(m, k, x, aux)).items()}
        if any(not np.array_equal(lin[kk], exp[kk]) for kk in exp):
            lscore = max(float(np.max(_dg.scores(got[kk], lin[kk], rtol, floor, allow[kk]))) for kk in exp if exp[kk].size)
            if lscore <= 1.0:
                lin_explains = True
                state["accepted"].add("softplus_threshold")
                if not strict:
                    effective = lscore
    if low and bscore <= 1.0 and res.max_rel_error > rtol:
        state["accepted"].add("float32")
    if effective > 1.0:
        if not lin_explains:
            state["unexplained"] = True
        state["failing"].append(_Batch(scale, b, m, x, aux, got, exp, floor, allow))
        state["bad_scales"].add(scale)
    if effective > res.score or not res.where:
        res.score = max(res.score, effective)
        entries.sort(key=lambda t: -t[0])
        top = entries[0] if entries else (0.0, None, (), float("nan"), float("nan"))
        res.where = {"scale": scale, "batch": b, "key": top[1], "index": top[2]}
        res.got, res.expected = top[3], top[4]
        res.x = x[top[2][0]].copy() if (k in _PER_SAMPLE and top[2]) else x.copy()
        res.worst_entries = [{"key": t[1], "index": t[2], "got": t[3], "expected": t[4], "score": t[0]} for t in entries[:3]]


def _finish(res, k, state, scales, rtol, strict):
    codes, said = list(state["codes"]), []
    if "nonfinite" in codes:
        said.append(f"{k} returned a non-finite value ({res.note})")
    if "complex" in codes:
        said.append(f"{k} returned a complex result: compare real outputs only")
    if "shape" in codes:
        said.append(f"{k} returned the wrong structure: {res.note}")
    passed_scales = set(scales) - state["bad_scales"]
    if state["failing"]:
        c, s = _suspects(k, state["failing"], len(passed_scales), rtol, max(scales))
        codes += c
        said += s
    ns = state["nonfinite_scales"]
    if ns and passed_scales and ns == {max(scales)} and "saturation" not in codes:
        codes.append("saturation")
        said.append(f"non-finite values appear only at the largest parameter scale {max(scales):g} (overflow in saturated units)")
    # named only where the linearisation explains every batch that failed (or would have failed): a
    # primitive that still fails elsewhere has another cause, and the accepted batches say nothing about it
    if "softplus_threshold" in state["accepted"] and not state.get("unexplained"):
        codes.append("softplus_threshold")
        said.append(
            f"where a pre-activation exceeds {_dg.SOFTPLUS_THRESHOLD:g}, {k} matches the linearised softplus of "
            "torch.nn.functional.softplus (threshold=20, identity above it): "
            + ("not accepted because strict=True" if strict else "accepted (strict=True fails it)")
        )
    if _dg.is_low_precision(res.dtype) and (res.max_rel_error > rtol):
        codes.append("float32")
        if "float32" in state["accepted"] and res.score <= 1.0:
            said.append(
                f"{res.dtype} results: errors within the {res.dtype} allowance "
                f"{_dg.ROUNDING_C:g} * eps * scale = {res.allowance:.2e} of the quantity's scale (accepted)"
            )
        else:
            said.append(f"{res.dtype} results: errors beyond the {res.dtype} allowance {res.allowance:.2e} of the quantity's scale")
    if res.score > 1.0 and not said:
        said.append("none of the usual suspects (sign, constant factor, additive constant, transpose, weights, saturation) fits")
    res.accepted = tuple(sorted(state["accepted"]))
    res.suspects = tuple(dict.fromkeys(codes))
    res.diagnosis = _dg.join(said)


def compare_energy(
    model,
    *,
    energy=None,
    grad_x=None,
    hessian_diag=None,
    grad_params=None,
    grad_params_of_grad_x=None,
    grad_params_of_hessian_diag=None,
    n_batches=5,
    batch_size=8,
    scales=(0.1, 1, 10),
    rtol=1e-8,
    atol=1e-12,
    jitter=0.1,
    extension=True,
    seed=0,
    strict=False,
):
    r"""Compare third-party energy primitives with ebm_ref's on random inputs.

    Parameters
    ----------
    model : EnergyModel
        The ebm_ref model that defines the formula and the parameter layout
        (docs/models.md). Comparisons use models drawn around it.
    energy : callable, optional
        ``energy(params, x) -> (n,)``.
    grad_x, hessian_diag : callable, optional
        ``f(params, x) -> (n, d)``.
    grad_params : callable, optional
        ``grad_params(params, x, weights) -> dict`` (weighted sum over the
        batch; ``weights`` are drawn from U(0.5, 1.5), so a missing
        weighting or ``1/n`` is caught and named).
    grad_params_of_grad_x : callable, optional
        ``f(params, x, v) -> dict``.
    grad_params_of_hessian_diag : callable, optional
        ``f(params, x, c) -> dict``.
    n_batches : int, default 5
        Random batches per scale (>= 1).
    batch_size : int, default 8
        States per batch (>= 1; binary models get as many
        continuous-extension points in addition when ``extension``).
    scales : sequence of float, default (0.1, 1, 10)
        Parameter scales (finite, > 0).
    rtol : float, default 1e-8
        Tolerance on the relative error of float64 results (Notes).
    atol : float, default 1e-12
        Lower bound of the error denominator (matters only where the
        reference is zero throughout).
    jitter : float, default 0.1
        Relative size of the random perturbation of the parameters.
    extension : bool, default True
        For binary/spin models, also compare at real-valued points (the
        continuous extension every ebm_ref energy evaluates).
    seed : int, default 0
        Seeds the models, inputs, weights and ``v``/``c`` (deterministic).
    strict : bool, default False
        Fail documented framework behaviours that are accepted by default
        (torch's softplus linearised above 20).

    Returns
    -------
    EnergyComparison
        Per primitive: worst absolute and relative error, where it occurred
        (scale, batch, entry, input), the dtype received, ``suspects`` and
        ``diagnosis``. ``report.passed``, ``str(report)``,
        ``report.assert_ok()``.

    Raises
    ------
    ValueError
        If no callable is given, ``scales`` is empty, or an option is out of
        range (``rtol``, ``atol``, ``jitter``, counts).
    TypeError
        If a primitive is not callable or an option has the wrong type.

    Notes
    -----
    For each primitive with reference values :math:`r` (over one batch;
    dict outputs per key) and third-party values :math:`g`, entry :math:`j`
    passes when

    .. math::

        |g_j - r_j| \le \mathrm{rtol}\,\max(|r_j|,\ f) + C\,\epsilon_t\,S,
        \qquad f = \max(\mathrm{atol}, 10^{-3}\max_l |r_l|),

    where the second term is present only for results of a floating type
    :math:`t` coarser than float64 (:math:`\epsilon_t` its machine epsilon,
    :math:`S = \max_l |r_l|` over the key, :math:`C = 256`: rounding of the
    inputs, parameters and a few dozen operations in :math:`t`). A
    non-finite or complex output, a wrong shape or a wrong key set fails.
    For RBM, GRBM and softplus-MLP models a failing batch is also compared
    with the formula computed as ``torch.nn.functional.softplus`` does (the
    identity above a pre-activation of 20); matching it is accepted unless
    ``strict``. Failing batches are tested for a sign flip, a constant
    factor, an additive constant, transposed weights, ignored weights,
    errors only at the largest scale, and ebm_ref's result with one
    parameter array negated, zeroed, doubled or halved (parameter
    derivatives by the chain rule; ``param_sign``, ``param_dropped``,
    ``param_scale``: docs/checking.md). ``softplus_threshold`` is named only
    where the linearisation explains every failing batch of the quantity, and
    a failing report's ``suspects`` collect its failing quantities only. Each perturbed
    model is :math:`\theta' = s(\theta + j\,\mathrm{rms}(\theta)\,\xi)`,
    :math:`\xi \sim N(0, 1)` symmetrised on constrained square arrays.

    Overflow bugs (a softplus written ``log(1 + exp(a))``) appear only
    where pre-activations pass ~709: add a large scale
    (``scales=(0.1, 1, 10, 100)``) or start from a model with large weights.
    """
    given = {
        "energy": energy,
        "grad_x": grad_x,
        "hessian_diag": hessian_diag,
        "grad_params": grad_params,
        "grad_params_of_grad_x": grad_params_of_grad_x,
        "grad_params_of_hessian_diag": grad_params_of_hessian_diag,
    }
    given = {k: f for k, f in given.items() if f is not None}
    if not given:
        raise ValueError(
            "`compare_energy` needs at least one callable among "
            f"{', '.join(PRIMITIVES)}; got none."
        )
    for k, f in given.items():
        if not callable(f):
            raise TypeError(f"`{k}` must be callable; got {type(f).__name__}.")
    rtol = _dg.check_tol(rtol, "rtol")
    atol = _dg.check_tol(atol, "atol", allow_zero=True)
    jitter = _dg.check_tol(jitter, "jitter", allow_zero=True)
    n_batches = _dg.check_count(n_batches, "n_batches", 1)
    batch_size = _dg.check_count(batch_size, "batch_size", 1)
    if isinstance(scales, (str, bytes)) or not hasattr(scales, "__iter__"):
        raise TypeError(f"`scales` must be a sequence of numbers; got {type(scales).__name__}.")
    scales = tuple(_dg.check_tol(s, "scales") for s in scales)
    if not scales:
        raise ValueError("`scales` must contain at least one scale; got an empty sequence.")
    strict = bool(strict)
    rng = np.random.default_rng(seed)
    report = EnergyComparison(repr(model), rtol, scales, strict=strict)
    results = {k: QuantityComparison(k, strict=strict, _per_sample=k in _PER_SAMPLE) for k in given}
    states = {
        k: {"codes": [], "bad_scales": set(), "nonfinite_scales": set(), "accepted": set(), "failing": []}
        for k in given
    }
    for scale in scales:
        for b in range(n_batches):
            m = _perturbed_params(model, scale, rng, jitter)
            x = _draw_batch(m, rng, batch_size, extension)
            n, d = x.shape
            w = rng.uniform(0.5, 1.5, size=n)
            v = rng.standard_normal((n, d))
            c = rng.standard_normal((n, d))
            params = m.params
            aux_of = {"grad_params": w, "grad_params_of_grad_x": v, "grad_params_of_hessian_diag": c}
            for k, f in given.items():
                user_params = {p: a.copy() for p, a in params.items()}
                aux = aux_of.get(k)
                exp = {kk: np.asarray(e, dtype=np.float64) for kk, e in _as_dict(_reference(m, k, x, aux)).items()}
                args = (user_params, x.copy()) if aux is None else (user_params, x.copy(), aux.copy())
                raw = _call_user(f, *args)
                _compare_batch(results[k], k, raw, exp, m, x, aux, scale, b, rtol, atol, strict, states[k])
    for k in PRIMITIVES:
        if k in results:
            _finish(results[k], k, states[k], scales, rtol, strict)
            results[k].where = _dg.plain(results[k].where)
            report.results[k] = results[k]
    return report


def assert_energy_matches(model, **kwargs):
    """:func:`compare_energy`, raising ``AssertionError`` with the report on a mismatch.

    Parameters
    ----------
    model : EnergyModel
    **kwargs
        Everything :func:`compare_energy` takes.

    Returns
    -------
    EnergyComparison
        The (passing) report.

    Raises
    ------
    AssertionError
        If any primitive disagrees beyond its tolerance.
    """
    return compare_energy(model, **kwargs).assert_ok()
