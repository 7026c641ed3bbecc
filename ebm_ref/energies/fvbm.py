r"""Fully visible Boltzmann machine on {0, 1}^d with a dense coupling matrix."""

from __future__ import annotations

import numpy as np

from .._jit import jit_inline
from ._base import EnergyModel

__all__ = ["FVBM"]


class FVBM(EnergyModel):
    r"""Fully visible Boltzmann machine: :math:`E(x) = -\tfrac12 x^\top J x - b^\top x`, :math:`x \in \{0,1\}^d`.

    Parameters
    ----------
    J : array_like of shape (d, d)
        Couplings; exactly symmetric with an exactly zero diagonal (the
        diagonal is a structural zero, not a parameter).
    b : array_like of shape (d,)
        Biases.

    Notes
    -----
    The energy, for any real ``x`` (its continuous extension), and its
    derivatives with every entry of ``J`` an independent variable (valid
    also for a non-symmetric ``J``, as finite differences move one entry):

    .. math::

        \nabla_x E = -\tfrac12 (J + J^\top) x - b, \qquad
        \partial^2 E / \partial x_k^2 = -J_{kk}, \qquad
        \partial E / \partial J_{ij} = -\tfrac12 x_i x_j, \qquad
        \partial E / \partial b = -x,

        \partial_{J_{ij}} [u^\top \nabla_x E] = -\tfrac12 (u_i x_j + x_i u_j), \quad
        \partial_b [u^\top \nabla_x E] = -u, \quad
        \partial_{J_{ij}} \Big[\textstyle\sum_k c_k \partial^2_{x_k} E\Big] = -c_i \delta_{ij} .

    Public ``J`` derivatives have a zero diagonal (structural zero). The
    energy is quadratic, so the change of flipping unit ``k``
    (:math:`\delta_k = 1 - 2 x_k`) is exactly
    :math:`\delta_k \partial_k E + \tfrac12 \delta_k^2 \partial_k^2 E`,
    i.e. :math:`-\delta_k ((Jx)_k + b_k)` for a valid model.

    The same distribution as ``Ising(J, b, domain="binary")``; this class
    stores ``J`` densely and brings its own Numba kernels (it is the worked
    example of adding a model, docs/models.md).
    """

    domain = "binary"

    def __init__(self, J, b):
        J_arr = np.asarray(J)
        if J_arr.ndim != 2 or J_arr.shape[0] != J_arr.shape[1] or J_arr.shape[0] < 1:
            raise ValueError(f"`J` of FVBM must be a square 2-D array of shape (d, d), d >= 1; got shape {J_arr.shape}.")
        d = J_arr.shape[0]
        self._set_params({"J": J, "b": b}, {"J": (d, d), "b": (d,)})

    @property
    def n_features(self):
        """Number of units ``d``."""
        return self._params["b"].shape[0]

    def _check_constraints(self, params):
        J = params["J"]
        diag = np.diag(J)
        if np.any(diag != 0.0):
            k = int(np.flatnonzero(diag != 0.0)[0])
            raise ValueError(f"`J` of FVBM must have a zero diagonal; got J[{k}, {k}] = {diag[k]!r}.")
        if np.any(J != J.T):
            i, j = (int(t) for t in np.argwhere(J != J.T)[0])
            raise ValueError(f"`J` of FVBM must be symmetric; got J[{i}, {j}] = {J[i, j]!r} but J[{j}, {i}] = {J[j, i]!r}.")

    def structural_zeros(self):
        """``{"J": identity mask}``: the diagonal of ``J`` is not a parameter."""
        return {"J": np.eye(self.n_features, dtype=bool)}

    def tempered(self, beta):
        """The model at inverse temperature ``beta``: ``beta * J``, ``beta * b`` (see the base class)."""
        b = self._check_beta(beta)
        return self.with_params({"J": b * self._params["J"], "b": b * self._params["b"]})

    # ----------------------------------------------------------------- hooks
    def _energy(self, x):
        J, b = self._params["J"], self._params["b"]
        return -0.5 * np.einsum("ni,ij,nj->n", x, J, x) - x @ b

    def _grad_x(self, x):
        J, b = self._params["J"], self._params["b"]
        return -0.5 * (x @ J.T + x @ J) - b

    def _hessian_diag(self, x):
        return np.broadcast_to(-np.diag(self._params["J"]), x.shape).copy()

    def _grad_params(self, x, w):
        # symmetrised so that a gradient step keeps J exactly symmetric
        A = (x * w[:, None]).T @ x
        return {"J": -0.25 * (A + A.T), "b": -(w @ x)}

    def _grad_params_of_grad_x(self, x, u):
        A = u.T @ x
        return {"J": -0.5 * (A + A.T), "b": -u.sum(axis=0)}

    def _grad_params_of_hessian_diag(self, x, c):
        return {"J": -np.diag(c.sum(axis=0)), "b": np.zeros(self.n_features)}

    def _flip_energy_delta(self, x):
        delta = self._flip_step(x)
        return delta * self._grad_x(x) + 0.5 * delta * delta * self._hessian_diag(x)

    def _grad_params_of_flip_energy_delta(self, x, c):
        # Delta_k is linear in the parameters (see the class notes)
        delta = self._flip_step(x)
        g1 = self._grad_params_of_grad_x(x, c * delta)
        g2 = self._grad_params_of_hessian_diag(x, 0.5 * c * delta * delta)
        return {k: g1[k] + g2[k] for k in g1}

    NUMBA_KIND = 7

    def _numba_form(self):
        # ip: [d]; fp: [J (d x d, row-major), b (d)]; cache: fields J x + b (d)
        d = self.n_features
        return self.NUMBA_KIND, np.array([d], dtype=np.int64), np.concatenate([self._params["J"].ravel(), self._params["b"]]), d


