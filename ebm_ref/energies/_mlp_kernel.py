r"""Numba kernel of :class:`~ebm_ref.energies.mlp.MLPEnergy`: energies and
input gradients of a tile of states (the layout is ``MLPEnergy._numba_form``).

Why a tile
----------
The continuous drivers hand the kernel ``T`` consecutive chains at once
(``T`` up to 16) so that every weight row is loaded once for the whole tile.
Every chain's numbers are still computed by the same scalar operations in
the same order as for ``T = 1``: chain ``b``'s result does not depend on
which chains share its tile, on the tile size, on the number of chains or
of threads. Matrix-vector products are written as sums of rows (``z += a_k
W^T[k, :]``, four rows per pass, added in the order ``k = 0, 1, ...``): the
summation order of each entry is fixed and the inner loop runs over
contiguous memory, which LLVM vectorises without reassociating anything.
BLAS on the whole batch is not used: its blocking (and thus rounding) may
depend on the batch size, which would break chain-prefix invariance.

No input checks.
"""

from __future__ import annotations

import numpy as np

from .._jit import jit, jit_inline
from .._numerics import nb_exp_nonpos

ACT_SOFTPLUS = 0
ACT_TANH = 1
ACT_SWISH = 2


# log(1 + e) on [0, 1] without a libm call (see _log1p_unit)
_SQRT2 = 1.4142135623730951
_LN2 = 0.6931471805599453


@jit_inline
def _log1p_unit(e):
    r""":math:`\log(1 + e)` for :math:`0 \le e \le 1`, within about two ulp.

    ``u = 1 + e`` rounded, ``c = (e - (u - 1)) / u`` its rounding error to
    first order; ``u = 2^k m`` with ``k`` in {0, 1} and ``m`` in
    ``[1/sqrt 2, sqrt 2]``; ``log m = 2 atanh(s)``, ``s = f / (2 + f)``,
    ``f = m - 1`` (exact), written as ``f - s (f - s^2 P(s^2))`` with
    ``P(z) = sum_{j=1}^{10} 2 z^{j-1} / (2j + 1)`` (the atanh series; ``|s|
    <= 0.172``, so the first omitted term is below ``1e-18`` relative).
    Branch-free (selects only) so that loops calling it vectorise.
    """
    u = 1.0 + e
    # np.divide, not ``/``: the latter's zero-divisor check stops vectorisation
    c = np.divide(e - (u - 1.0), u)
    k = 1.0 * (u > _SQRT2)
    m = u * (1.0 - 0.5 * k)  # u or u / 2, exactly
    f = m - 1.0
    s = np.divide(f, 2.0 + f)
    z = s * s
    p = 2.0 / 21.0
    p = p * z + 2.0 / 19.0
    p = p * z + 2.0 / 17.0
    p = p * z + 2.0 / 15.0
    p = p * z + 2.0 / 13.0
    p = p * z + 2.0 / 11.0
    p = p * z + 2.0 / 9.0
    p = p * z + 2.0 / 7.0
    p = p * z + 2.0 / 5.0
    p = p * z + 2.0 / 3.0
    return k * _LN2 + ((f - s * (f - z * p)) + c)


