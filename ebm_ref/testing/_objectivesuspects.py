r"""Likely causes of a failing objective comparison (``suspects``): sign, factor, 1/n, offset, a scaled term.

Each cause is tested against ebm_ref's own numbers (the third-party code is
not called again), the same way :mod:`._energysuspects` does for energies.
"""

from __future__ import annotations

import numpy as np

from . import _diagnose as _dg


def _worst_rel(got, exp, floor_scale):
    worst = (0.0, None, None, 0.0, 0.0)
    floor = max(1e-12, 1e-3 * floor_scale)
    for k, e in exp.items():
        g = got[k]
        with np.errstate(all="ignore"):
            rel = np.abs(g - e) / np.maximum(np.abs(e), floor)
        rel = np.where(np.isfinite(g), rel, np.inf)
        if rel.size == 0:
            continue
        i = np.unravel_index(int(np.argmax(rel)), rel.shape)
        if rel[i] > worst[0] or worst[1] is None:
            worst = (float(rel[i]), k, tuple(int(t) for t in i), float(g[i]), float(e[i]))
    return worst


def _score_matching_terms(model, x):
    r"""ScoreMatching's two terms with their gradients: ``[(A, dA), (B, dB)]``, ``J = A - B``.

    :math:`A = \frac1n\sum_i \frac12\|g(x_i)\|^2`, :math:`B = \frac1n\sum_i \sum_k h_k(x_i)`.
    """
    n = x.shape[0]
    g = model.grad_x(x)
    h = model.hessian_diag(x)
    a = float(np.mean(0.5 * np.sum(g * g, axis=1)))
    b = float(np.mean(np.sum(h, axis=1)))
    da = {k: np.asarray(v, dtype=np.float64) for k, v in model.grad_params_of_grad_x(x, g / n).items()}
    db = {k: np.asarray(v, dtype=np.float64) for k, v in model.grad_params_of_hessian_diag(x, np.full(x.shape, 1.0 / n)).items()}
    return [("the squared-score term 1/2 |grad_x E|^2", a, da), ("the Hessian-trace term", b, db)]


def _terms_of(obj):
    """The two-term split of ``obj``'s loss, ``J = T_1 - T_2``, or None (public class test, no name strings)."""
    from ..objectives import ScoreMatching

    return _score_matching_terms if isinstance(obj, ScoreMatching) else None

#: (factor on term 1, factor on term 2, words) tested by :func:`_term_suspects`
_TERM_SCALES = (
    (2.0, 1.0, 0, "doubled (its 1/2 missing)"),
    (0.5, 1.0, 0, "halved"),
    (1.0, 2.0, 1, "doubled"),
    (1.0, 0.5, 1, "halved"),
    (1.0, 0.0, 1, "dropped"),
    (0.0, 1.0, 0, "dropped"),
)


def _term_suspects(rep, obj, model, x, g0, rtol):
    """``term_scale``: the loss (and gradient, if given) equal ebm_ref's with one of its two terms scaled.

    Only for objectives :func:`_terms_of` splits; ebm_ref's own model is
    evaluated once more (the third-party code is not called again). The fit
    uses the comparison's own criterion: relative error of the loss, and of
    every gradient entry (floor ``1e-3`` of the largest), within ``rtol``.
    """
    terms_of = _terms_of(obj)
    if terms_of is None:
        return
    try:
        with np.errstate(all="ignore"):
            (n1, a, da), (n2, b, db) = terms_of(model, x)
    except (ValueError, TypeError, AttributeError, NotImplementedError):
        return  # the model does not provide the primitives: nothing to test
    for c1, c2, which, words in _TERM_SCALES:
        loss = c1 * a - c2 * b
        if not np.isfinite(g0[0]) or abs(g0[0] - loss) > rtol * max(abs(loss), 1e-12):
            continue
        if g0[1] is not None:
            grads = {k: c1 * da[k] - c2 * db[k] for k in da}
            scale = max(float(np.max(np.abs(v))) if v.size else 0.0 for v in grads.values())
            if _worst_rel(g0[1], grads, scale)[0] > rtol:
                continue
        name = (n1, n2)[which]
        rep.suspects = tuple(dict.fromkeys(tuple(rep.suspects) + ("term_scale",)))
        sentence = f"the loss{' and gradient' if g0[1] is not None else ''} equal the reference with {name} {words}"
        rep.diagnosis = _dg.join([sentence] + ([rep.diagnosis.rstrip(".")] if rep.diagnosis and "none of the usual" not in rep.diagnosis else []))
        return


def _diagnose_exact(rep, g0, e0, rtol, n, low):
    """Suspects of a deterministic objective from the loss and (if given) the gradient."""
    codes, said = [], []
    if rep.passed:
        if low and rep.value.get("error", 0.0) > 0:
            rep.suspects = ("float32",)
            rep.diagnosis = _dg.join([f"{rep.dtype} loss: judged at rtol {rtol:.3g} = 256 eps (accepted)"])
        return
    gl, el = g0[0], e0[0]
    ratio = gl / el if el != 0 else None
    grads_ok = rep.grads and rep.grads["error"] <= rep.threshold
    if g0[1] is not None and grads_ok and rep.value["error"] > rep.threshold:
        codes.append("offset")
        said.append(f"the gradient matches but the loss is off by a constant {gl - el:.9g} (an additive constant)")
    elif ratio is not None:
        grads_factor = True
        if g0[1] is not None:
            pairs = [(k, g0[1][k], ratio * e0[1][k], 1e-12, 0.0) for k in e0[1]]
            grads_factor = all(_dg.fits(p[1], p[2], rtol, max(1e-12, 1e-3 * float(np.max(np.abs(p[2])) if p[2].size else 0.0)), 0.0) for p in pairs)
        if grads_factor and g0[1] is not None:
            if abs(ratio + 1.0) <= 1e-6:
                codes.append("sign")
                said.append("loss and gradient have the sign flipped")
            else:
                codes.append("factor")
                said.append(f"loss and gradient are the reference times {ratio:.9g}")
                if any(abs(ratio - t) <= 1e-6 * abs(t) for t in (n, 1.0 / n)):
                    codes.append("weights")
                    said.append(f"the factor is n = {n} or 1/n (a missing or extra 1/n)")
        elif g0[1] is None:
            if abs(ratio + 1.0) <= 1e-9:
                codes.append("sign")
                said.append("the loss has the sign flipped")
            elif any(abs(ratio - t) <= 1e-9 * abs(t) for t in (n, 1.0 / n)):
                codes += ["factor", "weights"]
                said.append(f"the loss is the reference times {ratio:.9g} = n or 1/n (a missing or extra 1/n)")
            else:
                said.append(
                    f"the loss is the reference times {ratio:.9g}, or plus {gl - el:.9g} "
                    "(return the gradient too to tell a factor from an additive constant)"
                )
    if low:
        codes.append("float32")
        said.append(f"{rep.dtype} loss: judged at rtol {rtol:.3g} = 256 eps")
    if not said:
        said.append("none of the usual suspects (sign, constant factor, additive constant, 1/n) fits")
    rep.suspects = tuple(dict.fromkeys(codes))
    rep.diagnosis = _dg.join(said)

