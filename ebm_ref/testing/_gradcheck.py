r"""Finite-difference checks of derivatives (JAX ``check_grads`` / autograd style).

Central differences with a per-entry step ``h_i = eps * max(1, |x_i|)``:
``eps = 6e-6`` ~ eps_mach^(1/3) for float64 results, the step with the
smallest total error for a smooth function (docs/checking.md); for results
in a coarser floating type ``t`` the default step is ``eps_t^(1/3)`` and the
tolerance is raised to ``max(rtol, 64 eps_t^(2/3))`` (truncation and
rounding of the difference quotient both scale as ``eps_t^(2/3)`` at that
step). The step actually used is the representable one, ``(x_i + h_i) - x_i``.

Relative error of one entry
    ``|analytic - numeric| / max(|analytic|, |numeric|, floor)`` with
    ``floor = max(1e-3 * max(1, max_j |analytic_j|), noise / rtol)``: with
    ``rtol = 1e-6`` the first term is an absolute tolerance of
    ``1e-9 * max(1, ||g||_inf)`` for entries far below the gradient's own
    scale (e.g. structural or accidental zeros). The second is the
    resolution of the difference itself, ``noise = 10 eps_t |f(x)| / h``
    (rounding of ``f`` at a large value): a difference quotient cannot
    resolve an entry more finely than that, whatever the code under test.

Retried steps
    An entry (or direction) that fails at step ``h`` is retried at ``h/2``
    and ``h/4`` and keeps its smallest error: a wrong derivative is wrong at
    every step, while a loss that draws samples from the parameters (CD
    with the seed fixed) can jump at one step when a sample flips, with a
    chance that shrinks with the step. When the error persists at all three
    steps but ``numeric - analytic`` changes with the step by more than 25%
    of its size, ``f`` has a jump there (a wrong slope gives the same misfit
    at every step):
    the entry is listed in ``details["discontinuous"]`` and the diagnosis,
    and not judged; more such entries than checked ones fail the check.

A non-finite or complex value of ``f`` (at ``x`` or at any perturbed point)
or of ``grad_f``, or a gradient of the wrong structure, fails the check and
names where it occurred.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from . import _diagnose as _dg

__all__ = ["GradCheckResult", "check_grad"]

#: tolerance constant of the coarse-dtype finite-difference model (module docstring)
FD_C = 64.0

#: an entry that fails at step h is retried at h/2 and h/4 (module docstring)
RETRY_STEPS = (1.0, 2.0, 4.0)


@dataclass
class GradCheckResult(_dg.Report):
    """Outcome of :func:`check_grad`.

    Attributes
    ----------
    max_rel_error : float
        Worst relative error over the checked entries/directions (``inf``
        for a non-finite, complex or mis-shaped result).
    where : tuple
        ``(key, index)`` of the worst entry (``key`` is ``None`` for a plain
        array), or ``("direction", k)`` for a random direction; Python ints.
    analytic, numeric : float
        The two values at ``where``.
    n_checked : int
        Entries plus directions checked.
    rtol : float
        Tolerance that ``passed`` uses (raised for coarse dtypes, see
        ``dtype``).
    name : str
        What was checked (used in messages).
    dtype : str
        Floating dtype of the values of ``f`` (the lower precision of ``f``
        and ``grad_f``).
    suspects : tuple of str
        Codes of the explanations that fit (docs/checking.md).
    diagnosis : str or None
    note : str
        Why the check could not be made (non-finite, complex, shape).
    """

    max_rel_error: float
    where: tuple
    analytic: float
    numeric: float
    n_checked: int
    rtol: float
    name: str = "grad"
    details: dict = field(default_factory=dict, repr=False)
    dtype: str = "float64"
    suspects: tuple = ()
    diagnosis: str | None = None
    note: str = ""

    @property
    def passed(self):
        return bool(self.n_checked > 0 and self.max_rel_error <= self.rtol and not self.note)

    def __str__(self):
        status = "ok" if self.passed else "FAILED"
        if self.note:
            text = f"{self.name} [{self.dtype}]: {status}: {self.note} (at {self.where})"
        else:
            text = (
                f"{self.name} [{self.dtype}]: max relative error {self.max_rel_error:.3e} at {self.where} "
                f"(analytic {self.analytic:.17g}, numeric {self.numeric:.17g}; "
                f"{self.n_checked} checks, rtol {self.rtol:g}) {status}"
            )
        if self.diagnosis:
            text += f"\n    diagnosis: {self.diagnosis}"
        return text



def _flatten(x, name="x"):
    if isinstance(x, Mapping):
        keys = list(x)
        if not keys:
            raise ValueError(f"`{name}` must contain at least one array; got an empty dict.")
        arrs = [_dg.check_input_array(x[k], f"{name}[{k!r}]", allow_empty=True) for k in keys]
        if sum(a.size for a in arrs) == 0:
            raise ValueError(f"`{name}` must contain at least one entry; every array of the dict is empty.")
        return keys, arrs
    return [None], [_dg.check_input_array(x, name)]


def _rebuild(keys, arrs):
    if keys == [None]:
        return arrs[0]
    return dict(zip(keys, arrs))


def _rel(a, n, floor):
    if not (np.isfinite(a) and np.isfinite(n)):
        return np.inf
    return abs(a - n) / max(abs(a), abs(n), floor)


def _failure(name, code, message, where, rtol, dtype, n_checked=0):
    diag = {
        "nonfinite": "a non-finite value",
        "complex": "a complex value: compare real results only",
        "shape": "a result of the wrong structure",
    }[code]
    return GradCheckResult(
        np.inf, _dg.plain(where), float("nan"), float("nan"), n_checked, rtol, name,
        dtype=dtype, suspects=(code,), diagnosis=_dg.join([f"{message}: {diag}"]), note=message,
    )


def _grad_suspects(rows, rtol, floor, n_samples):
    """Suspects from (label, index, analytic, numeric, floor) rows of the checked entries."""
    by_key = {}
    for lab, idx, a, n, fl in rows:
        by_key.setdefault(lab, []).append((idx, a, n, fl))
    pairs = [
        (lab, np.array([t[1] for t in v]), np.array([t[2] for t in v]), np.array([t[3] for t in v]), 0.0)
        for lab, v in by_key.items()
    ]
    f_of = lambda p: p[3]  # noqa: E731
    a_of = lambda p: p[4]  # noqa: E731
    codes, said = _dg.factor_suspects(pairs, rtol, f_of, a_of)
    if n_samples and "factor" in codes:
        g = np.concatenate([p[1] for p in pairs])
        r = np.concatenate([p[2] for p in pairs])
        factors = [_dg.fit_factor(g, r)] + [_dg.fit_factor(p[1], p[2]) for p in pairs]
        tol = max(1e-6, rtol)
        if any(c is not None and abs(c - t) <= tol * abs(t) for c in factors for t in (n_samples, 1.0 / n_samples)):
            codes.append("weights")
            said.append(f"the factor is the number of samples n = {n_samples} or 1/n (a missing or extra 1/n)")
    if not codes:
        c, s = _dg.offset_suspects(pairs, rtol, f_of, a_of)
        codes += c
        said += s
    if not codes:
        # a square block checked entry by entry: analytic equal to numeric transposed
        for lab, v in by_key.items():
            idxs = [t[0] for t in v]
            if not idxs or len(idxs[0]) != 2:
                continue
            size = max(max(i) for i in idxs) + 1
            if len(idxs) != size * size:
                continue
            A = np.zeros((size, size))
            N = np.zeros((size, size))
            for (i, j), a, n, _ in v:
                A[i, j], N[i, j] = a, n
            if not np.allclose(N, N.T, rtol=max(1e-6, rtol), atol=0.0) and _dg.fits(A, N.T, rtol, floor, 0.0):
                codes.append("transpose")
                said.append(f"the analytic gradient of {lab} is the transpose of the numerical one")
                break
    return codes, said


def _is_jump(misfits):
    """``numeric - analytic`` changing with the step: a jump of ``f``, not a wrong slope.

    ``misfits`` are ``numeric - analytic`` at the steps ``h, h/2, h/4``. A
    wrong derivative gives the same misfit at every step (up to truncation
    and rounding, far below the misfit once the entry fails); a jump ``J``
    of ``f`` inside the interval gives ``J / 2h``, which doubles as the step
    halves (or vanishes when the jump leaves the interval).
    """
    if len(misfits) < len(RETRY_STEPS):
        return False
    d = np.asarray(misfits)
    if not np.all(np.isfinite(d)):
        return False
    return bool(np.ptp(d) > 0.25 * np.max(np.abs(d)))


def check_grad(
    f,
    grad_f,
    x,
    *,
    eps=None,
    rtol=1e-6,
    n_directions=5,
    max_entries=200,
    seed=0,
    zero_mask=None,
    name="grad",
    _n_samples=None,
):
    r"""Compare ``grad_f(x)`` with central differences of the scalar ``f``.

    Parameters
    ----------
    f : callable
        ``f(x) -> float`` (a scalar; reduce vector outputs yourself, e.g. a
        weighted sum). NumPy, torch or JAX scalars are accepted; their dtype
        sets the step and the tolerance.
    grad_f : callable
        ``grad_f(x)`` with the structure of ``x``.
    x : ndarray or dict of ndarrays
        Point of evaluation (real, finite, non-empty); a dict is treated
        like a pytree (every array entry an independent variable).
    eps : float, optional
        Relative step: ``h_i = eps * max(1, |x_i|)``. Default ``6e-6``
        for float64 values of ``f``, ``eps_t^(1/3)`` for a coarser type.
    rtol : float, default 1e-6
        Tolerance on the relative error (module docstring); raised to
        ``64 eps_t^(2/3)`` for values of a coarser type ``t``.
    n_directions : int, default 5
        Random unit directions checked in addition to single entries (>= 0).
    max_entries : int, default 200
        If ``x`` has at most this many entries every entry is checked, else
        that many entries drawn at random (plus the directions); >= 1.
    seed : int, default 0
        Seeds the choice of entries and directions (deterministic).
    zero_mask : dict or ndarray of bool, optional
        Structural zeros: entries that are not variables. The analytic
        derivative there must be exactly 0; no difference is taken.
    name : str
        Label for the report.

    Returns
    -------
    GradCheckResult
        Worst relative error, where it occurred, the two values there,
        the dtype of ``f``, ``suspects`` and ``diagnosis``.

    Raises
    ------
    ValueError, TypeError
        For an invalid ``x`` (NaN/inf, empty, non-numeric) or option.
    """
    if not callable(f):
        raise TypeError(f"`f` must be callable; got {type(f).__name__}.")
    if not callable(grad_f):
        raise TypeError(f"`grad_f` must be callable; got {type(grad_f).__name__}.")
    rtol_user = _dg.check_tol(rtol, "rtol")
    if eps is not None:
        eps = _dg.check_tol(eps, "eps")
    n_directions = _dg.check_count(n_directions, "n_directions", 0)
    max_entries = _dg.check_count(max_entries, "max_entries", 1)
    rng = np.random.default_rng(seed)
    keys, arrs = _flatten(x)

    # f at x first: its dtype sets the step and the tolerance
    with np.errstate(all="ignore"):
        raw0 = f(_rebuild(keys, [a.copy() for a in arrs]))
    dtype = _dg.dtype_name(raw0)
    try:
        f0 = abs(_dg.read_scalar(raw0, "f(x)"))
    except _dg.BadResult as bad:
        return _failure(name, bad.code, bad.message, ("f", "x"), rtol_user, dtype)
    with np.errstate(all="ignore"):
        raw_g = grad_f(_rebuild(keys, [a.copy() for a in arrs]))
    dtype = _dg.lower_precision(dtype, _dg.dtype_name(raw_g))
    try:
        if keys == [None]:
            g_arrs = [_dg.read_array(raw_g, "grad_f(x)", shape=arrs[0].shape)]
        else:
            gd = _dg.read_dict(raw_g, "grad_f(x)", dict(zip(keys, arrs)))
            g_arrs = [gd[k] for k in keys]
    except _dg.BadResult as bad:
        return _failure(name, bad.code, bad.message, ("grad_f", "x"), rtol_user, dtype)
    low = _dg.is_low_precision(dtype)
    eps_t = _dg.unit(dtype)
    if eps is None:
        eps = eps_t ** (1.0 / 3.0) if low else 6e-6
    rtol = max(rtol_user, FD_C * eps_t ** (2.0 / 3.0)) if low else rtol_user

    if zero_mask is None:
        masks = [np.zeros(a.shape, dtype=bool) for a in arrs]
    elif isinstance(zero_mask, Mapping):
        masks = [np.asarray(zero_mask.get(k, np.zeros(a.shape, bool)), bool) for k, a in zip(keys, arrs)]
    else:
        masks = [np.asarray(zero_mask, dtype=bool)]

    gmax = max([float(np.max(np.abs(g))) if g.size else 0.0 for g in g_arrs] + [0.0])
    floor = 1e-3 * max(1.0, gmax)

    def f_at(block, index, delta):
        perturbed = [a.copy() for a in arrs]
        perturbed[block][index] += delta
        with np.errstate(all="ignore"):
            raw = f(_rebuild(keys, perturbed))
        side = "+" if delta > 0 else "-"
        return _dg.read_scalar(raw, f"f at x {side} h e_{_dg.plain((keys[block], tuple(index)))}")

    worst = (0.0, None, 0.0, 0.0)
    n_checked = 0
    # structural zeros
    for b, (k, g, m) in enumerate(zip(keys, g_arrs, masks)):
        for idx in map(tuple, np.argwhere(m)):
            n_checked += 1
            if g[idx] != 0.0:
                where = _dg.plain((k, tuple(idx)))
                return GradCheckResult(
                    np.inf, where, float(g[idx]), 0.0, n_checked, rtol, name, dtype=dtype,
                    diagnosis=_dg.join([f"the derivative at the structural zero {where} must be exactly 0"]),
                )

    entries = [(b, tuple(int(t) for t in idx)) for b, m in enumerate(masks) for idx in np.argwhere(~m)]
    if not entries:
        raise ValueError("`x` has no free entry to check (every entry is a structural zero).")
    if len(entries) > max_entries:
        pick = rng.choice(len(entries), size=max_entries, replace=False)
        entries = [entries[i] for i in np.sort(pick)]
    rows = []
    skipped = []
    for b, idx in entries:
        x0 = arrs[b][idx]
        best = None
        jumps = []
        for div in RETRY_STEPS:
            h = eps * max(1.0, abs(x0)) / div
            hp = (x0 + h) - x0
            hm = x0 - (x0 - h)
            try:
                num = (f_at(b, idx, hp) - f_at(b, idx, -hm)) / (hp + hm)
            except _dg.BadResult as bad:
                return _failure(name, bad.code, bad.message, (keys[b], idx), rtol, dtype, n_checked)
            ana = float(g_arrs[b][idx])
            noise = 10.0 * eps_t * f0 / (0.5 * (hp + hm))
            entry_floor = max(floor, noise / rtol)
            err = _rel(ana, num, entry_floor)
            jumps.append(num - ana)
            if best is None or err < best[0]:
                best = (err, num, entry_floor)
            if err <= rtol:
                break
        err, num, entry_floor = best
        if err > rtol and _is_jump(jumps):
            skipped.append(_dg.plain((keys[b], idx)))
            continue
        n_checked += 1
        rows.append((f"{name}" if keys[b] is None else f"{name}[{keys[b]!r}]", idx, ana, num, entry_floor))
        if err > worst[0] or worst[1] is None:
            worst = (err, (keys[b], idx), ana, num)

    # random directions (zero on structural zeros)
    for k_dir in range(n_directions):
        dirs = [rng.standard_normal(a.shape) * (~m) for a, m in zip(arrs, masks)]
        norm = np.sqrt(sum(float(np.sum(d * d)) for d in dirs))
        if norm == 0.0:
            break
        dirs = [d / norm for d in dirs]
        # unit direction: each entry moves by eps * |d_i| << eps * max(1, |x_i|)
        def f_dir(t, k_dir=k_dir):
            with np.errstate(all="ignore"):
                raw = f(_rebuild(keys, [a + t * d for a, d in zip(arrs, dirs)]))
            return _dg.read_scalar(raw, f"f along direction {k_dir}")

        with np.errstate(over="ignore", invalid="ignore"):  # a 1e308 gradient overflows to inf: a failure, not a warning
            ana = float(sum(np.sum(g * d) for g, d in zip(g_arrs, dirs)))
            gnorm = np.sqrt(sum(float(np.sum(g * g)) for g in g_arrs))
        best = None
        jumps = []
        for div in RETRY_STEPS:
            h = eps / div
            try:
                num = (f_dir(h) - f_dir(-h)) / (2 * h)
            except _dg.BadResult as bad:
                return _failure(name, bad.code, bad.message, ("direction", k_dir), rtol, dtype, n_checked)
            noise = 10.0 * eps_t * f0 / h
            err = _rel(ana, num, max(1e-3 * max(1.0, gnorm), noise / rtol))
            jumps.append(num - ana)
            if best is None or err < best[0]:
                best = (err, num)
            if err <= rtol:
                break
        err, num = best[:2]
        if err > rtol and _is_jump(jumps):
            skipped.append(("direction", k_dir))
            continue
        n_checked += 1
        if err > worst[0] or worst[1] is None:
            worst = (err, ("direction", k_dir), ana, num)
    if worst[1] is None:
        worst = (0.0, (), 0.0, 0.0)
    res = GradCheckResult(float(worst[0]), _dg.plain(worst[1]), worst[2], worst[3], n_checked, rtol, name, dtype=dtype)
    res.details["discontinuous"] = skipped
    codes, said = [], []
    if skipped and len(skipped) > n_checked:
        res.note = (
            f"f jumps (a step discontinuity) at {len(skipped)} of {len(skipped) + n_checked} entries/directions: "
            "too many to check the gradient"
        )
        res.max_rel_error = np.inf
    elif skipped:
        said.append(
            f"f has a step discontinuity at {len(skipped)} entries/directions (the error scales as 1/h: "
            f"a sampled state flips), not checked there: {skipped[:5]}"
        )
    if res.max_rel_error > rtol:
        codes, said = _grad_suspects(rows, rtol, floor, _n_samples)
        if not codes:
            said.append("none of the usual suspects (sign, constant factor, additive constant, transpose) fits")
    if low and res.max_rel_error > rtol_user:
        codes.append("float32")
        said.append(
            f"{dtype} values of f: step eps = {eps:.3g}, tolerance raised to max(rtol, {FD_C:g} eps^(2/3)) = {rtol:.3g}"
            + (" (accepted)" if res.max_rel_error <= rtol else "")
        )
    res.suspects = tuple(dict.fromkeys(codes))
    res.diagnosis = _dg.join(said)
    return res
