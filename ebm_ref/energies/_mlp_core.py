r"""Internals shared by :class:`~ebm_ref.energies.mlp.MLPEnergy` and
:class:`~ebm_ref.energies.latent.ConditionalLatentEnergy` (whose decoder
network ends in a vector instead of a scalar): activations and their
derivatives (one Numba loop), the forward pass, backpropagation, weight
gradients (NumPy) and the validation of the layer sizes.
"""

from __future__ import annotations

import numbers

import numpy as np

from .._jit import jit
from .._numerics import nb_exp_nonpos, nb_exp_one_minus, nb_log1p_unit, torch_threshold

ACTIVATIONS = ("softplus", "tanh", "swish")
# elements per pass of the activation loops (32 kB scratch a derivative)
_ACT_CHUNK = 4096

# Samples per block in the Jacobian passes: the stacked (block, d + 2, h)
# arrays then hold ~0.5 MB (cache-resident; measured fastest of 2^14..2^20)
# while each NumPy call still does enough work for its fixed overhead not to
# matter.
BLOCK_ENTRIES = 1 << 16


# --------------------------------------------------------------------------
# activations and their derivatives
def act_derivs(name, a, order):
    r"""``[phi(a), phi'(a), ..., phi^(order)(a)]``, elementwise (new arrays; :func:`act_derivs_into`)."""
    a = np.asarray(a, dtype=np.float64)
    out = [np.empty_like(a) for _ in range(order + 1)]
    return act_derivs_into(name, a, out)


def act_derivs_into(name, a, out):
    r"""``out = [phi(a), phi'(a), ..., phi^(order)(a)]`` in place, ``order = len(out) - 1 <= 3``.

    One pass of :func:`_act_derivs_loop` over the elements (the formulas
    are there); then, for softplus under
    :func:`~ebm_ref._numerics.torch_softplus_rule`, ``a > threshold`` gives
    ``a, 1, 0, 0``. No scratch arrays of ``a``'s size: fresh ones cost a
    page fault per 4 kB (measured: two of them made ``act_derivs`` of
    262144 elements at order 1 take 18 instead of 11 ns an element, the
    loop alone 2).
    """
    order = len(out) - 1
    a = np.ascontiguousarray(a, dtype=np.float64)
    flat = [o.reshape(-1) if o.flags.c_contiguous else np.empty(a.size) for o in out]
    flat += [flat[0]] * (4 - len(flat))  # never written (``order``)
    _act_derivs_loop(ACTIVATIONS.index(name), a.reshape(-1), flat[0], flat[1], flat[2], flat[3], order)
    for o, f in zip(out, flat):
        if not o.flags.c_contiguous:
            o[...] = f.reshape(o.shape)
    t = torch_threshold() if name == "softplus" else None
    if t is not None:
        over = a > t
        for o, v in zip(out, (a, 1.0, 0.0, 0.0)):
            np.copyto(o, v, where=over)
    return out


