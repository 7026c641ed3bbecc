r"""Tempered transitions shared by the RBM and the GRBM (AIS and reverse AIS).

Both models anneal the hidden layer's coupling, :math:`\beta\,(b_h +
W^\top \tilde v)^\top h` with :math:`\tilde v = v` (RBM) or
:math:`v/\sigma^2` (GRBM), so their AIS steps share everything except the
visible layer's base term and conditional: :func:`boltzmann_run` is one
block driver with a ``gaussian`` switch, called by each model's
``nb_tempered_run`` (in its own module) through the tempered section of
:mod:`ebm_ref.energies.kernels`.

Each driver runs every chain along a sequence of inverse temperatures
``path`` (increasing for forward AIS, decreasing for reverse AIS) and adds to
``logw[c]`` the log importance weight of chain ``c``:

.. math::

    \log w \mathrel{+}= \log f_{\beta_k}(x) - \log f_{\beta_{k-1}}(x),
    \qquad k = 1, \dots, K,

followed, for ``k < K`` (and after ``k = K`` too when ``finish`` is false),
by one transition that leaves :math:`p_{\beta_k}` invariant. ``f_beta`` is
the unnormalised marginal of the visible units.

Chunks: every per-chain quantity the loop carries between steps (the hidden
pre-activations, the hidden draws) is recomputed from ``v`` and the chain's
RNG row, so running ``path[0:m+1]`` with ``finish=False`` and then
``path[m:]`` with ``from_base=False`` gives the same bits as one call.

Reproducibility: chain ``c`` reads and advances only ``rng[c]`` and writes
only row ``c`` of ``v`` and ``logw[c]``; all sums run in a fixed order inside
one chain. Chains are processed in blocks of at most ``_BLOCK`` so that a
row of ``W`` is reused from cache by the chains of a block, but the
arithmetic of each chain is the same whatever the block holds, so results
do not depend on ``n_chains`` or on the thread count. The number of blocks
is a multiple of the thread count (see :func:`_n_blocks`), so that every
thread gets about the same number of chains.

Speed: the products ``v W`` and ``h W^T`` dominate. Since ``v`` and ``h``
are {0,1} with about half the units on, the kernels add the rows of the
active units (half the arithmetic of a dense product), several rows per
pass over the accumulator (:func:`_add_active_rows`). BLAS on fixed
128-chain blocks (as the block Gibbs sampler does, for thread invariance)
was measured instead for the 784 x 500 RBM with 100 chains: about 38 us per
chain-step for the two products alone, single-threaded, against about 32 us
for a whole step of these kernels. The sampling loops use a polynomial exp
(:func:`nb_exp_nonpos`) so that LLVM vectorises them.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from .._jit import jit, jit_inline, pjit
from .._numerics import nb_exp_nonpos, nb_sigmoid
from .._rng import nb_normal, nb_uniform

# Chains per block in the RBM/GRBM drivers: 8 accumulator rows of a 500-unit
# layer (32 KiB) stay in L1 while a row of W is added into them.
_BLOCK = 8


# Ratios (1 + e^{-b1|a|}) / (1 + e^{-b0|a|}) lie in [1/2, 2]; the products
# of 512 numerators (each in [1, 2]) and of 512 denominators stay below
# 2^512, far from overflow, before their logs are taken.
_LOG_CHUNK = 512



@jit
def _hidden_step(a, r, beta0, beta1, last, s, hid, e1, e0, u):
    r"""Weight increment of the hidden units, and (unless ``last``) h | v at beta1.

    Returns :math:`\sum_j [\operatorname{softplus}(\beta_1 a_j) -
    \operatorname{softplus}(\beta_0 a_j)]` for row ``r`` of ``a``, using
    :math:`\operatorname{softplus}(x) = \max(x, 0) + \log(1 + e^{-|x|})`:
    since both betas are >= 0 the max terms give
    :math:`(\beta_1 - \beta_0) \sum_j \max(a_j, 0)`, and the log terms are
    two ``log`` of products per ``_LOG_CHUNK`` units. ``h_j = 1`` iff
    :math:`u_j (1 + e_j) < [\beta_1 a_j \ge 0] + [\beta_1 a_j < 0]\, e_j`
    with :math:`e_j = e^{-|\beta_1 a_j|}`, i.e. :math:`u_j < \sigma(\beta_1 a_j)`
    without a division. ``e1``, ``e0``, ``u`` are scratch rows of length
    >= H; the uniforms are drawn first, in unit order, so the branch-free
    loops can be vectorised.
    """
    H = a.shape[1]
    for j in range(H):
        aj = a[r, j]
        e1[j] = nb_exp_nonpos(-abs(beta1 * aj))
        e0[j] = nb_exp_nonpos(-abs(beta0 * aj))
    pos = 0.0
    logs = 0.0
    num = 1.0
    den = 1.0
    for j in range(H):
        pos += max(a[r, j], 0.0)
        num *= 1.0 + e1[j]
        den *= 1.0 + e0[j]
        if (j & (_LOG_CHUNK - 1)) == _LOG_CHUNK - 1:
            logs += math.log(num) - math.log(den)
            num = 1.0
            den = 1.0
    if not last:
        for j in range(H):
            u[j] = nb_uniform(s)
        for j in range(H):
            top = 1.0 if beta1 * a[r, j] >= 0.0 else e1[j]
            hid[r, j] = 1 if u[j] * (1.0 + e1[j]) < top else 0
    return (beta1 - beta0) * pos + logs + (math.log(num) - math.log(den))


@jit_inline
def _n_blocks(n, nt):
    """Blocks of at most ``_BLOCK`` chains, a multiple of the thread count ``nt``.

    ``prange`` hands each thread a contiguous run of blocks; ``n`` chains in
    ``_BLOCK``-sized blocks would leave one thread up to a block behind
    (100 chains: 56 against 44).
    """
    per_thread = (n + nt - 1) // nt
    nb = nt * ((per_thread + _BLOCK - 1) // _BLOCK)
    return max(1, min(nb, n))


@jit
def _bernoulli_logit_rows(x, u, out, r):
    """``out[r, i] = [u_i < sigmoid(x_i)]`` without a division (see _hidden_step)."""
    for i in range(x.shape[0]):
        e = nb_exp_nonpos(-abs(x[i]))
        top = 1.0 if x[i] >= 0.0 else e
        out[r, i] = 1.0 if u[i] * (1.0 + e) < top else 0.0


@jit
def _add_active_rows(M, x, c0, m, out, idx, cnt):
    """``out[r] += sum of the rows M[i] with x[c0 + r, i] != 0``, for ``r < m``.

    The active units of each chain are listed in increasing order
    (``idx[r, :cnt[r]]``) and taken eight at a time: the eight rows are
    summed as a balanced tree, ``((M[i1] + M[i2]) + (M[i3] + M[i4])) +
    (...)``, before one pass adds them to ``out[r]`` (one load and store of
    ``out[r]`` per eight rows instead of per row: the row-at-a-time loop is
    bound by those stores). The last fewer than eight go four at a time
    (:func:`_add_few_rows`). Chunk ``q`` of every chain of the block is
    handled before chunk ``q + 1``, so the rows in use stay close together
    in cache.
    A chain's sum never involves other chains, so chain ``c0 + r`` gets the
    same bits whatever the block holds.
    """
    R, N = M.shape
    most = 0
    for r in range(m):
        xr = x[c0 + r]
        ir = idx[r]
        k = 0
        # Branch-free compaction (about half the units are on, so a branch
        # would be mispredicted half the time): every unit is written at
        # position k <= i and kept only if on.
        for i in range(R):
            ir[k] = i
            k += 1 if xr[i] != 0 else 0
        cnt[r] = k
        most = max(most, k)
    for q8 in range(0, most, 8):
        for r in range(m):
            k8 = cnt[r] - q8
            if k8 <= 0:
                continue
            orow = out[r]
            if k8 >= 8:
                w1 = M[idx[r, q8]]
                w2 = M[idx[r, q8 + 1]]
                w3 = M[idx[r, q8 + 2]]
                w4 = M[idx[r, q8 + 3]]
                w5 = M[idx[r, q8 + 4]]
                w6 = M[idx[r, q8 + 5]]
                w7 = M[idx[r, q8 + 6]]
                w8 = M[idx[r, q8 + 7]]
                for j in range(N):
                    orow[j] += ((w1[j] + w2[j]) + (w3[j] + w4[j])) + ((w5[j] + w6[j]) + (w7[j] + w8[j]))
                continue
            _add_few_rows(M, idx, r, q8, k8, orow)


@jit
def _add_few_rows(M, idx, r, q8, k8, orow):
    """The last ``k8 < 8`` active rows of chain ``r``, four at a time."""
    N = M.shape[1]
    for q in range(q8, q8 + k8, 4):
        k = q8 + k8 - q
        w1 = M[idx[r, q]]
        if k == 1:
            for j in range(N):
                orow[j] += w1[j]
            continue
        w2 = M[idx[r, q + 1]]
        if k == 2:
            for j in range(N):
                orow[j] += w1[j] + w2[j]
            continue
        w3 = M[idx[r, q + 2]]
        if k == 3:
            for j in range(N):
                orow[j] += (w1[j] + w2[j]) + w3[j]
            continue
        w4 = M[idx[r, q + 3]]
        for j in range(N):
            orow[j] += (w1[j] + w2[j]) + (w3[j] + w4[j])


@jit
def _rbm_hidden_input(W, b_h, v, c0, c1, a, idx, cnt):
    """``a[r] = b_h + W^T v[c0 + r]`` from the rows of W of active units."""
    H = W.shape[1]
    for r in range(c1 - c0):
        for j in range(H):
            a[r, j] = b_h[j]
    _add_active_rows(W, v, c0, c1 - c0, a, idx, cnt)


@jit
def _grbm_hidden_input(W, b_h, inv_var, v, c0, c1, a):
    """``a[r] = b_h + W^T (v[c0 + r] / sigma^2)``, summed in unit order."""
    V, H = W.shape
    for r in range(c1 - c0):
        for j in range(H):
            a[r, j] = b_h[j]
    for i in range(V):
        for r in range(c1 - c0):
            z = v[c0 + r, i] * inv_var[i]
            for j in range(H):
                a[r, j] += z * W[i, j]




@jit_inline
def unpack_form(ip, fp):
    """``(W, W^T, vb, b_h, tail)`` of the packed layout both models' ``_tempered_form`` use.

    ``ip = [V, H]``, ``fp = [W (V, H) row-major, W^T (H, V), vb (V), b_h (H),
    tail]`` (``tail``: the GRBM's ``sigma``, empty for the RBM).
    """
    V = ip[0]
    H = ip[1]
    o = 2 * V * H
    return fp[: V * H].reshape((V, H)), fp[V * H : o].reshape((H, V)), fp[o : o + V], fp[o + V : o + V + H], fp[o + V + H :]


@pjit
def boltzmann_run(gaussian, W, WT, vb, b_h, side, path, v, rng, logw, from_base, finish, n_threads):
    r"""AIS along ``path`` for the RBM (``gaussian=False``) or the GRBM.

    RBM (Salakhutdinov & Murray 2008; ``vb = b_v``, ``side = b_A``):

    .. math::

        \log f_\beta(v) = (1-\beta)\, b_A^\top v + \beta\, b_v^\top v
            + \sum_j \operatorname{softplus}(\beta a_j), \quad a = b_h + W^\top v;

    transition :math:`h_j \sim \mathrm{Bern}(\sigma(\beta a_j))`, then
    :math:`v_i \sim \mathrm{Bern}(\sigma((1-\beta) b_{A,i} + \beta (b_v + W h)_i))`;
    base :math:`\mathrm{Bern}(\sigma(b_A))`.

    GRBM (``vb = mu``, ``side = sigma``): joint energy
    :math:`E_\beta(v,h) = \tfrac12\|(v-\mu)/\sigma\|^2 - \beta[(v/\sigma^2)^\top W h + b_h^\top h]`,
    so :math:`\log f_\beta(v) = -\tfrac12\|(v-\mu)/\sigma\|^2 + \sum_j
    \operatorname{softplus}(\beta a_j)`, :math:`a = b_h + W^\top(v/\sigma^2)`;
    transition :math:`h \mid v` as above, then
    :math:`v \sim N(\mu + \beta W h, \operatorname{diag}\sigma^2)`; base
    :math:`N(\mu, \sigma^2)`.

    With ``from_base`` the initial ``v`` is drawn from the base; otherwise
    ``v`` holds the start states. ``WT`` is ``W.T`` in C order;
    ``n_threads`` (``numba.get_num_threads()``) only sets how chains are
    grouped into blocks. No input checks.
    """
    n, V = v.shape
    H = W.shape[1]
    K = path.shape[0] - 1
    d_vis = vb - side
    inv_var = 1.0 / (side * side)
    n_blocks = _n_blocks(n, n_threads)
    for blk in prange(n_blocks):
        c0 = blk * n // n_blocks
        c1 = (blk + 1) * n // n_blocks
        m = c1 - c0
        a = np.empty((m, H))
        pre = np.empty((m, V))
        hid = np.zeros((m, H), dtype=np.uint8)
        e1 = np.empty(H)
        e0 = np.empty(H)
        u = np.empty(max(V, H))
        xv = np.empty(V)
        idx = np.empty((m, max(V, H)), dtype=np.int64)
        cnt = np.empty(m, dtype=np.int64)
        if from_base:
            for c in range(c0, c1):
                for i in range(V):
                    if gaussian:
                        v[c, i] = vb[i] + side[i] * nb_normal(rng[c])
                    else:
                        v[c, i] = 1.0 if nb_uniform(rng[c]) < nb_sigmoid(side[i]) else 0.0
        _hidden_input(gaussian, W, b_h, inv_var, v, c0, c1, a, idx, cnt)
        for k in range(1, K + 1):
            beta0 = path[k - 1]
            beta1 = path[k]
            last = k == K and finish
            for c in range(c0, c1):
                r = c - c0
                if gaussian:
                    logw[c] += _hidden_step(a, r, beta0, beta1, last, rng[c], hid, e1, e0, u)
                    continue
                # idx/cnt still list the active visible units of chain c
                # (from _rbm_hidden_input), in increasing order.
                lin = 0.0
                for q in range(cnt[r]):
                    lin += d_vis[idx[r, q]]
                acc = (beta1 - beta0) * lin + _hidden_step(a, r, beta0, beta1, last, rng[c], hid, e1, e0, u)
                logw[c] += acc
            if last:
                break
            # v | h at beta1: the W h part only sums the columns of active
            # hidden units (rows of WT, contiguous).
            for r in range(m):
                for i in range(V):
                    pre[r, i] = 0.0
            _add_active_rows(WT, hid, 0, m, pre, idx, cnt)
            one_m = 1.0 - beta1
            for c in range(c0, c1):
                r = c - c0
                s = rng[c]
                if gaussian:
                    for i in range(V):
                        v[c, i] = vb[i] + beta1 * pre[r, i] + side[i] * nb_normal(s)
                    continue
                for i in range(V):
                    u[i] = nb_uniform(s)
                for i in range(V):
                    xv[i] = one_m * side[i] + beta1 * (vb[i] + pre[r, i])
                _bernoulli_logit_rows(xv, u, v, c)
            _hidden_input(gaussian, W, b_h, inv_var, v, c0, c1, a, idx, cnt)


@jit
def _hidden_input(gaussian, W, b_h, inv_var, v, c0, c1, a, idx, cnt):
    """Hidden pre-activations of the block's chains (see the two helpers)."""
    if gaussian:
        _grbm_hidden_input(W, b_h, inv_var, v, c0, c1, a)
    else:
        _rbm_hidden_input(W, b_h, v, c0, c1, a, idx, cnt)
