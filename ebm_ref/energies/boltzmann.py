r"""Fully visible Boltzmann machine with a diagonal-plus-low-rank coupling matrix."""

from __future__ import annotations

import numbers

import numpy as np

from .._jit import jit, jit_inline
from .._numerics import sigmoid, softplus
from .._rng import nb_normal
from .._validation import check_batch
from ._base import EnergyModel

__all__ = ["LowRankBoltzmann", "AuxiliaryGaussian"]


class AuxiliaryGaussian:
    r"""The Gaussian of the auxiliary representation, :math:`N(a, \operatorname{diag}(s) + U U^\top)`.

    Attributes
    ----------
    shift : float
        The constant :math:`c` added to the diagonal of :math:`\Sigma`.
    mean : ndarray of shape (m,)
        :math:`a = \mu - c/2`.
    diag : ndarray of shape (m,)
        :math:`s = d + c \ge 0`.
    U : ndarray of shape (m, K)
    """

    __slots__ = ("shift", "mean", "diag", "U")

    def __init__(self, shift, mean, diag, U):
        self.shift = shift
        self.mean = mean
        self.diag = diag
        self.U = U

    def covariance(self):
        """The dense covariance :math:`\\operatorname{diag}(s) + U U^\\top`, shape ``(m, m)``."""
        S = self.U @ self.U.T
        S = 0.5 * (S + S.T)
        S[np.diag_indices_from(S)] += self.diag
        return S


