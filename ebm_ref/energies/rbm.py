r"""Bernoulli-Bernoulli restricted Boltzmann machine."""

from __future__ import annotations

import math

import numpy as np

from .._jit import OFF, jit, jit_inline
from .._numerics import nb_sigmoid, nb_softplus, sigmoid, sigmoid_prime, softplus
from .._validation import check_batch
from ._base import EnergyModel
from ._bipartite import Bipartite
from ._tempered import boltzmann_run, unpack_form

__all__ = ["RBM"]


class RBM(Bipartite, EnergyModel):
    r"""Restricted Boltzmann machine with binary visible and hidden units.

    Parameters
    ----------
    W : array_like of shape (V, H)
        Couplings (visible x hidden; scikit-learn's ``components_`` is the
        transpose).
    b_v : array_like of shape (V,)
        Visible biases.
    b_h : array_like of shape (H,)
        Hidden biases.

    Notes
    -----
    Joint energy and free energy (Hinton 2002; Smolensky 1986):

    .. math::

        E(v, h) = -b_v^\top v - b_h^\top h - v^\top W h, \qquad
        F(v) = -\log \sum_h e^{-E(v,h)}
             = -b_v^\top v - \sum_j \operatorname{softplus}(a_j),
        \quad a = b_h + W^\top v.

    ``energy(v)`` is :math:`F(v)` (the visible marginal is
    :math:`p(v) \propto e^{-F(v)}`), evaluated for any real ``v`` (the
    continuous extension used by Gibbs-with-gradients and finite
    differences). With :math:`s = \sigma(a)`, :math:`s' = \sigma(a)\sigma(-a)`,
    :math:`s'' = s'\,(\sigma(-a) - \sigma(a))`:

    .. math::

        \partial F/\partial v_k = -b_{v,k} - \sum_j W_{kj} s_j, \qquad
        \partial^2 F/\partial v_k^2 = -\sum_j W_{kj}^2 s'_j,

        \partial F/\partial W_{kj} = -v_k s_j, \quad
        \partial F/\partial b_v = -v, \quad \partial F/\partial b_h = -s.

    Mixed derivatives (``u`` and ``c`` held constant):

    .. math::

        \partial_\theta \textstyle\sum_k u_k \partial_{v_k} F:\;
        W: -u s^\top - v\,((W^\top u) \odot s')^\top,\;
        b_v: -u,\; b_h: -(W^\top u) \odot s',

        \partial_\theta \textstyle\sum_k c_k \partial^2_{v_k} F:\;
        W: -2 W \odot (c\, s'^\top) - v\,((W^{\odot 2})^\top c \odot s'')^\top,\;
        b_v: 0,\; b_h: -(W^{\odot 2})^\top c \odot s''.

    Softplus is ``logaddexp(0, a)`` and the sigmoid derivatives are products
    of two sigmoids, so nothing overflows or loses its digits for |W| ~ 50.

    References
    ----------
    Hinton, G. E. (2002). Training products of experts by minimizing
    contrastive divergence. Neural Computation 14(8).
    """

    domain = "binary"

    def __init__(self, W, b_v, b_h):
        W_arr = np.asarray(W)
        if W_arr.ndim != 2:
            raise ValueError(f"`W` of RBM must be a 2-D array of shape (V, H); got shape {W_arr.shape}.")
        V, H = W_arr.shape
        if V < 1 or H < 1:
            raise ValueError(f"`W` of RBM must have at least one visible and one hidden unit; got {W_arr.shape}.")
        self._set_params({"W": W, "b_v": b_v, "b_h": b_h}, {"W": (V, H), "b_v": (V,), "b_h": (H,)})

    # ------------------------------------------------ extras (docs/models.md)
    def joint_energy(self, v, h):
        r"""Joint energy :math:`E(v,h) = -b_v^\top v - b_h^\top h - v^\top W h`.

        Parameters
        ----------
        v : array_like of shape (n, V) or (V,)
        h : array_like of shape (n, H) or (H,)
            Same number of samples as ``v``.

        Returns
        -------
        ndarray of shape (n,) (0-d for single states)
        """
        v2, v1d = self._check_x(v, "v")
        h2, h1d = check_batch(h, self.n_hidden, "h", f"RBM with {self.n_hidden} hidden units")
        if v2.shape[0] != h2.shape[0]:
            raise ValueError(f"`v` and `h` must have the same number of samples; got {v2.shape[0]} and {h2.shape[0]}.")
        p = self._params
        e = -v2 @ p["b_v"] - h2 @ p["b_h"] - np.einsum("nv,vh,nh->n", v2, p["W"], h2)
        return e[0] if (v1d and h1d) else e

    def prob_h_given_v(self, v):
        r""":math:`p(h_j = 1 | v) = \sigma(b_{h,j} + (W^\top v)_j)`, shape ``(n, H)``."""
        v2, v1d = self._check_x(v, "v")
        p = sigmoid(self._pre_hidden(v2))
        return p[0] if v1d else p

    def prob_v_given_h(self, h):
        r""":math:`p(v_k = 1 | h) = \sigma(b_{v,k} + (W h)_k)`, shape ``(n, V)``."""
        h2, h1d = check_batch(h, self.n_hidden, "h", f"RBM with {self.n_hidden} hidden units")
        p = sigmoid(h2 @ self._params["W"].T + self._params["b_v"])
        return p[0] if h1d else p

    def tempered(self, beta):
        r"""The RBM at inverse temperature ``beta``: ``RBM(beta W, beta b_v, beta b_h)``.

        The joint energy is linear in the parameters,
        :math:`\beta E(v, h; W, b_v, b_h) = E(v, h; \beta W, \beta b_v,
        \beta b_h)`, so the visible marginal of :math:`e^{-\beta E(v,h)}`
        is this RBM's. Its ``energy`` is the free energy
        :math:`F_\beta(v) = -\beta b_v^\top v - \sum_j
        \operatorname{softplus}(\beta a_j)`, which is *not*
        :math:`\beta F(v)` (the hidden units are summed out at the new
        temperature). ``beta = 0`` gives the uniform distribution.

        Parameters
        ----------
        beta : float
            Finite and ``>= 0``.

        Returns
        -------
        RBM
            A new model; ``self`` is unchanged.

        Raises
        ------
        TypeError
            If ``beta`` is not a real number.
        ValueError
            If ``beta`` is negative, NaN or infinite, or the tempered weights overflow.

        See Also
        --------
        EnergyModel.tempered : the contract, and the papers on tempering.
        """
        b = self._check_beta(beta)
        with np.errstate(over="ignore"):
            scaled = {k: b * v for k, v in self._params.items()}
        if not all(np.all(np.isfinite(v)) for v in scaled.values()):
            raise ValueError(f"`beta` = {b!r} makes the tempered weights b * W, b * b_v, b * b_h non-finite.")
        return self.with_params(scaled)

    # ----------------------------------------------------------------- hooks
    def _pre_hidden(self, v):
        return v @ self._params["W"] + self._params["b_h"]

    NUMBA_KIND = 5

    def _numba_form(self):
        # ip: [V, H]; fp: [W (V, H), b_v, b_h]
        p = self._params
        V, H = p["W"].shape
        fp = np.concatenate([p["W"].ravel(), p["b_v"], p["b_h"]])
        return self.NUMBA_KIND, np.array([V, H], dtype=np.int64), fp, H

    def _tempered_form(self, base):
        # ip: [V, H]; fp: [W (V, H), W^T (H, V), b_v, b_h]; g: the base's visible
        # log-odds b_A (default b_v: Salakhutdinov & Murray's base)
        p = self._params
        V, H = p["W"].shape
        b_A = self._base_field(base, p["b_v"])
        fp = np.concatenate([p["W"].ravel(), np.ascontiguousarray(p["W"].T).ravel(), p["b_v"], p["b_h"]])
        log_z0 = float(H * math.log(2.0) + softplus(b_A).sum())
        return self.NUMBA_KIND, np.array([V, H], dtype=np.int64), fp, H, b_A, log_z0

    def _energy(self, x):
        a = self._pre_hidden(x)
        return -x @ self._params["b_v"] - softplus(a).sum(axis=1)

    def _grad_x(self, x):
        s = sigmoid(self._pre_hidden(x))
        return -self._params["b_v"] - s @ self._params["W"].T

    def _hessian_diag(self, x):
        sp = sigmoid_prime(self._pre_hidden(x))
        return -(sp @ (self._params["W"] ** 2).T)

    def _grad_params(self, x, w):
        s = sigmoid(self._pre_hidden(x))
        return {"W": -(x * w[:, None]).T @ s, "b_v": -(w @ x), "b_h": -(w @ s)}

    def _grad_params_of_grad_x(self, x, u):
        W = self._params["W"]
        a = self._pre_hidden(x)
        s = sigmoid(a)
        uw_sp = (u @ W) * sigmoid_prime(a)
        return {"W": -(u.T @ s) - x.T @ uw_sp, "b_v": -u.sum(axis=0), "b_h": -uw_sp.sum(axis=0)}

    def _grad_params_of_hessian_diag(self, x, c):
        W = self._params["W"]
        a = self._pre_hidden(x)
        sp = sigmoid_prime(a)
        spp = sp * (sigmoid(-a) - sigmoid(a))
        cw2_spp = (c @ W**2) * spp
        return {
            "W": -2.0 * W * (c.T @ sp) - x.T @ cw2_spp,
            "b_v": np.zeros(self.n_visible),
            "b_h": -cw2_spp.sum(axis=0),
        }

    # ----------------------------------------------- pseudo-likelihood hook
    def _flip_energy_delta(self, x):
        r"""Free-energy change of flipping each visible unit: ``(n, V)``.

        Returns
        -------
        ndarray of shape (n, V) (``(V,)`` for a single state)
            :math:`\Delta_k(x) = F(x + \delta_k e_k) - F(x)
            = -b_{v,k}\delta_k - \sum_j [\operatorname{softplus}(a_j +
            \delta_k W_{kj}) - \operatorname{softplus}(a_j)]`, with
            :math:`a = b_h + W^\top x`; used by
            :class:`~ebm_ref.objectives.PseudoLikelihood`
            (:math:`\log p(x_k \mid x_{-k}) = \log\sigma(\Delta_k)`).

        Notes
        -----
        O(n V H) time and an ``(n, V, H)`` work array. Each term is a
        difference of two stable softplus values, so nothing overflows for
        |W| ~ 50.
        """
        return self._flip_delta(x)[0]

    def _grad_params_of_flip_energy_delta(self, x, c):
        r"""``sum_i sum_k c_ik d/dtheta [Delta_k(x_i)]`` (dict), ``c`` of shape ``(n, V)``.

        Returns
        -------
        dict
            With :math:`s = \sigma(a)`, :math:`s^{(k)}_j = \sigma(a_j +
            \delta_k W_{kj})` and :math:`D_{ij} = \sum_k c_{ik}(s^{(k)}_{ij} - s_{ij})`:
            ``b_v``: :math:`-\sum_i c_{ik}\delta_{ik}`; ``b_h``:
            :math:`-\sum_i D_{ij}`; ``W``: :math:`-x^\top D - \sum_i
            c_{ik}\delta_{ik} s^{(k)}_{ij}` (entry ``(k, j)``), from
            :math:`\partial(a_j + \delta_k W_{kj})/\partial W_{mj} = x_m +
            \delta_k [m = k]`.
        """
        _, delta, a, shifted = self._flip_delta(x)
        s = sigmoid(a)  # (n, H)
        sk = sigmoid(shifted)  # (n, V, H)
        D = np.einsum("nk,nkj->nj", c, sk) - c.sum(axis=1)[:, None] * s
        cd = c * delta
        return {
            "W": -(x.T @ D) - np.einsum("nk,nkj->kj", cd, sk),
            "b_v": -cd.sum(axis=0),
            "b_h": -D.sum(axis=0),
        }

    def _flip_delta(self, x):
        W = self._params["W"]
        a = self._pre_hidden(x)
        delta = 1.0 - 2.0 * x
        shifted = a[:, None, :] + delta[:, :, None] * W[None, :, :]
        out = -delta * self._params["b_v"] - (softplus(shifted) - softplus(a)[:, None, :]).sum(axis=2)
        return out, delta, a, shifted


