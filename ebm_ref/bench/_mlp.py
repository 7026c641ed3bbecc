"""Plain-NumPy MLP baselines shared by the ``energies`` and ``samplers`` suites.

Written from the layouts of docs/models.md (``W1, b1, ..., w_out, b_out``;
softplus units), not from the package's kernels, so that a baseline is an
independent implementation of the same formula.
"""

from __future__ import annotations

import numpy as np


def mlp_layers(model):
    """``([(W_l, b_l), ...], w_out, b_out)`` of an ``MLPEnergy`` (``sizes = (d, h1, ...)``)."""
    p = model.params
    hidden = [(p[f"W{l}"], p[f"b{l}"]) for l in range(1, len(model.sizes))]
    return hidden, p["w_out"], float(p["b_out"])


def plain_energy(model, x):
    """Textbook forward pass of a softplus MLP energy."""
    layers, w_out, b_out = mlp_layers(model)
    z = x
    for W, b in layers:
        z = np.logaddexp(0.0, z @ W.T + b)
    return z @ w_out + b_out


def plain_hessian_diag(model, x):
    """``d^2 E / dx_i^2`` by forward propagation of ``J = dz/dx`` and ``S = d^2 z/dx_i^2``.

    Per layer ``a = W z + b``, ``z' = softplus(a)``: ``J' = s(a) W J`` and
    ``S' = s(a) W S + s(a)(1 - s(a)) (W J)^2`` with ``s`` the logistic
    function; ``J = I`` and ``S = 0`` at the input.
    """
    layers, w_out, _ = mlp_layers(model)
    n, d = x.shape
    z = x
    J = np.broadcast_to(np.eye(d), (n, d, d))  # (n, units, d)
    S = np.zeros((n, d, d))
    for W, b in layers:
        a = z @ W.T + b
        s = 1.0 / (1.0 + np.exp(-a))
        WJ = W @ J  # batched matrix products (n, h, d)
        S = s[:, :, None] * (W @ S) + (s * (1.0 - s))[:, :, None] * WJ**2
        J = s[:, :, None] * WJ
        z = np.logaddexp(0.0, a)
    return w_out @ S
