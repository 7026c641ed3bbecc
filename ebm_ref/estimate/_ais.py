r"""Annealed importance sampling (AIS) and reverse AIS for log partition functions.

Public functions: :func:`ais`, :func:`reverse_ais`, :func:`betas`,
:func:`log_likelihood`; result type :class:`AISResult`. The schedules
are in :mod:`ebm_ref.estimate._schedules`; the one tempered-transition
driver in :mod:`ebm_ref.estimate._kernels` (each model packs its path with
``EnergyModel.tempered_form``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from .._interrupt import PROGRESS_DELAY, run_chunked
from .._rng import STREAM_AIS, as_seed_sequence, chain_states
from .._validation import check_int, check_memory
from ..energies import EnergyModel
from . import _kernels
from ._schedules import _check_betas, betas

__all__ = ["AISResult", "ais", "reverse_ais", "betas", "log_likelihood"]



@dataclass(frozen=True)
class AISResult:
    r"""Result of :func:`ais` or :func:`reverse_ais`.

    Attributes
    ----------
    log_z : float
        Estimate of :math:`\log Z`: ``log_z_base`` plus (forward) or minus
        (reverse) the log-mean-exp of the importance weights.
    stderr : float
        Delta-method standard error of ``log_z``:
        :math:`\operatorname{sd}(w) / (\sqrt{n}\,\bar w)` of the importance
        weights ``w`` (sample sd, ``ddof=1``); ``inf`` for a single chain.
    ess : float
        Effective sample size of the weights,
        :math:`(\sum_c w_c)^2 / \sum_c w_c^2`, between 1 and ``n_chains``.
    log_weights : ndarray of shape (n_chains,)
        Per-chain estimates of :math:`\log Z` (base ``log Z`` included):
        forward :math:`\log Z_0 + \log w_c`, reverse
        :math:`\log Z_0 - \log w^{\mathrm{rev}}_c`. Their mean is the
        average per-run estimate (a stochastic lower bound for forward AIS,
        an upper bound for reverse AIS from exact samples).
    log_z_base : float
        Exact :math:`\log Z_0` of the base distribution.
    x : ndarray of shape (n_chains, d)
        Final states of the chains: approximate model samples after forward
        AIS, base-distribution-like states after reverse AIS.
    reverse : bool
        ``True`` for :func:`reverse_ais`.
    """

    log_z: float
    stderr: float
    ess: float
    log_weights: np.ndarray
    log_z_base: float
    x: np.ndarray
    reverse: bool


# ------------------------------------------------------------------- paths
def _path(model, base):
    """``(form, g, spin, log Z_0)`` of ``model``'s annealing path; ``TypeError`` if it has none."""
    out = model.tempered_form(base) if isinstance(model, EnergyModel) else None
    if out is None:
        raise TypeError(
            "`model` must be one of RBM, GRBM, Ising, or another binary model with a Numba form (e.g. FVBM) "
            f"for AIS; got {type(model).__name__}."
        )
    form, g, log_z0 = out
    return form, g, model.domain == "spin", log_z0


def _check_chain_memory(n_chains, d, n_betas, what):
    """Refuse before allocating: states, weights, RNG rows and their seeding temporaries."""
    per_chain = 8 * d + 8 + 32 + 160
    check_memory(
        n_chains * per_chain + 16 * n_betas,
        f"{what} with {n_chains} chains of {d} units",
        "use fewer chains (the estimate's standard error falls as 1/sqrt(n_chains); "
        "several calls with different seeds can be combined)",
    )


def _run(form, g, spin, path, x, rng, logw, from_base, label):
    """Run every chain along ``path`` in chunks of temperatures (Ctrl-C between chunks).

    A chunk of transitions ``[k0, k0 + count)`` is the path piece
    ``path[k0 : k0 + count + 1]``, started from the base only at ``k0 = 0``
    and closed (no transition after its last weight) only at the end: the
    kernels' contract for consecutive pieces (``_kernels``), so ``logw``
    gets the bits of one call. On a terminal a progress line appears after
    2 s (``EBM_REF_PROGRESS=0`` turns it off).
    """
    n_threads = numba.get_num_threads()
    K = path.shape[0] - 1

    def chunk(k0, count):
        last = k0 + count == K
        _kernels.run_path(form, g, spin, path[k0 : k0 + count + 1], x, rng, logw, from_base and k0 == 0, last,
                          n_threads)

    run_chunked(chunk, K, progress=label, progress_delay=PROGRESS_DELAY)


