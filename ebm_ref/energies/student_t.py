r"""Product of independent univariate Student-t distributions."""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from .._jit import jit
from .._rng import as_seed_sequence
from .._validation import check_abs_bound, check_int
from ._base import EnergyModel

__all__ = ["StudentT"]

# Coefficients c_k = (2^(1-2k) - 2) B_2k / (2k (2k-1)) of the asymptotic series
#   lgamma(a) - lgamma(a + 1/2) = -1/2 log a - sum_k c_k a^(1-2k)
# (Stirling's series with Bernoulli polynomials, B_n(1/2) = (2^(1-n) - 1) B_n).
# With a >= 8 the ten terms leave an error below 3e-18 (checked with mpmath).
_SERIES_C = np.array([
    -1.0 / 8.0,
    1.0 / 192.0,
    -1.0 / 640.0,
    17.0 / 14336.0,
    -31.0 / 18432.0,
    691.0 / 180224.0,
    -5461.0 / 425984.0,
    929569.0 / 15728640.0,
    -3202291.0 / 8912896.0,
    221930581.0 / 79691776.0,
])
_SERIES_MIN_A = 8.0
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_EPS = np.finfo(np.float64).eps


def _log1p_minus_ratio(r):
    r"""``phi(r) = log1p(r) - r / (1 + r)`` for ``r >= 0`` without cancellation.

    For ``r <= 0.1`` the alternating series :math:`\sum_{n\ge2} (-1)^n
    \frac{n-1}{n} r^n` (20 terms: the first omitted one is below
    :math:`10^{-18} r^2`); above, the direct difference loses at most a factor
    ``2 / r <= 20`` of relative precision.
    """
    r = np.asarray(r, dtype=np.float64)
    out = np.empty_like(r)
    small = r <= 0.1
    rs = r[small]
    acc = np.zeros_like(rs)
    for n in range(21, 1, -1):
        acc = ((-1.0) ** n * (n - 1) / n) + rs * acc
    out[small] = acc * rs * rs
    rb = r[~small]
    out[~small] = np.log1p(rb) - rb / (1.0 + rb)
    return out


# Numba form (registered in energies/kernels.py, continuous family)
@jit
def nb_energy_grad(ip, fp, x, g, need_grad, work):
    """Energy of one state ``x`` (layout of ``_numba_form``); writes ``dE/dx``
    into ``g`` if ``need_grad``. ``work`` is unused (one signature for all
    models of the continuous family)."""
    d = ip[0]
    e = 0.0
    for k in range(d):
        loc = fp[k]
        scale = fp[d + k]
        df = fp[2 * d + k]
        z = (x[k] - loc) / scale
        z2 = z * z
        e += 0.5 * (df + 1.0) * math.log1p(z2 / df)
        if need_grad:
            g[k] = (df + 1.0) / scale * (z / (df + z2))
    return e