@jit
def _act_derivs_loop(act, a, z, p1, p2, p3, order):
    r"""``z = phi(a)`` and ``p_k = phi^(k)(a)`` for ``k = 1 .. order`` (the other ``p_k`` untouched).

    Everything comes from ``e = exp(-|a|)`` (``exp(-2|a|)`` for tanh) in
    (0, 1] and ``1 - e`` (:func:`~ebm_ref._numerics.nb_exp_one_minus`,
    accurate for small ``|a|``), with ``inv = 1 / (1 + e)``, so nothing
    overflows for any ``a`` and saturated units keep their relative
    precision:

    * softplus: ``phi = max(a, 0) + log1p(e)``, ``phi' = sigma(a)`` (``inv``
      for ``a >= 0``, else ``e inv``), ``phi'' = sigma(a) sigma(-a) = e
      inv^2``, ``phi''' = phi'' u`` with ``u = sigma(-a) - sigma(a) =
      -tanh(a/2) = -+(1 - e) inv``;
    * tanh: ``phi = +-(1 - e) inv``, ``phi' = sech^2 a = 4 e inv^2`` (no
      cancellation in ``1 - tanh^2``), ``phi'' = -2 phi sech^2``,
      ``phi''' = sech^2 (4 phi^2 - 2 sech^2)``;
    * swish: ``phi = a s``, ``s = sigma(a)``, ``p = sigma'(a)``, ``u`` as for
      softplus: ``phi' = s + a p``, ``phi'' = p (2 + a u)``, ``phi''' = p
      (3 u + a u^2 - 2 a p)``.

    A NaN ``a`` gives NaN everywhere. ``exp`` and ``log1p`` are the
    branch-free polynomials of ``_numerics`` (no libm call) and divisions
    ``np.divide`` (``/`` checks for a zero divisor), so LLVM vectorises
    each loop: ~3.3 ns per element for all four of softplus's against 9.2
    for the former fifteen in-place NumPy passes (AMD EPYC, one thread),
    which were a sixth of exact score matching at d = 2. One activation per
    loop, chosen outside it.
    """
    n = a.shape[0]
    if order == 0:
        if act == 0:
            for i in range(n):
                x = a[i]
                v = max(x, 0.0) + nb_log1p_unit(nb_exp_nonpos(-abs(x)))
                z[i] = v if x == x else x
        elif act == 1:
            for i in range(n):
                x = a[i]
                e, om = nb_exp_one_minus(-2.0 * abs(x))
                t = om * np.divide(1.0, 1.0 + e)
                v = t if x >= 0.0 else -t
                z[i] = v if x == x else x
        else:
            for i in range(n):
                x = a[i]
                e = nb_exp_nonpos(-abs(x))
                inv = np.divide(1.0, 1.0 + e)
                v = x * (inv if x >= 0.0 else e * inv)
                z[i] = v if x == x else x
        return
    # derivatives not asked for go to chunk-sized scratch, so that each
    # loop below has no test inside (a test on ``order`` there stopped
    # vectorisation: 17 instead of 3.7 ns an element at order 1)
    s2 = np.empty(min(n, _ACT_CHUNK) if order < 2 else 0)
    s3 = np.empty(min(n, _ACT_CHUNK) if order < 3 else 0)
    for lo in range(0, n, _ACT_CHUNK):
        hi = min(n, lo + _ACT_CHUNK)
        _act_chunk(act, a[lo:hi], z[lo:hi], p1[lo:hi], p2[lo:hi] if order >= 2 else s2[: hi - lo],
                   p3[lo:hi] if order >= 3 else s3[: hi - lo])


@jit
def _act_chunk(act, a, z, p1, p2, p3):
    """``[z, p1, p2, p3] = [phi, phi', phi'', phi''']`` of ``a`` (:func:`_act_derivs_loop`'s formulas)."""
    n = a.shape[0]
    if act == 0:
        for i in range(n):
            x = a[i]
            e, om = nb_exp_one_minus(-abs(x))
            inv = np.divide(1.0, 1.0 + e)
            q = e * inv * inv
            t = om * inv
            nan = x != x
            z[i] = x if nan else max(x, 0.0) + nb_log1p_unit(e)
            p1[i] = x if nan else (inv if x >= 0.0 else e * inv)
            p2[i] = x if nan else q
            p3[i] = x if nan else q * (-t if x >= 0.0 else t)
    elif act == 1:
        for i in range(n):
            x = a[i]
            e, om = nb_exp_one_minus(-2.0 * abs(x))
            inv = np.divide(1.0, 1.0 + e)
            t = om * inv
            t = x if x != x else (t if x >= 0.0 else -t)
            sech2 = 4.0 * e * inv * inv
            z[i] = t
            p1[i] = sech2 if x == x else x
            p2[i] = (t * -2.0) * sech2
            p3[i] = (4.0 * t * t - 2.0 * sech2) * sech2
    else:
        for i in range(n):
            x = a[i]
            e, om = nb_exp_one_minus(-abs(x))
            inv = np.divide(1.0, 1.0 + e)
            s = inv if x >= 0.0 else e * inv
            p = e * inv * inv
            t = om * inv
            u = -t if x >= 0.0 else t
            nan = x != x
            z[i] = x if nan else x * s
            p1[i] = x if nan else s + x * p
            p2[i] = x if nan else (x * u + 2.0) * p
            p3[i] = x if nan else ((3.0 * u + (x * u) * u) - (2.0 * x) * p) * p


