r"""Score matching's MLP quantities from one stacked pass: workspaces and fused kernels.

:meth:`MLPEnergy._score_matching_terms` needs, on a batch, ``g = grad_x E``,
the Hessian diagonal ``H``, ``d/dtheta sum_i v_i . g_i`` and ``d/dtheta
sum_i c_i . H_i``; :meth:`MLPEnergy._score_matching_grad` needs ``g``,
``H`` and the difference of the last two. The recursions (forward
Jacobian rows ``J_l^(k)``, their second-order companions ``P_l``, ``Q_l``,
``Sigma_l`` and the reverse pass of their adjoints) are those of
``MLPEnergy``'s Notes and :func:`._mlp_core.hessian_diag_param_grads_block`;
this module only changes how they are computed:

* the stacked per-sample states ``F_l = [J_l^(1..d); Sigma_l; z_l]`` and
  their adjoints ``R_l = [Abar_l^(1..d); delta_l; abar_l]`` live in two
  buffers per layer that are allocated once per thread and shape and reused
  for every block and call (a fresh ~0.5 MB array per product cost one page
  fault per 4 kB: measured 2200 faults and ~8 ms of system time per d = 20
  call);
* ``R_l`` is written over the product ``M_l = F_{l-1} W_l^T`` it is built
  from, and ``R_l W_l`` over ``F_{l-1}`` once ``R_l^T F_{l-1}`` is taken;
* every elementwise step between two products is one Numba loop over the
  block (no temporaries), and the three products are whole-block BLAS;
* the activations of every layer, and layer 1's dense terms, run on
  128-row chunks (:func:`._mlp_core.act_derivs_into`, in place);
* for the difference, ``grad_x E = J_L^T w_out`` comes out of the top
  layer's product, ``v`` is evaluated per block, and the reverse pass
  starts from ``Jbar_L^(k) = -v_k w_out``: the adjoint of ``-v . g``, so
  one reverse pass gives ``grads_c - grads_v`` (the weight gradient is
  linear in the adjoints). Otherwise ``grad_params_of_grad_x`` runs
  separately on the chunks (:func:`._mlp_core.grad_x_param_grads`).

Blocks and chunks have fixed boundaries and their parameter gradients are
summed in row order, so the bits do not depend on the thread count.
"""

from __future__ import annotations

import concurrent.futures
import threading

import numpy as np

from .._jit import jit_inline, jit_nogil
from .._numerics import torch_threshold
from .._threads import one_thread_blas, worker_pool
from ._mlp_core import act_derivs_into, blocks, grad_x_param_grads, ordered_param_grads

# Rows per chunk of the plain (non-stacked) passes: 64 kB arrays (measured
# fastest of 64..1024 rows at d = 2 and 20). Rows per span: bounds the
# per-sample intermediates kept between the passes (13 arrays of SPAN x h).
# Both fixed, so the bits do not depend on the number of threads.
CHUNK = 128
SPAN = 2048
# the largest buffer kept for reuse; a larger one is allocated per call
CACHE_MAX_BYTES = 1 << 23
# stacked blocks whose parameter gradients are held before they are added
# (GROUP d h_1 doubles for W1's: 32 MB at d = 2000, h_1 = 64)
GROUP = 32

_local = threading.local()
# placeholders for the kernels' unused array arguments
_NO_V = np.empty((0, 0))
_NO_B = np.empty((1, 1, 1))


def _buffer(key, shape):
    """A C-contiguous float64 array of ``shape`` owned by this thread, reused across calls.

    Its contents are undefined. It is the leading rows of the largest array
    this thread has held under ``key`` with the same trailing shape, so the
    short last block of a batch does not evict the full-size buffer.
    """
    cache = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = {}
    buf = cache.get(key)
    if buf is None or buf.shape[1:] != shape[1:] or buf.shape[0] < shape[0]:
        buf = np.empty(shape)
        if buf.nbytes <= CACHE_MAX_BYTES:
            cache[key] = buf
    return buf[: shape[0]]


# --------------------------------------------------------------------------
# fused elementwise kernels (one block; i samples, k input dims, j units)
@jit_nogil
def _fill_first(p1, W1T, Sig, z, F):
    """``F[i] = [p1_i * W1T; Sig_i; z_i]`` (layer 1: ``A_1^(k) = W1[:, k]``)."""
    nb, d2, h = F.shape
    d = d2 - 2
    for i in range(nb):
        for k in range(d):
            for j in range(h):
                F[i, k, j] = p1[i, j] * W1T[k, j]
        for j in range(h):
            F[i, d, j] = Sig[i, j]
            F[i, d + 1, j] = z[i, j]


