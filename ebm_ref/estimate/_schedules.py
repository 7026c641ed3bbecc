r"""Annealing schedules of AIS: :func:`betas` and the check of a user's schedule."""

from __future__ import annotations

import numbers

import numpy as np

from .._validation import as_float_array, check_int, check_memory

_KINDS = ("linear", "sigmoid", "three_piece")
# Salakhutdinov & Murray (2008): 500, 4000 and 10000 inverse temperatures in
# [0, 0.5), [0.5, 0.9) and [0.9, 1].
_THREE_PIECE = ((0.0, 0.5, 500), (0.5, 0.9, 4000), (0.9, 1.0, 10000))


def betas(n, kind="linear", delta=4.0):
    r"""Annealing schedules: ``n`` inverse temperatures from 0 to 1 inclusive.

    Parameters
    ----------
    n : int
        Number of inverse temperatures, both endpoints included (``n >= 2``;
        ``n >= 4`` for ``"three_piece"``). AIS then makes ``n - 1`` weight
        updates and ``n - 2`` transitions.
    kind : {"linear", "sigmoid", "three_piece"}
        ``"linear"``: evenly spaced. ``"sigmoid"``: Grosse et al. style, the
        logistic function of ``linspace(-delta, delta, n)`` rescaled so that
        the ends are exactly 0 and 1 (dense near both ends).
        ``"three_piece"``: Salakhutdinov & Murray's schedule, evenly spaced
        on [0, 0.5), [0.5, 0.9) and [0.9, 1] with the counts 500 : 4000 :
        10000 scaled to ``n`` (each piece gets at least one point).
    delta : float
        Half-width of the sigmoid's argument range (``kind="sigmoid"``);
        finite and > 0.

    Returns
    -------
    ndarray of shape (n,)
        Strictly increasing, ``[0] == 0.0`` and ``[-1] == 1.0`` exactly.

    Raises
    ------
    TypeError
        If ``n`` is not an int.
    ValueError
        For ``n`` too small, an unknown ``kind``, a bad ``delta``, or a
        schedule larger than the memory limit (docs/exact.md).

    Notes
    -----
    The sigmoid schedule is

    .. math::

        \tilde\beta_k = \sigma\!\left(\delta\left(\frac{2k}{n-1} - 1\right)\right),
        \qquad \beta_k = \frac{\tilde\beta_k - \tilde\beta_0}
                              {\tilde\beta_{n-1} - \tilde\beta_0}.

    References
    ----------
    Grosse, R. B., Maddison, C. J. & Salakhutdinov, R. (2013). Annealing
    between distributions by averaging moments. NIPS.
    Salakhutdinov, R. & Murray, I. (2008). On the quantitative analysis of
    deep belief networks. ICML.

    Examples
    --------
    >>> betas(5)
    array([0.  , 0.25, 0.5 , 0.75, 1.  ])
    """
    if kind not in _KINDS:
        raise ValueError(f"`kind` must be one of {_KINDS}; got {kind!r}.")
    n = check_int(n, "n", minimum=4 if kind == "three_piece" else 2)
    # the schedule and, for "sigmoid", two temporaries of the same length
    check_memory(24 * n, f"betas(n={n})", "use fewer inverse temperatures")
    if kind == "linear":
        out = np.linspace(0.0, 1.0, n)
    elif kind == "sigmoid":
        if isinstance(delta, (bool, np.bool_)) or not isinstance(delta, numbers.Real):
            raise TypeError(f"`delta` must be a real number; got {type(delta).__name__}.")
        if not (np.isfinite(delta) and delta > 0):
            raise ValueError(f"`delta` must be finite and > 0; got {delta!r}.")
        t = np.linspace(-float(delta), float(delta), n)
        s = 1.0 / (1.0 + np.exp(-t))
        out = (s - s[0]) / (s[-1] - s[0])
    else:
        total = sum(c for _, _, c in _THREE_PIECE)
        n1 = max(1, int(round(n * _THREE_PIECE[0][2] / total)))
        n2 = max(1, int(round(n * _THREE_PIECE[1][2] / total)))
        n3 = n - n1 - n2
        if n3 < 2:
            n2 = max(1, n2 - (2 - n3))
            n3 = n - n1 - n2
        out = np.concatenate(
            [
                np.linspace(0.0, 0.5, n1, endpoint=False),
                np.linspace(0.5, 0.9, n2, endpoint=False),
                np.linspace(0.9, 1.0, n3),
            ]
        )
    out[0] = 0.0
    out[-1] = 1.0
    return out


def _check_betas(value, name="betas"):
    """A 1-D finite, strictly increasing float array from exactly 0 to 1."""
    arr = as_float_array(value, name)
    if arr.ndim != 1 or arr.shape[0] < 2:
        raise ValueError(
            f"`{name}` must be a 1-D array of at least 2 inverse temperatures; got shape {arr.shape}."
        )
    if not np.all(np.isfinite(arr)):
        bad = int(np.argwhere(~np.isfinite(arr))[0, 0])
        raise ValueError(f"`{name}` must contain only finite values; got {arr[bad]!r} at index {bad}.")
    if arr[0] != 0.0 or arr[-1] != 1.0:
        hint = ""
        if arr[0] == 1.0 and arr[-1] == 0.0:
            hint = " (reverse_ais takes the increasing schedule and runs it from 1 to 0 itself)"
        raise ValueError(
            f"`{name}` must start at exactly 0.0 and end at exactly 1.0; "
            f"got {float(arr[0])!r} ... {float(arr[-1])!r}{hint}."
        )
    steps = np.diff(arr)
    if np.any(steps <= 0):
        bad = int(np.argwhere(steps <= 0)[0, 0])
        raise ValueError(
            f"`{name}` must be strictly increasing; got {float(arr[bad])!r} then "
            f"{float(arr[bad + 1])!r} at indices {bad}, {bad + 1}."
        )
    return np.ascontiguousarray(arr)