# --------------------------------------------------------------------------
# forward pass and backpropagation shared with the conditional latent model
def forward(layers, act, x, order):
    """Activations and their derivatives for every hidden layer.

    Returns ``zs`` (``zs[0] = x``, ``zs[l] = phi(a_l)``) and ``ders``
    (``ders[l-1] = [phi'(a_l), ..., phi^(order)(a_l)]``).
    """
    zs = [x]
    ders = []
    z = x
    for W, b in layers:
        a = z @ W.T + b
        vals = act_derivs(act, a, order)
        z = vals[0]
        zs.append(z)
        ders.append(vals[1:])
    return zs, ders


def backprop(layers, ders, g_top, need_input=False):
    """Adjoints ``g_l = dE/dz_l`` and ``delta_l = dE/da_l`` from ``g_L``.

    ``gs[l]`` is ``dE/dz_l`` for ``l = 0..L`` (``gs[0]`` only if
    ``need_input``; it is the input gradient); ``deltas[l-1] = dE/da_l``.
    """
    L = len(layers)
    gs = [None] * (L + 1)
    deltas = [None] * L
    gs[L] = g_top
    for l in range(L, 0, -1):
        deltas[l - 1] = gs[l] * ders[l - 1][0]
        if l > 1 or need_input:
            gs[l - 1] = deltas[l - 1] @ layers[l - 1][0]
    return gs, deltas


def grad_x_param_grads(layers, w_out, zs, ders, v):
    r""":math:`\sum_i \partial/\partial\theta\,[v_i \cdot \nabla_x E(x_i)]` from a forward pass.

    ``zs``/``ders`` as :func:`forward` returns them with ``order >= 2``
    (``ders[l][0] = phi'``, ``ders[l][1] = phi''``). A tangent pass along
    ``v`` (``adot_l``, ``t_l``) then the reverse pass of backpropagation
    (the derivation is in ``MLPEnergy``'s Notes).
    """
    L = len(layers)
    ts = [v]
    adots = []
    t = v
    for l in range(L):
        adot = t @ layers[l][0].T
        t = ders[l][0] * adot
        adots.append(adot)
        ts.append(t)
    g_top = np.broadcast_to(w_out, zs[-1].shape)
    gs, deltas = backprop(layers, ders, g_top)
    out = {}
    zbar = None
    for l in range(L, 0, -1):
        d1, d2 = ders[l - 1][0], ders[l - 1][1]
        abar = gs[l] * d2 * adots[l - 1]
        if zbar is not None:
            abar += zbar * d1
        out[f"W{l}"] = deltas[l - 1].T @ ts[l - 1] + abar.T @ zs[l - 1]
        out[f"b{l}"] = abar.sum(axis=0)
        if l > 1:
            zbar = abar @ layers[l - 1][0]
    return ordered_param_grads(out, L, ts[-1].sum(axis=0))


def weight_grads(zs, deltas, w):
    """``sum_i w_i dE/dW_l`` and ``dE/db_l`` from the layer adjoints."""
    out = []
    for l, delta in enumerate(deltas):
        wd = delta * w[:, None]
        out.append((wd.T @ zs[l], wd.sum(axis=0)))
    return out