class LowRankBoltzmann(EnergyModel):
    r"""Boltzmann machine :math:`b(z) \propto \exp(\tfrac12 z^\top\Sigma z + \mu^\top z)`, :math:`\Sigma = D + UU^\top`.

    The variational posterior of Zheng & Su (2020) over binary codes
    :math:`z \in \{0,1\}^m`; see docs/boltzmann-posterior.md.

    Parameters
    ----------
    d_diag : array_like of shape (m,)
        Diagonal :math:`D = \operatorname{diag}(d)`; any real values (the
        diagonal of :math:`\Sigma` need not be positive).
    U : array_like of shape (m, K)
        Low-rank factor of rank ``K >= 0`` (``K = 0``: a factorised model).
    mu : array_like of shape (m,)
        Linear term.

    Notes
    -----
    The energy, for any real ``z`` (its continuous extension):

    .. math::

        E(z) = -\tfrac12 \sum_i d_i z_i^2 - \tfrac12 \lVert U^\top z\rVert^2
               - \mu^\top z .

    Derivatives, every array entry an independent variable:

    .. math::

        \nabla_z E = -d \odot z - U U^\top z - \mu, \qquad
        \partial^2 E / \partial z_i^2 = -d_i - \textstyle\sum_j U_{ij}^2,

        \partial E/\partial d_i = -\tfrac12 z_i^2, \quad
        \partial E/\partial U = -z\,(U^\top z)^\top, \quad
        \partial E/\partial \mu = -z .

    Mixed derivatives (``v``, ``c`` held constant):

    .. math::

        \partial_d [v^\top\nabla_z E] = -v\odot z, \quad
        \partial_U [v^\top\nabla_z E] = -v (U^\top z)^\top - z (U^\top v)^\top,
        \quad \partial_\mu [v^\top\nabla_z E] = -v,

        \partial_d \Big[\textstyle\sum_i c_i \partial^2_{z_i} E\Big] = -c, \quad
        \partial_U [\cdot] = -2\, c \odot U \text{ (row-wise)}, \quad
        \partial_\mu [\cdot] = 0 .

    On states :math:`z_i^2 = z_i`, so the diagonal of :math:`\Sigma` acts as
    a field: :meth:`to_ising` gives the same distribution as an ``Ising``
    model on {0,1} with :math:`J = \Sigma - \operatorname{diag}\Sigma` and
    :math:`h = \mu + \tfrac12\operatorname{diag}\Sigma`. The two models have
    the same energy on {0,1}^m but different continuous extensions (here
    :math:`d_i z_i^2/2`, there linear), hence different ``grad_x`` off the
    states. Exact quantities (``ebm_ref.exact``) are computed on
    ``to_ising()``. The same identity lets :math:`\Sigma` be shifted by
    :math:`cI` and :math:`\mu` by :math:`-c/2` without changing
    :math:`b`; :meth:`auxiliary` uses it to make :math:`\Sigma` positive
    semi-definite for the Gaussian-integral representation.

    References
    ----------
    Zheng, L. & Su, Q. (2020). Generative semantic hashing enhanced via
    Boltzmann machines. ACL 2020.
    """

    domain = "binary"

    def __init__(self, d_diag, U, mu):
        U_arr = np.asarray(U)
        if U_arr.ndim != 2 or U_arr.shape[0] < 1:
            raise ValueError(f"`U` of LowRankBoltzmann must be a 2-D array of shape (m, K), m >= 1; got shape {U_arr.shape}.")
        m, k = U_arr.shape
        self._set_params({"d_diag": d_diag, "U": U, "mu": mu}, {"d_diag": (m,), "U": (m, k), "mu": (m,)})

    @classmethod
    def random(cls, m, rank, scale, seed):
        r"""Random model: ``d_i, U_ij, mu_i ~ N(0, scale^2 / m)``, drawn in that order (``U`` row-major).

        Parameters
        ----------
        m, rank : int
            Units (``m >= 1``) and rank ``K >= 0`` (columns of ``U``).
        scale : float
            Finite, ``>= 0``.
        seed : int, numpy.random.SeedSequence or numpy.random.Generator
        """
        from .._rng import as_seed_sequence
        from .._validation import check_int

        m = check_int(m, "m", minimum=1)
        k = check_int(rank, "rank", minimum=0)
        if isinstance(scale, (bool, np.bool_)) or not isinstance(scale, numbers.Real):
            raise TypeError(f"`scale` must be a real number; got {type(scale).__name__}.")
        if not np.isfinite(scale) or scale < 0:
            raise ValueError(f"`scale` must be finite and >= 0; got {scale!r}.")
        rng = np.random.default_rng(as_seed_sequence(seed))
        sd = float(scale) / np.sqrt(m)
        d = rng.normal(size=m) * sd
        U = rng.normal(size=(m, k)) * sd
        mu = rng.normal(size=m) * sd
        return cls(d, U, mu)

    @property
    def n_features(self):
        return self._params["U"].shape[0]

    @property
    def rank(self):
        """``K``, the number of columns of ``U``."""
        return self._params["U"].shape[1]

    def _describe(self):
        return f"LowRankBoltzmann with {self.n_features} units"

    def sigma(self):
        r"""The dense :math:`\Sigma = D + UU^\top`, shape ``(m, m)``, exactly symmetric."""
        U = self._params["U"]
        S = U @ U.T
        S = 0.5 * (S + S.T)
        S[np.diag_indices_from(S)] += self._params["d_diag"]
        return S

    def to_ising(self):
        r"""The same distribution on {0,1}^m as ``Ising(J, h, domain="binary")``.

        :math:`J = \Sigma` with its diagonal set to zero and
        :math:`h = \mu + \tfrac12 \operatorname{diag}\Sigma` (since
        :math:`z_i^2 = z_i`). Energies agree on states up to rounding.
        """
        from .ising import Ising

        S = self.sigma()
        h = self._params["mu"] + 0.5 * np.diag(S)
        np.fill_diagonal(S, 0.0)
        return Ising(S, h, domain="binary")

    @classmethod
    def from_ising(cls, model):
        r"""A ``LowRankBoltzmann`` with the distribution of a binary ``Ising`` model.

        With the eigendecomposition :math:`J = V\Lambda V^\top` and
        :math:`\lambda_{\min}` its smallest eigenvalue,
        :math:`J = \lambda_{\min} I + U U^\top` with
        :math:`U = V \sqrt{\Lambda - \lambda_{\min}}` (``K = d``; the column
        of :math:`\lambda_{\min}` is zero), ``d_diag`` :math:`= \lambda_{\min}`
        and ``mu`` :math:`= h - \tfrac12 \operatorname{diag}\Sigma`, where
        :math:`\operatorname{diag}\Sigma = \lambda_{\min} +
        \operatorname{diag}(UU^\top) = \operatorname{diag} J = 0` up to
        rounding (subtracting the computed value makes the diagonal cancel
        on states), so :math:`b` is the Ising law; energies on states agree
        to rounding. The shift then needed by :meth:`auxiliary` is
        :math:`-\lambda_{\min} \ge 0` (the trace of :math:`J` is zero).

        Parameters
        ----------
        model : Ising
            With ``domain="binary"``.

        Returns
        -------
        LowRankBoltzmann
        """
        from .ising import Ising

        if not isinstance(model, Ising):
            raise TypeError(f"`model` of LowRankBoltzmann.from_ising must be an Ising model; got {type(model).__name__}.")
        if model.domain != "binary":
            raise ValueError(
                f"`model` of LowRankBoltzmann.from_ising must have domain='binary'; got domain={model.domain!r} "
                "(a spin model is a different distribution on {0,1})."
            )
        J = model.params["J"]
        lam, V = np.linalg.eigh(J)
        lo = float(lam[0])
        U = V * np.sqrt(np.maximum(lam - lo, 0.0))
        m = J.shape[0]
        # the diagonal actually represented, lo + |U_i|^2, replaces 0 exactly in the energy on states
        diag_sigma = lo + np.sum(U * U, axis=1)
        return cls(np.full(m, lo), U, model.params["h"] - 0.5 * diag_sigma)

    # --------------------------------------------- Gaussian-integral representation
    def min_shift(self):
        """Smallest admissible :meth:`auxiliary` shift, ``max(0, -min_i d_i)``."""
        return max(0.0, -float(np.min(self._params["d_diag"])))

    def auxiliary(self, shift=None):
        r"""Parameters of the Gaussian-integral representation of :math:`b`.

        With :math:`\Sigma_c = \Sigma + cI = \operatorname{diag}(d + c) + UU^\top`
        and :math:`a = \mu - c/2 \cdot 1` (the same :math:`b`, since
        :math:`z_i^2 = z_i`), the Gaussian moment generating function gives

        .. math::

            b(z) = \int p(z\mid r)\, p(r)\, dr, \quad
            p(z \mid r) = \prod_i \operatorname{Bernoulli}(z_i; \sigma(r_i)), \quad
            p(r) = \frac1Z \prod_i (1 + e^{r_i})\, N(r; a, \Sigma_c),

        valid whenever :math:`\Sigma_c` is positive semi-definite (a
        density for :math:`r` needs it definite).

        Parameters
        ----------
        shift : float or None, default None
            :math:`c`; must make every ``d_i + c >= 0`` (then
            :math:`\Sigma_c` is positive semi-definite and :math:`r` can be
            drawn in O(mK) as :math:`a + \sqrt{d + c}\odot\varepsilon_1 + U
            \varepsilon_2`). ``None``: the smallest such value,
            :meth:`min_shift`. A larger shift is valid but makes the
            auxiliary Gibbs chain stickier (the noise on :math:`r` grows
            like :math:`\sqrt c` and the signal like :math:`c`).

        Returns
        -------
        AuxiliaryGaussian
        """
        c = self._check_shift(shift)
        d = self._params["d_diag"]
        return AuxiliaryGaussian(c, self._params["mu"] - 0.5 * c, np.maximum(d + c, 0.0), self._params["U"].copy())

    def _check_shift(self, shift):
        lo = self.min_shift()
        if shift is None:
            return lo
        if isinstance(shift, (bool, np.bool_)) or not isinstance(shift, numbers.Real):
            raise TypeError(f"`shift` must be a real number or None; got {type(shift).__name__}.")
        c = float(shift)
        if not np.isfinite(c) or c < lo:
            raise ValueError(
                f"`shift` must be finite and >= max(0, -min(d_diag)) = {lo!r} so that d_diag + shift >= 0; got {shift!r}."
            )
        return c

    def log_density_r(self, r, shift=None):
        r"""Unnormalised :math:`\log p(r) + \log Z = \sum_i \operatorname{softplus}(r_i) + \log N(r; a, \Sigma_c)`.

        Parameters
        ----------
        r : array_like of shape (n, m) or (m,)
            Any real points.
        shift : float or None
            As in :meth:`auxiliary`.

        Returns
        -------
        ndarray of shape (n,) (0-d for a single point)

        Raises
        ------
        ValueError
            If :math:`\Sigma_c` is singular (no density): pass a larger ``shift``.
        """
        r2, was_1d = check_batch(r, self.n_features, "r", self._describe())
        aux = self.auxiliary(shift)
        S = aux.covariance()
        try:
            L = np.linalg.cholesky(S)
        except np.linalg.LinAlgError:
            raise ValueError(
                f"Sigma + shift I is singular for shift = {aux.shift!r}, so r has no density; pass a larger `shift`."
            ) from None
        m = self.n_features
        y = np.linalg.solve(L, (r2 - aux.mean).T)
        logn = -0.5 * np.sum(y * y, axis=0) - np.sum(np.log(np.diag(L))) - 0.5 * m * np.log(2.0 * np.pi)
        out = softplus(r2).sum(axis=1) + logn
        return out[0] if was_1d else out

    def prob_z_given_r(self, r):
        r"""``p(z_i = 1 | r) = sigmoid(r_i)``, shape ``(n, m)`` (``(m,)`` for one point)."""
        r2, was_1d = check_batch(r, self.n_features, "r", self._describe())
        p = sigmoid(r2)
        return p[0] if was_1d else p

    # ----------------------------------------------------------------- hooks
    def _energy(self, x):
        d, U, mu = self._params["d_diag"], self._params["U"], self._params["mu"]
        t = x @ U
        return -0.5 * (x * x) @ d - 0.5 * np.sum(t * t, axis=1) - x @ mu

    def _grad_x(self, x):
        d, U, mu = self._params["d_diag"], self._params["U"], self._params["mu"]
        return -(x * d) - (x @ U) @ U.T - mu

    def _hessian_diag(self, x):
        d, U = self._params["d_diag"], self._params["U"]
        return np.broadcast_to(-d - np.sum(U * U, axis=1), x.shape).copy()

    def _grad_params(self, x, w):
        U = self._params["U"]
        xw = x * w[:, None]
        return {"d_diag": -0.5 * (w @ (x * x)), "U": -(xw.T @ (x @ U)), "mu": -(w @ x)}

    def _grad_params_of_grad_x(self, x, v):
        U = self._params["U"]
        gU = -(v.T @ (x @ U)) - x.T @ (v @ U)
        return {"d_diag": -np.sum(v * x, axis=0), "U": gU, "mu": -v.sum(axis=0)}

    def _grad_params_of_hessian_diag(self, x, c):
        U = self._params["U"]
        cs = c.sum(axis=0)
        return {"d_diag": -cs, "U": -2.0 * cs[:, None] * U, "mu": np.zeros(self.n_features)}


