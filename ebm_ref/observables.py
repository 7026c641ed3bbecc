r"""Monte Carlo observables with error bars that account for autocorrelation.

* :class:`Estimate` — ``(value, stderr, tau_int)``;
* :func:`integrated_autocorr_time` — Sokal's automatic-window estimate of
  the integrated autocorrelation time, pooled over independent chains;
* :func:`ising_observables` — energy, ``|M|``, susceptibility, specific heat
  and Binder cumulant per site of an Ising run, each an :class:`Estimate`;
* :func:`lattice_series` — the energy and magnetisation series of a sampler
  trace of an Ising model.

Why these estimators, their biases and costs: docs/thermodynamics.md.
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numpy as np

from ._validation import as_float_array, check_finite, check_positive

__all__ = ["Estimate", "integrated_autocorr_time", "ising_observables", "lattice_series"]

#: Blocks for the jackknife are at least this many integrated
#: autocorrelation times long (their means are then nearly independent:
#: for an exponential autocorrelation the block-mean variance is
#: underestimated by about ``tau / block``, i.e. 5 %, 2.5 % in the stderr).
BLOCK_TAUS = 20
#: At most this many jackknife blocks per chain (more buys nothing once
#: blocks are independent, and each costs a pass over the block sums).
MAX_BLOCKS_PER_CHAIN = 64


class Estimate(NamedTuple):
    """A Monte Carlo estimate.

    Attributes
    ----------
    value : float
        The estimate from all samples of all chains.
    stderr : float
        Its standard error (one standard deviation of the estimator).
    tau_int : float
        The integrated autocorrelation time (in saved samples) of the series
        the error comes from: the observable itself for a mean, the
        estimator's linearisation (influence series) for a non-linear one.
        1 for independent samples.
    """

    value: float
    stderr: float
    tau_int: float


def _as_series(x, name, min_len=2):
    """``x`` of shape (n,) or (n, n_chains) as a finite float64 (n, n_chains) array."""
    arr = as_float_array(x, name)
    if arr.ndim == 1:
        arr = arr[:, None]
    elif arr.ndim != 2:
        raise ValueError(
            f"`{name}` must have shape (n,) or (n, n_chains) (time first); got an array of shape {arr.shape}."
        )
    if arr.shape[0] < min_len or arr.shape[1] < 1:
        raise ValueError(
            f"`{name}` must have at least {min_len} time steps and one chain (shape (n, n_chains)); "
            f"got shape {arr.shape}."
        )
    check_finite(arr, name)
    return arr


def _pooled_autocov(x):
    r"""Autocovariance :math:`\hat C(t)`, ``t = 0 .. n-1``, pooled over the chains of ``x`` (n, k).

    Centred at the pooled mean of all chains and normalised by ``n`` (not
    ``n - t``), averaged over chains; by FFT (O(n log n) per chain).
    """
    acov, scale = _scaled_autocov(x)
    return acov * (scale * scale)


def _scaled_autocov(x):
    """``(acov / s**2, s)`` with ``s`` a power of 2 near ``max |x - mean|``.

    The scaling is exact (a power of 2), so the result is the plain
    autocovariance bit for bit; it only keeps the products of the FFT from
    overflowing for series of size ~1e154 and more, where the autocorrelation
    (a ratio) is still well defined.
    """
    n, k = x.shape
    y = x - x.mean()
    top = float(np.max(np.abs(y))) if y.size else 0.0
    scale = 2.0 ** math.frexp(top)[1] if top > 0.0 and math.isfinite(top) else 1.0
    y = y / scale
    size = 1 << (2 * n - 1).bit_length()
    f = np.fft.rfft(y, n=size, axis=0)
    acov = np.fft.irfft(f * np.conj(f), n=size, axis=0)[:n]
    return acov.mean(axis=1) / n, scale


def _sokal_tau(acov, c):
    """``(tau, window)`` from a pooled autocovariance: smallest ``M >= c tau_abs(M)``.

    The window is measured against ``tau_abs(M) = 1 + 2 sum |rho(t)|``, which
    equals ``tau(M)`` while the autocorrelation is positive; for an
    anti-correlated series ``tau(M)`` is small (or negative) although the
    correlations last several lags, and a window sized by it would cut them off.
    """
    if not acov[0] > 0.0:  # a constant series: no fluctuation, no correlation
        return 1.0, 0
    rho = acov / acov[0]
    taus = 2.0 * np.cumsum(rho) - 1.0  # tau(M) = 1 + 2 sum_{t=1}^M rho(t), M = 0 .. n-1
    taus_abs = 2.0 * np.cumsum(np.abs(rho)) - 1.0
    ok = np.flatnonzero(np.arange(rho.size) >= c * taus_abs)
    M = int(ok[0]) if ok.size else rho.size - 1
    return float(taus[M]), M


def _check_c(c):
    return check_positive(c, "c")


def integrated_autocorr_time(x, c=5.0):
    r"""Integrated autocorrelation time with Sokal's automatic window.

    Parameters
    ----------
    x : array_like of shape (n,) or (n, n_chains)
        Time first; the columns are independent chains of the same process
        (same length), at least 2 steps, finite.
    c : float, default 5.0
        Window constant (> 0): the window is the smallest ``M`` with
        ``M >= c * tau(M)``.

    Returns
    -------
    float
        :math:`\hat\tau = 1 + 2\sum_{t=1}^{M} \hat\rho(t)`, in steps of
        ``x`` (1 for independent samples; ``(1 + phi) / (1 - phi)`` for an
        AR(1) process, also for negative ``phi``). The variance of the mean
        of ``n`` steps is then about :math:`\tau\,\sigma^2 / n`. A
        constant series gives 1; an anti-correlated series gives less than
        1.

    Raises
    ------
    TypeError
        For a non-numeric ``x`` or ``c``.
    ValueError
        For the wrong shape, fewer than 2 steps, NaN/inf, or ``c <= 0``.

    Notes
    -----
    :math:`\hat\rho(t) = \hat C(t)/\hat C(0)` with :math:`\hat C(t) =
    \frac{1}{k}\sum_{\text{chains}} \frac1n \sum_{s=0}^{n-1-t} (x_s - \bar
    x)(x_{s+t} - \bar x)`, where :math:`\bar x` is the mean of *all* chains:
    the autocorrelation function is averaged over the ``k`` chains (and a
    chain that has not reached the common distribution shows up as a long
    autocorrelation instead of being hidden by centring it on its own mean).

    The window is the smallest ``M`` with :math:`M \ge c\,(1 + 2\sum_{t\le M}
    |\hat\rho(t)|)`: the same as Sokal's :math:`M \ge c\,\hat\tau(M)`
    while the autocorrelation is positive, and long enough for an
    anti-correlated series, whose :math:`\hat\tau(M)` is small although
    its correlations last several lags (AR(1) with :math:`\phi = -0.8`:
    Sokal's own rule stops at a window of a few lags and returns a negative
    :math:`\hat\tau`).

    Bias and spread (Madras & Sokal 1988; Sokal 1997): the window drops
    :math:`2\sum_{t>M}\rho(t)`, about :math:`2\tau e^{-c}` relative for
    an exponential decay (1.3 % at ``c = 5``); the mean subtraction and the
    ``1/n`` normalisation bias it low by :math:`O(\tau M / (nk))`. Its
    relative standard deviation is about :math:`\sqrt{2(2M+1)/(nk)}`. If no
    window satisfies the condition (the series is shorter than about
    ``c * tau``), the whole series is used and the result is a lower bound
    — run longer. Cost: O(n log n) per chain (FFT).

    References
    ----------
    Madras, N. & Sokal, A. D. (1988). The pivot algorithm: a highly
    efficient Monte Carlo method for the self-avoiding walk. Journal of
    Statistical Physics 50, 109-186. Sokal, A. D. (1997). Monte Carlo
    methods in statistical mechanics: foundations and new algorithms.
    In Functional Integration (Cargese 1996), Springer, 131-192.
    """
    arr = _as_series(x, "x")
    c = _check_c(c)
    return _sokal_tau(_scaled_autocov(arr)[0], c)[0]


def _mean_estimate(x, c):
    """Mean of ``x`` (n, k) with the stderr ``sqrt(tau C(0) / (n k))``."""
    acov, scale = _scaled_autocov(x)
    tau, _ = _sokal_tau(acov, c)
    n, k = x.shape
    return Estimate(float(x.mean()), scale * math.sqrt(max(tau, 0.0) * acov[0] / (n * k)), tau)


def _blocks(n, block):
    """Start indices of ``n // block`` (at least 1, at most MAX_BLOCKS_PER_CHAIN) near-equal blocks."""
    nb = max(1, min(n // max(block, 1), MAX_BLOCKS_PER_CHAIN))
    return np.linspace(0, n, nb + 1).round().astype(np.int64)


def _jackknife(moments, func, bounds):
    r"""Value and jackknife stderr of ``func(means)`` with blocks of every chain left out in turn.

    ``moments`` is (n, k, p); ``func`` maps an array of ``p`` means (last
    axis) to the observable, vectorised over leading axes.
    """
    n, k, p = moments.shape
    sums = np.add.reduceat(moments, bounds[:-1], axis=0)  # (nb, k, p)
    counts = np.diff(bounds).astype(np.float64)  # (nb,)
    total = moments.sum(axis=(0, 1))
    value = float(func(total / (n * k)))
    loo_sums = total - sums.reshape(-1, p)
    loo_counts = n * k - np.repeat(counts, k)
    B = loo_sums.shape[0]
    if B < 2:
        return value, math.nan
    theta = func(loo_sums / loo_counts[:, None])
    h = n * k / (n * k - loo_counts)  # N / m_j
    # pseudo-values with unequal blocks (N / m_b = h_b); for equal blocks this is
    # the usual (B - 1)/B sum (theta_b - mean)^2
    pseudo = h * value - (h - 1.0) * theta
    theta_j = float(np.sum(pseudo / h))  # sum_b (m_b / N) pseudo_b
    var = float(np.sum((pseudo - theta_j) ** 2 / (h - 1.0))) / B
    return value, math.sqrt(var)


def _check_sites(n_sites):
    if isinstance(n_sites, (bool, np.bool_)) or not isinstance(n_sites, numbers.Integral):
        raise TypeError(f"`n_sites` must be an int; got {type(n_sites).__name__} {n_sites!r}.")
    if n_sites < 1:
        raise ValueError(f"`n_sites` must be >= 1; got {n_sites}.")
    return int(n_sites)


def ising_observables(energy, magnetization, beta, n_sites, c=5.0):
    r"""Per-site thermodynamics of an Ising run, with error bars.

    Parameters
    ----------
    energy : array_like of shape (n_saved, n_chains) or (n_saved,)
        Physical energy :math:`H` (total, not per site, without ``beta``) of
        each saved state; time first, one column per independent chain.
    magnetization : array_like, same shape as ``energy``
        Total magnetisation :math:`M = \sum_i s_i` of each saved state.
    beta : float
        Inverse temperature, finite and > 0.
    n_sites : int
        Number of spins :math:`N`.
    c : float, default 5.0
        Sokal window constant of :func:`integrated_autocorr_time`.

    Returns
    -------
    dict of str to Estimate
        ``"energy"``: :math:`\langle H\rangle/N`;
        ``"abs_magnetization"``: :math:`\langle |M|\rangle / N`;
        ``"susceptibility"``: :math:`\beta(\langle M^2\rangle -
        \langle|M|\rangle^2)/N`;
        ``"specific_heat"``: :math:`\beta^2(\langle H^2\rangle -
        \langle H\rangle^2)/N`;
        ``"binder"``: :math:`U_4 = 1 - \langle M^4\rangle / (3\langle
        M^2\rangle^2)` (all NaN when every ``M`` is 0).
        Averages are over all saved states of all chains (equal weights).

    Raises
    ------
    TypeError
        For non-numeric input.
    ValueError
        For mismatched shapes, fewer than 4 saved states, NaN/inf, ``beta``
        not finite and > 0, ``n_sites < 1``, ``c <= 0``, or a
        magnetisation with :math:`|M| > N` (not a sum of ``n_sites`` spins).

    Notes
    -----
    The two means (energy, ``|M|``) get
    :math:`\mathrm{stderr} = \sqrt{\hat\tau\,\hat C(0)/(n k)}`, with the
    integrated autocorrelation time :math:`\hat\tau` of the series
    (Sokal's window, the autocorrelation averaged over the ``k`` chains).

    The non-linear ones (susceptibility, specific heat, Binder) get
    blocking + jackknife: each chain is cut into consecutive blocks of at
    least ``20 tau`` saved states (``tau`` the largest integrated
    autocorrelation time among the moment series and the estimators'
    linearisations; at most 64 blocks per chain, at least one: whole
    chains), every block of every chain is left out in turn, the
    observable is recomputed from the remaining moment sums, and
    :math:`\mathrm{stderr}^2 = \frac{B-1}{B}\sum_b(\theta_{(b)} -
    \bar\theta)^2` over the ``B`` blocks (the weighted form for unequal
    blocks). ``value`` is the plain estimate from all data (not
    bias-corrected: its bias is :math:`O(\tau/(nk))`, below the error
    bar). Their ``tau_int`` is that of the linearisation, e.g.
    :math:`(H - \langle H\rangle)^2` for the specific heat. With fewer
    than two blocks in all (one chain shorter than ``40 tau``) the
    stderr is NaN. Chains are independent, so blocks from different
    chains are independent however short the chains are; many short
    chains therefore give honest errors where one chain would not.

    References
    ----------
    Sokal, A. D. (1997). Monte Carlo methods in statistical mechanics:
    foundations and new algorithms. Efron, B. & Stein, C. (1981). The
    jackknife estimate of variance. Annals of Statistics 9(3), 586-596.
    Binder, K. (1981). Finite size scaling analysis of Ising model block
    distribution functions. Zeitschrift fur Physik B 43, 119-140.
    """
    H = _as_series(energy, "energy", min_len=4)
    M = _as_series(magnetization, "magnetization", min_len=4)
    if M.shape != H.shape:
        raise ValueError(
            f"`magnetization` must have the shape of `energy`, {H.shape}; got {M.shape}."
        )
    beta = check_positive(beta, "beta")
    N = _check_sites(n_sites)
    c = _check_c(c)
    absM = np.abs(M)
    if np.any(absM > N):  # |M| = |sum_i s_i| <= N for spins: a larger value is a mixed-up argument
        k = tuple(int(i) for i in np.argwhere(absM > N)[0])
        raise ValueError(
            f"`magnetization` must satisfy |M| <= n_sites = {N} (M is a sum of N spins); "
            f"got {float(M[k])!r} at index {k}."
        )
    out = {
        "energy": _mean_estimate(H / N, c),
        "abs_magnetization": _mean_estimate(absM / N, c),
    }
    # moments per site (O(1), so M^4 of a large lattice cannot overflow), h and
    # |m| centred at their means so that the variances are not differences of
    # large second moments
    h = H / N
    a = absM / N
    h_bar, a_bar = float(h.mean()), float(a.mean())
    h_dev = float(np.max(np.abs(h - h_bar)))
    # sums of h.size squares (the variance and its jackknife) must stay finite
    if h_dev > math.sqrt(np.finfo(np.float64).max / (4.0 * h.size)):  # the specific heat needs (h - <h>)^2: refuse rather than return NaN
        raise ValueError(
            f"`energy` per site must have squared deviations below the float64 range; got "
            f"max |H/N - <H/N>| = {h_dev!r}."
        )
    hc, ac = h - h_bar, a - a_bar
    m2 = a * a
    moments = np.stack([hc, hc * hc, ac, ac * ac, m2 * m2], axis=-1)  # (n, k, 5)
    Ea = a_bar
    Em2 = float(m2.mean())
    Em4 = float((m2 * m2).mean())
    Eh = h_bar

    def chi(mu):
        return beta * N * (mu[..., 3] - mu[..., 2] ** 2)

    def heat(mu):
        return beta * beta * N * (mu[..., 1] - mu[..., 0] ** 2)

    def binder(mu):
        second = mu[..., 3] + 2.0 * a_bar * mu[..., 2] + a_bar * a_bar  # <m^2> = <|m|^2>
        return 1.0 - mu[..., 4] / (3.0 * second**2)

    # linearisations (influence series) of the three estimators
    lin = {
        "susceptibility": m2 - 2.0 * Ea * a,
        "specific_heat": (h - Eh) ** 2,
        "binder": (-m2 * m2 + 2.0 * Em4 / Em2 * m2) / (3.0 * Em2**2) if Em2 > 0 else np.zeros_like(m2),
    }
    taus = {name: integrated_autocorr_time(series, c) for name, series in lin.items()}
    tau_max = max([integrated_autocorr_time(moments[..., i], c) for i in range(5)] + list(taus.values()))
    n = H.shape[0]
    bounds = _blocks(n, int(math.ceil(BLOCK_TAUS * tau_max)))
    for name, func in (("susceptibility", chi), ("specific_heat", heat), ("binder", binder)):
        if name == "binder" and not Em2 > 0:
            out[name] = Estimate(math.nan, math.nan, math.nan)
            continue
        value, err = _jackknife(moments, func, bounds)
        out[name] = Estimate(value, err, taus[name])
    return out


def lattice_series(model, trace, beta=None):
    r"""Energy and magnetisation series of an Ising sampler trace.

    Parameters
    ----------
    model : Ising
        Spin-domain Ising model: ``Ising.lattice(...)`` (its ``beta`` is read
        from ``model.lattice``) or any Ising model with ``beta`` given.
    trace : array_like of shape (n_saved, n_chains, d)
        ``SampleResult.trace``: states in {-1, +1}.
    beta : float or None, default None
        Inverse temperature that the model's energy includes. Required
        when ``model.lattice`` is None; if given for a lattice model it must
        equal ``model.lattice.beta``.

    Returns
    -------
    energy : ndarray of shape (n_saved, n_chains)
        Physical energy :math:`H = E(s)/\beta` of each state, total (for
        ``Ising.lattice(L, beta, coupling, field)``: :math:`H = -\text{coupling}
        \sum_{\langle ij\rangle} s_i s_j - \text{field}\sum_i s_i`).
    magnetization : ndarray of shape (n_saved, n_chains)
        :math:`M = \sum_i s_i`.

    Raises
    ------
    TypeError
        If ``model`` is not an Ising model.
    ValueError
        For a binary-domain model, a trace of the wrong shape or with
        values outside {-1, +1}, a missing or non-positive ``beta``, or a
        ``beta`` that contradicts ``model.lattice.beta``.

    Notes
    -----
    For a lattice model, :math:`H` is computed from the structure
    (``model.lattice``: shape, boundary, coupling, field; O(d) per state),
    which is :math:`E/\beta` exactly. Otherwise :math:`E(s) =
    -\sum_{i<j} J_{ij}s_is_j - h^\top s` is evaluated from ``model.edges()``
    in chunks of the trace (bounded memory) and divided by ``beta``.
    A ``"binary"`` model is refused: its states are not spins and its
    :math:`E/\beta` is not the Ising energy of the spins.

    References
    ----------
    Newman, M. E. J. & Barkema, G. T. (1999). Monte Carlo Methods in
    Statistical Physics. Oxford University Press, ch. 3.
    """
    from .energies.ising import Ising

    if not isinstance(model, Ising):
        raise TypeError(f"`model` must be an Ising model; got {type(model).__name__}.")
    if model.domain != "spin":
        raise ValueError(
            f"`model` must have domain='spin' for lattice observables; got domain={model.domain!r}."
        )
    spec = getattr(model, "lattice", None)
    if beta is not None:
        beta = check_positive(beta, "beta")
    if spec is not None:
        if beta is not None and beta != float(spec.beta):
            raise ValueError(
                f"`beta` ({beta!r}) contradicts the model's model.lattice.beta = {spec.beta!r}; pass beta=None."
            )
        beta = float(spec.beta)
        if not beta > 0.0:
            raise ValueError(f"the model's beta must be > 0 to recover H = E / beta; got {beta!r}.")
    elif beta is None:
        raise ValueError("`beta` is required when the model has no `lattice` (it fixes H = E / beta).")
    d = model.n_features
    arr = as_float_array(trace, "trace")
    if arr.ndim != 3 or arr.shape[2] != d or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(
            f"`trace` must have shape (n_saved, n_chains, {d}) (SampleResult.trace); got {arr.shape}."
        )
    ok = (arr == 1.0) | (arr == -1.0)
    if not np.all(ok):
        where = tuple(int(i) for i in np.argwhere(~ok)[0])
        raise ValueError(f"`trace` must contain only -1.0/+1.0 spins; got {arr[where]!r} at {where}.")
    n_saved, n_chains, _ = arr.shape
    flat = arr.reshape(n_saved * n_chains, d)
    magnetization = flat.sum(axis=1)
    if spec is not None:
        # from the structure: H = -coupling * (bond sum) - field * M
        L1, L2 = spec.shape
        grid = flat.reshape(-1, L1, L2)
        bonds = np.empty(grid.shape[0])
        step = max(1, (1 << 20) // d)  # chunks of about 1e6 spins: the products stay in cache
        for s in range(0, grid.shape[0], step):
            g = grid[s:s + step]
            b = np.einsum("nij,nij->n", g[:, :, :-1], g[:, :, 1:]) + np.einsum("nij,nij->n", g[:, :-1], g[:, 1:])
            if spec.boundary == "periodic":  # wrap-around bonds (a side of 2 doubles its pair, as the model)
                b += np.einsum("ni,ni->n", g[:, :, -1], g[:, :, 0]) + np.einsum("nj,nj->n", g[:, -1], g[:, 0])
            bonds[s:s + step] = b
        energy = -float(spec.coupling) * bonds - float(spec.field) * magnetization
        return energy.reshape(n_saved, n_chains), magnetization.reshape(n_saved, n_chains)
    i, j, w = model.edges()
    h = np.asarray(model.params["h"], dtype=np.float64)
    energy = np.empty(n_saved * n_chains)
    chunk = max(1, (1 << 23) // max(i.size, 1))
    for s in range(0, flat.shape[0], chunk):
        x = flat[s:s + chunk]
        energy[s:s + chunk] = -((x[:, i] * x[:, j]) @ w) - x @ h
    return (energy / beta).reshape(n_saved, n_chains), magnetization.reshape(n_saved, n_chains)
