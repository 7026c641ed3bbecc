"""Input validation shared by every public entry point.

Every check runs in Python before any kernel (kernels never check). Messages
follow scikit-learn's order: the argument, what was expected, what arrived.
``TypeError`` for the wrong kind of object, ``ValueError`` for a wrong value.
Nothing is clipped or broadcast into another meaning.
"""

from __future__ import annotations

import numbers
import os

import numpy as np

__all__ = [
    "as_float_array",
    "check_finite",
    "check_param",
    "check_batch",
    "check_domain",
    "check_like",
    "check_weights",
    "check_positive",
    "check_nonneg_int",
    "check_int",
    "check_abs_bound",
    "check_memory",
    "memory_limit",
    "MEMORY_LIMIT_ENV",
    "DOMAINS",
]

DOMAINS = ("binary", "spin", "real")


def as_float_array(value, name):
    """Convert ``value`` to a float64 ndarray, refusing non-numeric kinds.

    bool, integer and float32 inputs are upcast (a copy); complex, object and
    string arrays raise ``TypeError``.
    """
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"`{name}` must be a real numeric array; got {type(value).__name__}.")
    arr = np.asarray(value)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(
            f"`{name}` must be a real numeric array (bool, int or float); got dtype {arr.dtype}."
        )
    # np.asarray(order="C") keeps 0-d arrays 0-d (ascontiguousarray would not)
    return np.asarray(arr, dtype=np.float64, order="C")


def check_finite(arr, name):
    """Raise ``ValueError`` naming the first NaN/inf entry of ``arr``."""
    if arr.size and not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        where = tuple(int(i) for i in bad)
        raise ValueError(
            f"`{name}` must contain only finite values; got {arr[where]!r} at index {where}."
        )
    return arr


def check_param(value, name, shape, owner):
    """A parameter array of exactly ``shape``, finite, float64 (a fresh copy)."""
    arr = as_float_array(value, name)
    shape = tuple(shape)
    if arr.shape != shape:
        raise ValueError(f"`{name}` of {owner} must have shape {shape}; got {arr.shape}.")
    check_finite(arr, name)
    return arr.copy()


def check_batch(x, n_features, name="x", owner="the model"):
    """Validate a batch ``(n, d)`` or a single state ``(d,)``.

    Returns ``(x2d, was_1d)`` with ``x2d`` a C-contiguous float64 array of
    shape ``(n, d)``. An empty batch (n = 0) is refused.
    """
    arr = as_float_array(x, name)
    if arr.ndim == 1:
        was_1d = True
        arr2 = arr.reshape(1, -1)
    elif arr.ndim == 2:
        was_1d = False
        arr2 = arr
    else:
        raise ValueError(
            f"`{name}` must have shape (n, {n_features}) or ({n_features},) for {owner}; "
            f"got an array of shape {arr.shape}."
        )
    if arr2.shape[1] != n_features:
        raise ValueError(
            f"`{name}` must have shape (n, {n_features}) or ({n_features},) for {owner}; "
            f"got {arr.shape}."
        )
    if arr2.shape[0] == 0:
        raise ValueError(f"`{name}` must contain at least one sample; got shape {arr.shape}.")
    check_finite(arr2, name)
    return arr2, was_1d


def check_domain(x2d, domain, name="x"):
    """Refuse states outside ``{0,1}`` (binary) or ``{-1,+1}`` (spin).

    The message names the other convention when the data are in it, since
    that is the usual mistake.
    """
    if domain == "real":
        return x2d
    if domain == "binary":
        ok = (x2d == 0.0) | (x2d == 1.0)
        allowed, other = "0.0/1.0", "spin"
    elif domain == "spin":
        ok = (x2d == -1.0) | (x2d == 1.0)
        allowed, other = "-1.0/+1.0", "binary"
    else:
        raise ValueError(f"`domain` must be one of {DOMAINS}; got {domain!r}.")
    if not np.all(ok):
        where = tuple(int(i) for i in np.argwhere(~ok)[0])
        hint = ""
        if domain == "binary" and np.all((x2d == -1.0) | (x2d == 1.0)):
            hint = " (these look like -1/+1 spins: use domain='spin' or map s -> (s+1)/2)"
        elif domain == "spin" and np.all((x2d == 0.0) | (x2d == 1.0)):
            hint = " (these look like 0/1 states: use domain='binary' or map x -> 2x-1)"
        raise ValueError(
            f"`{name}` must contain only {allowed} for domain='{domain}'; "
            f"got {x2d[where]!r} at {where}{hint}. (The '{other}' domain uses the other convention.)"
        )
    return x2d


