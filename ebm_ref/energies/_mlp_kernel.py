r"""Numba kernel of :class:`~ebm_ref.energies.mlp.MLPEnergy`: energies and
input gradients of a tile of states (the layout is ``MLPEnergy._numba_form``).

Why fixed-shape BLAS tiles
--------------------------
Every layer of the forward and the backward pass is one matrix-matrix
product over a tile of ``TILE`` chains, done by BLAS (``np.dot`` into a
preallocated buffer; measured 27-37 GMAC/s on 32-row tiles where a
hand-written per-chain product reached 5-9). A tile of fewer chains is
padded to ``TILE`` rows, so every product this kernel makes has one shape
per layer whatever the number of chains, of threads or the tile the driver
hands over. Chain ``b``'s numbers then depend on its own state only: a GEMM
row is computed from its own row of the left factor, and a product of one
shape always runs the same code (a 1-row product would not: BLAS switches
to a matrix-vector kernel with another summation order, which is why even
a single state goes through a padded tile). ``tests/test_mlp_tiles.py``
checks that a row's result is the same at every position of a tile and
with any other rows beside it. The summation order inside a product is
BLAS's: results agree with the NumPy model methods to a few ulp, not bit
for bit, and differ between BLAS builds or CPUs (never between runs, thread
counts or chain counts on one machine).

Elementwise work (biases, activations and their derivatives, the output
layer) runs in vectorised Numba loops over the whole tile. No input checks.
"""

from __future__ import annotations

import numpy as np

from .._jit import jit, jit_inline
from .._numerics import nb_exp_nonpos, nb_log1p_unit

#: Rows of every BLAS product of the kernel (chains per padded tile).
TILE = 32
# Not 64: with OpenBLAS's AVX2 (Haswell) kernels the four products of a
# (100, 256, 256) network ran at 17.6 GMAC/s on 32-row tiles and 19.7 on 64
# (22.2 for both with its AVX-512 kernels, one AMD EPYC core), but with the
# AVX-512 kernels a row of a 64-row backward product came out differently
# (by 3e-17) at 40 of its 64 positions, so a tile's results would depend on
# where each chain sits in it (tests/test_mlp_tiles.py fails); at 32 rows
# they do not, with either kernel.

ACT_SOFTPLUS = 0
ACT_TANH = 1
ACT_SWISH = 2