@jit_nogil
def _after_product(M, c, p1, p2, z, P, Sig, F, fill, w_out, G):
    r"""From ``M = [A; Q; .]``: ``P = sum_k c_k A_k^2``, ``Sigma = phi'' P + phi' Q``
    and, with ``fill``, the next stacked state ``F = [phi' A; Sigma; z]``;
    with ``G.shape[0] > 0`` (the top layer of the combined pass) also
    ``G[i, k] = sum_j w_j phi'_ij A_ikj``, i.e. ``grad_x E = J_L^T w_out``."""
    nb, d2, h = M.shape
    d = d2 - 2
    want_g = G.shape[0] > 0
    wp = np.empty(h)
    acc = np.empty(8)
    for i in range(nb):
        for j in range(h):
            P[i, j] = 0.0
        if want_g:
            for j in range(h):
                wp[j] = w_out[j] * p1[i, j]
        for k in range(d):
            ck = c[i, k]
            for j in range(h):
                a = M[i, k, j]
                P[i, j] += ck * (a * a)
            if want_g:
                G[i, k] = _lane_sum(wp, M, i, k, h, False, acc)
        for j in range(h):
            Sig[i, j] = p2[i, j] * P[i, j] + p1[i, j] * M[i, d, j]
        if fill:
            for k in range(d):
                for j in range(h):
                    F[i, k, j] = p1[i, j] * M[i, k, j]
            for j in range(h):
                F[i, d, j] = Sig[i, j]
                F[i, d + 1, j] = z[i, j]


@jit_inline
def _lane_sum(u, M, i, k, h, square, acc):
    """``sum_j u_j M[i, k, j]`` (``M[i, k, j]^2`` with ``square``) in eight
    interleaved partial sums ``acc[t]`` (over ``j = t mod 8``) combined in a
    fixed tree: a short loop over ``t`` the compiler vectorises without
    reassociating, so the bits are the same for every vector width (a
    single running sum is latency bound, eight scalars were not vectorised)."""
    for t in range(8):
        acc[t] = 0.0
    j = 0
    while j + 8 <= h:
        for t in range(8):
            a = M[i, k, j + t]
            acc[t] += u[j + t] * (a * a if square else a)
        j += 8
    rest = 0.0
    while j < h:
        a = M[i, k, j]
        rest += u[j] * (a * a if square else a)
        j += 1
    return (((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]))) + rest


@jit_nogil
def _reverse_layer(M, c, w_out, p1, p2, p3, P, B, above, V, H, gb, gw):
    r"""Layer ``l >= 2`` of the reverse pass, in place: ``M = [A; Q; .]`` becomes ``R = [Abar; delta; abar]``.

    The adjoints from the layer above are ``B = R_{l+1} W_{l+1} = [Jbar;
    g; zbar]`` (``above``); at the top, ``g = w_out``, ``zbar = 0`` and
    ``Jbar_k = -v_k w_out`` with ``v = V`` (``V.shape[0] > 0``: the
    combined pass of ``sum c.H - sum v.grad_x E``; ``gw += phi' sum_k v_k
    A_k``, its ``w_out`` term) or 0. With ``u = g phi''``: ``H_k += sum_j
    u_j A_kj^2``, ``Abar_k = 2 c_k u A_k + phi' Jbar_k``, ``delta = g
    phi'`` and ``abar = g phi''' P + u Q + phi' zbar + phi'' sum_k Jbar_k
    A_k``; ``gb += abar`` (the bias gradient, in sample order).
    """
    nb, d2, h = M.shape
    d = d2 - 2
    use_v = V.shape[0] > 0
    g = np.empty(h)
    u = np.empty(h)
    abar = np.empty(h)
    s = np.empty(h)
    sv = np.empty(h)
    acc = np.empty(8)
    for i in range(nb):
        for j in range(h):
            gj = B[i, d, j] if above else w_out[j]
            g[j] = gj
            u[j] = gj * p2[i, j]
            abar[j] = gj * p3[i, j] * P[i, j] + u[j] * M[i, d, j]
            s[j] = 0.0
            sv[j] = 0.0
        for k in range(d):
            H[i, k] += _lane_sum(u, M, i, k, h, True, acc)
            ck2 = 2.0 * c[i, k]
            if above:
                for j in range(h):
                    a = M[i, k, j]
                    jb = B[i, k, j]
                    s[j] += jb * a
                    M[i, k, j] = ck2 * u[j] * a + p1[i, j] * jb
            elif use_v:
                vk = V[i, k]
                for j in range(h):
                    a = M[i, k, j]
                    sv[j] += vk * a
                    M[i, k, j] = ck2 * u[j] * a - p1[i, j] * (vk * w_out[j])
            else:
                for j in range(h):
                    M[i, k, j] = ck2 * u[j] * M[i, k, j]
        for j in range(h):
            ab = abar[j]
            if above:
                ab += p1[i, j] * B[i, d + 1, j] + p2[i, j] * s[j]
            elif use_v:
                # sum_k Jbar_k A_k = -w sum_k v_k A_k
                ab -= p2[i, j] * (w_out[j] * sv[j])
                gw[j] += p1[i, j] * sv[j]
            M[i, d, j] = g[j] * p1[i, j]
            M[i, d + 1, j] = ab
            gb[j] += ab


