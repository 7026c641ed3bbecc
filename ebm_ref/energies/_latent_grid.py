r"""The latent grid shared by :class:`~ebm_ref.energies.latent.LatentEnergy`
and :class:`~ebm_ref.energies.latent.ConditionalLatentEnergy`: softmin
statistics of :math:`E(y, z) = \|y - w \odot \varphi(z)\|^2` over the grid of
latent angles, and the validation of the grid and of ``beta``.
"""

from __future__ import annotations

import numpy as np

from .._validation import as_float_array, check_finite, check_positive

#: The lecture's grid ``z = [0 : pi/24 : 2 pi[`` (48 points).
DEFAULT_Z_GRID = np.arange(48) * (np.pi / 24.0)
DEFAULT_Z_GRID.flags.writeable = False

# --------------------------------------------------------------------------
# free energy over the grid, for per-sample decoder weights w (n, 2)
class GridStats:
    r"""Softmin statistics of :math:`E(y_i, z_j) = \|y_i - w_i \odot \varphi_j\|^2`.

    ``phi`` is ``(m, 2)`` with rows :math:`\varphi_j = (\cos z_j, \sin z_j)`.
    Attributes: ``F`` (n,), ``pi`` (n, m) softmin weights (one-hot at the
    first minimiser for ``beta = inf``), ``idx`` (n,) first minimiser,
    ``m1 = <phi>`` and ``m2 = <phi^2>`` (n, 2) under ``pi``.
    """

    def __init__(self, y, w, phi, beta, need_weights=True):
        self.y, self.w, self.phi, self.beta = y, w, phi, beta
        n = y.shape[0]
        m = phi.shape[0]
        # residuals coordinate by coordinate: E keeps its relative precision
        # when y is close to g(z) (no |y|^2 - 2 y.g + |g|^2 cancellation)
        r1 = y[:, 0:1] - w[:, 0:1] * phi[None, :, 0]
        r2 = y[:, 1:2] - w[:, 1:2] * phi[None, :, 1]
        E = r1 * r1 + r2 * r2
        self.E = E
        self.idx = np.argmin(E, axis=1)
        rows = np.arange(n)
        e_min = E[rows, self.idx]
        if np.isinf(beta):
            self.F = e_min
        else:
            # Delta = E - min E >= 0, so exp never overflows; log1p(mean expm1)
            # keeps full precision when beta Delta is tiny (beta -> 0).
            bd = beta * (E - e_min[:, None])
            em = np.expm1(-bd)
            self.F = e_min - np.log1p(em.sum(axis=1) / m) / beta
        if not need_weights:
            return
        if np.isinf(beta):
            pi = np.zeros((n, m))
            pi[rows, self.idx] = 1.0
        else:
            ex = np.exp(-bd)  # not em + 1: small weights keep their relative digits
            pi = ex / ex.sum(axis=1, keepdims=True)
        self.pi = pi
        self.m1 = pi @ phi
        self.m2 = pi @ (phi * phi)

    def cov(self, a, b):
        """Per-sample covariance under ``pi`` of ``a, b`` of shape (n, m)."""
        pi = self.pi
        da = a - np.einsum("nm,nm->n", pi, a)[:, None]
        db = b - np.einsum("nm,nm->n", pi, b)[:, None]
        return np.einsum("nm,nm,nm->n", pi, da, db)

    def var_phi(self):
        """``Var_pi(phi_k)`` per sample, (n, 2), from centred values."""
        d = self.phi[None, :, :] - self.m1[:, None, :]
        return np.einsum("nm,nmk->nk", self.pi, d * d)

    def grad_y(self):
        r""":math:`\nabla_y F = 2 (y - w \odot \langle\varphi\rangle)`."""
        return 2.0 * (self.y - self.w * self.m1)

    def grad_w(self):
        r""":math:`\partial F/\partial w_k = -2 (y_k \langle\varphi_k\rangle - w_k \langle\varphi_k^2\rangle)` per sample."""
        return -2.0 * (self.y * self.m1 - self.w * self.m2)

    def de_dw_half(self, k):
        r"""``-(1/2) dE_j/dw_k = y_k phi_jk - w_k phi_jk^2``, shape (n, m)."""
        ph = self.phi[None, :, k]
        return self.y[:, k : k + 1] * ph - self.w[:, k : k + 1] * ph * ph


def check_beta(beta, default):
    if beta is None:
        return default
    return check_positive(beta, "beta", allow_inf=True)


def check_z_grid(z_grid):
    if z_grid is None:
        return DEFAULT_Z_GRID
    arr = as_float_array(z_grid, "z_grid")
    if arr.ndim != 1 or arr.shape[0] < 1:
        raise ValueError(f"`z_grid` must be a 1-D array with at least one point; got shape {arr.shape}.")
    check_finite(arr, "z_grid")
    arr = arr.copy()
    arr.flags.writeable = False
    return arr


def phi_of(z_grid):
    return np.stack([np.cos(z_grid), np.sin(z_grid)], axis=1)


def joint_energy_rows(y2, w, z):
    """``||y_i - w_i * (cos z_i, sin z_i)||^2`` per row, ``w`` of shape (2,) or
    (n, 2); ``z`` a scalar (every row) or one angle per row, checked here."""
    z_arr = as_float_array(z, "z")
    if np.ndim(z) == 0:
        z_arr = np.full(y2.shape[0], float(z_arr.reshape(-1)[0]))
    elif z_arr.shape != (y2.shape[0],):
        raise ValueError(f"`z` must have shape ({y2.shape[0]},), one angle per sample; got {z_arr.shape}.")
    check_finite(z_arr, "z")
    r = y2 - w * np.stack([np.cos(z_arr), np.sin(z_arr)], axis=1)
    return np.sum(r * r, axis=1)