def blocks(n, rows, widths):
    """Sample slices whose stacked ``(block, rows, max(widths))`` states hold ~2^16 entries."""
    step = max(16, BLOCK_ENTRIES // max(1, rows * max(widths)))
    for start in range(0, n, step):
        yield slice(start, min(n, start + step))


def mlp_layers(params):
    """``[(W_l, b_l), ...], w_out, b_out`` read from an MLP's ``params`` (docs/models.md names)."""
    layers = []
    l = 1
    while f"W{l}" in params:
        layers.append((params[f"W{l}"], params[f"b{l}"]))
        l += 1
    return layers, params["w_out"], float(np.asarray(params["b_out"]))


def ordered_param_grads(out, L, g_w_out):
    """``W1, b1, ..., WL, bL, w_out, b_out`` (the ``params`` order) from the
    per-layer gradients ``out`` (filled top-down) and that of ``w_out``;
    ``b_out`` does not enter a derivative of the energy in ``x``."""
    res = {}
    for l in range(1, L + 1):
        res[f"W{l}"] = out[f"W{l}"]
        res[f"b{l}"] = out[f"b{l}"]
    res["w_out"] = g_w_out
    res["b_out"] = np.zeros(())
    return res


def hessian_diag_block(layers, W1T, w_out, act, x):
    """Hessian diagonal of the MLP energy on one block of samples (the
    contraction with the backpropagated adjoint of ``MLPEnergy``'s Notes)."""
    # Layers >= 2 carry the stacked state F = [J^(1..d); z] (n, d+1, h), so
    # one matrix product gives both A_l and the pre-activation a_l.
    L = len(layers)
    n, d = x.shape
    W1, b1 = layers[0]
    ders = [act_derivs(act, x @ W1.T + b1, 2)]
    F = None
    As = [None]
    if L > 1:
        F = np.empty((n, d + 1, W1.shape[0]))
        np.multiply(ders[0][1][:, None, :], W1T[None, :, :], out=F[:, :d])
        F[:, d] = ders[0][0]
    for l in range(2, L + 1):
        W, b = layers[l - 1]
        # 2-D products: NumPy runs a 3-D @ 2-D matmul as n small GEMMs
        M = (F.reshape(-1, W.shape[1]) @ W.T).reshape(n, d + 1, W.shape[0])
        A = M[:, :d]
        vals = act_derivs(act, M[:, d] + b, 2)
        ders.append(vals)
        As.append(A)
        if l < L:
            F = np.empty((n, d + 1, W.shape[0]))
            np.multiply(vals[1][:, None, :], A, out=F[:, :d])
            F[:, d] = vals[0]
    g = np.broadcast_to(w_out, (n, w_out.shape[0]))
    H = np.zeros((n, d))
    for l in range(L, 0, -1):
        d1, d2 = ders[l - 1][1], ders[l - 1][2]
        u = g * d2
        if l == 1:
            # A_1^(k) = W1[:, k] for every sample
            H += u @ (W1 * W1)
        else:
            A = As[l - 1]
            H += np.matmul(A * A, u[:, :, None])[:, :, 0]
            g = (g * d1) @ layers[l - 1][0]
    return H


def hessian_diag_param_grads_block(layers, W1T, w_out, act, x, c):
    """Parameter gradients of ``sum_i c_i^T diag H(x_i)`` on one block (the
    adjoint of the Hessian-diagonal recursion of ``MLPEnergy``'s Notes).

    Score matching's four quantities from one pass use the same recursion,
    fused (:mod:`._mlp_sm`).
    """
    # Stacked states (see the class Notes): forward F_l = [J_l^(1..d);
    # Sigma_l; z_l] (n, d+2, h_l) so that F_{l-1} W_l^T = [A_l; Q_l; a_l - b_l]
    # in one product; reverse R_l = [Abar_l^(1..d); delta_l; abar_l], whose
    # products give dT/dW_l = R_l^T F_{l-1} (all three terms at once) and
    # R_l W_l = [Jbar_{l-1}; g_{l-1}; zbar_{l-1}].
    L = len(layers)
    n, d = x.shape
    W1, b1 = layers[0]
    ders = [act_derivs(act, x @ W1.T + b1, 3)]
    P1 = c @ (W1 * W1).T
    Ps, Qs, As, Fs = [P1], [None], [None], [None]
    Sig = ders[0][2] * P1
    if L > 1:
        F = np.empty((n, d + 2, W1.shape[0]))
        np.multiply(ders[0][1][:, None, :], W1T[None, :, :], out=F[:, :d])
        F[:, d] = Sig
        F[:, d + 1] = ders[0][0]
        Fs.append(F)
    for l in range(2, L + 1):
        W, b = layers[l - 1]
        M = (Fs[l - 1].reshape(-1, W.shape[1]) @ W.T).reshape(n, d + 2, W.shape[0])
        A, Q = M[:, :d], M[:, d]
        vals = act_derivs(act, M[:, d + 1] + b, 3)
        ders.append(vals)
        P = np.matmul(c[:, None, :], A * A)[:, 0, :]
        Sig = vals[2] * P + vals[1] * Q
        As.append(A)
        Ps.append(P)
        Qs.append(Q)
        if l < L:
            F = np.empty((n, d + 2, W.shape[0]))
            np.multiply(vals[1][:, None, :], A, out=F[:, :d])
            F[:, d] = Sig
            F[:, d + 1] = vals[0]
            Fs.append(F)
    out = {}
    g = np.broadcast_to(w_out, (n, w_out.shape[0]))
    Jbar = zbar = None
    for l in range(L, 0, -1):
        W = layers[l - 1][0]
        _, d1, d2, d3 = ders[l - 1]
        u = g * d2
        abar = g * d3 * Ps[l - 1]
        if l > 1:
            abar += u * Qs[l - 1]
        if zbar is not None:
            abar += d1 * zbar
        if l == 1:
            # A_1^(k) = W1[:, k] and J_0^(k) = e_k: contract without (n, d, h)
            gW = 2.0 * W1 * (u.T @ c)
            if Jbar is not None:
                abar += d2 * np.einsum("nkj,kj->nj", Jbar, W1T)
                gW += np.einsum("nkj,nj->kj", Jbar, d1).T
            gW += abar.T @ x
            out["W1"] = gW
            out["b1"] = abar.sum(axis=0)
            break
        A = As[l - 1]
        R = np.empty((n, d + 2, W.shape[0]))
        Abar = R[:, :d]
        np.multiply((2.0 * c)[:, :, None], u[:, None, :], out=Abar)
        Abar *= A
        if Jbar is not None:
            Abar += d1[:, None, :] * Jbar
            abar += d2 * np.einsum("nkj,nkj->nj", Jbar, A)
        delta = g * d1
        R[:, d] = delta
        R[:, d + 1] = abar
        F = Fs[l - 1]
        out[f"W{l}"] = R.reshape(-1, W.shape[0]).T @ F.reshape(-1, W.shape[1])
        out[f"b{l}"] = abar.sum(axis=0)
        B = (R.reshape(-1, W.shape[0]) @ W).reshape(n, d + 2, W.shape[1])
        Jbar, g, zbar = B[:, :d], B[:, d], B[:, d + 1]
    return ordered_param_grads(out, L, Sig.sum(axis=0))

# ----------------------------------------- sliced score matching hooks


def check_sizes(sizes):
    """``sizes`` as a tuple of 2 to 4 positive ints (input + 1..3 hidden)."""
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__"):
        raise TypeError(
            f"`sizes` must be a sequence of ints (d, h_1, ..., h_L); got {type(sizes).__name__}."
        )
    out = []
    for i, s in enumerate(sizes):
        if isinstance(s, (bool, np.bool_)) or not isinstance(s, numbers.Integral):
            raise TypeError(f"`sizes[{i}]` must be an int; got {type(s).__name__} {s!r}.")
        if int(s) < 1:
            raise ValueError(f"`sizes` entries must be >= 1; got sizes[{i}] = {int(s)} in {tuple(sizes)!r}.")
        out.append(int(s))
    if not 2 <= len(out) <= 4:
        raise ValueError(
            "`sizes` must be (d, h_1, ..., h_L) with 1 to 3 hidden layers (2 to 4 entries); "
            f"got {len(out)} entries {tuple(out)!r}."
        )
    return tuple(out)