def _summarise(lw):
    """``(log mean w, stderr, ess)`` of importance log-weights ``lw``, stably."""
    n = lw.shape[0]
    top = float(np.max(lw))
    w = np.exp(lw - top)
    mean_w = w.mean()
    lme = top + math.log(mean_w)
    if n > 1:
        stderr = float(np.std(w, ddof=1) / (math.sqrt(n) * mean_w))
    else:
        stderr = math.inf
    ess = float(w.sum() ** 2 / np.sum(w * w))
    return lme, stderr, ess


# ------------------------------------------------------------------ public
def ais(model, n_chains, betas, seed, base=None):
    r"""Annealed importance sampling estimate of :math:`\log Z`.

    Parameters
    ----------
    model : RBM, GRBM or Ising
        The target :math:`p_1(x) \propto e^{-E(x)}` (for RBM/GRBM the
        visible marginal, :math:`e^{-F(v)}`).
    n_chains : int
        Number of independent AIS runs, >= 1.
    betas : array_like of shape (K + 1,)
        Strictly increasing inverse temperatures, from exactly 0 to exactly
        1 (see :func:`betas` for the usual schedules).
    seed : int, numpy.random.SeedSequence or numpy.random.Generator
        Chain ``c`` uses its own stream (docs/conventions.md), so results are identical
        whatever the thread count, and chain ``c`` does not depend on
        ``n_chains``.
    base : None, "uniform" or array_like of shape (n, d), optional
        The tractable start distribution :math:`p_0` (independent units).

        * RBM: ``None`` (default) uses the RBM's own visible biases,
          :math:`p_0(v) \propto e^{b_v^\top v}`; ``"uniform"`` uses zero
          biases; an array of data states (``{0,1}``) sets the base biases
          to the log-odds of the add-one smoothed data marginals
          :math:`(\#\{x_i = 1\} + 1)/(n + 2)`, as Salakhutdinov & Murray
          (2008) fit the base rate to the training data.
        * Ising: ``None`` uses independent units in the model's own field
          ``h``; ``"uniform"`` a zero field; an array of data states fits the
          field to the smoothed marginals (for spins, :math:`p(s_i=+1) =
          \sigma(2 g_i)`).
        * GRBM: only ``None``: :math:`v \sim N(\mu, \sigma^2)` with
          independent uniform hidden units.

    Returns
    -------
    AISResult
        ``log_z``, ``stderr``, ``ess``, ``log_weights`` (see
        :class:`AISResult`).

    Raises
    ------
    TypeError
        For an unsupported model or a non-int ``n_chains``.
    ValueError
        For ``n_chains < 1``, invalid ``betas`` or an invalid ``base``.

    Notes
    -----
    Geometric path :math:`f_\beta = f_0^{1-\beta} f_1^{\beta}` between
    the unnormalised base and model; with :math:`x_0 \sim p_0` and
    transitions :math:`T_k` leaving :math:`p_{\beta_k}` invariant
    (block Gibbs :math:`h|v` then :math:`v|h` for RBM/GRBM, one systematic
    single-site Gibbs sweep for Ising),

    .. math::

        \log w = \sum_{k=1}^{K} \left[\log f_{\beta_k}(x_{k-1})
                 - \log f_{\beta_{k-1}}(x_{k-1})\right], \qquad
        \widehat{\log Z} = \log Z_0 + \log \frac1n \sum_c w_c .

    Since :math:`E[w] = Z/Z_0`, :math:`\hat Z` is unbiased and
    :math:`E[\log \hat Z] \le \log Z` (Jensen). Paths, for :math:`a = b_h +
    W^\top v` (RBM; Salakhutdinov & Murray 2008), :math:`a = b_h +
    W^\top(v/\sigma^2)` (GRBM):

    .. math::

        \text{RBM: } \log f_\beta(v) = (1-\beta) b_A^\top v + \beta b_v^\top v
            + \sum_j \operatorname{softplus}(\beta a_j),\;
            \log Z_0 = H \log 2 + \sum_i \operatorname{softplus}(b_{A,i});

        \text{GRBM: } \log f_\beta(v) = -\tfrac12\|(v-\mu)/\sigma\|^2
            + \sum_j \operatorname{softplus}(\beta a_j),\;
            \log Z_0 = H\log 2 + \tfrac V2 \log 2\pi + \sum_i \log\sigma_i;

        \text{Ising: } \log f_\beta(s) = \beta(\tfrac12 s^\top J s + h^\top s)
            + (1-\beta) g^\top s,\;
            \log Z_0 = \textstyle\sum_i \log(2\cosh g_i) \text{ (spins) or }
            \sum_i \operatorname{softplus}(g_i) \text{ ({0,1})}.

    The standard error is the delta method on the weights, computed with the
    weights shifted by their maximum:

    .. math::

        \mathrm{se} = \frac{\operatorname{sd}(w)}{\sqrt n\, \bar w}, \qquad
        \mathrm{ess} = \frac{(\sum_c w_c)^2}{\sum_c w_c^2}.

    It is honest only when the weights' variance is finite and well
    estimated; a small ``ess`` warns that it is not.

    References
    ----------
    Neal, R. M. (2001). Annealed importance sampling. Statistics and
    Computing 11(2).
    Salakhutdinov, R. & Murray, I. (2008). On the quantitative analysis of
    deep belief networks. ICML.
    Burda, Y., Grosse, R. & Salakhutdinov, R. (2015). Accurate and
    conservative estimates of MRF log-likelihood using reverse annealing.
    AISTATS.

    Examples
    --------
    >>> import numpy as np
    >>> from ebm_ref.energies import RBM
    >>> from ebm_ref.estimate import ais, betas
    >>> rbm = RBM(np.zeros((3, 2)), np.zeros(3), np.zeros(2))
    >>> res = ais(rbm, 10, betas(20), seed=0)
    >>> bool(abs(res.log_z - 5 * np.log(2)) < 1e-12)  # no coupling: exact
    True
    """
    form, g, spin, z0 = _path(model, base)
    n_chains = check_int(n_chains, "n_chains", minimum=1)
    bs = _check_betas(betas)
    _check_chain_memory(n_chains, model.n_features, bs.shape[0], "ais")
    ss = as_seed_sequence(seed)
    rng = chain_states(ss, n_chains, STREAM_AIS)
    x = np.zeros((n_chains, model.n_features))
    logw = np.zeros(n_chains)
    _run(form, g, spin, bs, x, rng, logw, True, "ais")
    lme, stderr, ess = _summarise(logw)
    return AISResult(
        log_z=z0 + lme, stderr=stderr, ess=ess, log_weights=z0 + logw,
        log_z_base=z0, x=x, reverse=False,
    )


