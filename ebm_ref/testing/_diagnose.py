r"""What the checks share: reading third-party results, the tolerance model
of each floating dtype, option validation and the "usual suspects".

Reading results (fail closed)
    A third-party result is converted to float64 only after its dtype has
    been recorded; a complex, non-numeric or missing result is a failure
    (never a cast with a warning), and so is a NaN/inf anywhere.

Tolerance model (docs/checking.md)
    A result computed in a floating type of machine epsilon ``eps_t``
    carries rounding errors of order ``eps_t`` times the size of the terms
    it was built from. Every check adds to its float64 tolerance the
    allowance ``C * eps_t * S`` with ``S`` the scale of the quantity (its
    largest reference entry in the batch, per key) and ``C = 256``:
    a few dozen roundings of terms up to ``S`` (inputs and parameters are
    rounded to ``t`` too) plus a margin for the sums. For float64 results
    the allowance is not added (their rounding is far below ``rtol``).

Suspects
    :data:`SUSPECTS` are the short codes every report carries in
    ``suspects``; :func:`fit_suspects` tests the numerical ones on the
    actual numbers.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

import numpy as np

from .._numerics import torch_softplus_rule

SUSPECTS = (
    "transpose",
    "factor",
    "offset",
    "sign",
    "weights",
    "saturation",
    "softplus_threshold",
    "float32",
    "nonfinite",
    "complex",
    "shape",
    "no_mixing",
    "biased",
    "domain",
    "param_sign",
    "param_dropped",
    "param_scale",
    "term_scale",
)

#: machine epsilon of the floating types a framework may return
EPS = {
    "float64": float(np.finfo(np.float64).eps),
    "float32": float(np.finfo(np.float32).eps),
    "float16": float(np.finfo(np.float16).eps),
    "bfloat16": 2.0**-7,
}

#: rounding constant C of the tolerance model (module docstring)
ROUNDING_C = 256.0

#: torch.nn.functional.softplus default: the identity above this pre-activation
SOFTPLUS_THRESHOLD = 20.0


# ------------------------------------------------------------------ options
def check_tol(value, name, allow_zero=False):
    """A finite real tolerance/step ``> 0`` (``>= 0`` with ``allow_zero``)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number; got {type(value).__name__}.")
    v = float(value)
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        kind = "finite and >= 0" if allow_zero else "finite and > 0"
        raise ValueError(f"`{name}` must be {kind}; got {value!r}.")
    return v


