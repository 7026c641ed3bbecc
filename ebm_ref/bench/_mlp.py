"""Plain-NumPy MLP baselines shared by the ``energies`` and ``samplers`` suites.

Written from the layouts of docs/models.md (``W1, b1, ..., w_out, b_out``;
softplus units), not from the package's kernels, so that a baseline is an
independent implementation of the same formula.
"""

from __future__ import annotations

import numpy as np


def mlp_layers(params):
    """``([(W_l, b_l), ...], w_out, b_out)`` of an ``MLPEnergy``'s parameters."""
    layers = []
    l = 1
    while f"W{l}" in params:
        layers.append((params[f"W{l}"], params[f"b{l}"]))
        l += 1
    return layers, params["w_out"], float(np.asarray(params["b_out"]))


def plain_energy(params, x):
    """Textbook forward pass of a softplus MLP energy."""
    layers, w_out, b_out = mlp_layers(params)
    z = x
    for W, b in layers:
        z = np.logaddexp(0.0, z @ W.T + b)
    return z @ w_out + b_out


def plain_hessian_diag(params, x):
    """``d^2 E / dx_i^2`` by forward propagation of ``J = dz/dx`` and ``S = d^2 z/dx_i^2``.

    Per layer ``a = W z + b``, ``z' = softplus(a)``: ``J' = s(a) W J`` and
    ``S' = s(a) W S + s(a)(1 - s(a)) (W J)^2`` with ``s`` the logistic
    function; ``J = I`` and ``S = 0`` at the input.
    """
    layers, w_out, _ = mlp_layers(params)
    n, d = x.shape
    z = x
    J = np.broadcast_to(np.eye(d), (n, d, d))  # (n, units, d)
    S = np.zeros((n, d, d))
    for W, b in layers:
        a = z @ W.T + b
        s = 1.0 / (1.0 + np.exp(-a))
        WJ = np.einsum("hk,nkd->nhd", W, J)
        S = s[:, :, None] * np.einsum("hk,nkd->nhd", W, S) + (s * (1.0 - s))[:, :, None] * WJ**2
        J = s[:, :, None] * WJ
        z = np.logaddexp(0.0, a)
    return np.einsum("h,nhd->nd", w_out, S)