# --------------------------------------------------------------------------
# Binary-family kernels (kind 7; dispatched by ``energies.kernels``). Dense
# rows of ``J`` at ``fp[i d : (i + 1) d]``, ``b`` at ``fp[d d :]``.


@jit_inline
def nb_field(ip, fp, x, i):
    """``b_i + sum_j J_ij x_j`` summed from ``b_i`` in ``j`` order."""
    d = ip[0]
    fi = fp[d * d + i]
    for j in range(d):
        fi += fp[i * d + j] * x[j]
    return fi


@jit_inline
def nb_init_cache(ip, fp, x, f):
    """Fields ``f = J x + b`` of one state."""
    for i in range(ip[0]):
        f[i] = nb_field(ip, fp, x, i)


@jit_inline
def nb_flip_delta(ip, fp, x, f, i, fresh):
    """``E(x^{(i)}) - E(x) = -(1 - 2 x_i) f_i``; ``fresh``: ``f_i`` recomputed from ``x``."""
    fi = nb_field(ip, fp, x, i) if fresh else f[i]
    return -(1.0 - 2.0 * x[i]) * fi


@jit_inline
def nb_apply_flip(ip, fp, x, f, i):
    """Flip ``x_i`` and update ``f_j += J_ji (x'_i - x_i)`` (``J`` symmetric)."""
    d = ip[0]
    delta = 1.0 - 2.0 * x[i]
    for j in range(d):
        f[j] += fp[i * d + j] * delta
    x[i] = 1.0 - x[i]


@jit_inline
def nb_flip_logits(ip, fp, x, f, work, lg):
    """GWG logits ``-(1 - 2 x_j) dE/dx_j / 2 = (1 - 2 x_j) f_j / 2`` (``work`` unused)."""
    for j in range(ip[0]):
        lg[j] = 0.5 * (1.0 - 2.0 * x[j]) * f[j]


@jit_inline
def nb_energy_grad(ip, fp, x, work, g):
    """``E(x)`` and ``g = -(J x + b)``; ``work`` receives ``J x``."""
    d = ip[0]
    e = 0.0
    for i in range(d):
        s = 0.0
        for j in range(d):
            s += fp[i * d + j] * x[j]
        work[i] = s
        e -= x[i] * (0.5 * s + fp[d * d + i])
        g[i] = -(s + fp[d * d + i])
    return e


@jit_inline
def nb_energy(ip, fp, x, work):
    """``E(x) = -x^T (J x / 2 + b)`` (``work`` receives ``J x``; ``g`` discarded)."""
    return nb_energy_grad(ip, fp, x, work, np.empty(ip[0]))