def reverse_ais(model, states, betas, seed, base=None):
    r"""Reverse AIS (Burda, Grosse & Salakhutdinov 2015): a stochastic upper bound.

    Parameters
    ----------
    model : RBM, GRBM or Ising
    states : array_like of shape (n_chains, d) or (d,)
        Start states, one chain each, in the model's domain. They should be
        exact samples of the model (then the estimate overestimates
        :math:`\log Z` on average); held-out data give the RAISE-style
        conservative estimate instead.
    betas : array_like of shape (K + 1,)
        The same schedule as for :func:`ais` (increasing from 0 to 1); the
        chains traverse it backwards, from 1 to 0.
    seed : int, numpy.random.SeedSequence or numpy.random.Generator
    base : None, "uniform" or array_like, optional
        As for :func:`ais`.

    Returns
    -------
    AISResult
        ``log_weights`` are :math:`\log Z_0 - \log w^{\mathrm{rev}}_c`,
        ``log_z`` is :math:`\log Z_0 - \log \overline{w^{\mathrm{rev}}}`;
        ``stderr`` and ``ess`` are those of the reverse weights
        :math:`w^{\mathrm{rev}}`.

    Raises
    ------
    TypeError
        For an unsupported model.
    ValueError
        For invalid ``states``, ``betas`` or ``base``.

    Notes
    -----
    Starting from :math:`x_K = x` and running the transitions of
    :func:`ais` in reverse order of temperature,

    .. math::

        \log w^{\mathrm{rev}} = \sum_{k=K}^{1} \left[\log f_{\beta_{k-1}}(x_k)
            - \log f_{\beta_k}(x_k)\right],

    which is forward AIS from :math:`p_1` to :math:`p_0`: with exact start
    states :math:`E[w^{\mathrm{rev}}] = Z_0 / Z`, so
    :math:`E[\log Z_0 - \log \overline{w^{\mathrm{rev}}}] \ge \log Z`.

    References
    ----------
    Burda, Y., Grosse, R. & Salakhutdinov, R. (2015). Accurate and
    conservative estimates of MRF log-likelihood using reverse annealing.
    AISTATS.
    Grosse, R. B., Ghahramani, Z. & Adams, R. P. (2015). Sandwiching the
    marginal likelihood using bidirectional Monte Carlo. arXiv:1511.02543.
    """
    form, g, spin, z0 = _path(model, base)
    shape = np.shape(states)
    if len(shape) == 2:
        # the checked copy, the working copy and the per-chain buffers
        _check_chain_memory(shape[0], shape[1] + 2 * shape[1], 2, "reverse_ais")
    x2d, _ = model.check_states(states, "states")
    bs = _check_betas(betas)
    ss = as_seed_sequence(seed)
    x = np.array(x2d, dtype=np.float64, order="C", copy=True)
    n_chains = x.shape[0]
    rng = chain_states(ss, n_chains, STREAM_AIS)
    logw = np.zeros(n_chains)
    _run(form, g, spin, np.ascontiguousarray(bs[::-1]), x, rng, logw, False, "reverse_ais")
    lme, stderr, ess = _summarise(logw)
    return AISResult(
        log_z=z0 - lme, stderr=stderr, ess=ess, log_weights=z0 - logw,
        log_z_base=z0, x=x, reverse=True,
    )