@jit_nogil
def _reverse_first(B, above, V, w_out, W1T, p1, p2, p3, P1, u, delta, abar, gWT):
    r"""Layer 1 of the reverse pass: ``u = g phi''``, ``delta = g phi'``,
    ``abar = g phi''' P_1 + phi' zbar + phi'' sum_k Jbar_k W1T_k`` and
    ``gWT[k] += sum_i phi'_i Jbar_ik`` (``A_1^(k) = W1[:, k]``, ``J_0^(k) =
    e_k``); ``[Jbar; g; zbar] = B`` (``above``) or, with one hidden layer,
    ``g = w_out``, ``zbar = 0`` and ``Jbar_k = -v_k w_out`` (``V``, as in
    :func:`_reverse_layer`) or 0."""
    nb, h = p1.shape
    d = W1T.shape[0]
    use_v = V.shape[0] > 0
    for i in range(nb):
        for j in range(h):
            gj = B[i, d, j] if above else w_out[j]
            u[i, j] = gj * p2[i, j]
            delta[i, j] = gj * p1[i, j]
            abar[i, j] = gj * p3[i, j] * P1[i, j]
        if above:
            for j in range(h):
                abar[i, j] += p1[i, j] * B[i, d + 1, j]
    if above or use_v:
        # k outer: gWT's row k and the block's abar stay in L1 (i outer
        # swept all of the (d, h) gWT per sample)
        for k in range(d):
            for i in range(nb):
                for j in range(h):
                    jb = B[i, k, j] if above else -V[i, k] * w_out[j]
                    abar[i, j] += p2[i, j] * (jb * W1T[k, j])
                    gWT[k, j] += p1[i, j] * jb


# --------------------------------------------------------------------------
# the three passes
def _plain_forward(layers, W1sq, act, x, c, st):
    """Activations and derivatives of every layer on a chunk; ``P_1 = c W1^2``, ``Sigma_1``."""
    z = x
    for l, (W, b) in enumerate(layers):
        shape = (x.shape[0], W.shape[0])
        a = _buffer(("pre", l), shape)
        np.matmul(z, W.T, out=a)
        a += b
        act_derivs_into(act, a, st["act"][l])
        z = st["act"][l][0]
    np.matmul(c, W1sq.T, out=st["P1"])
    np.multiply(st["act"][0][2], st["P1"], out=st["Sig1"])


