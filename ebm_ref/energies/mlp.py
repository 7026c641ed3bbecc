r"""Multilayer-perceptron energy with exact Hessian diagonal and mixed derivatives.

The forward pass, backpropagation and activation derivatives live in
``_mlp_core`` (shared with :class:`~ebm_ref.energies.latent.ConditionalLatentEnergy`);
the Numba kernel of the samplers in ``_mlp_kernel``.
"""

from __future__ import annotations

import numba
import numpy as np

from .._rng import as_seed_sequence
from .._validation import as_float_array, check_finite
from ._base import EnergyModel
from ._mlp_core import (
    ACTIVATIONS,
    backprop,
    blocks,
    check_sizes,
    forward,
    grad_x_param_grads,
    hessian_diag_block,
    hessian_diag_param_grads_block,
    mlp_layers,
    ordered_param_grads,
    weight_grads,
)
from ._mlp_sm import score_matching_terms as sm_terms

__all__ = ["MLPEnergy", "ACTIVATIONS"]

class MLPEnergy(EnergyModel):
    r"""Scalar energy given by a multilayer perceptron with smooth activations.

    Parameters
    ----------
    sizes : sequence of int
        ``(d, h_1, ..., h_L)``: input dimension and hidden widths, with
        ``1 <= L <= 3`` hidden layers; every entry >= 1. The scalar output
        layer is implicit.
    activation : {"softplus", "tanh", "swish"}, default "softplus"
        :math:`\phi`, applied after every hidden layer.
    seed : int, SeedSequence or Generator, default 0
        Initial weights :math:`W_l \sim \mathcal N(0, 1/h_{l-1})` entrywise,
        :math:`w_{out} \sim \mathcal N(0, 1/h_L)` (fan-in scaling), biases 0.
        Drawn with ``numpy.random.default_rng(as_seed_sequence(seed))`` in
        the order ``W1, ..., WL, w_out``. ``with_params`` sets any values.

    Attributes
    ----------
    sizes : tuple of int
    activation : str
    params : dict
        ``W1, b1, ..., WL, bL, w_out, b_out`` with shapes ``(h_l, h_{l-1})``,
        ``(h_l,)``, ``(h_L,)`` and ``()``.

    Notes
    -----
    Forward pass, with :math:`z_0 = x`:

    .. math::

        a_l = W_l z_{l-1} + b_l, \quad z_l = \phi(a_l) \;(l = 1..L), \qquad
        E(x) = w_{out}^\top z_L + b_{out}.

    **Gradient** (backpropagation): :math:`g_L = w_{out}`,
    :math:`\delta_l = g_l \odot \phi'(a_l)`, :math:`g_{l-1} = W_l^\top
    \delta_l`; then :math:`\nabla_x E = g_0`, :math:`\partial E/\partial W_l
    = \delta_l z_{l-1}^\top`, :math:`\partial E/\partial b_l = \delta_l`,
    :math:`\partial E/\partial w_{out} = z_L`, :math:`\partial E/\partial
    b_{out} = 1`.

    **Hessian diagonal.** For each input coordinate :math:`k` propagate the
    input Jacobian :math:`J_l^{(k)} = \partial z_l/\partial x_k` and the
    second derivative :math:`S_l^{(k)} = \partial^2 z_l/\partial x_k^2`:

    .. math::

        A_l^{(k)} = W_l J_{l-1}^{(k)},\; J_l^{(k)} = \phi'(a_l) \odot A_l^{(k)},
        \qquad Q_l^{(k)} = W_l S_{l-1}^{(k)},\;
        S_l^{(k)} = \phi''(a_l) \odot (A_l^{(k)})^{2} + \phi'(a_l) \odot Q_l^{(k)},

    with :math:`J_0^{(k)} = e_k`, :math:`S_0^{(k)} = 0`, and
    :math:`\partial^2 E/\partial x_k^2 = w_{out}^\top S_L^{(k)}`. The map
    :math:`S_{l-1} \mapsto S_l` is linear with the same Jacobian as the
    gradient's tangent map, so contracting with the backpropagated adjoint
    :math:`g_l` gives the same number without propagating :math:`S`:

    .. math::

        \frac{\partial^2 E}{\partial x_k^2} = \sum_{l=1}^{L}
        \big(g_l \odot \phi''(a_l)\big)^\top \big(A_l^{(k)}\big)^{2},
        \qquad A_1^{(k)} = W_{1,:k}.

    This is what ``hessian_diag`` computes: one backward pass plus ``d``
    Jacobian columns through layers ``2..L`` (cost :math:`O(d)` forward
    passes, and nothing for layer 1).

    **Mixed derivative of the gradient**, :math:`S(\theta) = v^\top \nabla_x
    E`: the tangent :math:`t_0 = v`, :math:`\dot a_l = W_l t_{l-1}`,
    :math:`t_l = \phi'(a_l) \odot \dot a_l` gives :math:`S = w_{out}^\top
    t_L`; its reverse pass, with :math:`\bar t_l = g_l` and
    :math:`\bar z_L = 0`:

    .. math::

        \bar a_l = g_l \odot \phi''(a_l) \odot \dot a_l
                   + \bar z_l \odot \phi'(a_l),\quad
        \bar z_{l-1} = W_l^\top \bar a_l,

        \partial S/\partial W_l = \delta_l t_{l-1}^\top + \bar a_l z_{l-1}^\top,\;
        \partial S/\partial b_l = \bar a_l,\;
        \partial S/\partial w_{out} = t_L,\; \partial S/\partial b_{out} = 0.

    **Mixed derivative of the Hessian diagonal**, :math:`T(\theta) =
    \sum_k c_k\, w_{out}^\top S_L^{(k)}`: the adjoint of the forward
    recursion above. The adjoint of :math:`S_l^{(k)}` is :math:`c_k g_l`
    (and of :math:`Q_l^{(k)}`, :math:`c_k \delta_l`), so only the
    :math:`c`-weighted sums :math:`P_l = \sum_k c_k (A_l^{(k)})^2` and
    :math:`\Sigma_l = \sum_k c_k S_l^{(k)} = \phi''(a_l)\odot P_l +
    \phi'(a_l)\odot W_l \Sigma_{l-1}` are needed besides the Jacobians.
    With :math:`\bar J_L = 0`, :math:`\bar z_L = 0`, going down:

    .. math::

        \bar A_l^{(k)} = 2 c_k\, g_l \odot \phi''(a_l) \odot A_l^{(k)}
                         + \phi'(a_l) \odot \bar J_l^{(k)},

        \bar a_l = g_l \odot \big(\phi'''(a_l) \odot P_l
                   + \phi''(a_l) \odot W_l \Sigma_{l-1}\big)
                   + \phi''(a_l) \odot \textstyle\sum_k \bar J_l^{(k)} \odot A_l^{(k)}
                   + \phi'(a_l) \odot \bar z_l,

        \partial T/\partial W_l = \textstyle\sum_k \bar A_l^{(k)} J_{l-1}^{(k)\top}
            + \delta_l \Sigma_{l-1}^\top + \bar a_l z_{l-1}^\top,\quad
        \partial T/\partial b_l = \bar a_l,

        \bar J_{l-1}^{(k)} = W_l^\top \bar A_l^{(k)},\quad
        \bar z_{l-1} = W_l^\top \bar a_l,\qquad
        \partial T/\partial w_{out} = \Sigma_L,\; \partial T/\partial b_{out} = 0.

    Each mixed derivative costs about three times its primal: forward, the
    stacked state :math:`F_{l-1} = [J_{l-1}; \Sigma_{l-1}; z_{l-1}]` gives
    :math:`W_l F_{l-1} = [A_l; W_l\Sigma_{l-1}; a_l - b_l]`, and in reverse
    :math:`R_l = [\bar A_l; \delta_l; \bar a_l]` gives
    :math:`\partial T/\partial W_l = R_l F_{l-1}^\top` and
    :math:`W_l^\top R_l = [\bar J_{l-1}; g_{l-1}; \bar z_{l-1}]`; each is
    one matrix product over the stacked ``(n (d + 2), h)`` states. Samples
    are processed in blocks of about :math:`2^{16}` stacked entries so
    these states stay in cache. All sums over samples are weighted as in
    docs/models.md.

    **Activations** (all derivatives from :math:`e = e^{-|a|}`, finite for
    any finite :math:`a`, no overflow warning at :math:`|a| \sim 10^3`):
    softplus :math:`\phi = \log(1+e^a)`, :math:`\phi' = \sigma(a)`,
    :math:`\phi'' = \sigma(a)\sigma(-a) = p`, :math:`\phi''' = p\,u` with
    :math:`u = \sigma(-a) - \sigma(a)`; tanh :math:`\phi' =
    \operatorname{sech}^2 a`, :math:`\phi'' = -2\tanh(a)\operatorname{sech}^2 a`,
    :math:`\phi''' = \operatorname{sech}^2 a\,(4\tanh^2 a - 2\operatorname{sech}^2 a)`;
    swish :math:`\phi = a\sigma(a)`, :math:`\phi' = \sigma(a) + a p`,
    :math:`\phi'' = p(2 + a u)`, :math:`\phi''' = p(3u + a u^2 - 2 a p)`.

    References
    ----------
    Griewank, A. and Walther, A. (2008). *Evaluating Derivatives*, 2nd ed.,
    SIAM (forward and reverse modes, Taylor propagation).
    Martens, J., Sutskever, I. and Swersky, K. (2012). Estimating the
    Hessian by back-propagating curvature. ICML.
    Ramachandran, P., Zoph, B. and Le, Q. V. (2017). Searching for
    activation functions (swish). arXiv:1710.05941.
    """

    def __init__(self, sizes, activation="softplus", seed=0):
        sizes = check_sizes(sizes)
        if not isinstance(activation, str) or activation not in ACTIVATIONS:
            raise ValueError(f"`activation` must be one of {ACTIVATIONS}; got {activation!r}.")
        self.sizes = sizes
        self.activation = activation
        rng = np.random.default_rng(as_seed_sequence(seed))
        params = {}
        for l in range(1, len(sizes)):
            fan_in = sizes[l - 1]
            params[f"W{l}"] = rng.standard_normal((sizes[l], fan_in)) / np.sqrt(fan_in)
            params[f"b{l}"] = np.zeros(sizes[l])
        params["w_out"] = rng.standard_normal(sizes[-1]) / np.sqrt(sizes[-1])
        params["b_out"] = np.zeros(())
        self._set_params(params, {k: v.shape for k, v in params.items()})

    def _set_params(self, params, shapes, check_constraints=True):
        # The shared ``check_param`` goes through ``np.ascontiguousarray``,
        # which turns a 0-d array into shape (1,); ``b_out`` is 0-d (docs/models.md),
        # so scalar entries are checked here and the rest as usual.
        scalars = {k for k, s in shapes.items() if tuple(s) == ()}
        rest = {k: v for k, v in params.items() if k not in scalars}
        super()._set_params(rest, {k: s for k, s in shapes.items() if k not in scalars}, check_constraints)
        merged = {}
        for name in shapes:
            if name in scalars:
                merged[name] = _check_scalar_param(params[name], name)
            else:
                merged[name] = self._params[name]
        self._params = merged

    def _post_init(self):
        p = self._params
        self._layers = [(p[f"W{l}"], p[f"b{l}"]) for l in range(1, len(self.sizes))]
        # contiguous W1^T: the (n, d, h1) first-layer Jacobians read it row-wise
        self._W1T = np.ascontiguousarray(p["W1"].T)

    @property
    def n_features(self):
        return self.sizes[0]

    @property
    def n_layers(self):
        """Number of hidden layers ``L``."""
        return len(self.sizes) - 1

    def layers(self):
        """List of the hidden layers' ``(W_l, b_l)`` (read-only arrays)."""
        return list(self._layers)

    def _describe(self):
        return f"MLPEnergy with {self.n_features} input features"

    def __repr__(self):
        return f"MLPEnergy(sizes={self.sizes}, activation={self.activation!r})"

    # ----------------------------------------------------------------- hooks
    NUMBA_KIND = 4

    def _numba_form(self):
        # ip: [L, act, sizes (L+1), off W^T (L), off W (L), off b (L), off w_out, off b_out]
        # fp: per layer W^T rows (forward pass), W rows (backward pass), b; then w_out, b_out.
        # Both layouts make every inner loop of the kernels a contiguous axpy.
        layers, w_out, b_out = mlp_layers(self._params)
        act = ACTIVATIONS.index(self.activation)
        sizes = [layers[0][0].shape[1]] + [W.shape[0] for W, _ in layers]
        chunks = []
        pos = 0
        off_wt, off_w, off_b = [], [], []
        for W, b in layers:
            off_wt.append(pos)
            chunks.append(np.ascontiguousarray(W.T).ravel())
            pos += W.size
            off_w.append(pos)
            chunks.append(np.ascontiguousarray(W).ravel())
            pos += W.size
            off_b.append(pos)
            chunks.append(np.asarray(b, dtype=np.float64))
            pos += b.size
        off_wout = pos
        chunks.append(np.asarray(w_out, dtype=np.float64))
        pos += w_out.size
        chunks.append(np.array([b_out]))
        ip = np.array([len(layers), act, *sizes, *off_wt, *off_w, *off_b, off_wout, pos], dtype=np.int64)
        # scratch per chain of a padded tile (_mlp_kernel.row_len): the input and
        # its gradient, phi' and phi of every layer, two adjoint rows
        n_work = 2 * sizes[0] + 2 * sum(sizes[1:]) + 2 * max(sizes)
        return self.NUMBA_KIND, ip, np.concatenate(chunks), n_work

    def _energy(self, x):
        zs, _ = forward(self._layers, self.activation, x, 0)
        return zs[-1] @ self._params["w_out"] + float(self._params["b_out"])

    def _grad_x(self, x):
        zs, ders = forward(self._layers, self.activation, x, 1)
        g_top = np.broadcast_to(self._params["w_out"], zs[-1].shape)
        gs, _ = backprop(self._layers, ders, g_top, need_input=True)
        return gs[0]

    def _grad_params(self, x, w):
        zs, ders = forward(self._layers, self.activation, x, 1)
        g_top = np.broadcast_to(self._params["w_out"], zs[-1].shape)
        _, deltas = backprop(self._layers, ders, g_top)
        out = {}
        for l, (gW, gb) in enumerate(weight_grads(zs, deltas, w), start=1):
            out[f"W{l}"] = gW
            out[f"b{l}"] = gb
        out["w_out"] = w @ zs[-1]
        out["b_out"] = np.array(w.sum())
        return out

    def _grad_params_of_grad_x(self, x, v):
        zs, ders = forward(self._layers, self.activation, x, 2)
        return grad_x_param_grads(self._layers, self._params["w_out"], zs, ders, v)

    def _hessian_diag(self, x):
        n, d = x.shape
        out = np.empty((n, d))
        for sl in blocks(n, d + 1, self.sizes[1:]):
            out[sl] = hessian_diag_block(self._layers, self._W1T, self._params["w_out"], self.activation, x[sl])
        return out

    def _grad_params_of_hessian_diag(self, x, c):
        n, d = x.shape
        total = None
        for sl in blocks(n, d + 2, self.sizes[1:]):
            part = hessian_diag_param_grads_block(self._layers, self._W1T, self._params["w_out"], self.activation,
                                                  x[sl], c[sl])
            if total is None:
                total = part
            else:
                for k in total:
                    total[k] += part[k]
        return total

    def _score_matching_terms(self, x, c, v_fn):
        # One stacked forward pass per block serves all four quantities
        # (_mlp_sm: reused buffers, fused Numba loops between whole-block
        # products). Blocks run on up to numba.get_num_threads() Python
        # threads, each product on one OpenBLAS thread, parts summed in block
        # order: the bits do not depend on the thread count.
        return sm_terms(self._layers, self._W1T, self._params["w_out"], self.activation, x, c, v_fn,
                        numba.get_num_threads())

    def _score_matching_grad(self, x, c, v_fn):
        # the same pass with one reverse sweep for both terms: the adjoint of
        # the input Jacobian J_L starts at -v_k w_out (v per stacked block)
        return sm_terms(self._layers, self._W1T, self._params["w_out"], self.activation, x, c, v_fn,
                        numba.get_num_threads(), combined=True)

    def _hvp(self, x, v):
        r"""Hessian-vector product :math:`H(x_i) v_i` in ``x``, shape ``(n, d)``.

        Forward-over-reverse, exact (no finite differences): the tangent of
        the backpropagation of ``grad_x`` along ``v``. With
        :math:`\dot z_0 = v`, :math:`\dot a_l = W_l \dot z_{l-1}`,
        :math:`\dot z_l = \phi'(a_l)\dot a_l` and the adjoints
        :math:`g_L = w_{out}`, :math:`\delta_l = g_l\odot\phi'(a_l)`,
        :math:`g_{l-1} = W_l^\top\delta_l`, their tangents are
        :math:`\dot g_L = 0`, :math:`\dot\delta_l = \dot g_l\odot\phi'(a_l)
        + g_l\odot\phi''(a_l)\odot\dot a_l`,
        :math:`\dot g_{l-1} = W_l^\top\dot\delta_l`, and :math:`Hv = \dot g_0`.
        Cost: about two ``grad_x`` passes, independent of ``d`` (unlike
        ``hessian_diag``, which carries ``d`` tangents). Used by
        :class:`~ebm_ref.objectives.SlicedScoreMatching`.
        """
        return self._hvp_pass(x, v, None)

    def _grad_params_of_hvp(self, x, v, u):
        r"""``sum_i d/dtheta [u_i . H(x_i) v_i]`` (dict); ``v`` and ``u`` held constant.

        Notes
        -----
        Mixed partial derivatives commute, so this is the directional
        derivative in ``x``, along ``v``, of
        ``grad_params_of_grad_x(x, u)`` (:math:`\partial_\theta[u\cdot\nabla_x
        E(x)]`): every quantity of that computation (forward pass, tangent
        along ``u``, backpropagation and its adjoint) is carried together
        with its derivative along ``v`` (forward mode), using the third
        derivative of the activation for the derivative of its second.
        Exact, no finite differences; about three times the cost of
        ``grad_params_of_grad_x``, independent of ``d``.
        """
        return self._hvp_pass(x, v, u)

    def _hvp_pass(self, x, v, u):
        """``H v`` (``u is None``) or the parameter derivative of ``sum u . H v``."""
        layers = self._layers
        L = len(layers)
        order = 2 if u is None else 3
        zs, ders = forward(layers, self.activation, x, order)
        # tangents along v of the forward pass
        adv = []
        zd = [v]
        for l in range(L):
            a_dot = zd[l] @ layers[l][0].T
            adv.append(a_dot)
            zd.append(ders[l][0] * a_dot)
        g_top = np.broadcast_to(self._params["w_out"], zs[-1].shape)
        gs, deltas = backprop(layers, ders, g_top, need_input=u is None)
        # tangents along v of the backpropagation
        gsd = [None] * (L + 1)
        dd = [None] * L
        gsd[L] = np.zeros_like(zs[-1])
        for l in range(L, 0, -1):
            dd[l - 1] = gsd[l] * ders[l - 1][0] + gs[l] * ders[l - 1][1] * adv[l - 1]
            gsd[l - 1] = dd[l - 1] @ layers[l - 1][0]
        if u is None:
            return gsd[0]
        # grad_params_of_grad_x(x, u) (tangent t along u) and its derivative along v
        ts, tsd, adots, adotsd = [u], [np.zeros_like(u)], [], []
        for l in range(L):
            W = layers[l][0]
            a_u = ts[l] @ W.T
            a_ud = tsd[l] @ W.T
            adots.append(a_u)
            adotsd.append(a_ud)
            ts.append(ders[l][0] * a_u)
            tsd.append(ders[l][1] * adv[l] * a_u + ders[l][0] * a_ud)
        out = {}
        zbar = zbard = None
        for l in range(L, 0, -1):
            d1, d2, d3 = ders[l - 1]
            d1d = d2 * adv[l - 1]
            d2d = d3 * adv[l - 1]
            abar = gs[l] * d2 * adots[l - 1]
            abard = gsd[l] * d2 * adots[l - 1] + gs[l] * d2d * adots[l - 1] + gs[l] * d2 * adotsd[l - 1]
            if zbar is not None:
                abar = abar + zbar * d1
                abard = abard + zbard * d1 + zbar * d1d
            out[f"W{l}"] = dd[l - 1].T @ ts[l - 1] + deltas[l - 1].T @ tsd[l - 1] + abard.T @ zs[l - 1] + abar.T @ zd[l - 1]
            out[f"b{l}"] = abard.sum(axis=0)
            if l > 1:
                W = layers[l - 1][0]
                zbar = abar @ W
                zbard = abard @ W
        return ordered_param_grads(out, L, tsd[-1].sum(axis=0))