def check_like(arr, x2d, was_1d, name, ref_name="x"):
    """An array that must have the shape of ``x`` (same 1-D/2-D form)."""
    a = as_float_array(arr, name)
    expected = x2d.shape[1:] if was_1d else x2d.shape
    if a.shape != tuple(expected):
        raise ValueError(
            f"`{name}` must have the shape of `{ref_name}`, {tuple(expected)}; got {a.shape}."
        )
    check_finite(a, name)
    return a.reshape(x2d.shape)


def check_weights(weights, n, was_1d, name="weights"):
    """Per-sample weights; ``None`` gives the mean, ``1/n`` each."""
    if weights is None:
        return np.full(n, 1.0 / n)
    w = as_float_array(weights, name)
    if was_1d and w.ndim == 0:
        w = w.reshape(1)
    if w.shape != (n,):
        raise ValueError(f"`{name}` must have shape ({n},), one weight per sample; got {w.shape}.")
    check_finite(w, name)
    return w


def check_positive(value, name, allow_inf=False):
    """A real scalar > 0 (finite unless ``allow_inf``)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number; got {type(value).__name__}.")
    v = float(value)
    if np.isnan(v) or v <= 0 or (np.isinf(v) and not allow_inf):
        kind = "> 0" if allow_inf else "finite and > 0"
        raise ValueError(f"`{name}` must be {kind}; got {value!r}.")
    return v


def check_abs_bound(arr, limit, name, owner, why):
    """``ValueError`` naming the first entry of the parameter ``arr`` with
    ``|a| > limit`` (a log-parameter whose exponential must stay finite)."""
    if np.any(np.abs(arr) > limit):
        k = int(np.argmax(np.abs(arr)))
        raise ValueError(
            f"`{name}` of {owner} must lie in [-{limit:g}, {limit:g}] so that {why}; got {arr[k]!r} at index {k}."
        )


def check_int(value, name, minimum=None):
    """An integer (Python or NumPy, not bool) >= ``minimum``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an int; got {type(value).__name__} {value!r}.")
    v = int(value)
    if minimum is not None and v < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}; got {v}.")
    return v


def check_nonneg_int(value, name):
    """An integer >= 0 (``n_steps``, ``thin``)."""
    return check_int(value, name, minimum=0)


#: Environment variable that overrides :func:`memory_limit` (bytes).
MEMORY_LIMIT_ENV = "EBM_REF_MEMORY_LIMIT"


def memory_limit():
    """Largest allocation (bytes) an entry point accepts before it starts.

    ``$EBM_REF_MEMORY_LIMIT`` (an integer number of bytes) when set;
    otherwise half of the machine's physical memory (``os.sysconf``), or
    8 GiB where the platform does not report it.
    """
    env = os.environ.get(MEMORY_LIMIT_ENV)
    if env is not None:
        try:
            value = int(env)
        except ValueError:
            raise ValueError(f"${MEMORY_LIMIT_ENV} must be an integer number of bytes; got {env!r}.") from None
        if value <= 0:
            raise ValueError(f"${MEMORY_LIMIT_ENV} must be > 0; got {value}.")
        return value
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (AttributeError, ValueError, OSError):
        return 8 << 30


def check_memory(nbytes, what, hint):
    """``ValueError`` when ``nbytes`` (an estimate) exceeds :func:`memory_limit`.

    Called before anything is allocated; the message gives the estimate, the
    limit and ``hint`` (how to reduce the request).
    """
    limit = memory_limit()
    if nbytes > limit:
        raise ValueError(
            f"{what} would need about {nbytes / 2**30:.3g} GiB, above the limit of {limit / 2**30:.3g} GiB "
            f"(half the physical memory, or ${MEMORY_LIMIT_ENV}); {hint}."
        )