@jit
def _act_layer(act, z, a, need_value):
    """``a[i] = phi(z[i])`` and ``z[i] = phi'(z[i])`` for a layer of units.

    Everything comes from one exponential ``e`` in (0, 1] per unit.
    softplus: ``max(z, 0) + log1p(e)``, ``e = exp(-|z|)``, and its
    derivative ``sigmoid(z)`` from the same ``e``; tanh: ``e = exp(-2|z|)``,
    ``tanh = sign(z) (1 - e)/(1 + e)``, ``sech^2 = 4 e / (1 + e)^2`` (no
    cancellation in ``1 - tanh^2``); swish ``z sigmoid(z)`` with derivative
    ``sigmoid(z) + z sigmoid(z) sigmoid(-z)``. Nothing overflows.
    The activation is chosen outside the loops, and ``exp`` / ``log1p`` are
    the branch-free polynomial forms, so that LLVM vectorises each loop
    (libm calls kept them scalar, about half the kernel time at d = 2).
    Divisions are ``np.divide`` because ``/`` carries a zero-divisor check
    that stops vectorisation (the divisors here are >= 1). Each unit's
    result depends on its own ``z`` only, so vectorised and scalar
    iterations give the same bits.
    """
    n = z.shape[0]
    if act == ACT_TANH:
        for i in range(n):
            zi = z[i]
            e = nb_exp_nonpos(-2.0 * abs(zi))
            inv = np.divide(1.0, 1.0 + e)
            t = (1.0 - e) * inv
            a[i] = t if zi >= 0.0 else -t
            z[i] = 4.0 * e * inv * inv
    elif act == ACT_SOFTPLUS:
        if need_value:
            for i in range(n):
                zi = z[i]
                e = nb_exp_nonpos(-abs(zi))
                inv = np.divide(1.0, 1.0 + e)
                a[i] = max(zi, 0.0) + _log1p_unit(e)
                z[i] = inv if zi >= 0.0 else e * inv
        else:
            # the top layer's softplus only enters E; ULA steps skip its log
            for i in range(n):
                zi = z[i]
                e = nb_exp_nonpos(-abs(zi))
                inv = np.divide(1.0, 1.0 + e)
                a[i] = 0.0
                z[i] = inv if zi >= 0.0 else e * inv
    else:
        for i in range(n):
            zi = z[i]
            e = nb_exp_nonpos(-abs(zi))
            inv = np.divide(1.0, 1.0 + e)
            s_pos = inv if zi >= 0.0 else e * inv
            s_neg = e * inv if zi >= 0.0 else inv
            a[i] = zi * s_pos
            z[i] = s_pos + zi * s_pos * s_neg


@jit_inline
def _add_rows(out, orow, oo, src, srow, so, fp, r, width, nk):
    """``out[orow, oo + i] += sum_j src[srow, so + j] * fp[r + j width + i]`` for ``j < nk`` (8 or 1), ``i < width``.

    The ``nk`` products are added one after the other, in increasing ``j``,
    to the running value of each entry (``((out + a_0 r_0) + a_1 r_1) +
    ...``): exactly the order of one row at a time, so how a product is cut
    into groups of rows changes no bit. Eight rows per pass keep the entry
    in a register for eight products, and flat indexing (no slices, no
    calls per row) lets LLVM vectorise the loop over the ``width`` entries.
    """
    o = out[orow][oo: oo + width]
    if nk == 8:
        a0 = src[srow, so]
        a1 = src[srow, so + 1]
        a2 = src[srow, so + 2]
        a3 = src[srow, so + 3]
        a4 = src[srow, so + 4]
        a5 = src[srow, so + 5]
        a6 = src[srow, so + 6]
        a7 = src[srow, so + 7]
        r0 = fp[r: r + width]
        r1 = fp[r + width: r + 2 * width]
        r2 = fp[r + 2 * width: r + 3 * width]
        r3 = fp[r + 3 * width: r + 4 * width]
        r4 = fp[r + 4 * width: r + 5 * width]
        r5 = fp[r + 5 * width: r + 6 * width]
        r6 = fp[r + 6 * width: r + 7 * width]
        r7 = fp[r + 7 * width: r + 8 * width]
        for i in range(width):
            v = o[i] + a0 * r0[i]
            v = v + a1 * r1[i]
            v = v + a2 * r2[i]
            v = v + a3 * r3[i]
            v = v + a4 * r4[i]
            v = v + a5 * r5[i]
            v = v + a6 * r6[i]
            o[i] = v + a7 * r7[i]
    else:
        a0 = src[srow, so]
        r0 = fp[r: r + width]
        for i in range(width):
            o[i] = o[i] + a0 * r0[i]


