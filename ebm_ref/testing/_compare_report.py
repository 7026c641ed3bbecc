r"""The reports of :func:`compare_energy`: one per primitive, one for the whole comparison.

``PRIMITIVES`` names the six quantities in the order every report, adapter
and reference file lists them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..energies import EnergyModel
from . import _diagnose as _dg

__all__ = ["QuantityComparison", "EnergyComparison"]

PRIMITIVES = EnergyModel.PRIMITIVES


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
class EnergyComparison(_dg.Report):
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