class StudentT(EnergyModel):
    r"""Product of independent univariate Student-t densities.

    Parameters
    ----------
    loc : array_like of shape (d,)
        Locations :math:`m_k`.
    log_scale : array_like of shape (d,)
        Log scales, :math:`\mathrm{scale}_k = e^{\mathrm{log\_scale}_k}`.
    log_df : array_like of shape (d,)
        Log degrees of freedom, :math:`\nu_k = e^{\mathrm{log\_df}_k}`.

    Notes
    -----
    With :math:`\delta_k = x_k - m_k`, :math:`A_k = \mathrm{scale}_k^2`,
    :math:`r_k = \delta_k^2/(\nu_k A_k)`, :math:`q_k = 1/(1 + r_k)` and
    :math:`\kappa_k = (\nu_k+1)/(\nu_k A_k)` (index ``k`` dropped below):

    .. math::

        E(x) = \sum_k \frac{\nu_k+1}{2}\log\Big(1 + \frac{\delta_k^2}{\nu_k A_k}\Big),
        \qquad
        \partial_{x_k} E = \kappa\,\delta\,q, \qquad
        \partial^2_{x_k} E = \kappa\,(1 - r)\,q^2.

    Parameter derivatives (:math:`\sigma_s = \log\mathrm{scale}`,
    :math:`\lambda = \log\nu`; :math:`\partial r/\partial\sigma_s = -2r`,
    :math:`\partial r/\partial\lambda = -r`,
    :math:`\partial\kappa/\partial\sigma_s = -2\kappa`,
    :math:`\partial\kappa/\partial\lambda = -1/(\nu A)`):

    .. math::

        \partial_m E = -\kappa\delta q, \quad
        \partial_{\sigma_s} E = -(\nu+1)\,r q, \quad
        \partial_\lambda E = \tfrac12\big[\nu\,\phi(r) - r q\big],
        \quad \phi(r) = \log(1+r) - \tfrac{r}{1+r},

        \partial_m \partial_x E = -\kappa(1-r)q^2, \quad
        \partial_{\sigma_s} \partial_x E = -2\kappa\delta q^2, \quad
        \partial_\lambda \partial_x E = \delta q^2 (r - 1/\nu)/A,

        \partial_m \partial^2_x E = 2\kappa\delta(3-r)q^3/(\nu A), \quad
        \partial_{\sigma_s} \partial^2_x E = -2\kappa(1-3r)q^3, \quad
        \partial_\lambda \partial^2_x E = -(1-r)q^2/(\nu A) - \kappa r (r-3) q^3.

    :math:`\phi` is evaluated by its series for small ``r``, so
    :math:`\partial_\lambda E` keeps its digits at :math:`\nu = 10^6`.

    **Partition function.** :math:`\int (1 + z^2/\nu)^{-(\nu+1)/2} dz =
    \sqrt{\nu\pi}\,\Gamma(\nu/2)/\Gamma((\nu+1)/2)`, so

    .. math::

        \log Z = \sum_k \Big[\log\Gamma(\tfrac{\nu_k}2) - \log\Gamma(\tfrac{\nu_k+1}2)
                 + \tfrac12\log(\nu_k\pi) + \log\mathrm{scale}_k\Big].

    The two lgamma terms nearly cancel for large :math:`\nu`; with
    :math:`a = \nu/2 \ge 8` the code uses the asymptotic series
    :math:`\log\Gamma(a) - \log\Gamma(a+\tfrac12) = -\tfrac12\log a -
    \sum_{k\ge1} c_k a^{1-2k}`, :math:`c_k = (2^{1-2k}-2)B_{2k}/(2k(2k-1))`
    (ten terms), i.e. :math:`\log Z_k = \log\mathrm{scale}_k + \tfrac12\log
    2\pi - \sum_j c_j a^{1-2j}`, which tends to the Gaussian value. The
    model expectation of the parameter gradient is
    :math:`\mathbb E_p[\partial_\theta E] = -\partial_\theta \log Z`:
    0 for ``loc``, -1 for ``log_scale``, and for ``log_df``
    :math:`-\tfrac12 - a(\psi(a) - \psi(a+\tfrac12))` (series
    :math:`-\sum_j (2j-1)c_j a^{1-2j}` for :math:`a \ge 8`).

    References
    ----------
    Lange, K. L., Little, R. J. A. and Taylor, J. M. G. (1989). Robust
    statistical modeling using the t distribution. JASA 84(408).
    Abramowitz, M. and Stegun, I. A. (1964). Handbook of Mathematical
    Functions, 6.1.40 (Stirling's series) and 23.1.21 (B_n(1/2)).
    """

    domain = "real"

    def __init__(self, loc, log_scale, log_df):
        loc_arr = np.asarray(loc)
        if loc_arr.ndim != 1 or loc_arr.shape[0] < 1:
            raise ValueError(f"`loc` of StudentT must be a 1-D array of shape (d,), d >= 1; got shape {loc_arr.shape}.")
        d = loc_arr.shape[0]
        self._set_params(
            {"loc": loc, "log_scale": log_scale, "log_df": log_df},
            {"loc": (d,), "log_scale": (d,), "log_df": (d,)},
        )

    def _check_constraints(self, params):
        # keep scale^2, df and their product nu * scale^2 (and its inverse) finite
        for name, limit in (("log_scale", 150.0), ("log_df", 300.0)):
            check_abs_bound(params[name], limit, name, "StudentT", "df * scale^2 stays finite")

    @property
    def n_features(self):
        return self._params["loc"].shape[0]

    @property
    def scale(self):
        """``exp(log_scale)``, shape ``(d,)``."""
        return np.exp(self._params["log_scale"])

    @property
    def df(self):
        """Degrees of freedom ``exp(log_df)``, shape ``(d,)``."""
        return np.exp(self._params["log_df"])

    # ------------------------------------------------------------- helpers
    def _parts(self, x):
        p = self._params
        nu = np.exp(p["log_df"])
        A = np.exp(2.0 * p["log_scale"])
        nuA = nu * A
        delta = x - p["loc"]
        r = delta * delta / nuA
        q = 1.0 / (1.0 + r)
        kappa = (nu + 1.0) / nuA
        return nu, A, nuA, delta, r, q, kappa

    # --------------------------------------------------------------- hooks
    NUMBA_KIND = 1

    def _numba_form(self):
        # ip: [d]; fp: [loc, scale, df]
        p = self._params
        fp = np.concatenate([p["loc"], np.exp(p["log_scale"]), np.exp(p["log_df"])])
        return self.NUMBA_KIND, np.array([p["loc"].shape[0]], dtype=np.int64), fp, 1

    def _energy(self, x):
        nu, _, _, _, r, _, _ = self._parts(x)
        return (0.5 * (nu + 1.0) * np.log1p(r)).sum(axis=1)

    def _grad_x(self, x):
        _, _, _, delta, _, q, kappa = self._parts(x)
        return kappa * delta * q

    def _hessian_diag(self, x):
        _, _, _, _, r, q, kappa = self._parts(x)
        return kappa * (1.0 - r) * q * q

    def _grad_params(self, x, w):
        nu, _, _, delta, r, q, kappa = self._parts(x)
        return {
            "loc": w @ (-kappa * delta * q),
            "log_scale": w @ (-(nu + 1.0) * r * q),
            "log_df": w @ (0.5 * (nu * _log1p_minus_ratio(r) - r * q)),
        }

    def _grad_params_of_grad_x(self, x, v):
        nu, A, _, delta, r, q, kappa = self._parts(x)
        q2 = q * q
        return {
            "loc": (v * (-kappa * (1.0 - r) * q2)).sum(axis=0),
            "log_scale": (v * (-2.0 * kappa * delta * q2)).sum(axis=0),
            "log_df": (v * (delta * q2 * (r - 1.0 / nu) / A)).sum(axis=0),
        }

    def _grad_params_of_hessian_diag(self, x, c):
        _, _, nuA, delta, r, q, kappa = self._parts(x)
        q2 = q * q
        q3 = q2 * q
        return {
            "loc": (c * (2.0 * kappa * delta * (3.0 - r) * q3 / nuA)).sum(axis=0),
            "log_scale": (c * (-2.0 * kappa * (1.0 - 3.0 * r) * q3)).sum(axis=0),
            "log_df": (c * (-(1.0 - r) * q2 / nuA - kappa * r * (r - 3.0) * q3)).sum(axis=0),
        }

    # ------------------------------------------------------ exact quantities
    def _log_z_terms(self):
        """Per-coordinate ``log Z_k`` and a bound on its rounding error."""
        p = self._params
        ls, ld = p["log_scale"], p["log_df"]
        nu = np.exp(ld)
        a = 0.5 * nu
        big = a >= _SERIES_MIN_A
        out = np.empty_like(nu)
        err = np.empty_like(nu)
        ab = a[big]
        inv2 = 1.0 / (ab * ab)
        ser = np.zeros_like(ab)
        for ck in _SERIES_C[::-1]:
            ser = ck + inv2 * ser
        ser = ser / ab
        out[big] = ls[big] + _HALF_LOG_2PI - ser
        err[big] = 4.0 * _EPS * (np.abs(ls[big]) + _HALF_LOG_2PI + np.abs(ser)) + 3e-18
        asm = a[~big]
        lg1 = special.gammaln(asm)
        lg2 = special.gammaln(asm + 0.5)
        half_log = 0.5 * (ld[~big] + math.log(math.pi))
        out[~big] = lg1 - lg2 + half_log + ls[~big]
        err[~big] = 4.0 * _EPS * (np.abs(lg1) + np.abs(lg2) + np.abs(half_log) + np.abs(ls[~big]) + 1.0)
        return out, err

    def _exact_log_partition(self):
        r"""Closed-form :math:`\log Z` (class Notes), stable for any :math:`\nu`.

        Returns
        -------
        value : float
        abs_err_bound : float
            A few ulps of the magnitudes summed per coordinate (lgamma and
            the series are accurate to about one ulp; the series truncation
            is below 3e-18).
        """
        terms, err = self._log_z_terms()
        return float(terms.sum()), float(err.sum() + _EPS * np.abs(terms).sum() * self.n_features)

    def _exact_mean_grad_params(self):
        r"""Model expectation :math:`\mathbb E_p[\partial E/\partial\theta] = -\nabla_\theta\log Z` (dict)."""
        ld = self._params["log_df"]
        a = 0.5 * np.exp(ld)
        big = a >= _SERIES_MIN_A
        g_df = np.empty_like(a)
        ab = a[big]
        inv2 = 1.0 / (ab * ab)
        ser = np.zeros_like(ab)
        for k in range(len(_SERIES_C), 0, -1):
            ser = (2 * k - 1) * _SERIES_C[k - 1] + inv2 * ser
        g_df[big] = -ser / ab
        asm = a[~big]
        g_df[~big] = -0.5 - asm * (special.digamma(asm) - special.digamma(asm + 0.5))
        d = self.n_features
        return {"loc": np.zeros(d), "log_scale": -np.ones(d), "log_df": g_df}

    def sample(self, n, seed):
        r"""Exact independent draws, shape ``(n, d)``.

        ``x_k = loc_k + scale_k t_k`` with :math:`t_k` from
        :meth:`numpy.random.Generator.standard_t` (a Generator built from
        ``seed`` by :func:`ebm_ref._rng.as_seed_sequence`).

        Parameters
        ----------
        n : int
            Number of samples (>= 1).
        seed : int, SeedSequence or Generator
        """
        n = check_int(n, "n", minimum=1)
        gen = np.random.default_rng(as_seed_sequence(seed))
        t = gen.standard_t(self.df, size=(n, self.n_features))
        return self._params["loc"] + self.scale * t

    # ----------------------------------------- sliced score matching hooks
    def _hvp(self, x, v):
        r"""Hessian-vector product :math:`H(x_i) v_i` in ``x``, shape ``(n, d)``.

        The coordinates are independent, so the Hessian is diagonal:
        ``hvp(x, v) = hessian_diag(x) * v``. Used by
        :class:`~ebm_ref.objectives.SlicedScoreMatching`.
        """
        return self._hessian_diag(x) * v

    def _grad_params_of_hvp(self, x, v, u):
        r"""``sum_i d/dtheta [u_i . H(x_i) v_i]`` (dict); ``v`` and ``u`` held constant.

        For the diagonal Hessian this is
        ``grad_params_of_hessian_diag(x, u * v)``.
        """
        return self._grad_params_of_hessian_diag(x, u * v)
