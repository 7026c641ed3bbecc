r"""Numba kernels of the continuous samplers (random-walk MH, ULA/MALA,
Gibbs-Langevin) and the per-model energy/gradient kernels they call.

How a model reaches the kernels
-------------------------------
``pack_model(model)`` flattens a supported model into ``(kind, ip, fp,
n_work)``: an integer tag, an ``int64`` array of sizes/offsets, a
``float64`` array holding every number the formula needs (derived
quantities such as ``exp(log_scale)`` precomputed once per call), and the
length of the per-chain scratch buffer. One jitted function,
``_model_eval``, branches on ``kind``. Every driver therefore has a single
signature whatever the model, so ``cache=True`` compiles it once per
machine; passing jitted functions as arguments would miss the on-disk cache
in every new process (docs/threads.md), and the ``if`` on an
integer costs nothing next to a gradient.

Kinds: ``KIND_STUDENT_T``, ``KIND_MIXTURE``, ``KIND_GRBM`` (free energy over
``v``), ``KIND_MLP`` (any number of hidden layers; softplus, tanh, swish).
A real-domain model of another class gets ``None`` and the public functions
use the generic NumPy path (``generic_langevin`` / ``generic_rwmh``).

Reproducibility
---------------
The drivers run ``prange`` over tiles of consecutive chains (up to 16, see
``tile_size``); chain ``c`` reads and writes row ``c`` of ``x``, of the RNG
states and of every output, and its energies and gradients are computed by
the same scalar operations in the same order whatever tile it sits in (no
batch matrix product through BLAS, no reduction across chains). Its result
therefore depends neither on the thread count nor on the number of chains
nor on the tile size; the tests check all three bit for bit. Tiles only let
the MLP kernel load each weight row once for several chains.
Matrix-vector products are written as sums of rows (``z += a_k W^T[k, :]``,
four rows per pass, added in the order ``k = 0, 1, ...``): the summation
order of each entry is fixed and the inner loop runs over contiguous
memory, which LLVM vectorises without reassociating anything. BLAS on the
whole batch was not used: its blocking (and thus rounding) may depend on
the batch size, which would break chain-prefix invariance.

None of these kernels checks its input.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from .._jit import jit, jit_inline, pjit
from .._numerics import nb_exp_nonpos, nb_sigmoid, nb_softplus
from .._rng import nb_normal, nb_uniform, np_normals, np_uniforms
from ..energies._base import EnergyModel
from ._common import unsupported

KIND_STUDENT_T = 1
KIND_MIXTURE = 2
KIND_GRBM = 3
KIND_MLP = 4

ACT_SOFTPLUS = 0
ACT_TANH = 1
ACT_SWISH = 2
_ACTIVATIONS = {"softplus": ACT_SOFTPLUS, "tanh": ACT_TANH, "swish": ACT_SWISH}

_LOG_2PI = math.log(2.0 * math.pi)

# Variants of the MALA kernel. Only VARIANT_EXACT is reachable from the
# public API; the other exists so that the tests can show that the
# statistical checks reject a sampler that drops the proposal ratio.
VARIANT_EXACT = 0
VARIANT_NO_PROPOSAL_RATIO = 1


# ------------------------------------------------------- wrapper helpers
def acceptance_rate(accepted, n_steps):
    """Per-chain ``accepted / n_steps``; NaN when ``n_steps == 0`` (nothing
    was proposed; the binary samplers use the same convention)."""
    if n_steps == 0:
        return np.full(accepted.shape[0], np.nan)
    return accepted / float(n_steps)


def check_real_model(sampler, model, supported):
    """``TypeError`` unless ``model`` is an ``EnergyModel`` on the real line."""
    if not isinstance(model, EnergyModel) or getattr(model, "domain", None) != "real":
        raise unsupported(sampler, model, supported)


# ---------------------------------------------------------------- packing
def _mlp_layers(model):
    """``[(W_l, b_l), ...], w_out, b_out`` of an MLPEnergy (kept for the bench)."""
    from ..energies.mlp import mlp_layers

    return mlp_layers(model.params)


FAST_MODELS = ("StudentT", "GaussianMixture", "GRBM", "MLPEnergy")
_CONTINUOUS_KINDS = (KIND_STUDENT_T, KIND_MIXTURE, KIND_GRBM, KIND_MLP)


def pack_grbm(model):
    """``(kind, ip, fp, n_work)`` of a GRBM (its ``numba_form``)."""
    return tuple(model.numba_form())


def pack_model(model):
    """``(kind, ip, fp, n_work)`` for a model with a continuous Numba kernel, else ``None``."""
    form = model.numba_form() if isinstance(model, EnergyModel) else None
    if form is None or form.kind not in _CONTINUOUS_KINDS:
        return None
    return tuple(form)


# ------------------------------------------------------- model evaluation
@jit
def _student_t_eval(ip, fp, x, g, need_grad):
    d = ip[0]
    e = 0.0
    for k in range(d):
        loc = fp[k]
        scale = fp[d + k]
        df = fp[2 * d + k]
        z = (x[k] - loc) / scale
        z2 = z * z
        e += 0.5 * (df + 1.0) * math.log1p(z2 / df)
        if need_grad:
            g[k] = (df + 1.0) / scale * (z / (df + z2))
    return e


@jit
def _mixture_eval(ip, fp, x, g, need_grad, work):
    d = ip[0]
    K = ip[1]
    o_inv = K * d
    o_norm = 2 * K * d
    m = -np.inf
    for k in range(K):
        q = 0.0
        for j in range(d):
            t = (x[j] - fp[k * d + j]) * fp[o_inv + k * d + j]
            q += t * t
        lk = fp[o_norm + k] - 0.5 * q
        work[k] = lk
        if lk > m:
            m = lk
    if m == -np.inf:
        # every component underflowed: the energy is +inf (a rejection) and
        # the gradient has no finite value worth following
        if need_grad:
            for j in range(d):
                g[j] = 0.0
        return np.inf
    s = 0.0
    for k in range(K):
        work[k] = math.exp(work[k] - m)
        s += work[k]
    if need_grad:
        for j in range(d):
            g[j] = 0.0
        for k in range(K):
            r = work[k] / s
            for j in range(d):
                inv = fp[o_inv + k * d + j]
                g[j] += r * (x[j] - fp[k * d + j]) * inv * inv
    return -(m + math.log(s))


@jit
def _grbm_eval(ip, fp, x, g, need_grad, work):
    V = ip[0]
    H = ip[1]
    o_mu = V * H
    o_b = o_mu + V
    o_iv = o_b + H
    for j in range(H):
        work[j] = fp[o_b + j]
    quad = 0.0
    for i in range(V):
        iv = fp[o_iv + i]
        dv = x[i] - fp[o_mu + i]
        quad += dv * dv * iv
        y = x[i] * iv
        row = i * H
        for j in range(H):
            work[j] += y * fp[row + j]
    e = 0.5 * quad
    for j in range(H):
        e -= nb_softplus(work[j])
    if need_grad:
        for j in range(H):
            work[j] = nb_sigmoid(work[j])
        for i in range(V):
            row = i * H
            t = 0.0
            for j in range(H):
                t += fp[row + j] * work[j]
            iv = fp[o_iv + i]
            g[i] = (x[i] - fp[o_mu + i]) * iv - t * iv
    return e


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
    if act == 1:
        for i in range(n):
            zi = z[i]
            e = nb_exp_nonpos(-2.0 * abs(zi))
            inv = np.divide(1.0, 1.0 + e)
            t = (1.0 - e) * inv
            a[i] = t if zi >= 0.0 else -t
            z[i] = 4.0 * e * inv * inv
    elif act == 0:
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


@jit
def _acc_row(out, a, r):
    """``out += a r`` entrywise."""
    for i in range(out.shape[0]):
        out[i] += a * r[i]


@jit
def _acc_rows4(out, a0, a1, a2, a3, r0, r1, r2, r3):
    """``out += a0 r0``, then ``a1 r1``, ``a2 r2``, ``a3 r3``, entrywise.

    The additions happen in exactly that order, so the result is bit-for-bit
    that of four ``_acc_row`` calls; reading and writing ``out`` once instead
    of four times is what makes it faster.
    """
    for i in range(out.shape[0]):
        out[i] = (((out[i] + a0 * r0[i]) + a1 * r1[i]) + a2 * r2[i]) + a3 * r3[i]


@jit
def _mlp_eval_tile(ip, fp, X, G, E, need_grad, work, need_e):
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
        k = 0
        while k + 4 <= n_in:
            r0 = fp[wt + k * n_out: wt + (k + 1) * n_out]
            r1 = fp[wt + (k + 1) * n_out: wt + (k + 2) * n_out]
            r2 = fp[wt + (k + 2) * n_out: wt + (k + 3) * n_out]
            r3 = fp[wt + (k + 3) * n_out: wt + (k + 4) * n_out]
            for b in range(T):
                wb = work[b]
                if l == 0:
                    src = X[b]
                    o = k
                else:
                    src = wb
                    o = ain + k
                _acc_rows4(wb[zb0: zb0 + n_out], src[o], src[o + 1], src[o + 2], src[o + 3],
                           r0, r1, r2, r3)
            k += 4
        while k < n_in:
            r0 = fp[wt + k * n_out: wt + (k + 1) * n_out]
            for b in range(T):
                wb = work[b]
                ak = X[b, k] if l == 0 else wb[ain + k]
                _acc_row(wb[zb0: zb0 + n_out], ak, r0)
            k += 1
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
        i = 0
        while i + 4 <= n_out:
            r0 = fp[w + i * n_in: w + (i + 1) * n_in]
            r1 = fp[w + (i + 1) * n_in: w + (i + 2) * n_in]
            r2 = fp[w + (i + 2) * n_in: w + (i + 3) * n_in]
            r3 = fp[w + (i + 3) * n_in: w + (i + 4) * n_in]
            for b in range(T):
                wb = work[b]
                out = G[b] if l == 0 else wb[nxt: nxt + n_in]
                _acc_rows4(out, wb[cur + i], wb[cur + i + 1], wb[cur + i + 2], wb[cur + i + 3],
                           r0, r1, r2, r3)
            i += 4
        while i < n_out:
            r0 = fp[w + i * n_in: w + (i + 1) * n_in]
            for b in range(T):
                wb = work[b]
                out = G[b] if l == 0 else wb[nxt: nxt + n_in]
                _acc_row(out, wb[cur + i], r0)
            i += 1
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


@jit
def _model_eval(kind, ip, fp, x, g, need_grad, work):
    """Energy of one state ``x``; writes ``dE/dx`` into ``g`` if ``need_grad``.

    ``work`` is a ``(1, n_work)`` scratch array.
    """
    if kind == KIND_STUDENT_T:
        return _student_t_eval(ip, fp, x, g, need_grad)
    if kind == KIND_MIXTURE:
        return _mixture_eval(ip, fp, x, g, need_grad, work[0])
    if kind == KIND_GRBM:
        return _grbm_eval(ip, fp, x, g, need_grad, work[0])
    e = np.empty(1)
    _mlp_eval_tile(ip, fp, x.reshape((1, x.shape[0])), g.reshape((1, g.shape[0])), e, need_grad, work,
                   True)
    return e[0]


@jit
def _eval_tile(kind, ip, fp, X, G, E, need_grad, work, need_e):
    """``_model_eval`` on every row of a tile (MLP: shared weight loads).

    ``need_e=False`` allows a kernel to leave ``E`` undefined (NaN) when that
    saves work (the MLP's top-layer softplus during ULA steps).
    """
    if kind == KIND_MLP:
        _mlp_eval_tile(ip, fp, X, G, E, need_grad, work, need_e)
    else:
        for b in range(X.shape[0]):
            E[b] = _model_eval(kind, ip, fp, X[b], G[b], need_grad, work[b: b + 1])


@pjit
def eval_batch(kind, ip, fp, x, n_work, need_grad):
    """Energies ``(n,)`` and gradients ``(n, d)`` of a batch, chain by chain."""
    n, d = x.shape
    e = np.empty(n)
    g = np.zeros((n, d))
    for c in prange(n):
        work = np.empty((1, max(n_work, 1)))
        e[c] = _model_eval(kind, ip, fp, x[c], g[c], need_grad, work)
    return e, g


# ----------------------------------------------------------------- drivers
# Chains are processed in tiles of ``tile`` consecutive chains (one tile per
# prange iteration) so that the MLP kernel shares weight loads; each chain
# still draws from its own RNG row in its own order and its arithmetic does
# not depend on the tile, so ``tile`` changes speed, never results.
@pjit
def langevin_run(kind, ip, fp, n_work, x, n_steps, eta, adjust, variant, rng, thin, trace,
                 accepted, energies, tile):
    """ULA (``adjust=False``) or MALA on every chain; fills the outputs in place."""
    n, d = x.shape
    noise = math.sqrt(2.0 * eta)
    inv4eta = 1.0 / (4.0 * eta)
    n_tiles = (n + tile - 1) // tile
    for ti in prange(n_tiles):
        c0 = ti * tile
        c1 = min(n, c0 + tile)
        T = c1 - c0
        X = x[c0:c1]
        work = np.empty((T, max(n_work, 1)))
        G = np.empty((T, d))
        XP = np.empty((T, d))
        GP = np.empty((T, d))
        E = np.empty(T)
        EP = np.empty(T)
        acc = np.zeros(T, dtype=np.int64)
        _eval_tile(kind, ip, fp, X, G, E, True, work, True)
        for t in range(n_steps):
            for b in range(T):
                s = rng[c0 + b]
                for j in range(d):
                    XP[b, j] = X[b, j] - eta * G[b, j] + noise * nb_normal(s)
            _eval_tile(kind, ip, fp, XP, GP, EP, True, work, adjust)
            for b in range(T):
                if adjust:
                    log_u = math.log(nb_uniform(rng[c0 + b]))
                    ok = False
                    if EP[b] < np.inf:
                        # log q(x | x') - log q(x' | x) for the Gaussian proposal
                        # q(b | a) = N(b; a - eta g(a), 2 eta I)
                        fwd = 0.0
                        bwd = 0.0
                        for j in range(d):
                            r1 = XP[b, j] - X[b, j] + eta * G[b, j]
                            r2 = X[b, j] - XP[b, j] + eta * GP[b, j]
                            fwd += r1 * r1
                            bwd += r2 * r2
                        log_alpha = E[b] - EP[b]
                        if variant == VARIANT_EXACT:
                            log_alpha += (fwd - bwd) * inv4eta
                        # u < 1 so log u < 0: this is log u < min(0, log alpha),
                        # and a NaN log alpha rejects
                        ok = log_u < log_alpha
                else:
                    ok = True
                if ok:
                    if adjust:
                        acc[b] += 1
                    for j in range(d):
                        X[b, j] = XP[b, j]
                        G[b, j] = GP[b, j]
                    E[b] = EP[b]
            if thin > 0 and (t + 1) % thin == 0:
                k = (t + 1) // thin - 1
                for b in range(T):
                    for j in range(d):
                        trace[k, c0 + b, j] = X[b, j]
        if not adjust and n_steps > 0:
            _eval_tile(kind, ip, fp, X, G, E, False, work, True)
        for b in range(T):
            accepted[c0 + b] = acc[b]
            energies[c0 + b] = E[b]


@pjit
def rwmh_run(kind, ip, fp, n_work, x, n_steps, scale, rng, thin, trace, accepted, energies, tile):
    """Random-walk Metropolis with a N(0, scale^2 I) proposal on every chain."""
    n, d = x.shape
    n_tiles = (n + tile - 1) // tile
    for ti in prange(n_tiles):
        c0 = ti * tile
        c1 = min(n, c0 + tile)
        T = c1 - c0
        X = x[c0:c1]
        work = np.empty((T, max(n_work, 1)))
        G = np.empty((T, d))
        XP = np.empty((T, d))
        E = np.empty(T)
        EP = np.empty(T)
        acc = np.zeros(T, dtype=np.int64)
        _eval_tile(kind, ip, fp, X, G, E, False, work, True)
        for t in range(n_steps):
            for b in range(T):
                s = rng[c0 + b]
                for j in range(d):
                    XP[b, j] = X[b, j] + scale * nb_normal(s)
            _eval_tile(kind, ip, fp, XP, G, EP, False, work, True)
            for b in range(T):
                log_u = math.log(nb_uniform(rng[c0 + b]))
                if EP[b] < np.inf and log_u < E[b] - EP[b]:
                    acc[b] += 1
                    for j in range(d):
                        X[b, j] = XP[b, j]
                    E[b] = EP[b]
            if thin > 0 and (t + 1) % thin == 0:
                k = (t + 1) // thin - 1
                for b in range(T):
                    for j in range(d):
                        trace[k, c0 + b, j] = X[b, j]
        for b in range(T):
            accepted[c0 + b] = acc[b]
            energies[c0 + b] = E[b]


def tile_size(n_chains):
    """Chains per prange iteration: up to 16 (MLP weight reuse) while
    leaving several tiles per thread for load balance. Results do not
    depend on it."""
    import numba

    per = n_chains // (4 * numba.get_num_threads())
    return int(max(1, min(16, per)))


@pjit
def gibbs_langevin_run(ip, fp, x, n_steps, eta, adjust, rng, thin, trace, accepted, energies):
    """Gibbs-Langevin for a packed GRBM (``KIND_GRBM`` layout) on every chain.

    One step: ``h ~ p(h | v)`` exactly, then one Langevin proposal on ``v``
    under ``E(v, h)`` with ``h`` fixed, MH-corrected if ``adjust``.
    """
    n, V = x.shape
    H = ip[1]
    o_mu = V * H
    o_b = o_mu + V
    o_iv = o_b + H
    noise = math.sqrt(2.0 * eta)
    inv4eta = 1.0 / (4.0 * eta)
    for c in prange(n):
        s = rng[c]
        v = x[c]
        a = np.empty(H)
        h = np.empty(H)
        m = np.empty(V)
        vp = np.empty(V)
        acc = 0
        for t in range(n_steps):
            # h | v: a = b_h + W^T (v / sigma^2)
            for j in range(H):
                a[j] = fp[o_b + j]
            for i in range(V):
                y = v[i] * fp[o_iv + i]
                row = i * H
                for j in range(H):
                    a[j] += y * fp[row + j]
            for j in range(H):
                h[j] = 1.0 if nb_uniform(s) < nb_sigmoid(a[j]) else 0.0
            # grad_v E(v, h) = (v - m) / sigma^2 with m = mu + W h
            for i in range(V):
                row = i * H
                t2 = fp[o_mu + i]
                for j in range(H):
                    t2 += fp[row + j] * h[j]
                m[i] = t2
            for i in range(V):
                vp[i] = v[i] - eta * (v[i] - m[i]) * fp[o_iv + i] + noise * nb_normal(s)
            if adjust:
                log_u = math.log(nb_uniform(s))
                # E(v', h) - E(v, h): only 1/2 sum (v - m)^2 / sigma^2 depends on v
                de = 0.0
                fwd = 0.0
                bwd = 0.0
                for i in range(V):
                    iv = fp[o_iv + i]
                    r_new = vp[i] - m[i]
                    r_old = v[i] - m[i]
                    de += 0.5 * (r_new * r_new - r_old * r_old) * iv
                    f = vp[i] - v[i] + eta * r_old * iv
                    b = v[i] - vp[i] + eta * r_new * iv
                    fwd += f * f
                    bwd += b * b
                log_alpha = -de + (fwd - bwd) * inv4eta
                if log_u < log_alpha:
                    acc += 1
                    for i in range(V):
                        v[i] = vp[i]
            else:
                for i in range(V):
                    v[i] = vp[i]
            if thin > 0 and (t + 1) % thin == 0:
                k = (t + 1) // thin - 1
                for i in range(V):
                    trace[k, c, i] = v[i]
        accepted[c] = acc
        energies[c] = _grbm_eval(ip, fp, v, vp, False, a)


# ------------------------------------------------------ generic NumPy path
def _eval_rows(model, x, need_grad):
    """Energies (and gradients) of the finite rows of ``x``; a row with a
    NaN/inf entry (a diverged proposal) gets energy +inf and a NaN gradient,
    so MH rejects it. Uses the model's private hooks: the rows are already
    validated and the public methods would refuse the non-finite ones."""
    n, d = x.shape
    e = np.full(n, np.inf)
    g = np.full((n, d), np.nan) if need_grad else None
    fin = np.all(np.isfinite(x), axis=1)
    if fin.all():
        xf = np.ascontiguousarray(x)
        e[:] = model._energy(xf)
        if need_grad:
            g[:] = model._grad_x(xf)
    elif fin.any():
        xf = np.ascontiguousarray(x[fin])
        e[fin] = model._energy(xf)
        if need_grad:
            g[fin] = model._grad_x(xf)
    return e, g


def generic_langevin(model, x, n_steps, eta, adjust, rng, thin, trace, variant=VARIANT_EXACT):
    """ULA/MALA through ``model.energy`` / ``model.grad_x`` on the whole batch.

    For real-domain models without a Numba kernel. Chain ``c`` draws from
    row ``c`` in the kernels' order (``d`` normals, then one uniform), so it
    is reproducible and thread-independent; whether chain ``c`` is
    bit-identical across batch sizes depends on the model's own batch
    arithmetic. Returns ``(accepted, energies)``; ``x`` is updated in place.
    """
    n, d = x.shape
    e = np.asarray(model.energy(x), dtype=np.float64).copy()
    g = np.asarray(model.grad_x(x), dtype=np.float64).copy()
    accepted = np.zeros(n, dtype=np.int64)
    noise = math.sqrt(2.0 * eta)
    eps = np.empty((n, d))
    for t in range(n_steps):
        for j in range(d):
            eps[:, j] = np_normals(rng)
        xp = x - eta * g + noise * eps
        ep, gp = _eval_rows(model, xp, True)
        if adjust:
            log_u = np.log(np_uniforms(rng))
            fwd = np.sum((xp - x + eta * g) ** 2, axis=1)
            bwd = np.sum((x - xp + eta * gp) ** 2, axis=1)
            with np.errstate(invalid="ignore"):
                log_alpha = e - ep
                if variant == VARIANT_EXACT:
                    log_alpha = log_alpha + (fwd - bwd) / (4.0 * eta)
                ok = (ep < np.inf) & (log_u < np.minimum(0.0, log_alpha))
        else:
            ok = np.ones(n, dtype=bool)
        x[ok] = xp[ok]
        g[ok] = gp[ok]
        e[ok] = ep[ok]
        accepted += ok
        if thin > 0 and (t + 1) % thin == 0:
            trace[(t + 1) // thin - 1] = x
    return accepted, e


def generic_rwmh(model, x, n_steps, scale, rng, thin, trace):
    """Random-walk MH through ``model.energy`` on the whole batch (see
    :func:`generic_langevin` for the stream layout). Returns ``(accepted,
    energies)``; ``x`` is updated in place."""
    n, d = x.shape
    e = np.asarray(model.energy(x), dtype=np.float64).copy()
    accepted = np.zeros(n, dtype=np.int64)
    eps = np.empty((n, d))
    for t in range(n_steps):
        for j in range(d):
            eps[:, j] = np_normals(rng)
        xp = x + scale * eps
        ep, _ = _eval_rows(model, xp, False)
        log_u = np.log(np_uniforms(rng))
        with np.errstate(invalid="ignore"):
            ok = (ep < np.inf) & (log_u < np.minimum(0.0, e - ep))
        x[ok] = xp[ok]
        e[ok] = ep[ok]
        accepted += ok
        if thin > 0 and (t + 1) % thin == 0:
            trace[(t + 1) // thin - 1] = x
    return accepted, e