def check_count(value, name, minimum):
    """An int (not bool) ``>= minimum``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an int; got {type(value).__name__} {value!r}.")
    v = int(value)
    if v < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}; got {v}.")
    return v


def check_alpha(value, name="alpha"):
    """A false-failure rate in the open interval (0, 1)."""
    v = check_tol(value, name)
    if not v < 1.0:
        raise ValueError(f"`{name}` must be in (0, 1); got {value!r}.")
    return v


def check_input_array(value, name, allow_empty=False):
    """A user-supplied input (``x``, a point of evaluation): real, finite, non-empty, float64 copy.

    ``allow_empty=True`` accepts an array with no entries: one entry of a
    dict of parameters may be empty (a rank-0 factor of shape ``(m, 0)``)
    as long as the dict as a whole is not.
    """
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"`{name}` must be a real numeric array; got {type(value).__name__}.")
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"`{name}` must be a real numeric array (bool, int or float); got dtype {arr.dtype}.")
    arr = np.array(arr, dtype=np.float64)
    if arr.size == 0 and not allow_empty:
        raise ValueError(f"`{name}` must contain at least one entry; got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise ValueError(f"`{name}` must contain only finite values; got {arr[where]!r} at index {where}.")
    return arr


# ----------------------------------------------------------- reading results
def lower_precision(current, new):
    """The lower-precision (or non-real) of two dtype names (``EPS`` keys are the real ones)."""
    if new == current:
        return current
    if new not in EPS:
        return new if current in EPS else current
    if current not in EPS:
        return current
    return new if EPS[new] > EPS[current] else current


def dtype_name(value):
    """Floating dtype of a third-party result (the lowest precision over a dict)."""
    if isinstance(value, Mapping):
        names = [dtype_name(v) for v in value.values()]
        return max(names, key=lambda n: EPS.get(n, 0.0)) if names else "float64"
    if isinstance(value, (tuple, list)) and not value:
        return "float64"
    dt = getattr(value, "dtype", None)
    if dt is None:
        if isinstance(value, complex):
            return "complex128"
        if isinstance(value, (numbers.Real, bool)):
            return "float64"
        try:
            dt = np.asarray(value).dtype
        except Exception:  # noqa: BLE001 - whatever it is, it is not an array
            return type(value).__name__
    name = str(dt).replace("torch.", "")
    if name in ("float", "double"):
        name = {"float": "float32", "double": "float64"}[name]
    if name in ("half",):
        name = "float16"
    return name


def unit(name):
    """Machine epsilon of a dtype name (float64's for integers and unknown real types)."""
    return EPS.get(name, EPS["float64"])


def is_low_precision(name):
    return name in EPS and EPS[name] > EPS["float64"]


def _to_numpy(value):
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
        v = value.detach().cpu()
        if str(v.dtype) == "torch.bfloat16":
            v = v.float()
        return v.numpy()
    return np.asarray(value)


class Report:
    """What every report of the kit shares: ``assert_ok`` for pytest (one definition)."""

    def assert_ok(self):
        """Raise ``AssertionError`` carrying the whole report if the check failed; else return the report."""
        if not self.passed:
            raise AssertionError(str(self))
        return self


class BadResult(Exception):
    """A third-party result that cannot be compared: ``code`` (a suspect) and ``message``."""

    def __init__(self, code, message, index=None, value=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.index = index
        self.value = value
        self.key = None


def read_array(value, what, shape=None):
    """``value`` as a float64 array, or :class:`BadResult` (complex, non-numeric, shape, non-finite)."""
    if value is None:
        raise BadResult("shape", f"{what} is None")
    try:
        arr = _to_numpy(value)
    except Exception as exc:  # noqa: BLE001
        raise BadResult("shape", f"{what} is not an array ({type(value).__name__}: {exc})") from None
    if arr.dtype.kind == "c":
        raise BadResult("complex", f"{what} has complex dtype {arr.dtype}")
    if arr.dtype.kind not in "biuf":
        try:  # ml_dtypes (JAX bfloat16) report kind 'V'; strings and objects never pass
            if arr.dtype.kind != "V":
                raise TypeError
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise BadResult("shape", f"{what} is not a real numeric array (dtype {arr.dtype})") from None
    arr = np.array(arr, dtype=np.float64)
    if shape is not None and arr.shape != tuple(shape):
        raise BadResult("shape", f"{what} has shape {arr.shape}, expected {tuple(shape)}")
    if not np.all(np.isfinite(arr)):
        i = tuple(int(t) for t in np.argwhere(~np.isfinite(arr))[0])
        raise BadResult("nonfinite", f"{what} is {float(arr[i])!r} at index {i}", index=i, value=float(arr[i]))
    return arr


def read_scalar(value, what):
    """A scalar result (a loss): 0-d or a single entry; :class:`BadResult` otherwise."""
    arr = read_array(value, what)
    if arr.size != 1:
        raise BadResult("shape", f"{what} has shape {arr.shape}, expected a scalar")
    return float(arr.reshape(()))


def read_dict(value, what, expected):
    """A dict result with the keys and shapes of ``expected`` (key/shape errors reported first)."""
    if not isinstance(value, Mapping):
        raise BadResult("shape", f"{what} is a {type(value).__name__}, expected a dict with keys {list(expected)}")
    if set(value) != set(expected):
        raise BadResult(
            "shape", f"{what} has keys {sorted(map(str, value))}, expected {sorted(map(str, expected))}"
        )
    arrs = {}
    for k in expected:  # shapes and dtypes of every key before any value
        try:
            arr = _to_numpy(value[k])
        except Exception:  # noqa: BLE001
            raise BadResult("shape", f"{what}[{k!r}] is not an array") from None
        if tuple(arr.shape) != tuple(np.shape(expected[k])):
            raise BadResult("shape", f"{what}[{k!r}] has shape {tuple(arr.shape)}, expected {tuple(np.shape(expected[k]))}")
        arrs[k] = value[k]
    out = {}
    for k in expected:
        try:
            out[k] = read_array(arrs[k], f"{what}[{k!r}]")
        except BadResult as bad:
            bad.key = k
            raise
    return out


def plain(obj):
    """Python numbers in place of NumPy scalars, recursively (for readable reports)."""
    if isinstance(obj, dict):
        return {plain(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, tuple):
        return tuple(plain(v) for v in obj)
    if isinstance(obj, list):
        return [plain(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


# ------------------------------------------------------------------ suspects
def scores(got, ref, rtol, floor, allowance):
    """Per-entry error in units of the tolerance: ``|g - r| / (rtol max(|r|, floor) + allowance)``."""
    with np.errstate(all="ignore"):
        s = np.abs(got - ref) / (rtol * np.maximum(np.abs(ref), floor) + allowance)
    return np.where(np.isfinite(got), s, np.inf)


def fit_factor(got, ref):
    """Least-squares ``c`` of ``got ~ c * ref`` (``None`` when ``ref`` is zero)."""
    with np.errstate(over="ignore", invalid="ignore"):  # entries near 1e308 overflow: no factor
        rr = float(np.sum(ref * ref))
        if rr == 0.0 or not np.isfinite(rr) or not np.all(np.isfinite(got)):
            return None
        c = float(np.sum(got * ref)) / rr
    return c if np.isfinite(c) else None


def fits(got, ref, rtol, floor, allowance):
    return bool(got.shape == ref.shape and (got.size == 0 or np.max(scores(got, ref, rtol, floor, allowance)) <= 1.0))


def factor_suspects(pairs, rtol, floor_of, allowance_of):
    """Constant factor / sign, pooled over ``pairs`` [(label, got, ref)], else per label.

    Returns ``(codes, sentences)``.
    """
    codes, said = [], []

    def test(group, label):
        g = np.concatenate([p[1].ravel() for p in group])
        r = np.concatenate([p[2].ravel() for p in group])
        c = fit_factor(g, r)
        if c is None or c == 1.0:
            return False
        if all(fits(p[1], -p[2], rtol, floor_of(p), allowance_of(p)) for p in group):
            c = -1.0  # the sign, within the tolerance of the comparison
        ok = all(fits(p[1], c * p[2], rtol, floor_of(p) * abs(c), allowance_of(p) * abs(c)) for p in group)
        if not ok:
            return False
        if c == -1.0 or abs(c + 1.0) <= max(1e-6, rtol):
            codes.append("sign")
            said.append(f"{label} has the sign flipped (it equals -1 times the reference)")
        else:
            codes.append("factor")
            said.append(f"{label} is the reference times a constant factor {c:.6g}")
        return True

    if pairs and test(pairs, "the result"):
        return codes, said
    labels = []
    for p in pairs:
        if p[0] not in labels:
            labels.append(p[0])
    if len(labels) > 1:
        for lab in labels:
            group = [p for p in pairs if p[0] == lab]
            if all(fits(p[1], p[2], rtol, floor_of(p), allowance_of(p)) for p in group):
                continue
            test(group, lab)
    return codes, said


def offset_suspects(pairs, rtol, floor_of, allowance_of, per_group=True):
    """Additive constant: ``got - ref`` constant over each pair (one value, or one per batch)."""
    if not pairs:
        return [], []
    offs = []
    for p in pairs:
        with np.errstate(over="ignore", invalid="ignore"):  # near-1e308 values: no finite offset
            d = p[1] - p[2]
            c = float(np.mean(d)) if d.size else 0.0
        if d.size < 2 and not per_group:
            return [], []
        if c == 0.0 or not np.isfinite(c) or not fits(p[1], p[2] + c, rtol, floor_of(p), allowance_of(p) + 0.0):
            return [], []
        offs.append(c)
    if len(pairs) == 1 and pairs[0][1].size < 2:
        return [], []
    spread = max(offs) - min(offs)
    if spread <= 1e-9 * max(1.0, max(abs(o) for o in offs)):
        return ["offset"], [f"the result is the reference plus a constant {offs[0]:.9g}"]
    return ["offset"], [
        "the result is the reference plus an additive constant that depends on the parameters "
        f"(from {min(offs):.6g} to {max(offs):.6g}; e.g. a normaliser)"
    ]


def transpose_suspects(pairs, rtol, floor_of, allowance_of):
    """Square outputs equal to the reference transposed."""
    codes, said = [], []
    for p in pairs:
        g, r = p[1], p[2]
        if r.ndim == 2 and r.shape[0] == r.shape[1] and not np.allclose(r, r.T, rtol=1e-12, atol=0.0):
            if fits(g, r.T, rtol, floor_of(p), allowance_of(p)):
                codes.append("transpose")
                said.append(f"{p[0]} is the transpose of the reference")
                break
    return codes, said


# -------------------------------------------------- linearised softplus (torch)
def linearised_softplus(threshold=SOFTPLUS_THRESHOLD):
    """Context: evaluate the library's softplus-based formulas as ``torch.nn.functional.softplus`` does.

    Above ``threshold`` torch returns the pre-activation itself, so its
    derivative is exactly 1 and every higher derivative exactly 0. Per
    thread: other threads keep the exact formulas. Whether it changes a
    model's values is found by evaluating both ways (no list of models).
    """
    return torch_softplus_rule(threshold)


def join(sentences):
    if not sentences:
        return None
    text = "; ".join(sentences)
    return text if text.endswith(".") else text + "."