# --------------------------------------------------------------------------
# kernels (the sampler's final energies and the bound's log joint, row by row)
@jit
def nb_energy_rows(d, U, mu, x, out):
    """``out[c] = E(x[c])`` chain by chain (batch-size invariant). No input checks."""
    n, m = x.shape
    k = U.shape[1]
    for c in range(n):
        e = 0.0
        for i in range(m):
            e -= 0.5 * d[i] * x[c, i] * x[c, i] + mu[i] * x[c, i]
        for j in range(k):
            t = 0.0
            for i in range(m):
                t += U[i, j] * x[c, i]
            e -= 0.5 * t * t
        out[c] = e


@jit_inline
def nb_draw_auxiliary(a, s, sqrt_s, U, z, st, e1, t, r):
    r"""One draw of :math:`r \mid z \sim N(a + \Sigma z, \Sigma)`, :math:`\Sigma = \operatorname{diag}(s) + UU^\top`, into ``r``.

    Written as :math:`r = a + s\odot z + \sqrt{s}\odot\epsilon_1 + U(U^\top z
    + \epsilon_2)` with :math:`\epsilon_1 \sim N(0, I_m)`, :math:`\epsilon_2
    \sim N(0, I_K)` (``AuxiliaryGaussian``'s ``mean``, ``diag``, ``U``):
    ``m`` then ``K`` normals from the RNG row ``st``, in that order; ``e1``
    (m,) and ``t`` (K,) are scratch. The auxiliary Gibbs sampler and the
    bound of ``estimate`` both draw through here.
    """
    m, k = U.shape
    for i in range(m):
        e1[i] = nb_normal(st)
    for j in range(k):
        t[j] = nb_normal(st)
    for i in range(m):  # t = U^T z + eps_2 (rows with z_i = 1, in unit order)
        if z[i] != 0.0:
            for j in range(k):
                t[j] += U[i, j]
    for i in range(m):
        acc = a[i] + s[i] * z[i] + sqrt_s[i] * e1[i]
        for j in range(k):
            acc += U[i, j] * t[j]
        r[i] = acc
