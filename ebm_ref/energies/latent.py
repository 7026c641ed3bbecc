r"""Latent-variable energies of the ellipse toy example (its data: :mod:`ebm_ref.datasets`).

The lecture "Inference for latent variable EBMs" fits points on an ellipse
with a one-dimensional latent ``z`` (the angle) searched exhaustively over a
grid. :class:`LatentEnergy` is the unconditional model, whose decoder
weights ``w`` are the two radii; :class:`ConditionalLatentEnergy` predicts
the radii from an observed ``x`` with a small MLP. Both marginalise ``z``
over the grid with a zero-temperature (min) or finite-temperature
(softmin) free energy.
"""

from __future__ import annotations

import numbers

import numpy as np

from .._rng import as_seed_sequence
from .._validation import check_batch, check_param, check_weights
from ._base import EnergyModel, merged_params
from ._latent_grid import DEFAULT_Z_GRID, GridStats, check_beta, check_z_grid, joint_energy_rows, phi_of
from ._mlp_core import ACTIVATIONS, backprop, check_sizes, forward, weight_grads

__all__ = [
    "LatentEnergy",
    "ConditionalLatentEnergy",
    "DEFAULT_Z_GRID",
]

class LatentEnergy(EnergyModel):
    r"""The ellipse model: energy of ``y`` marginalised over a grid of angles.

    Parameters
    ----------
    w : array_like of shape (2,)
        Decoder weights (the ellipse's two semi-axes).
    z_grid : array_like of shape (m,), optional
        Latent grid; default the lecture's 48 points ``arange(48) * pi/24``.
        A fixed attribute, not a parameter.
    beta : float, default 1.0
        Inverse temperature, ``> 0``; ``np.inf`` gives the zero-temperature
        free energy. A fixed attribute.

    Notes
    -----
    With :math:`\varphi(z) = (\cos z, \sin z)` and :math:`g(z) = w \odot
    \varphi(z)`:

    .. math::

        E(y, z) = \|y - g(z)\|^2, \qquad
        F_\infty(y) = \min_{z \in \mathcal Z} E(y, z), \qquad
        F_\beta(y) = -\frac{1}{\beta} \log \frac{1}{|\mathcal Z|}
                     \sum_{z \in \mathcal Z} e^{-\beta E(y, z)}.

    ``energy(y)`` is :math:`F_\beta` at the model's ``beta``. It is
    evaluated as :math:`F_\beta = E_{min} - \beta^{-1}\operatorname{log1p}(
    \operatorname{mean}_j \operatorname{expm1}(-\beta \Delta_j))` with
    :math:`\Delta_j = E_j - E_{min} \ge 0`: no overflow for large
    :math:`\beta`, full precision as :math:`\beta \to 0`.

    Derivatives use the softmin weights :math:`\pi_j \propto e^{-\beta
    E(y, z_j)}` and :math:`\langle\cdot\rangle`, :math:`\mathrm{Var}`,
    :math:`\mathrm{Cov}` under :math:`\pi`; for any per-point quantity
    :math:`f_j(\theta)`, :math:`\partial_\theta \langle f\rangle = \langle
    \partial_\theta f\rangle - \beta\, \mathrm{Cov}(f, \partial_\theta E)`.
    Hence

    .. math::

        \nabla_y F = 2\,(y - w \odot \langle\varphi\rangle), \qquad
        \frac{\partial^2 F}{\partial y_k^2} = 2 - 4\beta\, w_k^2\,
            \mathrm{Var}(\varphi_k), \qquad
        \frac{\partial F}{\partial w_k} = -2\,(y_k \langle\varphi_k\rangle
            - w_k \langle\varphi_k^2\rangle),

    and, with :math:`\psi_{m,j} = y_m\varphi_{jm} - w_m\varphi_{jm}^2
    = -\tfrac12 \partial E_j/\partial w_m`,

    .. math::

        \partial_{w_m} \textstyle\sum_k v_k \partial_{y_k} F
            = -2\,\big(v_m \langle\varphi_m\rangle
              + 2\beta\, \mathrm{Cov}(v\cdot g, \psi_m)\big),

        \partial_{w_m} \textstyle\sum_k c_k \partial^2_{y_k} F
            = -8\beta\,\big(c_m w_m \mathrm{Var}(\varphi_m)
              + \beta\, \mathrm{Cov}\big(\textstyle\sum_k c_k
                (g_k - \langle g_k\rangle)^2, \psi_m\big)\big).

    Covariances are computed from centred values (no cancellation).

    **beta = inf.** :math:`\pi` is one-hot at the *first* minimising grid
    point (ties broken by grid order), every derivative is that of
    :math:`E(y, \check z)` at that point and the :math:`\beta`-terms vanish
    (Hessian diagonal 2). :math:`F_\infty` is continuous but only piecewise
    smooth: derivatives jump where the minimiser changes.

    **Limits** (the lecture's derivation, with rates): :math:`0 \le F_\beta
    - F_\infty \le \log|\mathcal Z| / \beta`; with a unique minimiser and
    gap :math:`\delta` to the next grid value, :math:`|\beta(F_\beta -
    F_\infty) - \log|\mathcal Z|| \le (|\mathcal Z| - 1) e^{-\beta\delta}`.
    As :math:`\beta \to 0`, :math:`F_\beta = \mu - \beta\sigma^2/2 +
    \beta^2\kappa_3/6 - \beta^3\kappa_4/24 + O(\beta^4)` (cumulants of
    :math:`E(y, z)` over the uniform grid), so :math:`F_\beta \to \langle
    E\rangle_{\mathcal Z}`.

    References
    ----------
    LeCun, Y. et al. (2006). A tutorial on energy-based learning.
    Canziani, A. and LeCun, Y., NYU Deep Learning course, "Inference for
    latent variable EBMs" (the ellipse example).
    """

    def __init__(self, w, z_grid=None, beta=1.0):
        self.z_grid = check_z_grid(z_grid)
        self.beta = check_beta(beta, 1.0)
        self._phi = phi_of(self.z_grid)
        self._phi.flags.writeable = False
        self._set_params({"w": w}, {"w": (2,)})

    @property
    def n_features(self):
        return 2

    def _describe(self):
        return "LatentEnergy (y in R^2)"

    def __repr__(self):
        return f"LatentEnergy(w={self._params['w'].tolist()}, |z_grid|={self.z_grid.size}, beta={self.beta})"

    # ----------------------------------------------------------- internals
    def _stats(self, y, beta, need_weights=True):
        w = np.broadcast_to(self._params["w"], y.shape)
        return GridStats(y, w, self._phi, beta, need_weights)

    def _check_y(self, y):
        return self._check_x(y, "y")

    # ------------------------------------------------------------ extras
    def joint_energy(self, y, z):
        r"""``E(y, z) = ||y - w * (cos z, sin z)||^2`` for any real ``z``.

        Parameters
        ----------
        y : array_like of shape (n, 2) or (2,)
        z : array_like of shape (n,) or scalar

        Returns
        -------
        ndarray of shape (n,) (0-d for a single ``y`` and scalar ``z``)
        """
        y2, was_1d = self._check_y(y)
        e = joint_energy_rows(y2, self._params["w"], z)
        return e[0] if was_1d else e

    def argmin_z(self, y):
        """First grid value minimising ``E(y, z)``, shape ``(n,)``."""
        y2, was_1d = self._check_y(y)
        z = self.z_grid[self._stats(y2, np.inf, need_weights=False).idx]
        return z[0] if was_1d else z

    def free_energy(self, y, beta=None):
        """``F_beta(y)`` at ``beta`` (> 0 or ``np.inf``; default the model's), ``(n,)``."""
        y2, was_1d = self._check_y(y)
        f = self._stats(y2, check_beta(beta, self.beta), need_weights=False).F
        return f[0] if was_1d else f

    def grad_free_energy(self, y, beta=None):
        """``dF_beta/dy``, shape ``(n, 2)``."""
        y2, was_1d = self._check_y(y)
        g = self._stats(y2, check_beta(beta, self.beta)).grad_y()
        return g[0] if was_1d else g

    def grad_params_free_energy(self, y, beta=None, weights=None):
        """``sum_i weights_i dF_beta(y_i)/dw`` as ``{"w": (2,)}`` (mean by default)."""
        y2, was_1d = self._check_y(y)
        wts = check_weights(weights, y2.shape[0], was_1d)
        st = self._stats(y2, check_beta(beta, self.beta))
        return {"w": wts @ st.grad_w()}

    def softmin_weights(self, y, beta=None):
        """The weights ``pi_j(y)`` over the grid, shape ``(n, m)``."""
        y2, was_1d = self._check_y(y)
        pi = self._stats(y2, check_beta(beta, self.beta)).pi
        return pi[0] if was_1d else pi

    # ---------------------------------------------------------------- hooks
    def _energy(self, x):
        return self._stats(x, self.beta, need_weights=False).F

    def _grad_x(self, x):
        return self._stats(x, self.beta).grad_y()

    def _hessian_diag(self, x):
        n = x.shape[0]
        if np.isinf(self.beta):
            return np.full((n, 2), 2.0)
        st = self._stats(x, self.beta)
        w = self._params["w"]
        return 2.0 - 4.0 * self.beta * (w * w) * st.var_phi()

    def _grad_params(self, x, w):
        return {"w": w @ self._stats(x, self.beta).grad_w()}

    def _grad_params_of_grad_x(self, x, v):
        beta = self.beta
        st = self._stats(x, beta)
        out = -2.0 * np.sum(v * st.m1, axis=0)
        if not np.isinf(beta):
            w = self._params["w"]
            f = (v * w) @ self._phi.T  # v . g_j, (n, m)
            for k in range(2):
                out[k] -= 4.0 * beta * np.sum(st.cov(f, st.de_dw_half(k)))
        return {"w": out}

    def _grad_params_of_hessian_diag(self, x, c):
        beta = self.beta
        if np.isinf(beta):
            return {"w": np.zeros(2)}
        st = self._stats(x, beta)
        w = self._params["w"]
        g = w[None, None, :] * self._phi[None, :, :]
        dg = g - (w * st.m1)[:, None, :]
        q = np.einsum("nk,nmk->nm", c, dg * dg)
        out = -8.0 * beta * w * np.sum(c * st.var_phi(), axis=0)
        for k in range(2):
            out[k] -= 8.0 * beta * beta * np.sum(st.cov(q, st.de_dw_half(k)))
        return {"w": out}


