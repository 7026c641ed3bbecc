r"""Gaussian-Bernoulli restricted Boltzmann machine (Liao et al. 2022 form)."""

from __future__ import annotations

import math

import numpy as np

from .._jit import ON, jit
from .._numerics import logsumexp, nb_sigmoid, nb_softplus, sigmoid, sigmoid_prime, softplus
from .._validation import check_abs_bound, check_batch
from ._base import EnergyModel
from ._bipartite import Bipartite
from ._grbm_exact import hidden_block, hidden_scores, log_partition, mean_grad_params
from ._tempered import boltzmann_run, unpack_form

__all__ = ["GRBM", "MAX_HIDDEN_ENUMERATION", "MAX_HIDDEN_MIXTURE"]

#: Largest hidden layer whose 2^H states ``_exact_log_partition`` and
#: ``_exact_mean_grad_params`` enumerate (2^25 ~ 3.4e7 states, processed in
#: chunks: seconds to a minute, memory bounded by the chunk).
MAX_HIDDEN_ENUMERATION = 25
#: Largest hidden layer for :meth:`GRBM.visible_mixture`, which returns all
#: 2^H component means at once (2^20 x V floats).
MAX_HIDDEN_MIXTURE = 20


# Numba form (registered in energies/kernels.py, continuous family)
@jit
def nb_energy_grad(ip, fp, x, g, need_grad, work):
    """Free energy ``F(v)`` of one visible state (layout of ``_numba_form``);
    writes ``dF/dv`` into ``g`` if ``need_grad``. ``work`` holds the ``H``
    hidden pre-activations (then their sigmoids)."""
    V = ip[0]
    H = ip[1]
    o_mu = V * H
    o_b = o_mu + V
    o_iv = o_b + H
    for j in range(H):
        work[j] = fp[o_b + j]
    quad = 0.0
    for i in range(V):
        iv = fp[o_iv + i]
        dv = x[i] - fp[o_mu + i]
        quad += dv * dv * iv
        y = x[i] * iv
        row = i * H
        for j in range(H):
            work[j] += y * fp[row + j]
    e = 0.5 * quad
    for j in range(H):
        e -= nb_softplus(work[j])
    if need_grad:
        for j in range(H):
            work[j] = nb_sigmoid(work[j])
        for i in range(V):
            row = i * H
            t = 0.0
            for j in range(H):
                t += fp[row + j] * work[j]
            iv = fp[o_iv + i]
            g[i] = (x[i] - fp[o_mu + i]) * iv - t * iv
    return e