def _stacked_block(layers, W1T, w_out, st, part, v_fn=None, sl=None):
    """Layers ``>= 2`` of the stacked recursion and layer 1's reverse on one block.

    Writes the layers-``>= 2`` part of ``H`` into ``st["H"]`` and layer 1's
    ``u``, ``delta``, ``abar`` into ``st``; the block's parameter gradients
    of ``sum_i c_i . H_i`` into ``part`` (``W_l``, ``b_l`` for ``l >= 2``,
    ``"W1T" = sum_i phi' Jbar``, ``"w_out"``; arrays overwritten). With
    ``v_fn`` (the combined pass) also ``grad_x E`` into ``st["g"]`` and
    ``v = v_fn(g, sl)``, and ``part`` holds those of ``sum_i (c_i . H_i -
    v_i . grad_x E_i)``: the reverse pass starts from ``Jbar_L^(k) = -v_k
    w_out``, the adjoint of ``-v . J_L^T w_out``.
    """
    L = len(layers)
    act, c, H = st["act"], st["c"], st["H"]
    nb, d = c.shape
    W1 = layers[0][0]
    h1 = W1.shape[0]
    Ps, Ms, Fs = [st["P1"]], {}, [None]
    Sig = st["Sig1"]
    if L > 1:
        F = _buffer(("F", 1), (nb, d + 2, h1))
        _fill_first(act[0][1], W1T, Sig, act[0][0], F)
        Fs.append(F)
    for l in range(2, L + 1):
        W = layers[l - 1][0]
        h = W.shape[0]
        M = _buffer(("M", l), (nb, d + 2, h))
        np.matmul(Fs[l - 1].reshape(-1, W.shape[1]), W.T, out=M.reshape(-1, h))
        P = _buffer(("P", l), (nb, h))
        Sig = _buffer(("Sig", l), (nb, h))
        F = _buffer(("F", l), (nb, d + 2, h)) if l < L else M
        G = st["g"] if v_fn is not None and l == L else _NO_V
        _after_product(M, c, act[l - 1][1], act[l - 1][2], act[l - 1][0], P, Sig, F, l < L, w_out, G)
        Ps.append(P)
        Ms[l] = M
        if l < L:
            Fs.append(F)
    H[...] = 0.0
    np.sum(Sig, axis=0, out=part["w_out"])
    V = _NO_V
    if v_fn is not None:
        G = st["g"]  # filled by the top layer's _after_product
        if L == 1:
            np.matmul(w_out * act[0][1], W1, out=G)
        V = np.ascontiguousarray(v_fn(G, sl), dtype=np.float64)
        if V.shape != G.shape:
            raise ValueError(f"`v_fn` must return an array of shape {G.shape} (that of its gradient rows); "
                             f"got shape {V.shape}.")
        if L == 1:
            part["w_out"] -= np.sum(act[0][1] * (V @ W1.T), axis=0)
    B = None
    for l in range(L, 1, -1):
        W = layers[l - 1][0]
        _, d1, d2, d3 = act[l - 1]
        M = Ms[l]
        gb = part[f"b{l}"]
        gb[...] = 0.0
        gw = np.zeros(W.shape[0])
        _reverse_layer(M, c, w_out, d1, d2, d3, Ps[l - 1], M if B is None else B, B is not None,
                       V if B is None else _NO_V, H, gb, gw)
        if B is None:
            part["w_out"] -= gw
        F = Fs[l - 1]
        R2 = M.reshape(-1, W.shape[0])
        np.matmul(R2.T, F.reshape(-1, W.shape[1]), out=part[f"W{l}"])
        np.matmul(R2, W, out=F.reshape(-1, W.shape[1]))  # [Jbar; g; zbar] of layer l - 1
        B = F
    gWT = part["W1T"]
    gWT[...] = 0.0
    _, d1, d2, d3 = act[0]
    _reverse_first(B if B is not None else _NO_B, B is not None, V if B is None else _NO_V, w_out, W1T,
                   d1, d2, d3, Ps[0], st["u1"], st["delta1"], st["abar1"], gWT)


def _plain_finish(layers, W1sq, w_out, x, c, st, v_fn, sl, grad, H):
    """Layer 1's dense terms on a chunk and ``H``; unless the pass was combined
    (``v_fn`` None), ``grad`` and ``grads_v`` with ``v = v_fn(grad)``."""
    W1 = layers[0][0]
    u1, abar1 = st["u1"], st["abar1"]
    H += u1 @ W1sq
    gc = {"W1": 2.0 * W1 * (u1.T @ c) + abar1.T @ x, "b1": abar1.sum(axis=0)}
    if v_fn is None:
        return {}, gc
    np.matmul(st["delta1"], W1, out=grad)
    v = np.asarray(v_fn(grad, sl), dtype=np.float64)
    act = st["act"]
    gv = grad_x_param_grads(layers, w_out, [x] + [a[0] for a in act], [a[1:3] for a in act], v)
    return gv, gc


