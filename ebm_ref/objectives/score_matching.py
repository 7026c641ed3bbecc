r"""Score matching and its denoising and diffusion variants (continuous models).

Sign convention throughout: :math:`p_\theta(x) = e^{-E(x)}/Z`, so the model
score is :math:`\psi(x) = \nabla_x \log p_\theta(x) = -\nabla_x E(x)`; we
write :math:`g = \nabla_x E` and :math:`h_k = \partial^2 E/\partial x_k^2`.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from .._validation import as_float_array, check_finite, check_positive
from ._base import Objective, _objective_rng

__all__ = [
    "ScoreMatching",
    "DenoisingScoreMatching",
    "DiffusionScoreMatching",
    "ManualFlow",
    "GaussianFlow",
]


class ScoreMatching(Objective):
    r"""Implicit score matching (Hyvärinen 2005).

    Notes
    -----
    For data :math:`x_1, \dots, x_n`:

    .. math::

        J(\theta) = \frac1n \sum_i \Big[\tfrac12 \|g(x_i)\|^2
                    - \sum_k h_k(x_i)\Big],

    which is Hyvärinen's :math:`\sum_k [\partial_k \psi_k + \frac12
    \psi_k^2]` with :math:`\psi = -g`. Integrating by parts (densities
    decaying at infinity), its expectation under the data density
    :math:`p` is the Fisher divergence minus a constant that does not depend
    on :math:`\theta`:

    .. math::

        \mathbb E_p J = \tfrac12 \mathbb E_p \|\nabla \log p_\theta
        - \nabla \log p\|^2 - \tfrac12 \mathbb E_p \|\nabla \log p\|^2.

    Gradient (one mixed product of each kind):

    .. math::

        \nabla_\theta J = \texttt{grad\_params\_of\_grad\_x}(x, g/n)
        - \texttt{grad\_params\_of\_hessian\_diag}(x, \mathbf 1/n).

    Deterministic: ``seed`` is ignored. Only for ``domain="real"`` models.

    References
    ----------
    Hyvärinen, A. (2005). Estimation of non-normalized statistical models by
    score matching. JMLR 6, 695-709.

    Examples
    --------
    >>> import numpy as np
    >>> from ebm_ref.energies import StudentT
    >>> from ebm_ref.objectives import ScoreMatching
    >>> model = StudentT([0.0], [np.log(0.3)], [np.log(5.0)])
    >>> x = np.array([[0.1], [-0.4], [0.25]])
    >>> loss, grads = ScoreMatching().value_and_grad(model, x)
    >>> sorted(grads) == sorted(model.params)
    True
    """

    domains = ("real",)

    def _value(self, model, x, seed):
        g = model.grad_x(x)
        h = model.hessian_diag(x)
        return float(np.mean(0.5 * np.sum(g * g, axis=1) - np.sum(h, axis=1)))

    def _value_and_grad(self, model, x, seed):
        n = x.shape[0]
        g, h, grads = model.score_matching_grad(x, np.full(x.shape, 1.0 / n), lambda gr, rows: gr / n)
        loss = float(np.mean(0.5 * np.sum(g * g, axis=1) - np.sum(h, axis=1)))
        return loss, grads


class DenoisingScoreMatching(Objective):
    r"""Denoising score matching (Vincent 2011) with Gaussian noise.

    Parameters
    ----------
    sigma : float
        Noise standard deviation, > 0.

    Notes
    -----
    With :math:`\varepsilon_i \sim N(0, I)` drawn from ``seed`` and
    :math:`\tilde x_i = x_i + \sigma \varepsilon_i`, the target score of the
    noise kernel is :math:`\nabla_{\tilde x}\log N(\tilde x; x, \sigma^2 I)
    = (x - \tilde x)/\sigma^2 = -\varepsilon/\sigma`, and

    .. math::

        J(\theta) = \frac1n\sum_i \tfrac12 \big\| -g(\tilde x_i)
        - (x_i - \tilde x_i)/\sigma^2 \big\|^2
        = \frac1n \sum_i \tfrac12 \|r_i\|^2, \quad
        r_i = g(\tilde x_i) - \varepsilon_i/\sigma,

    whose expectation is the Fisher divergence between the model and the
    noise-smoothed data density, up to a constant. Gradient with the noise
    held fixed: :math:`\texttt{grad\_params\_of\_grad\_x}(\tilde x, r/n)`.
    Only for ``domain="real"`` models; ``seed`` is required.

    References
    ----------
    Vincent, P. (2011). A connection between score matching and denoising
    autoencoders. Neural Computation 23(7), 1661-1674.
    """

    domains = ("real",)

    def __init__(self, sigma):
        self.sigma = check_positive(sigma, "sigma")

    def _repr_fields(self):
        return {"sigma": self.sigma}

    def _residual(self, model, x, seed):
        eps = _objective_rng(seed).standard_normal(x.shape)
        xt = x + self.sigma * eps
        r = model.grad_x(xt) - eps / self.sigma
        return xt, r

    def _value(self, model, x, seed):
        _, r = self._residual(model, x, seed)
        return float(np.mean(0.5 * np.sum(r * r, axis=1)))

    def _value_and_grad(self, model, x, seed):
        xt, r = self._residual(model, x, seed)
        loss = float(np.mean(0.5 * np.sum(r * r, axis=1)))
        return loss, model.grad_params_of_grad_x(xt, r / x.shape[0])


class DiffusionScoreMatching(Objective):
    r"""Diffusion score matching with a diagonal diffusion matrix (Barp et al. 2019).

    Parameters
    ----------
    m : callable
        ``m(x) -> (m, dm)`` for a validated batch ``x`` of shape ``(n, d)``:
        the diagonal :math:`m_k(x)` and its derivatives
        :math:`\partial m_k/\partial x_k`, both arrays of shape ``(n, d)``.
        ``m`` must not depend on the model parameters (otherwise the
        dropped constant below would). :class:`ManualFlow` and
        :class:`GaussianFlow` are the two choices of the Student-t figure.

    Notes
    -----
    The diffusion Fisher divergence with :math:`M(x) = \operatorname{diag}
    m(x)` is :math:`F_m = \frac12 \mathbb E_p\|m \odot (\psi_\theta -
    \nabla\log p)\|^2` (Barp et al. 2019; Gong & Li 2021 read it as the plain
    Fisher divergence after the flow :math:`y = T(x)` with :math:`m =
    1/T'`). Expanding the square and integrating the cross term by parts in
    each :math:`x_k`,
    :math:`\mathbb E_p[m_k^2 \psi_k \partial_k \log p] =
    -\mathbb E_p[\partial_k(m_k^2 \psi_k)]`, gives
    :math:`F_m = \mathbb E_p J + \frac12\mathbb E_p\|m\odot\nabla\log p\|^2`
    with, using :math:`\psi = -g` and :math:`\partial_k(m_k^2 g_k) = 2 m_k
    m_k' g_k + m_k^2 h_k`,

    .. math::

        J(\theta) = \frac1n \sum_i \sum_k \Big[\tfrac12 m_{ik}^2 g_{ik}^2
        - 2 m_{ik} m'_{ik} g_{ik} - m_{ik}^2 h_{ik}\Big].

    With :math:`m \equiv 1` this is :class:`ScoreMatching`. Gradient, with
    :math:`a = m^2` and :math:`b = 2 m m'`:

    .. math::

        \nabla_\theta J = \texttt{grad\_params\_of\_grad\_x}(x, (a g - b)/n)
        - \texttt{grad\_params\_of\_hessian\_diag}(x, a/n).

    Deterministic: ``seed`` is ignored. Only for ``domain="real"`` models.

    References
    ----------
    Barp, A., Briol, F.-X., Duncan, A., Girolami, M., Mackey, L. (2019).
    Minimum Stein discrepancy estimators. NeurIPS.
    Gong, W., Li, Y. (2021). Interpreting diffusion score matching using
    normalizing flow. ICML INNF+ workshop.
    """

    domains = ("real",)

    def __init__(self, m):
        if not callable(m):
            raise TypeError(f"`m` must be a callable x -> (m, dm_dx); got {type(m).__name__}.")
        self.m = m

    def _repr_fields(self):
        return {"m": self.m}

    def _diffusion(self, x):
        out = self.m(x)
        if not isinstance(out, tuple) or len(out) != 2:
            raise TypeError("`m(x)` must return a tuple (m, dm_dx) of two arrays of the shape of x.")
        m = as_float_array(out[0], "m(x)[0]")
        dm = as_float_array(out[1], "m(x)[1]")
        for arr, nm in ((m, "m(x)[0]"), (dm, "m(x)[1]")):
            if arr.shape != x.shape:
                raise ValueError(f"`{nm}` must have the shape of `x`, {x.shape}; got {arr.shape}.")
            check_finite(arr, nm)
        return m, dm

    def _terms(self, model, x):
        m, dm = self._diffusion(x)
        g = model.grad_x(x)
        h = model.hessian_diag(x)
        a = m * m
        b = 2.0 * m * dm
        per = np.sum(0.5 * a * g * g - b * g - a * h, axis=1)
        return float(np.mean(per)), a, b, g

    def _value(self, model, x, seed):
        return self._terms(model, x)[0]

    def _value_and_grad(self, model, x, seed):
        n = x.shape[0]
        m, dm = self._diffusion(x)
        a = m * m
        b = 2.0 * m * dm
        g, h, grads = model.score_matching_grad(x, a / n, lambda gr, rows: (a[rows] * gr - b[rows]) / n)
        loss = float(np.mean(np.sum(0.5 * a * g * g - b * g - a * h, axis=1)))
        return loss, grads


def _as_vector(value, name):
    arr = as_float_array(value, name)
    if arr.ndim > 1:
        raise ValueError(f"`{name}` must be a scalar or a 1-D array; got shape {arr.shape}.")
    check_finite(arr, name)
    return arr


class ManualFlow:
    r"""The hand-made diffusion :math:`m(x) = 1 + (x - \mathrm{loc})^2 / c`.

    Parameters
    ----------
    loc : float or array_like of shape (d,)
        Centre (a fixed number, not a model parameter).
    c : float, default 0.6
        Width (> 0); the Student-t figure (data :math:`t_5(0, 0.3)`) uses
        :math:`c = 0.6`.

    Notes
    -----
    Returns :math:`m_k = 1 + (x_k - \mathrm{loc}_k)^2/c` and
    :math:`\partial m_k/\partial x_k = 2 (x_k - \mathrm{loc}_k)/c`. Large
    :math:`m` in the tails speeds up learning of a location parameter far
    from the data (the "fast region" of Ou's talk).
    """

    def __init__(self, loc, c=0.6):
        self.loc = _as_vector(loc, "loc")
        self.c = check_positive(c, "c")

    def __call__(self, x):
        u = np.asarray(x, dtype=np.float64) - self.loc
        return 1.0 + u * u / self.c, 2.0 * u / self.c

    def __repr__(self):
        return f"ManualFlow(loc={self.loc!r}, c={self.c!r})"


class GaussianFlow:
    r"""Diffusion :math:`m = 1/T'` of the Gaussianising flow of a Student-t.

    Parameters
    ----------
    loc, scale, df : float or array_like of shape (d,)
        The Student-t :math:`t_\nu(\mathrm{loc}, \mathrm{scale})` (per
        coordinate) whose CDF :math:`F` defines the flow; fixed numbers.

    Notes
    -----
    :math:`T = \Phi^{-1}\circ F` maps the Student-t to :math:`N(0,1)`;
    with :math:`z = T(x)`, :math:`u = (x - \mathrm{loc})/\mathrm{scale}` and
    density :math:`f = F'`,

    .. math::

        m(x) = \frac{1}{T'(x)} = \frac{\varphi(z)}{f(x)}, \qquad
        \frac{\partial m}{\partial x} = -z - m\,\frac{f'(x)}{f(x)}
        = -z + m\,\frac{(\nu + 1)\,u}{(\nu + u^2)\,\mathrm{scale}}.

    :math:`z` is taken from the lower tail on each side
    (:math:`z = -\Phi^{-1}(F(-u))` for :math:`u > 0`) and :math:`m` is
    formed in log space, so the tails keep their digits.
    """

    def __init__(self, loc, scale, df):
        self.loc = _as_vector(loc, "loc")
        self.scale = _as_vector(scale, "scale")
        self.df = _as_vector(df, "df")
        if np.any(self.scale <= 0):
            raise ValueError(f"`scale` must be > 0; got {self.scale!r}.")
        if np.any(self.df <= 0):
            raise ValueError(f"`df` must be > 0; got {self.df!r}.")

    def __call__(self, x):
        x = np.asarray(x, dtype=np.float64)
        nu = self.df
        u = (x - self.loc) / self.scale
        lower = special.stdtr(nu, -np.abs(u))
        z = special.ndtri(lower) * np.where(u > 0, -1.0, 1.0)
        log_f = (
            special.gammaln((nu + 1.0) / 2.0)
            - special.gammaln(nu / 2.0)
            - 0.5 * np.log(nu * math.pi)
            - np.log(self.scale)
            - (nu + 1.0) / 2.0 * np.log1p(u * u / nu)
        )
        log_phi = -0.5 * z * z - 0.5 * math.log(2.0 * math.pi)
        m = np.exp(log_phi - log_f)
        dm = -z + m * (nu + 1.0) * u / ((nu + u * u) * self.scale)
        return m, dm

    def __repr__(self):
        return f"GaussianFlow(loc={self.loc!r}, scale={self.scale!r}, df={self.df!r})"
