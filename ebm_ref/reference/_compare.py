"""Comparing another implementation's values with a reference file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ._format import Reference, load


@dataclass
class ReferenceComparison:
    """Report of :func:`compare`.

    Attributes
    ----------
    results : dict
        Quantity -> ``(max_rel_error, where, got, expected)`` in file order.
    first_mismatch : str or None
        Name of the first quantity (in file order) past ``rtol``.
    not_compared : list of str
        Stored quantities that ``outputs`` did not provide.
    rtol : float
    """

    results: dict = field(default_factory=dict)
    first_mismatch: str | None = None
    not_compared: list = field(default_factory=list)
    rtol: float = 1e-10

    @property
    def passed(self):
        return self.first_mismatch is None

    def __str__(self):
        lines = [f"reference comparison (rtol {self.rtol:g}):"]
        for name, (err, where, got, exp) in self.results.items():
            status = "ok" if err <= self.rtol else "MISMATCH"
            text = f"  {name}: max rel error {err:.3e} {status}"
            if err > self.rtol:
                text += f" at {where}: got {got!r}, expected {exp!r}"
            lines.append(text)
        if self.not_compared:
            lines.append(f"  not compared: {', '.join(self.not_compared)}")
        lines.append("  -> " + ("all match" if self.passed else f"first mismatch: {self.first_mismatch}"))
        return "\n".join(lines)

    def assert_ok(self):
        """Raise ``AssertionError`` naming the first mismatching quantity."""
        if not self.passed:
            raise AssertionError(f"first mismatching quantity: {self.first_mismatch}\n{self}")
        return self


def _as_float_dict(value):
    if isinstance(value, Mapping):
        return {k: np.asarray(v, dtype=np.float64) for k, v in value.items()}
    return {None: np.asarray(value, dtype=np.float64)}


def compare(path, outputs, *, rtol=1e-10, atol=1e-12):
    r"""Compare another implementation's values with a reference file.

    Parameters
    ----------
    path : str, path-like or Reference
        A file written by :func:`save` (or its loaded contents).
    outputs : dict
        Quantity name -> array (``energy``, ``grad_x``, ``hessian_diag``,
        ``log_partition``) or dict of arrays (the parameter gradients),
        computed at the stored inputs.
    rtol : float, default 1e-10
    atol : float, default 1e-12
        Lower bound of the error denominator.

    Returns
    -------
    ReferenceComparison
        ``first_mismatch`` is the name of the first quantity, in the file's
        order, whose relative error exceeds ``rtol`` (or whose shape or keys
        differ, or which is non-finite); ``assert_ok()`` raises with it.

    Raises
    ------
    ValueError
        If ``outputs`` names a quantity the file does not hold.
    ReferenceFileError
        If ``path`` is not an intact reference file (see :func:`load`).
    TypeError
        If ``outputs`` is not a mapping (nor pairs a dict can be made of).

    Notes
    -----
    Per quantity, :math:`\max_j |g_j - r_j| / \max(|r_j|, 10^{-3}\max_l|r_l|,
    \mathrm{atol})`, as in :func:`ebm_ref.testing.compare_energy`.
    """
    ref = path if isinstance(path, Reference) else load(path)
    try:
        outputs = dict(outputs)
    except (TypeError, ValueError):
        raise TypeError(f"`outputs` must be a dict of quantity -> array; got {type(outputs).__name__}.") from None
    extra = [k for k in outputs if k not in ref.values]
    if extra:
        raise ValueError(
            f"`outputs` has quantities {extra} that the reference file does not hold; it holds {list(ref.values)}."
        )
    rep = ReferenceComparison(rtol=rtol)
    for q, expected in ref.values.items():
        if q not in outputs:
            rep.not_compared.append(q)
            continue
        e = _as_float_dict(expected)
        g = _as_float_dict(outputs[q])
        if set(g) != set(e):
            rep.results[q] = (np.inf, "keys", sorted(map(str, g)), sorted(map(str, e)))
        else:
            floor = max(atol, 1e-3 * max((float(np.max(np.abs(a))) if a.size else 0.0) for a in e.values()))
            worst = (0.0, None, None, None)
            for k in e:
                a, b = g[k], e[k]
                if a.shape != b.shape:
                    worst = (np.inf, (k, "shape"), a.shape, b.shape)
                    break
                if b.size == 0:
                    continue
                with np.errstate(all="ignore"):
                    rel = np.abs(a - b) / np.maximum(np.abs(b), floor)
                rel = np.where(np.isfinite(a), rel, np.inf)
                i = np.unravel_index(int(np.argmax(rel)), rel.shape) if rel.ndim else ()
                if float(rel[i]) > worst[0] or worst[1] is None:
                    where = (k, tuple(int(t) for t in i)) if k is not None else tuple(int(t) for t in i)
                    worst = (float(rel[i]), where, float(a[i]), float(b[i]))
            rep.results[q] = worst
        if rep.first_mismatch is None and not rep.results[q][0] <= rtol:
            rep.first_mismatch = q
    return rep