@jit
def _act_layer(act, z, a, need_value, need_deriv):
    """``a[i] = phi(z[i])`` and ``z[i] = phi'(z[i])`` for a layer of units.

    ``need_deriv=False`` (energies only) leaves ``z`` as it is where that
    saves work (softplus: no ``1 / (1 + e)``).

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
        if need_value and not need_deriv:
            for i in range(n):
                zi = z[i]
                a[i] = max(zi, 0.0) + nb_log1p_unit(nb_exp_nonpos(-abs(zi)))
        elif need_value:
            for i in range(n):
                zi = z[i]
                e = nb_exp_nonpos(-abs(zi))
                inv = np.divide(1.0, 1.0 + e)
                a[i] = max(zi, 0.0) + nb_log1p_unit(e)
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
def _mat(buf, off, rows, cols):
    """The ``(rows, cols)`` C-contiguous view of ``buf[off: off + rows * cols]``."""
    return buf[off: off + rows * cols].reshape((rows, cols))


@jit_inline
def _widths(ip):
    """``(d, sum of the hidden widths, largest width including d)`` from the layout."""
    L = ip[0]
    d = ip[2]
    hsum = 0
    hmax = d
    for l in range(L):
        h = ip[3 + l]
        hsum += h
        hmax = max(hmax, h)
    return d, hsum, hmax


@jit_inline
def row_len(ip):
    """Scratch entries per chain of a tile (``n_work`` of the layout); the kernel uses ``TILE`` rows."""
    d, hsum, hmax = _widths(ip)
    return 2 * d + 2 * hsum + 2 * hmax


@jit
def _tile(ip, fp, X, G, E, need_grad, need_e, buf):
    """Energies and gradients of up to ``TILE`` states through ``TILE``-row products.

    ``buf`` (``TILE * row_len(ip)`` entries): the padded input | phi'(z) of
    every layer | phi(z) of every layer | two adjoint buffers | the padded
    input gradient. Rows ``T .. TILE-1`` hold zeros on input and are
    computed and discarded.
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
    d, hsum, hmax = _widths(ip)
    o_z = TILE * d
    o_a = o_z + TILE * hsum
    o_d0 = o_a + TILE * hsum
    o_d1 = o_d0 + TILE * hmax
    o_g = o_d1 + TILE * hmax
    Xp = _mat(buf, 0, TILE, d)
    for b in range(TILE):
        for j in range(d):
            Xp[b, j] = X[b, j] if b < T else 0.0
    pos = 0
    for l in range(L):
        n_in = ip[o_sizes + l]
        n_out = ip[o_sizes + 1 + l]
        bias = fp[ip[o_b + l]: ip[o_b + l] + n_out]
        Ain = Xp if l == 0 else _mat(buf, o_a + TILE * (pos - n_in), TILE, n_in)
        Z = _mat(buf, o_z + TILE * pos, TILE, n_out)
        np.dot(Ain, _mat(fp, ip[o_wt + l], n_in, n_out), Z)
        for b in range(TILE):
            for i in range(n_out):
                Z[b, i] += bias[i]
        # keep phi'(z) in place of z: the backward pass needs nothing else
        _act_layer(act, buf[o_z + TILE * pos: o_z + TILE * (pos + n_out)],
                   buf[o_a + TILE * pos: o_a + TILE * (pos + n_out)], need_e or l < L - 1, need_grad)
        pos += n_out
    hL = ip[o_sizes + L]
    last = pos - hL
    w_out = fp[off_wout: off_wout + hL]
    AL = _mat(buf, o_a + TILE * last, TILE, hL)
    # E[b] = b_out + sum_i w_out[i] AL[b, i], summed in i order for every
    # chain, but with the chains in the inner loop: a chain-by-chain running
    # sum waits on each addition's latency (a fifth of a MALA step at d = 2)
    for b in range(T):
        E[b] = fp[off_bout] if need_e else np.nan
    if need_e:
        for i in range(hL):
            wi = w_out[i]
            for b in range(T):
                E[b] += wi * AL[b, i]
    if not need_grad:
        return
    cur_o, nxt_o = o_d0, o_d1
    cur = _mat(buf, cur_o, TILE, hL)
    ZL = _mat(buf, o_z + TILE * last, TILE, hL)
    for b in range(TILE):
        for i in range(hL):
            cur[b, i] = w_out[i] * ZL[b, i]
    pos = last
    for l in range(L - 1, -1, -1):
        n_in = ip[o_sizes + l]
        n_out = ip[o_sizes + 1 + l]
        W = _mat(fp, ip[o_w + l], n_out, n_in)
        cur = _mat(buf, cur_o, TILE, n_out)
        if l == 0:
            Gp = _mat(buf, o_g, TILE, d)
            np.dot(cur, W, Gp)
            for b in range(T):
                for k in range(d):
                    G[b, k] = Gp[b, k]
        else:
            nxt = _mat(buf, nxt_o, TILE, n_in)
            np.dot(cur, W, nxt)
            prev = pos - n_in
            Zp = _mat(buf, o_z + TILE * prev, TILE, n_in)
            for b in range(TILE):
                for k in range(n_in):
                    nxt[b, k] *= Zp[b, k]
            pos = prev
            cur_o, nxt_o = nxt_o, cur_o


@jit
def nb_energy_grad_tile(ip, fp, X, G, E, need_grad, work, need_e):
    """Energies ``E[b]`` (and gradients ``G[b]``) of the states ``X[b]``, ``TILE`` at a time.

    Chain ``b``'s result depends on ``X[b]`` only (padded fixed-shape BLAS
    tiles, module docstring). ``work``: the caller's scratch, used as the
    tile's buffer when it holds ``TILE`` rows of ``row_len(ip)`` (the
    samplers' drivers allocate it so, once per tile and call); a smaller one
    (a single state) gets a buffer of its own. ``need_e=False`` leaves
    ``E`` NaN and skips the top layer's activation values.
    """
    T = X.shape[0]
    need = TILE * row_len(ip)
    buf = work.ravel() if work.size >= need else np.empty(need)
    for b0 in range(0, T, TILE):
        b1 = min(T, b0 + TILE)
        _tile(ip, fp, X[b0:b1], G[b0:b1], E[b0:b1], need_grad, need_e, buf)
