r"""Annealed importance sampling (AIS) and reverse AIS for log partition functions.

Public functions: :func:`ais`, :func:`reverse_ais`, :func:`betas`,
:func:`log_likelihood`; result type :class:`AISResult`. The Numba
transition kernels are in :mod:`ebm_ref.estimate._kernels`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numba
import numpy as np

from .._numerics import softplus
from .._rng import STREAM_AIS, as_seed_sequence, chain_states
from .._validation import as_float_array, check_int
from . import _kernels

__all__ = ["AISResult", "ais", "reverse_ais", "betas", "log_likelihood"]

_SUPPORTED = ("RBM", "GRBM", "Ising")
_KINDS = ("linear", "sigmoid", "three_piece")
# Salakhutdinov & Murray (2008): 500, 4000 and 10000 inverse temperatures in
# [0, 0.5), [0.5, 0.9) and [0.9, 1].
_THREE_PIECE = ((0.0, 0.5, 500), (0.5, 0.9, 4000), (0.9, 1.0, 10000))


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


# --------------------------------------------------------------- schedules
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
        For ``n`` too small, an unknown ``kind`` or a bad ``delta``.

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


# ------------------------------------------------------------------- paths
def _model_kind(model):
    """``"RBM"``, ``"GRBM"`` or ``"Ising"``; ``TypeError`` for anything else."""
    from ..energies.rbm import RBM

    if isinstance(model, RBM):
        return "RBM"
    for kind, module in (("GRBM", "grbm"), ("Ising", "ising")):
        try:
            mod = __import__(f"ebm_ref.energies.{module}", fromlist=[kind])
        except ImportError:
            continue
        if isinstance(model, getattr(mod, kind)):
            return kind
    raise TypeError(
        f"`model` must be one of {', '.join(_SUPPORTED)} for AIS; got {type(model).__name__}."
    )


def _fit_base_logits(model, base, spin):
    """Base log-odds from data marginals, add-one (Laplace) smoothed."""
    x2d, _ = model.check_states(base, "base")
    n = x2d.shape[0]
    ones = (x2d > 0).sum(axis=0)
    p = (ones + 1.0) / (n + 2.0)
    logit = np.log(p) - np.log1p(-p)
    # For spins, p(s_i = +1) = sigmoid(2 g_i).
    return 0.5 * logit if spin else logit


class _Path:
    """A model's annealing path: base ``log Z_0`` and the kernel to run it."""

    def __init__(self, model, base):
        self.kind = _model_kind(model)
        p = model.params
        if self.kind == "RBM":
            self._W = p["W"]
            self._WT = np.ascontiguousarray(p["W"].T)
            self._b_v = p["b_v"]
            self._b_h = p["b_h"]
            if base is None:
                b_A = p["b_v"].copy()
            elif isinstance(base, str) and base == "uniform":
                b_A = np.zeros_like(p["b_v"])
            elif isinstance(base, str):
                raise ValueError(f"`base` must be None, 'uniform' or an array of data states; got {base!r}.")
            else:
                b_A = _fit_base_logits(model, base, spin=False)
            self._b_A = np.ascontiguousarray(b_A, dtype=np.float64)
            H = p["W"].shape[1]
            self.log_z0 = float(H * math.log(2.0) + softplus(self._b_A).sum())
        elif self.kind == "GRBM":
            if base is not None:
                raise ValueError(
                    "`base` must be None for GRBM (the base is N(mu, sigma^2) with independent "
                    f"uniform hidden units); got {type(base).__name__}."
                )
            self._W = p["W"]
            self._WT = np.ascontiguousarray(p["W"].T)
            self._mu = p["mu"]
            self._b_h = p["b_h"]
            self._sigma = np.exp(0.5 * p["log_var"])
            V, H = p["W"].shape
            self.log_z0 = float(
                H * math.log(2.0) + 0.5 * V * math.log(2.0 * math.pi) + 0.5 * p["log_var"].sum()
            )
        else:
            J = p["J"]
            spin = model.domain == "spin"
            self._spin = spin
            if base is None:
                g = p["h"].copy()
            elif isinstance(base, str) and base == "uniform":
                g = np.zeros_like(p["h"])
            elif isinstance(base, str):
                raise ValueError(f"`base` must be None, 'uniform' or an array of data states; got {base!r}.")
            else:
                g = _fit_base_logits(model, base, spin=spin)
            self._g = np.ascontiguousarray(g, dtype=np.float64)
            self._h = p["h"]
            rows, cols = np.nonzero(J)
            self._indptr = np.searchsorted(rows, np.arange(J.shape[0] + 1)).astype(np.int64)
            self._indices = cols.astype(np.int64)
            self._data = np.ascontiguousarray(J[rows, cols])
            if spin:
                self.log_z0 = float(np.logaddexp(self._g, -self._g).sum())
            else:
                self.log_z0 = float(softplus(self._g).sum())
        self.n_features = model.n_features

    def run(self, path, x, rng, logw, from_base):
        if self.kind == "RBM":
            _kernels.rbm_run(
                self._W, self._WT, self._b_v, self._b_h, self._b_A, path, x, rng, logw, from_base,
                numba.get_num_threads(),
            )
        elif self.kind == "GRBM":
            _kernels.grbm_run(
                self._W, self._WT, self._mu, self._b_h, self._sigma, path, x, rng, logw, from_base,
                numba.get_num_threads(),
            )
        else:
            _kernels.ising_run(
                self._indptr, self._indices, self._data, self._h, self._g, self._spin,
                path, x, rng, logw, from_base,
            )


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
    path_obj = _Path(model, base)
    n_chains = check_int(n_chains, "n_chains", minimum=1)
    bs = _check_betas(betas)
    ss = as_seed_sequence(seed)
    rng = chain_states(ss, n_chains, STREAM_AIS)
    x = np.zeros((n_chains, path_obj.n_features))
    logw = np.zeros(n_chains)
    path_obj.run(bs, x, rng, logw, True)
    lme, stderr, ess = _summarise(logw)
    z0 = path_obj.log_z0
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
    path_obj = _Path(model, base)
    x2d, _ = model.check_states(states, "states")
    bs = _check_betas(betas)
    ss = as_seed_sequence(seed)
    x = np.array(x2d, dtype=np.float64, order="C", copy=True)
    n_chains = x.shape[0]
    rng = chain_states(ss, n_chains, STREAM_AIS)
    logw = np.zeros(n_chains)
    path_obj.run(np.ascontiguousarray(bs[::-1]), x, rng, logw, False)
    lme, stderr, ess = _summarise(logw)
    z0 = path_obj.log_z0
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
    _model_kind(model)
    x2d, was_1d = model.check_states(x, "x")
    res = ais(model, n_chains, betas, seed, base=base)
    lp = -model.energy(x2d) - res.log_z
    return (lp[0] if was_1d else lp), res