def log_likelihood(model, x, n_chains, betas, seed, base=None):
    r"""AIS estimate of the per-sample log-likelihood :math:`\log p(x) = -F(x) - \log Z`.

    Parameters
    ----------
    model : RBM, GRBM or Ising
        For RBM/GRBM, ``-F`` is the exact free energy (hidden units summed
        out); for Ising, ``-E``.
    x : array_like of shape (n, d) or (d,)
        Test states in the model's domain.
    n_chains, betas, seed, base
        Passed to :func:`ais`. For the Salakhutdinov & Murray base, pass the
        *training* data as ``base``.

    Returns
    -------
    log_p : ndarray of shape (n,) (0-d for a single state)
        :math:`-F(x_i) - \widehat{\log Z}`; the mean over a test set is the
        usual "estimated test log-likelihood". Since
        :math:`\widehat{\log Z}` underestimates on average, ``log_p``
        overestimates on average.
    result : AISResult
        The AIS run; ``result.stderr`` is the standard error shared by every
        entry of ``log_p`` (the same estimate of :math:`\log Z` enters all).

    Raises
    ------
    TypeError, ValueError
        As :func:`ais`, and for ``x`` outside the model's domain.

    References
    ----------
    Salakhutdinov, R. & Murray, I. (2008). On the quantitative analysis of
    deep belief networks. ICML.
    """
    _path(model, base)
    x2d, was_1d = model.check_states(x, "x")
    res = ais(model, n_chains, betas, seed, base=base)
    lp = -model.energy(x2d) - res.log_z
    return (lp[0] if was_1d else lp), res