def _striped(parts, fn, k):
    """``[fn(p) for p in parts]``: the caller takes parts 0, k, 2k, ..., ``k - 1`` pool workers the others."""
    def every_kth(i):
        return [fn(p) for p in parts[i::k]]

    others = [worker_pool(k - 1).submit(every_kth, i) for i in range(1, k)]
    try:
        groups = [every_kth(0)]
    finally:
        concurrent.futures.wait(others)  # they write into shared arrays
    groups += [f.result() for f in others]
    return [groups[j % k][j // k] for j in range(len(parts))]


class _InOrder:
    """Sums of dicts of arrays, added one part at a time in a fixed order (own copies)."""

    def __init__(self):
        self.total = {}

    def add(self, part):
        for key, value in part.items():
            if key in self.total:
                self.total[key] += value
            else:
                self.total[key] = np.array(value, dtype=np.float64)


def score_matching_terms(layers, W1T, w_out, act, x, c, v_fn, threads, combined=False):
    """``(g, H, grads_v, grads_c)`` of ``MLPEnergy._score_matching_terms`` on up to ``threads`` Python threads.

    With ``combined``: ``(g, H, grads_v - grads_c)`` from one reverse pass
    (``MLPEnergy._score_matching_grad``), ``v`` evaluated per stacked block.

    Spans of ``SPAN`` rows, one after the other; in each, three passes on
    fixed row ranges: the plain forward pass on ``CHUNK``-row chunks, the
    stacked recursion on blocks of ~2^16 state entries, then layer 1's
    dense terms (and, unless ``combined``, ``grads_v``) on the chunks
    again. Parameter gradients are added in row order, so the bits do not
    depend on ``threads``.
    """
    x = np.ascontiguousarray(x)
    c = np.ascontiguousarray(c)
    if torch_threshold() is not None:
        threads = 1  # the rule is set per thread: evaluate every part in this one
    n, d = x.shape
    L = len(layers)
    widths = [W.shape[0] for W, _ in layers]
    h1 = widths[0]
    W1sq = layers[0][0] * layers[0][0]
    g = np.empty((n, d))
    H = np.empty((n, d))
    names = ("P1", "Sig1", "u1", "delta1", "abar1")
    shapes = {"W1T": (d, h1), "w_out": (widths[-1],),
              **{f"W{l}": layers[l - 1][0].shape for l in range(2, L + 1)},
              **{f"b{l}": (widths[l - 1],) for l in range(2, L + 1)}}
    gc, gv, dense = _InOrder(), _InOrder(), _InOrder()
    with one_thread_blas():
        for s0 in range(0, n, SPAN):
            m = min(n, s0 + SPAN) - s0
            # per-sample intermediates of the span, shared by its passes
            # (internal: buffers of the calling thread, rows relative to s0)
            full = {"act": [[_buffer(("act", l, q), (m, h)) for q in range(4)] for l, h in enumerate(widths)],
                    **{k: _buffer((k,), (m, h1)) for k in names}}

            def rows(sl, full=full, s0=s0):
                r = slice(sl.start - s0, sl.stop - s0)
                return {"act": [[a[r] for a in lay] for lay in full["act"]], "c": c[sl], "H": H[sl], "g": g[sl],
                        **{k: full[k][r] for k in names}}

            parts = [slice(s0 + p.start, s0 + p.stop) for p in blocks(m, d + 2, widths)]
            chunks = [slice(a, min(s0 + m, a + CHUNK)) for a in range(s0, s0 + m, CHUNK)]
            # each block's parameter gradients, GROUP blocks at a time, added
            # in block order after each group
            partial = {k: _buffer(("part", k), (min(GROUP, len(parts)),) + sh) for k, sh in shapes.items()}

            def forward(sl, rows=rows):
                _plain_forward(layers, W1sq, act, x[sl], c[sl], rows(sl))

            def stacked(j, rows=rows, parts=parts, partial=partial):
                _stacked_block(layers, W1T, w_out, rows(parts[j]), {k: v[j % GROUP] for k, v in partial.items()},
                               v_fn if combined else None, parts[j])

            def finish(sl, rows=rows):
                return _plain_finish(layers, W1sq, w_out, x[sl], c[sl], rows(sl), None if combined else v_fn,
                                     sl, g[sl], H[sl])

            kc = min(len(chunks), threads)
            _striped(chunks, forward, kc)
            for g0 in range(0, len(parts), GROUP):
                group = range(g0, min(len(parts), g0 + GROUP))
                _striped(group, stacked, min(len(group), threads))
                for j in group:
                    gc.add({k: v[j % GROUP] for k, v in partial.items()})
            for pv, pc in _striped(chunks, finish, kc):
                gv.add(pv)
                dense.add(pc)
    gc, dense = gc.total, dense.total
    out = {"W1": gc.pop("W1T").T + dense["W1"], "b1": dense["b1"]}
    out.update({k: v for k, v in gc.items() if k != "w_out"})
    grads_c = ordered_param_grads(out, L, gc["w_out"])
    if combined:
        return g, H, {k: -v for k, v in grads_c.items()}
    return g, H, gv.total, grads_c
