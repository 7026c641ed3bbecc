r"""Normalised mixture of diagonal Gaussians, parameterised by its logits."""

from __future__ import annotations

import math

import numpy as np

from .._jit import jit
from .._numerics import logsumexp
from .._rng import as_seed_sequence
from .._validation import as_float_array, check_finite, check_int
from ._base import EnergyModel

__all__ = ["GaussianMixture"]

_LOG_2PI = math.log(2.0 * math.pi)


def _softmax(a, axis=-1):
    a = np.asarray(a, dtype=np.float64)
    z = a - np.max(a, axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


# Numba form (registered in energies/kernels.py, continuous family)
@jit
def nb_energy_grad(ip, fp, x, g, need_grad, work):
    """Energy of one state ``x`` (layout of ``_numba_form``), by log-sum-exp
    shifted by the largest component; writes ``dE/dx`` into ``g`` if
    ``need_grad``. ``work`` holds the ``K`` component terms."""
    d = ip[0]
    K = ip[1]
    o_inv = K * d
    o_norm = 2 * K * d
    m = -np.inf
    for k in range(K):
        q = 0.0
        for j in range(d):
            t = (x[j] - fp[k * d + j]) * fp[o_inv + k * d + j]
            q += t * t
        lk = fp[o_norm + k] - 0.5 * q
        work[k] = lk
        if lk > m:
            m = lk
    if m == -np.inf:
        # every component underflowed: the energy is +inf (a rejection) and
        # the gradient has no finite value worth following
        if need_grad:
            for j in range(d):
                g[j] = 0.0
        return np.inf
    s = 0.0
    for k in range(K):
        work[k] = math.exp(work[k] - m)
        s += work[k]
    if need_grad:
        for j in range(d):
            g[j] = 0.0
        for k in range(K):
            r = work[k] / s
            for j in range(d):
                inv = fp[o_inv + k * d + j]
                g[j] += r * (x[j] - fp[k * d + j]) * inv * inv
    return -(m + math.log(s))


class GaussianMixture(EnergyModel):
    r"""Mixture of diagonal Gaussians; only the mixing logits are parameters.

    Parameters
    ----------
    logits : array_like of shape (K,)
        Mixing logits :math:`\lambda`; weights :math:`\pi = \operatorname{softmax}(\lambda)`.
        The only entry of ``params``.
    means : array_like of shape (K, d)
        Component means :math:`m_k` (a fixed attribute, not a parameter).
    log_scales : array_like of shape (K, d)
        Component log standard deviations (fixed attribute);
        :math:`s_{kd} = e^{\mathrm{log\_scales}_{kd}}`.

    Notes
    -----
    .. math::

        E(x) = -\log \sum_k \pi_k\, \mathcal N(x; m_k, \operatorname{diag} s_k^2),
        \qquad \log Z = 0,

    computed as :math:`-\operatorname{logsumexp}_k \ell_k` with
    :math:`\ell_k = \lambda_k - \operatorname{logsumexp}(\lambda) -
    \tfrac12\sum_d ((x_d - m_{kd})/s_{kd})^2 - \sum_d \log s_{kd} -
    \tfrac d2\log 2\pi`. With responsibilities :math:`r = \operatorname{softmax}(\ell)`,
    :math:`e_{kd} = (x_d - m_{kd})/s_{kd}^2`, :math:`g_d = \sum_k r_k e_{kd}`
    and :math:`\rho_{kd} = 1/s_{kd}^2 - (e_{kd} - g_d)^2`:

    .. math::

        \partial_{x_d} E = g_d, \qquad
        \partial^2_{x_d} E = \sum_k r_k \rho_{kd}

    (the mean curvature minus the responsibility-weighted variance of
    :math:`e`, written as a sum of centred squares so nothing cancels). The
    logits enter through :math:`\partial\ell_k/\partial\lambda_j =
    \delta_{kj} - \pi_j`, so :math:`\partial r_k/\partial\lambda_j =
    r_k(\delta_{kj} - r_j)` and

    .. math::

        \partial_{\lambda_j} E = \pi_j - r_j, \quad
        \partial_{\lambda_j} \big[u^\top\nabla_x E\big] = r_j \sum_d u_d (e_{jd} - g_d), \quad
        \partial_{\lambda_j} \Big[\sum_d c_d \partial^2_{x_d} E\Big]
            = r_j \sum_d c_d (\rho_{jd} - \partial^2_{x_d}E)

    (the terms through :math:`g` vanish because :math:`\sum_k r_k (e_{kd} -
    g_d) = 0`). The density is normalised, so
    :math:`\mathbb E_p[\partial_\lambda E] = 0` and :math:`\log Z = 0` in any
    dimension (:meth:`_exact_log_partition`).

    The two-component family :math:`p_\rho = \rho g_1 + (1-\rho) g_2` of the
    energy-discrepancy figure (Schroeder et al. 2023) is
    :meth:`two_component`.

    References
    ----------
    Bishop, C. M. (2006). Pattern Recognition and Machine Learning, §9.2.
    Schroeder, T., Ou, Z., Lim, J. N., Li, Y., Vollmer, S. J. and Duncan,
    A. B. (2023). Energy discrepancies: a score-independent loss for
    energy-based models. NeurIPS.
    """

    domain = "real"

    def __init__(self, logits, means, log_scales):
        means_arr = as_float_array(means, "means")
        if means_arr.ndim != 2 or means_arr.shape[0] < 1 or means_arr.shape[1] < 1:
            raise ValueError(
                f"`means` of GaussianMixture must be a 2-D array of shape (K, d), K, d >= 1; "
                f"got shape {means_arr.shape}."
            )
        check_finite(means_arr, "means")
        K, d = means_arr.shape
        ls = as_float_array(log_scales, "log_scales")
        if ls.shape != (K, d):
            raise ValueError(f"`log_scales` of GaussianMixture must have shape {(K, d)} (as `means`); got {ls.shape}.")
        check_finite(ls, "log_scales")
        if np.any(np.abs(ls) > 300.0):
            idx = tuple(int(i) for i in np.argwhere(np.abs(ls) > 300.0)[0])
            raise ValueError(
                f"`log_scales` of GaussianMixture must lie in [-300, 300] so that exp(-2 log_scales) is finite; "
                f"got {ls[idx]!r} at index {idx}."
            )
        self._means = means_arr.copy()
        self._log_scales = ls.copy()
        self._means.flags.writeable = False
        self._log_scales.flags.writeable = False
        self._set_params({"logits": logits}, {"logits": (K,)})

    @classmethod
    def two_component(cls, rho, mean1, mean2, log_scale1=0.0, log_scale2=0.0):
        r"""The family :math:`p_\rho = \rho\, g_1 + (1-\rho)\, g_2`.

        Parameters
        ----------
        rho : float
            Weight of the first component, in the open interval (0, 1).
        mean1, mean2 : float or array_like of shape (d,)
        log_scale1, log_scale2 : float or array_like of shape (d,), default 0
            Broadcast to the shape of the means.

        Returns
        -------
        GaussianMixture
            With ``logits = [log rho, log(1 - rho)]``.
        """
        if isinstance(rho, (bool, np.bool_)) or not np.isscalar(rho) or not np.isreal(rho):
            raise TypeError(f"`rho` must be a real number; got {type(rho).__name__}.")
        rho = float(rho)
        if not (0.0 < rho < 1.0):
            raise ValueError(f"`rho` must lie in the open interval (0, 1); got {rho!r}.")
        m1 = np.atleast_1d(as_float_array(mean1, "mean1"))
        m2 = np.atleast_1d(as_float_array(mean2, "mean2"))
        if m1.ndim != 1 or m1.shape != m2.shape:
            raise ValueError(
                f"`mean1` and `mean2` must be scalars or 1-D arrays of the same shape; got {m1.shape} and {m2.shape}."
            )
        s1 = np.broadcast_to(as_float_array(log_scale1, "log_scale1"), m1.shape)
        s2 = np.broadcast_to(as_float_array(log_scale2, "log_scale2"), m1.shape)
        return cls([math.log(rho), math.log1p(-rho)], np.stack([m1, m2]), np.stack([s1, s2]))

    @property
    def n_features(self):
        return self._means.shape[1]

    @property
    def n_components(self):
        """Number of components ``K``."""
        return self._means.shape[0]

    @property
    def means(self):
        """Component means, shape ``(K, d)`` (read-only)."""
        return self._means

    @property
    def log_scales(self):
        """Component log standard deviations, shape ``(K, d)`` (read-only)."""
        return self._log_scales

    @property
    def weights(self):
        r"""Mixing weights :math:`\operatorname{softmax}(\lambda)`, shape ``(K,)``."""
        return _softmax(self._params["logits"])

    def __repr__(self):
        return f"GaussianMixture(logits={self._params['logits'].shape}, means={self._means.shape})"

    # ------------------------------------------------------------- helpers
    def _log_components(self, x):
        """``ell`` (n, K) and ``e`` (n, K, d) of the Notes."""
        lam = self._params["logits"]
        log_pi = lam - logsumexp(lam)
        inv_var = np.exp(-2.0 * self._log_scales)
        diff = x[:, None, :] - self._means[None, :, :]
        e = diff * inv_var
        quad = (diff * e).sum(axis=2)
        const = self._log_scales.sum(axis=1) + 0.5 * self.n_features * _LOG_2PI
        ell = log_pi - 0.5 * quad - const
        return ell, e, inv_var

    @staticmethod
    def _resp(ell):
        return _softmax(ell, axis=1)

    # --------------------------------------------------------------- hooks
    NUMBA_KIND = 2

    def _numba_form(self):
        # ip: [d, K]; fp: [means (K, d), 1/scales (K, d), log w_k - sum log s_k - d/2 log 2 pi]
        logits = self._params["logits"]
        means, log_scales = self.means, self.log_scales
        K, d = means.shape
        log_w = logits - np.logaddexp.reduce(logits)
        log_norm = log_w - log_scales.sum(axis=1) - 0.5 * d * _LOG_2PI
        fp = np.concatenate([means.ravel(), np.exp(-log_scales).ravel(), log_norm])
        return self.NUMBA_KIND, np.array([d, K], dtype=np.int64), fp, K

    def _energy(self, x):
        ell, _, _ = self._log_components(x)
        return -logsumexp(ell, axis=1)

    def _grad_x(self, x):
        ell, e, _ = self._log_components(x)
        r = self._resp(ell)
        return np.einsum("nk,nkd->nd", r, e)

    def _rho(self, x):
        ell, e, inv_var = self._log_components(x)
        r = self._resp(ell)
        g = np.einsum("nk,nkd->nd", r, e)
        dev = e - g[:, None, :]
        rho = inv_var[None, :, :] - dev * dev
        return r, g, dev, rho

    def _hessian_diag(self, x):
        r, _, _, rho = self._rho(x)
        return np.einsum("nk,nkd->nd", r, rho)

    def _grad_params(self, x, w):
        ell, _, _ = self._log_components(x)
        r = self._resp(ell)
        return {"logits": self.weights * w.sum() - w @ r}

    def _grad_params_of_grad_x(self, x, u):
        r, _, dev, _ = self._rho(x)
        return {"logits": (r * np.einsum("nd,nkd->nk", u, dev)).sum(axis=0)}

    def _grad_params_of_hessian_diag(self, x, c):
        r, _, _, rho = self._rho(x)
        hd = np.einsum("nk,nkd->nd", r, rho)
        return {"logits": (r * np.einsum("nd,nkd->nk", c, rho - hd[:, None, :])).sum(axis=0)}

    # ------------------------------------------------------ exact quantities
    def _exact_log_partition(self):
        r"""``(0.0, bound)``: the density is normalised in any dimension.

        The bound, ``K`` ulps of 1, covers the rounding of the computed
        weights :math:`\pi = \operatorname{softmax}(\lambda)`, whose sum
        differs from 1 by at most that much.
        """
        return 0.0, float(self.n_components * np.finfo(np.float64).eps)

    def _exact_mean_grad_params(self):
        r""":math:`\mathbb E_p[\partial E/\partial\lambda] = \pi - \mathbb E_p[r] = 0` (dict)."""
        return {"logits": np.zeros(self.n_components)}

    def log_prob(self, x):
        r"""Exact :math:`\log p(x) = -E(x)` (the mixture is normalised), shape ``(n,)``."""
        return -self.energy(x)

    def sample(self, n, seed):
        r"""Exact draws, shape ``(n, d)``: a component from :math:`\pi`, then its Gaussian.

        Parameters
        ----------
        n : int
            Number of samples (>= 1).
        seed : int, SeedSequence or Generator
            Turned into a :class:`numpy.random.Generator` through
            :func:`ebm_ref._rng.as_seed_sequence`.

        Returns
        -------
        ndarray of shape (n, d)
        """
        n = check_int(n, "n", minimum=1)
        gen = np.random.default_rng(as_seed_sequence(seed))
        k = gen.choice(self.n_components, size=n, p=self.weights)
        z = gen.standard_normal((n, self.n_features))
        return self._means[k] + np.exp(self._log_scales[k]) * z

    # ----------------------------------------- sliced score matching hooks
    def _hvp(self, x, v):
        r"""Hessian-vector product :math:`H(x_i) v_i` in ``x``, shape ``(n, d)``.

        With responsibilities :math:`r_k`, :math:`e_k = \Lambda_k (x -
        m_k)` (:math:`\Lambda_k = \operatorname{diag} e^{-2\,\mathrm{log\_scales}_k}`)
        and :math:`g = \sum_k r_k e_k = \nabla_x E`:
        :math:`H = \sum_k r_k \Lambda_k - \sum_k r_k (e_k - g)(e_k - g)^\top`,
        so :math:`Hv = \sum_k r_k [\Lambda_k v - (e_k - g)((e_k - g)\cdot v)]`
        (O(K d) per sample). Used by
        :class:`~ebm_ref.objectives.SlicedScoreMatching`.
        """
        r, _, dev, _ = self._rho(x)
        inv_var = np.exp(-2.0 * self._log_scales)
        dv = np.einsum("nkd,nd->nk", dev, v)
        out = np.einsum("nk,kd->nd", r, inv_var) * v - np.einsum("nk,nkd->nd", r * dv, dev)
        return out

    def _grad_params_of_hvp(self, x, v, u):
        r"""``sum_i d/dtheta [u_i . H(x_i) v_i]`` (dict, ``logits`` only); ``v``, ``u`` constant.

        Notes
        -----
        :math:`u^\top H v = \sum_k r_k \alpha_k + (g\cdot u)(g\cdot v)` with
        :math:`\alpha_k = u^\top\Lambda_k v - (e_k\cdot u)(e_k\cdot v)`; with
        :math:`\partial r_k/\partial\lambda_j = r_k(\delta_{kj} - r_j)` and
        :math:`\partial g/\partial\lambda_j = r_j (e_j - g)`, entry ``j`` is
        :math:`\sum_i r_j[\alpha_j - \bar\alpha + ((e_j - g)\cdot u)(g\cdot v)
        + (g\cdot u)((e_j - g)\cdot v)]`, :math:`\bar\alpha = \sum_k r_k\alpha_k`.
        """
        ell, e, inv_var = self._log_components(x)
        r = self._resp(ell)
        g = np.einsum("nk,nkd->nd", r, e)
        eu = np.einsum("nkd,nd->nk", e, u)
        ev = np.einsum("nkd,nd->nk", e, v)
        alpha = (u * v) @ inv_var.T - eu * ev
        gu = (g * u).sum(axis=1)[:, None]
        gv = (g * v).sum(axis=1)[:, None]
        abar = (r * alpha).sum(axis=1)[:, None]
        per = r * (alpha - abar + (eu - gu) * gv + gu * (ev - gv))
        return {"logits": per.sum(axis=0)}
