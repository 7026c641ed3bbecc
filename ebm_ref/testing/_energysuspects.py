r"""Likely causes of a failing energy comparison (``suspects``), tested rather than guessed.

Each candidate cause is a transformation of the reference (a transposed
weight, a negated or dropped parameter, a chain-rule factor); it is named
only if the user's numbers fit the transformed reference within tolerance.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

import numpy as np

from . import _diagnose as _dg


def _reference(m, prim, x, aux):
    if prim in ("energy", "grad_x", "hessian_diag"):
        return getattr(m, prim)(x)
    return getattr(m, prim)(x, aux)


def _as_dict(value):
    if isinstance(value, Mapping):
        return dict(value)
    return {None: value}


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
                # torch's linearised softplus is accepted here as everywhere
                # (compare_energy's Notes); for a model without softplus both
                # ways give the same values
                if not any(_fits_transformed(b, mt, name, key, c, chain, lin, rtol) for lin in (False, True)):
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
