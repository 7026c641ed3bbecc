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


import numpy as np

from . import _diagnose as _dg

__all__ = ["QuantityComparison", "EnergyComparison", "compare_energy", "assert_energy_matches"]

from ._compare_report import PRIMITIVES, EnergyComparison, QuantityComparison
from ._energysuspects import _as_dict, _reference, _suspects


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
        with np.errstate(over="ignore"):  # an overflowing scale is refused below, naming `scales`
            out[k] = scale * (p + noise)
    try:
        return model.with_params(out)
    except ValueError:
        pass
    with np.errstate(over="ignore"):
        plain = {k: scale * p for k, p in base.items()}
    try:
        return model.with_params(plain)
    except ValueError as exc:
        # the user chose the scale, not the parameter the model names
        raise ValueError(
            f"`scales` entry {scale!r} gives parameters the model refuses ({exc}); use smaller scales."
        ) from None


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


def _read(value, expected, what):
    if len(expected) == 1 and None in expected:
        return {None: _dg.read_array(value, what, shape=np.shape(expected[None]))}
    return _dg.read_dict(value, what, expected)


_PER_SAMPLE = ("energy", "grad_x", "hessian_diag")


def _check_reference(exp, k):
    """Fail closed on ebm_ref's own side too: a non-finite reference value is never compared."""
    for key, e in exp.items():
        bad = ~np.isfinite(e)
        if bad.any():
            index = tuple(int(i) for i in np.argwhere(bad)[0])
            err = _dg.BadResult(
                "nonfinite",
                f"ebm_ref's reference `{k}`{'' if key is None else f'[{key!r}]'} is {float(e[index])!r} at {index}: "
                "nothing can be compared there (the parameters at this scale overflow the reference); "
                "use smaller `scales`",
                index=index,
                value=float("nan"),
            )
            err.key = key
            raise err


def _compare_batch(res, k, raw, exp, m, x, aux, scale, b, rtol, atol, strict, state):
    """Compare one batch of primitive ``k``; updates ``res`` and ``state``."""
    dt = _dg.dtype_name(raw)
    res.dtype = _dg.lower_precision(res.dtype, dt)
    try:
        _check_reference(exp, k)
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
    if bscore > 1.0:
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