# --------------------------------------------------------------------------
# Binary-family kernels (kind 5; dispatched by ``energies.kernels``).
# Layout of ``numba_form``: ip = [V, H]; fp = [W (V x H, row-major), b_v, b_h].
# The per-chain cache is the hidden pre-activation ``a = b_h + W^T v`` (H).


@jit_inline
def nb_init_cache(ip, fp, v, a):
    """``a = b_h + W^T v`` summed over the visible units in order (zeros skipped)."""
    V, H = ip[0], ip[1]
    off = V * H + V
    for j in range(H):
        a[j] = fp[off + j]
    for k in range(V):
        vk = v[k]
        if vk != 0.0:
            for j in range(H):
                a[j] += vk * fp[k * H + j]


@jit_inline
def nb_flip_delta(ip, fp, v, a, k):
    r"""Exact free-energy change of flipping ``v_k`` from the cache ``a``.

    ``-b_{v,k} delta - sum_j [softplus(a_j + delta W_kj) - softplus(a_j)]``
    with ``delta = 1 - 2 v_k``.
    """
    V, H = ip[0], ip[1]
    delta = 1.0 - 2.0 * v[k]
    d_energy = -fp[V * H + k] * delta
    for j in range(H):
        an = a[j] + delta * fp[k * H + j]
        d_energy -= nb_softplus(an) - nb_softplus(a[j])
    return d_energy


