r"""The asymptotically exact lower bound :math:`\tilde L_k` of a Boltzmann-machine posterior."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import prange

from .._jit import pjit
from .._numerics import nb_log_sigmoid
from .._rng import STREAM_AIS, as_seed_sequence, chain_states, nb_uniform
from .._validation import check_int
from ..energies.boltzmann import nb_draw_auxiliary

__all__ = ["BoundResult", "boltzmann_bound", "MAX_BOUND_BITS"]

#: Largest number of units for which :func:`boltzmann_bound` enumerates b(z).
MAX_BOUND_BITS = 20


@dataclass(frozen=True)
class BoundResult:
    r"""What :func:`boltzmann_bound` returns.

    Attributes
    ----------
    value : float
        Monte Carlo estimate of :math:`\tilde L_k` (the mean of ``terms``).
    stderr : float
        Its standard error, ``std(terms, ddof=1) / sqrt(n_samples)``.
    elbo : float
        The exact :math:`L = E_b[\log p(x,z)] + H(b)` by enumeration (the
        limit of :math:`\tilde L_k`; :math:`\log Z` for the default
        ``log_joint``).
    terms : ndarray of shape (n_samples,)
        Per-sample terms :math:`\log p(x, z_s) - \log h_k(z_s)`.
    z : ndarray of shape (n_samples, m)
        The codes :math:`z_s \sim h_k` (marginally :math:`z_s \sim b`).
    log_h : ndarray of shape (n_samples,)
        :math:`\log h_k(z_s)`.
    k : int
    """

    value: float
    stderr: float
    elbo: float
    terms: np.ndarray
    z: np.ndarray
    log_h: np.ndarray
    k: int


def boltzmann_bound(model, k, n_samples, seed, log_joint=None, shift=None):
    r"""Monte Carlo estimate of the bound :math:`\tilde L_k` of Zheng & Su (2020).

    With the Boltzmann machine :math:`q(z) = b(z)` of ``model`` as the
    variational posterior, its auxiliary representation
    :math:`q(z) = \int p(z\mid r) q(r)\,dr` (:meth:`LowRankBoltzmann.auxiliary`)
    and :math:`h_k(z) = \frac1k\sum_{i=1}^k p(z \mid r^{(i)})`,

    .. math::

        \tilde L_k = E_{q(z)}[\log p(x, z)]
                     - E_{q(r^{(1..k)})} E_{h_k(z)}[\log h_k(z)]
                   = L - E_{q(r^{(1..k)})}\,\mathrm{KL}(h_k \,\|\, q),

    where :math:`L = E_q[\log p(x,z)] + H(q)` is the evidence lower bound
    and :math:`r^{(1..k)}` are iid from :math:`q(r)`. Hence
    :math:`\tilde L_k \le L \le \log p(x)`, :math:`\tilde L_k` increases
    with :math:`k` and tends to :math:`L`; the gap is at most
    :math:`\chi^2`-divergence :math:`/k` (docs/boltzmann-posterior.md).

    Parameters
    ----------
    model : LowRankBoltzmann
        :math:`q(z) = b(z)`, at most :data:`MAX_BOUND_BITS` = 20 units
        (:math:`r \sim q(r)` is drawn exactly, through :math:`z \sim b` by
        enumeration, then :math:`r \mid z`).
    k : int
        Number of auxiliary draws in :math:`h_k`, ``k >= 1``.
    n_samples : int
        Monte Carlo samples, ``n_samples >= 2``.
    seed : int, numpy.random.SeedSequence or numpy.random.Generator
        Sample ``s`` draws only from its own stream: ``terms[s]`` does not
        depend on ``n_samples`` nor on the thread count.
    log_joint : callable or None, default None
        ``log_joint(z) -> (n,)``, :math:`\log p(x, z)` for codes ``z`` of
        shape ``(n, m)``. ``None``: the unnormalised posterior itself,
        :math:`-E(z)`, so that :math:`L = \log Z` and :math:`\tilde L_k` is
        a lower bound on :math:`\log Z`.
    shift : float or None
        The diagonal shift of :meth:`LowRankBoltzmann.auxiliary`; the bound
        depends on it (through :math:`p(z\mid r)`), its limit does not.

    Returns
    -------
    BoundResult

    Notes
    -----
    One draw per sample: :math:`r^{(1..k)}` iid from :math:`q(r)`, an index
    :math:`j` uniform in :math:`1..k`, :math:`z \sim p(z \mid r^{(j)})`, and
    the term :math:`\log p(x,z) - \log h_k(z)` (``log h_k`` by a
    log-sum-exp over the :math:`k` draws, with stable log-sigmoids). Since
    the marginal of :math:`z` is :math:`E_r[h_k] = q`, the same :math:`z`
    serves both expectations and the mean of the terms is unbiased for
    :math:`\tilde L_k`.

    References
    ----------
    Zheng, L. & Su, Q. (2020). Generative semantic hashing enhanced via
    Boltzmann machines. ACL 2020.
    Yin, M. & Zhou, M. (2018). Semi-implicit variational inference. ICML 2018.
    """
    from .. import exact
    from ..energies.boltzmann import LowRankBoltzmann

    if not isinstance(model, LowRankBoltzmann):
        raise TypeError(f"`model` of boltzmann_bound must be a LowRankBoltzmann; got {type(model).__name__}.")
    k = check_int(k, "k", minimum=1)
    n_samples = check_int(n_samples, "n_samples", minimum=2)
    if log_joint is not None and not callable(log_joint):
        raise TypeError(f"`log_joint` must be callable or None; got {type(log_joint).__name__}.")
    m = model.n_features
    if m > MAX_BOUND_BITS:
        raise ValueError(
            f"boltzmann_bound enumerates the 2^m codes of `model`; m = {m} exceeds MAX_BOUND_BITS = {MAX_BOUND_BITS}."
        )
    aux = model.auxiliary(shift)
    ss = as_seed_sequence(seed)
    ising = model.to_ising()
    states, probs = exact.probabilities(ising)
    log_probs = exact.log_likelihood(ising, states)
    cdf = np.cumsum(probs)
    rng = chain_states(ss, n_samples, STREAM_AIS)
    z = np.empty((n_samples, m))
    log_h = np.empty(n_samples)
    _bound_draws(
        np.ascontiguousarray(aux.mean), aux.diag, np.sqrt(aux.diag), np.ascontiguousarray(aux.U),
        np.ascontiguousarray(states), cdf, k, rng, z, log_h,
    )
    if log_joint is None:
        from ..energies.boltzmann import nb_energy_rows

        p = model.params
        lj = np.empty(n_samples)
        nb_energy_rows(p["d_diag"], np.ascontiguousarray(p["U"]), p["mu"], z, lj)
        lj = -lj
        lj_states = -ising.energy(states)
    else:
        lj = _call_log_joint(log_joint, z)
        lj_states = _call_log_joint(log_joint, states)
    terms = lj - log_h
    nz = probs > 0
    elbo = float(np.sum(probs[nz] * (lj_states[nz] - log_probs[nz])))
    return BoundResult(
        value=float(np.mean(terms)),
        stderr=float(np.std(terms, ddof=1) / math.sqrt(n_samples)),
        elbo=elbo,
        terms=terms,
        z=z,
        log_h=log_h,
        k=k,
    )


def _call_log_joint(fn, z):
    out = np.asarray(fn(z), dtype=np.float64)
    if out.shape != (z.shape[0],):
        raise ValueError(f"`log_joint` must return shape ({z.shape[0]},) for codes of shape {z.shape}; got {out.shape}.")
    if not np.all(np.isfinite(out)):
        raise ValueError("`log_joint` returned NaN or inf.")
    return out


@pjit
def _bound_draws(a, s, sqrt_s, U, states, cdf, k, rng, z_out, logh_out):  # pragma: no cover - jitted
    """Per sample: k draws r ~ q(r), z ~ h_k, log h_k(z). No input checks.

    Random numbers of sample ``c``, in order: for each of the ``k`` draws one
    uniform (the code ``z ~ b`` by inverse CDF), ``m`` then ``K`` normals
    (``r | z``); then one uniform (the index ``j``) and ``m`` uniforms
    (``z ~ p(z | r^(j))``).
    """
    n = z_out.shape[0]
    m = U.shape[0]
    ku = U.shape[1]
    n_states = cdf.shape[0]
    for c in prange(n):
        st = rng[c]
        lsp = np.empty((k, m))  # log sigmoid(r)
        lsn = np.empty((k, m))  # log sigmoid(-r)
        r = np.empty(m)
        e1 = np.empty(m)
        t = np.empty(ku)
        for i in range(k):
            u = nb_uniform(st)
            idx = np.searchsorted(cdf, u)
            if idx >= n_states:
                idx = n_states - 1
            zz = states[idx]
            nb_draw_auxiliary(a, s, sqrt_s, U, zz, st, e1, t, r)
            for l in range(m):
                lsp[i, l] = nb_log_sigmoid(r[l])
                lsn[i, l] = nb_log_sigmoid(-r[l])
        jsel = int(nb_uniform(st) * k)
        if jsel >= k:
            jsel = k - 1
        for l in range(m):
            u = nb_uniform(st)
            z_out[c, l] = 1.0 if u < math.exp(lsp[jsel, l]) else 0.0
        # log h_k(z) = logsumexp_i sum_l log p(z_l | r^(i)_l) - log k
        best = -np.inf
        lp = np.empty(k)
        for i in range(k):
            acc = 0.0
            for l in range(m):
                acc += lsp[i, l] if z_out[c, l] != 0.0 else lsn[i, l]
            lp[i] = acc
            if acc > best:
                best = acc
        tot = 0.0
        for i in range(k):
            tot += math.exp(lp[i] - best)
        logh_out[c] = best + math.log(tot) - math.log(k)