# --------------------------------------------------------------------------
class ConditionalLatentEnergy:
    r"""Conditional ellipse model: an MLP predicts the radii from ``x``.

    Parameters
    ----------
    sizes : sequence of int, default (1, 8, 8, 2)
        ``(d_x, h_1, ..., h_L, 2)``: the network :math:`f` from ``x`` to the
        decoder weights, 1 to 3 hidden layers; the last entry must be 2
        (the lecture's 1 -> 8 -> 8 -> 2).
    activation : {"softplus", "tanh", "swish"}, default "tanh"
        Hidden activation (the lecture's ReLU is not differentiable twice;
        these are its smooth stand-ins). The output layer is linear.
    z_grid : array_like of shape (m,), optional
        As in :class:`LatentEnergy` (default 48 points on [0, 2 pi)).
    beta : float, default 1.0
        Inverse temperature (> 0 or ``np.inf``), the default of every
        free-energy method.
    seed : int, SeedSequence or Generator, default 0
        Initial weights ``N(0, 1/fan_in)`` (``W1, ..., WL, W_out`` in that
        order), biases 0.

    Attributes
    ----------
    params : dict
        ``W1, b1, ..., WL, bL, W_out, b_out`` with shapes ``(h_l, h_{l-1})``,
        ``(h_l,)``, ``(2, h_L)``, ``(2,)``.

    Notes
    -----
    .. math::

        E(x, y, z) = \|y - f(x) \odot \varphi(z)\|^2, \qquad
        f(x) = W_{out} z_L + b_{out},\; z_l = \phi(W_l z_{l-1} + b_l),\;
        z_0 = x,

    with the free energies of :class:`LatentEnergy` at :math:`w = f(x)`.
    Parameter gradients chain :math:`\partial F/\partial w` of
    :class:`LatentEnergy` (per sample) through :math:`f` by
    backpropagation: :math:`\bar f_i = \omega_i \partial F_i/\partial w`,
    :math:`\partial/\partial W_{out} = \sum_i \bar f_i z_{L,i}^\top`,
    :math:`\partial/\partial b_{out} = \sum_i \bar f_i`, :math:`g_L =
    W_{out}^\top \bar f`, and the hidden layers as in
    :class:`~ebm_ref.energies.MLPEnergy`.

    This is not an :class:`~ebm_ref.energies.EnergyModel` (its energy
    depends on the pair ``(x, y)``); it keeps the same ``params`` /
    ``with_params`` conventions.
    """

    def __init__(self, sizes=(1, 8, 8, 2), activation="tanh", z_grid=None, beta=1.0, seed=0):
        sizes = _check_sizes_conditional(sizes)
        if not isinstance(activation, str) or activation not in ACTIVATIONS:
            raise ValueError(f"`activation` must be one of {ACTIVATIONS}; got {activation!r}.")
        self.sizes = sizes
        self.activation = activation
        self.z_grid = check_z_grid(z_grid)
        self.beta = check_beta(beta, 1.0)
        self._phi = phi_of(self.z_grid)
        rng = np.random.default_rng(as_seed_sequence(seed))
        params = {}
        hidden = sizes[:-1]
        for l in range(1, len(hidden)):
            params[f"W{l}"] = rng.standard_normal((hidden[l], hidden[l - 1])) / np.sqrt(hidden[l - 1])
            params[f"b{l}"] = np.zeros(hidden[l])
        params["W_out"] = rng.standard_normal((2, hidden[-1])) / np.sqrt(hidden[-1])
        params["b_out"] = np.zeros(2)
        self._set(params)

    # ------------------------------------------------------------ params
    def _shapes(self):
        hidden = self.sizes[:-1]
        shapes = {}
        for l in range(1, len(hidden)):
            shapes[f"W{l}"] = (hidden[l], hidden[l - 1])
            shapes[f"b{l}"] = (hidden[l],)
        shapes["W_out"] = (2, hidden[-1])
        shapes["b_out"] = (2,)
        return shapes

    def _set(self, params):
        out = {}
        for name, shape in self._shapes().items():
            arr = check_param(params[name], name, shape, "ConditionalLatentEnergy")
            arr.flags.writeable = False
            out[name] = arr
        self._params = out
        n_hidden = len(self.sizes) - 2
        self._layers = [(out[f"W{l}"], out[f"b{l}"]) for l in range(1, n_hidden + 1)]

    @property
    def params(self):
        """Insertion-ordered dict of read-only arrays (a fresh dict)."""
        return dict(self._params)

    @property
    def n_features_x(self):
        """Dimension of ``x``."""
        return self.sizes[0]

    def with_params(self, params):
        """A new model with some or all parameters replaced (shapes checked)."""
        merged = merged_params(self._params, params, "ConditionalLatentEnergy")
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new._set(merged)
        return new

    _with_params_unchecked = with_params

    def __repr__(self):
        return f"ConditionalLatentEnergy(sizes={self.sizes}, activation={self.activation!r}, beta={self.beta})"

    # ------------------------------------------------------------ internals
    def _check_xy(self, x, y):
        x2, x1d = check_batch(x, self.n_features_x, "x", f"ConditionalLatentEnergy with {self.n_features_x} inputs")
        y2, y1d = check_batch(y, 2, "y", "ConditionalLatentEnergy (y in R^2)")
        if x2.shape[0] != y2.shape[0]:
            raise ValueError(f"`x` and `y` must have the same number of samples; got {x2.shape[0]} and {y2.shape[0]}.")
        return x2, y2, (x1d and y1d)

    def _decoder(self, x2, order):
        zs, ders = forward(self._layers, self.activation, x2, order)
        f = zs[-1] @ self._params["W_out"].T + self._params["b_out"]
        return f, zs, ders

    def _stats(self, x2, y2, beta, need_weights=True):
        f, _, _ = self._decoder(x2, 0)
        return GridStats(y2, f, self._phi, beta, need_weights)

    # ------------------------------------------------------------ public
    def decoder_weights(self, x):
        """``f(x)``, the per-sample radii ``(w1, w2)``, shape ``(n, 2)``."""
        x2, x1d = check_batch(x, self.n_features_x, "x", f"ConditionalLatentEnergy with {self.n_features_x} inputs")
        f, _, _ = self._decoder(x2, 0)
        return f[0] if x1d else f

    def latent_at(self, x):
        """The unconditional :class:`LatentEnergy` with ``w = f(x)`` for one ``x``."""
        x2, _ = check_batch(x, self.n_features_x, "x", f"ConditionalLatentEnergy with {self.n_features_x} inputs")
        if x2.shape[0] != 1:
            raise ValueError(f"`x` must be a single input for latent_at; got {x2.shape[0]} samples.")
        f, _, _ = self._decoder(x2, 0)
        return LatentEnergy(f[0], z_grid=self.z_grid, beta=self.beta)

    def joint_energy(self, x, y, z):
        """``E(x, y, z) = ||y - f(x) * (cos z, sin z)||^2``, shape ``(n,)``."""
        x2, y2, one = self._check_xy(x, y)
        f, _, _ = self._decoder(x2, 0)
        e = joint_energy_rows(y2, f, z)
        return e[0] if one else e

    def argmin_z(self, x, y):
        """First grid value minimising ``E(x, y, z)``, shape ``(n,)``."""
        x2, y2, one = self._check_xy(x, y)
        z = self.z_grid[self._stats(x2, y2, np.inf, need_weights=False).idx]
        return z[0] if one else z

    def free_energy(self, x, y, beta=None):
        """``F_beta(y | x)``, shape ``(n,)``; ``beta`` defaults to the model's."""
        x2, y2, one = self._check_xy(x, y)
        F = self._stats(x2, y2, check_beta(beta, self.beta), need_weights=False).F
        return F[0] if one else F

    def grad_free_energy(self, x, y, beta=None):
        """``dF_beta(y | x)/dy``, shape ``(n, 2)``."""
        x2, y2, one = self._check_xy(x, y)
        g = self._stats(x2, y2, check_beta(beta, self.beta)).grad_y()
        return g[0] if one else g

    def grad_params_free_energy(self, x, y, beta=None, weights=None):
        """``sum_i weights_i dF_beta(y_i | x_i)/dtheta`` (dict; mean by default)."""
        x2, y2, one = self._check_xy(x, y)
        wts = check_weights(weights, x2.shape[0], one)
        f, zs, ders = self._decoder(x2, 1)
        st = GridStats(y2, f, self._phi, check_beta(beta, self.beta))
        fbar = st.grad_w() * wts[:, None]
        W_out = self._params["W_out"]
        g_top = fbar @ W_out
        _, deltas = backprop(self._layers, ders, g_top)
        out = {}
        ones = np.ones(x2.shape[0])
        for l, (gW, gb) in enumerate(weight_grads(zs, deltas, ones), start=1):
            out[f"W{l}"] = gW
            out[f"b{l}"] = gb
        out["W_out"] = fbar.T @ zs[-1]
        out["b_out"] = fbar.sum(axis=0)
        return out


def _check_sizes_conditional(sizes):
    """``(d_x, h_1, ..., h_L, 2)`` with 1 to 3 hidden layers."""
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__"):
        raise TypeError(
            f"`sizes` must be a sequence of ints (d_x, h_1, ..., h_L, 2); got {type(sizes).__name__}."
        )
    sizes = tuple(sizes)
    if not 3 <= len(sizes) <= 5:
        raise ValueError(
            "`sizes` must be (d_x, h_1, ..., h_L, 2) with 1 to 3 hidden layers (3 to 5 entries); "
            f"got {len(sizes)} entries {sizes!r}."
        )
    hidden = check_sizes(sizes[:-1])
    last = sizes[-1]
    if isinstance(last, (bool, np.bool_)) or not isinstance(last, numbers.Integral) or int(last) != 2:
        raise ValueError(f"the last entry of `sizes` must be 2 (the two radii); got {last!r} in {sizes!r}.")
    return hidden + (2,)