@jit_inline
def _product(out, oo, src, so, fp, start, width, n_rows):
    """``out[b, oo:oo+width] += src[b, so:so+n_rows] @ M`` for every row ``b`` of the tile.

    ``M`` is the ``(n_rows, width)`` matrix stored row-major in ``fp`` from
    ``start``. Rows of ``M`` go in groups of 8, then one by one
    (``_add_rows``), each group applied to every chain of the tile while it
    is in cache; every entry sums its products in increasing row order.
    """
    T = out.shape[0]
    k = 0
    while k < n_rows:
        nk = 8 if k + 8 <= n_rows else 1
        r = start + k * width
        for b in range(T):
            _add_rows(out, b, oo, src, b, so + k, fp, r, width, nk)
        k += nk


@jit
def nb_energy_grad_tile(ip, fp, X, G, E, need_grad, work, need_e):
    """Energies ``E[b]`` (and gradients ``G[b]``) of the ``T`` states ``X[b]``.

    Each weight row is loaded once and applied to the ``T`` chains of the
    tile (so memory traffic is shared), while every chain's numbers are
    computed by the same operations in the same order as for ``T = 1``:
    chain ``b``'s result does not depend on which chains share its tile.
    ``work`` is ``(T, n_work)``: phi'(z) of every layer | a of every layer |
    two delta buffers.
    """
    T = X.shape[0]
    L = ip[0]
    act = ip[1]
    o_sizes = 2
    o_wt = o_sizes + L + 1
    o_w = o_wt + L
    o_b = o_w + L
    off_wout = ip[o_b + L]
    off_bout = ip[o_b + L + 1]
    hsum = 0
    hmax = ip[o_sizes]
    for l in range(L):
        h = ip[o_sizes + 1 + l]
        hsum += h
        if h > hmax:
            hmax = h
    za = 0
    aa = hsum
    pos = 0
    for l in range(L):
        n_in = ip[o_sizes + l]
        n_out = ip[o_sizes + 1 + l]
        wt = ip[o_wt + l]
        bias = ip[o_b + l]
        zb0 = za + pos
        ain = aa + pos - n_in
        for b in range(T):
            wb = work[b]
            for i in range(n_out):
                wb[zb0 + i] = fp[bias + i]
        if l == 0:
            _product(work, zb0, X, 0, fp, wt, n_out, n_in)
        else:
            _product(work, zb0, work, ain, fp, wt, n_out, n_in)
        # keep phi'(z) in place of z: the backward pass needs nothing else
        need_value = need_e or l < L - 1
        for b in range(T):
            wb = work[b]
            _act_layer(act, wb[zb0: zb0 + n_out], wb[aa + pos: aa + pos + n_out], need_value)
        pos += n_out
    hL = ip[o_sizes + L]
    last = pos - hL
    for b in range(T):
        if need_e:
            wb = work[b]
            e = fp[off_bout]
            for i in range(hL):
                e += fp[off_wout + i] * wb[aa + last + i]
            E[b] = e
        else:
            E[b] = np.nan
    if not need_grad:
        return
    cur = 2 * hsum
    nxt = 2 * hsum + hmax
    for b in range(T):
        wb = work[b]
        for i in range(hL):
            wb[cur + i] = fp[off_wout + i] * wb[za + last + i]
    pos = last
    for l in range(L - 1, -1, -1):
        n_in = ip[o_sizes + l]
        n_out = ip[o_sizes + 1 + l]
        w = ip[o_w + l]
        for b in range(T):
            if l == 0:
                gb = G[b]
                for k in range(n_in):
                    gb[k] = 0.0
            else:
                wb = work[b]
                for k in range(n_in):
                    wb[nxt + k] = 0.0
        if l == 0:
            _product(G, 0, work, cur, fp, w, n_in, n_out)
        else:
            _product(work, nxt, work, cur, fp, w, n_in, n_out)
        if l > 0:
            prev = pos - n_in
            for b in range(T):
                wb = work[b]
                for k in range(n_in):
                    wb[nxt + k] *= wb[za + prev + k]
            pos = prev
            tmp = cur
            cur = nxt
            nxt = tmp