class GRBM(Bipartite, EnergyModel):
    r"""Gaussian-Bernoulli RBM: real visible units, binary hidden units.

    Parameters
    ----------
    W : array_like of shape (V, H)
        Couplings between visible unit ``k`` and hidden unit ``j``.
    mu : array_like of shape (V,)
        Visible offsets (the mean of ``v`` when all hidden units are off).
    b_h : array_like of shape (H,)
        Hidden biases.
    log_var : array_like of shape (V,)
        Log variances of the visible units, :math:`\sigma_k^2 = e^{\mathrm{log\_var}_k}`.

    Notes
    -----
    Joint energy (Liao et al. 2022), with :math:`s_k = 1/\sigma_k^2 =
    e^{-\mathrm{log\_var}_k}` and :math:`u = v \odot s`:

    .. math::

        E(v, h) = \tfrac12 \sum_k s_k (v_k - \mu_k)^2 - u^\top W h - b_h^\top h.

    The conditionals are :math:`p(v \mid h) = \mathcal N(\mu + W h,
    \operatorname{diag}\sigma^2)` and :math:`p(h_j = 1 \mid v) =
    \operatorname{sigmoid}(a_j)`, :math:`a = b_h + W^\top u`. ``energy(v)`` is
    the free energy

    .. math::

        F(v) = -\log\sum_h e^{-E(v,h)}
             = \tfrac12 \sum_k s_k (v_k-\mu_k)^2 - \sum_j \operatorname{softplus}(a_j).

    With :math:`q = \operatorname{sigmoid}(a)`, :math:`q' = q(a)q(-a)`,
    :math:`q'' = q'\,(q(-a) - q(a))` and :math:`\ell = \mathrm{log\_var}`:

    .. math::

        \partial_{v_k} F = s_k\,[(v_k - \mu_k) - (W q)_k], \qquad
        \partial^2_{v_k} F = s_k - s_k^2 \sum_j W_{kj}^2 q'_j,

        \partial_{W_{kj}} F = -u_k q_j, \quad
        \partial_{\mu_k} F = -s_k (v_k - \mu_k), \quad
        \partial_{b_{h,j}} F = -q_j, \quad
        \partial_{\ell_k} F = -\tfrac12 s_k (v_k-\mu_k)^2 + u_k (W q)_k

    (:math:`\partial s_k/\partial\ell_k = -s_k`,
    :math:`\partial a_j/\partial\ell_k = -W_{kj} u_k`). Mixed derivatives,
    for a constant direction :math:`r` (``v`` of the public method) with
    :math:`t = r \odot s`, :math:`\beta = (W^\top t) \odot q'`:

    .. math::

        \partial_\theta\, r^\top\nabla_v F:\quad
        W: -t q^\top - u \beta^\top,\;
        \mu: -t,\;
        b_h: -\beta,\;
        \ell: -t \odot ((v-\mu) - W q) + u \odot (W \beta);

    and for constant weights :math:`c` with :math:`\gamma = c \odot s^2`,
    :math:`\kappa = (W^{\odot 2})^\top \gamma`:

    .. math::

        \partial_\theta \sum_k c_k \partial^2_{v_k} F:\quad
        W: -2 W \odot (\gamma q'^\top) - u (\kappa\odot q'')^\top,\;
        \mu: 0,\;
        b_h: -\kappa \odot q'',\;
        \ell: -c\odot s + 2\gamma \odot (W^{\odot 2} q') + u \odot (W(\kappa\odot q'')).

    **Partition function.** Completing the square in ``v`` for fixed ``h``
    (:math:`m = W h`):

    .. math::

        E(v,h) = \tfrac12 \sum_k s_k (v_k - \mu_k - m_k)^2
                 - \sum_k s_k \mu_k m_k - \tfrac12 \sum_k s_k m_k^2 - b_h^\top h,

    and the Gaussian integral :math:`\int e^{-\frac12 s_k (v_k - c)^2} dv_k =
    \sqrt{2\pi/s_k}` gives

    .. math::

        \log Z = \frac V2 \log 2\pi + \frac12 \sum_k \ell_k
               + \operatorname{logsumexp}_{h \in \{0,1\}^H}
                 \Big[b_h^\top h + \sum_k s_k \mu_k m_k + \tfrac12 \sum_k s_k m_k^2\Big].

    The bracket is :math:`\log` of the (unnormalised) marginal weight of
    ``h``, so :math:`p(v) = \sum_h \pi_h \mathcal N(v; \mu + W h,
    \operatorname{diag}\sigma^2)` with :math:`\pi = \operatorname{softmax}` of
    the bracket (:meth:`visible_mixture`). The model expectation of
    :math:`\partial F/\partial\theta` equals that of
    :math:`\partial E(v,h)/\partial\theta` under the joint, and with the
    Gaussian moments :math:`\mathbb E[v|h] = \mu + m`,
    :math:`\mathbb E[(v-\mu)^2|h] = m^2 + \sigma^2`:

    .. math::

        \mathbb E[\partial_W E \mid h] = -((\mu + m) \odot s)\, h^\top,\;
        \mathbb E[\partial_\mu E \mid h] = -s \odot m,\;
        \mathbb E[\partial_{b_h} E \mid h] = -h,\;
        \mathbb E[\partial_\ell E \mid h] = -\tfrac12 + s \odot (\mu \odot m + \tfrac12 m^2),

    averaged over :math:`\pi_h` (``_exact_mean_grad_params``). Hidden states
    are enumerated in lexicographic order with unit 0 the most significant,
    in chunks of :math:`2^{14}`, up to ``H = 25``.

    Softplus is ``logaddexp(0, a)``; sigmoid derivatives are products of two
    sigmoids, so nothing overflows for |W| ~ 50 (``log_var`` must keep
    :math:`e^{-\ell}` finite, i.e. :math:`\ell > -700`).

    References
    ----------
    Liao, R., Kornblith, S., Ren, M., Fleet, D. J. and Hinton, G. (2022).
    Gaussian-Bernoulli RBMs without tears. arXiv:2210.10318.
    Cho, K., Ilin, A. and Raiko, T. (2011). Improved learning of
    Gaussian-Bernoulli restricted Boltzmann machines. ICANN.
    """

    domain = "real"

    def __init__(self, W, mu, b_h, log_var):
        W_arr = np.asarray(W)
        if W_arr.ndim != 2:
            raise ValueError(f"`W` of GRBM must be a 2-D array of shape (V, H); got shape {W_arr.shape}.")
        V, H = W_arr.shape
        if V < 1 or H < 1:
            raise ValueError(f"`W` of GRBM must have at least one visible and one hidden unit; got {W_arr.shape}.")
        self._set_params(
            {"W": W, "mu": mu, "b_h": b_h, "log_var": log_var},
            {"W": (V, H), "mu": (V,), "b_h": (H,), "log_var": (V,)},
        )

    def _check_constraints(self, params):
        # s = exp(-log_var) and sigma^2 = exp(log_var) must both be finite, non-zero
        check_abs_bound(params["log_var"], 700.0, "log_var", "GRBM", "exp(+-log_var) is finite")

    def _check_h(self, h):
        return check_batch(h, self.n_hidden, "h", f"GRBM with {self.n_hidden} hidden units")

    # ---------------------------------------------------------- extras (docs/models.md)
    def joint_energy(self, v, h):
        r"""Joint energy :math:`E(v,h) = \frac12\|(v-\mu)/\sigma\|^2 - (v/\sigma^2)^\top W h - b_h^\top h`.

        Parameters
        ----------
        v : array_like of shape (n, V) or (V,)
        h : array_like of shape (n, H) or (H,)
            Same number of samples as ``v`` (any real values: the formula is
            evaluated as written).

        Returns
        -------
        ndarray of shape (n,) (0-d for single states)
        """
        v2, v1d = self._check_x(v, "v")
        h2, h1d = self._check_h(h)
        if v2.shape[0] != h2.shape[0]:
            raise ValueError(f"`v` and `h` must have the same number of samples; got {v2.shape[0]} and {h2.shape[0]}.")
        p = self._params
        s = np.exp(-p["log_var"])
        d = v2 - p["mu"]
        e = 0.5 * (d * d) @ s - np.einsum("nv,vh,nh->n", v2 * s, p["W"], h2) - h2 @ p["b_h"]
        return e[0] if (v1d and h1d) else e

    def prob_h_given_v(self, v):
        r""":math:`p(h_j = 1 | v) = \operatorname{sigmoid}(b_{h,j} + (W^\top (v/\sigma^2))_j)`, shape ``(n, H)``."""
        v2, v1d = self._check_x(v, "v")
        q = sigmoid(self._pre_hidden(v2, np.exp(-self._params["log_var"])))
        return q[0] if v1d else q

    def mean_v_given_h(self, h):
        r"""Mean :math:`W h + \mu` of :math:`p(v | h) = \mathcal N(W h + \mu, \operatorname{diag}\sigma^2)`, shape ``(n, V)``."""
        h2, h1d = self._check_h(h)
        m = h2 @ self._params["W"].T + self._params["mu"]
        return m[0] if h1d else m

    @property
    def variance(self):
        r"""Visible variances :math:`\sigma^2 = e^{\mathrm{log\_var}}`, shape ``(V,)``."""
        return np.exp(self._params["log_var"])

    # -------------------------------------------------------------- hooks
    def _pre_hidden(self, x, s):
        return (x * s) @ self._params["W"] + self._params["b_h"]

    NUMBA_KIND = 3

    def _numba_form(self):
        # ip: [V, H]; fp: [W (V, H), mu, b_h, 1/sigma^2]
        p = self._params
        V, H = p["W"].shape
        fp = np.concatenate([p["W"].ravel(), p["mu"], p["b_h"], np.exp(-p["log_var"])])
        return self.NUMBA_KIND, np.array([V, H], dtype=np.int64), fp, H

    def _tempered_form(self, base):
        # ip: [V, H]; fp: [W (V, H), W^T (H, V), mu, b_h, sigma]; the base is
        # N(mu, sigma^2) with independent uniform hidden units (no field g)
        if base is not None:
            raise ValueError(
                "`base` must be None for GRBM (the base is N(mu, sigma^2) with independent "
                f"uniform hidden units); got {type(base).__name__}."
            )
        p = self._params
        V, H = p["W"].shape
        sigma = np.exp(0.5 * p["log_var"])
        fp = np.concatenate([p["W"].ravel(), np.ascontiguousarray(p["W"].T).ravel(), p["mu"], p["b_h"], sigma])
        log_z0 = float(H * math.log(2.0) + 0.5 * V * math.log(2.0 * math.pi) + 0.5 * p["log_var"].sum())
        return self.NUMBA_KIND, np.array([V, H], dtype=np.int64), fp, H, np.empty(0), log_z0

    def _energy(self, x):
        p = self._params
        s = np.exp(-p["log_var"])
        d = x - p["mu"]
        return 0.5 * (d * d) @ s - softplus(self._pre_hidden(x, s)).sum(axis=1)

    def _grad_x(self, x):
        p = self._params
        s = np.exp(-p["log_var"])
        q = sigmoid(self._pre_hidden(x, s))
        return s * ((x - p["mu"]) - q @ p["W"].T)

    def _hessian_diag(self, x):
        p = self._params
        s = np.exp(-p["log_var"])
        qp = sigmoid_prime(self._pre_hidden(x, s))
        return s - (s * s) * (qp @ (p["W"] ** 2).T)

    def _grad_params(self, x, w):
        p = self._params
        s = np.exp(-p["log_var"])
        u = x * s
        q = sigmoid(u @ p["W"] + p["b_h"])
        d = x - p["mu"]
        wq = q @ p["W"].T
        return {
            "W": -(u * w[:, None]).T @ q,
            "mu": -s * (w @ d),
            "b_h": -(w @ q),
            "log_var": w @ (-0.5 * s * d * d + u * wq),
        }

    def _grad_params_of_grad_x(self, x, r):
        p = self._params
        W = p["W"]
        s = np.exp(-p["log_var"])
        u = x * s
        a = u @ W + p["b_h"]
        q = sigmoid(a)
        t = r * s
        beta = (t @ W) * sigmoid_prime(a)
        resid = (x - p["mu"]) - q @ W.T
        return {
            "W": -(t.T @ q) - u.T @ beta,
            "mu": -t.sum(axis=0),
            "b_h": -beta.sum(axis=0),
            "log_var": (-t * resid + u * (beta @ W.T)).sum(axis=0),
        }

    def _grad_params_of_hessian_diag(self, x, c):
        p = self._params
        W = p["W"]
        W2 = W * W
        s = np.exp(-p["log_var"])
        u = x * s
        a = u @ W + p["b_h"]
        qp = sigmoid_prime(a)
        qpp = qp * (sigmoid(-a) - sigmoid(a))
        gamma = c * (s * s)
        kq = (gamma @ W2) * qpp
        return {
            "W": -2.0 * W * (gamma.T @ qp) - u.T @ kq,
            "mu": np.zeros(self.n_visible),
            "b_h": -kq.sum(axis=0),
            "log_var": (-c * s + 2.0 * gamma * (qp @ W2.T) + u * (kq @ W.T)).sum(axis=0),
        }

    # ------------------------------------------------------ exact quantities
    def _check_enumerable(self, limit, what):
        if self.n_hidden > limit:
            raise ValueError(
                f"{what} enumerates the 2^H hidden states of the GRBM and refuses H > {limit}; "
                f"got H = {self.n_hidden} (2^{self.n_hidden} = {2 ** self.n_hidden} states)."
            )

    def _exact_log_partition(self):
        r"""Exact :math:`\log Z` by enumerating hidden states (see the class Notes).

        Returns
        -------
        value : float
        abs_err_bound : float
            Bound on the floating-point rounding: each bracket is a sum of
            :math:`H + 2V + 2` rounded products, so its error is at most
            :math:`(H + 2V + 4)\,\epsilon` times the same sum over absolute
            values; log-sum-exp and the constant add a few
            :math:`\epsilon` of their magnitude.

        Raises
        ------
        ValueError
            For more than ``MAX_HIDDEN_ENUMERATION`` (25) hidden units.
        """
        self._check_enumerable(MAX_HIDDEN_ENUMERATION, "GRBM._exact_log_partition")
        return log_partition(self._params)

    def _exact_mean_grad_params(self):
        r"""Model expectation :math:`\mathbb E_{p}[\partial F/\partial\theta]` (dict), exact.

        Uses the Gaussian moments of :math:`v \mid h` and the enumerated
        :math:`p(h)` (class Notes). It equals :math:`-\nabla_\theta \log Z`.

        Raises
        ------
        ValueError
            For more than ``MAX_HIDDEN_ENUMERATION`` (25) hidden units.
        """
        self._check_enumerable(MAX_HIDDEN_ENUMERATION, "GRBM._exact_mean_grad_params")
        return mean_grad_params(self._params)

    def visible_mixture(self):
        r"""The exact visible marginal as a Gaussian mixture.

        :math:`p(v) = \sum_h \pi_h \mathcal N(v; \mu + W h, \operatorname{diag}\sigma^2)`
        (class Notes), one component per hidden state.

        Returns
        -------
        weights : ndarray of shape (2^H,)
            :math:`\pi_h = p(h)`, summing to 1.
        means : ndarray of shape (2^H, V)
            :math:`\mu + W h`.
        variance : ndarray of shape (V,)
            The shared diagonal variance :math:`\sigma^2`.

        Row ``i`` belongs to the hidden state whose bits, unit 0 the most
        significant, spell ``i`` (lexicographic order, as
        ``ebm_ref.exact.probabilities``).

        Raises
        ------
        ValueError
            For more than ``MAX_HIDDEN_MIXTURE`` (20) hidden units.
        """
        self._check_enumerable(MAX_HIDDEN_MIXTURE, "GRBM.visible_mixture")
        H = self.n_hidden
        s = np.exp(-self._params["log_var"])
        h = hidden_block(H, 0, 1 << H)
        m, score, _ = hidden_scores(self._params, h, s)
        weights = np.exp(score - logsumexp(score))
        return weights, m + self._params["mu"], np.exp(self._params["log_var"])

    # ----------------------------------------- sliced score matching hooks
    def _hvp(self, x, v):
        r"""Hessian-vector product :math:`H(x_i) v_i` of the free energy, shape ``(n, V)``.

        With :math:`s = e^{-\ell}`, :math:`q' = \sigma'(a)`:
        :math:`H = \operatorname{diag}(s) - \operatorname{diag}(s)\, W
        \operatorname{diag}(q') W^\top \operatorname{diag}(s)`, so
        :math:`Hv = t - s \odot (W (q' \odot (W^\top t)))` with
        :math:`t = s \odot v` (O(V H) per sample). Used by
        :class:`~ebm_ref.objectives.SlicedScoreMatching`.
        """
        p = self._params
        s = np.exp(-p["log_var"])
        qp = sigmoid_prime(self._pre_hidden(x, s))
        t = v * s
        out = t - s * ((qp * (t @ p["W"])) @ p["W"].T)
        return out

    def _grad_params_of_hvp(self, x, v, u):
        r"""``sum_i d/dtheta [u_i . H(x_i) v_i]`` (dict); ``v`` and ``u`` held constant.

        Notes
        -----
        With :math:`t_u = s\odot u`, :math:`t_v = s\odot v`,
        :math:`m_u = W^\top t_u`, :math:`m_v = W^\top t_v` and
        :math:`P = m_u \odot m_v`,
        :math:`u^\top H v = \sum_k s_k u_k v_k - \sum_j q'_j P_j`. Using
        :math:`\partial a_j/\partial W_{kj} = s_k x_k`,
        :math:`\partial s_k/\partial\ell_k = -s_k` and
        :math:`\partial a_j/\partial\ell_k = -W_{kj} s_k x_k`:
        ``W``: :math:`-(s\odot x)^\top(q''\odot P) - t_u^\top(q'\odot m_v)
        - t_v^\top(q'\odot m_u)`; ``mu``: 0; ``b_h``: :math:`-\sum_i
        q''\odot P`; ``log_var``: :math:`\sum_i[-s\odot u\odot v + (s\odot x)
        \odot W(q''\odot P) + t_u\odot W(q'\odot m_v) + t_v\odot W(q'\odot
        m_u)]`.
        """
        p = self._params
        W = p["W"]
        s = np.exp(-p["log_var"])
        sx = x * s
        a = sx @ W + p["b_h"]
        qp = sigmoid_prime(a)
        qpp = qp * (sigmoid(-a) - sigmoid(a))
        tu, tv = u * s, v * s
        mu_, mv = tu @ W, tv @ W
        A = qpp * mu_ * mv
        Bv = qp * mv
        Bu = qp * mu_
        return ({
                "W": -(sx.T @ A) - tu.T @ Bv - tv.T @ Bu,
                "mu": np.zeros(self.n_visible),
                "b_h": -A.sum(axis=0),
                "log_var": (-s * u * v + sx * (A @ W.T) + tu * (Bv @ W.T) + tv * (Bu @ W.T)).sum(axis=0),
            }
        )


# --------------------------------------------------------------------------
# AIS: tempered transitions (dispatched by energies.kernels.tempered_run)
@jit
def nb_tempered_run(ip, fp, g, path, x, rng, logw, from_base, finish, n_threads):
    """AIS steps along ``path`` from the base ``N(mu, sigma^2)`` (``g`` unused; see ``_tempered.boltzmann_run``)."""
    W, WT, mu, b_h, sigma = unpack_form(ip, fp)
    boltzmann_run(ON, W, WT, mu, b_h, sigma, path, x, rng, logw, from_base, finish, n_threads)