@jit_inline
def nb_apply_flip(ip, fp, v, a, k):
    """Flip ``v_k`` and update ``a += (v'_k - v_k) W_k``."""
    H = ip[1]
    old = v[k]
    delta = 1.0 - 2.0 * old
    for j in range(H):
        a[j] = a[j] + delta * fp[k * H + j]
    v[k] = old + delta


@jit_inline
def nb_flip_logits(ip, fp, v, a, work, lg):
    r"""GWG logits ``-dE~_k / 2 = (2 v_k - 1) g_k / 2``, ``g = dF/dv = -b_v - W sigma(a)``.

    ``work[:H]`` receives ``sigma(a)``.
    """
    V, H = ip[0], ip[1]
    for j in range(H):
        work[j] = nb_sigmoid(a[j])
    for k in range(V):
        g = -fp[V * H + k]
        for j in range(H):
            g -= fp[k * H + j] * work[j]
        lg[k] = 0.5 * (2.0 * v[k] - 1.0) * g


@jit_inline
def nb_energy(ip, fp, v, a):
    """Free energy ``F(v) = -b_v^T v - sum_j softplus(a_j)`` with ``a`` (H) filled from ``v``."""
    V = ip[0]
    nb_init_cache(ip, fp, v, a)
    e = 0.0
    for k in range(V):
        e -= fp[V * ip[1] + k] * v[k]
    for j in range(ip[1]):
        e -= nb_softplus(a[j])
    return e


@jit_inline
def nb_energy_grad(ip, fp, v, a, g):
    r"""``F(v)`` and ``g = dF/dv = -b_v - W sigma(a)``; ``a`` (H) ends holding ``sigma(a)``."""
    V, H = ip[0], ip[1]
    e = nb_energy(ip, fp, v, a)
    for j in range(H):
        a[j] = nb_sigmoid(a[j])
    for k in range(V):
        gk = -fp[V * H + k]
        for j in range(H):
            gk -= fp[k * H + j] * a[j]
        g[k] = gk
    return e


# --------------------------------------------------------------------------
# AIS: tempered transitions (dispatched by energies.kernels.tempered_run)
@jit
def nb_tempered_run(ip, fp, g, path, x, rng, logw, from_base, finish, n_threads):
    """AIS steps along ``path`` from the base ``Bern(sigmoid(g))`` (see ``_tempered.boltzmann_run``)."""
    W, WT, b_v, b_h, _ = unpack_form(ip, fp)
    boltzmann_run(OFF, W, WT, b_v, b_h, g, path, x, rng, logw, from_base, finish, n_threads)