def _hessian_diag_forward(model, x):
    r"""Reference Hessian diagonal by propagating both J and S forward.

    The textbook recursion of the class Notes (twice the matrix products of
    ``hessian_diag``); kept for tests and as the benchmark's plain-NumPy
    baseline. ``x`` must be a validated ``(n, d)`` float64 array.
    """
    layers = model._layers
    n, d = x.shape
    zs, ders = forward(layers, model.activation, x, 2)
    J = np.broadcast_to(np.eye(d), (n, d, d))
    S = np.zeros((n, d, d))
    for l, (W, _) in enumerate(layers):
        A = J @ W.T
        Q = S @ W.T
        d1, d2 = ders[l][0], ders[l][1]
        J = d1[:, None, :] * A
        S = d2[:, None, :] * A * A + d1[:, None, :] * Q
    return S @ model._params["w_out"]


def _check_scalar_param(value, name):
    """A finite real scalar parameter as a read-only 0-d float64 array."""
    arr = as_float_array(value, name)
    if np.ndim(value) != 0:
        raise ValueError(f"`{name}` of MLPEnergy must have shape (); got {np.shape(value)}.")
    out = np.array(arr.reshape(()), dtype=np.float64)
    check_finite(out.reshape(1), name)
    out.flags.writeable = False
    return out
