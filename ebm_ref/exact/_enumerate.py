r"""Exact enumeration of binary models in Gray-code order (Numba kernels).

Layout
------
``n`` enumerated units give ``2^n`` states. Unit ``j`` is bit ``n-1-j`` of
the state's index, so that the index of a state is its lexicographic rank
with unit 0 the most significant (docs/exact.md); a set bit means 1, a clear bit
0 (``binary``) or -1 (``spin``).

Step ``i`` of the walk visits the Gray code ``g(i) = i ^ (i >> 1)``; from
``g(i-1)`` to ``g(i)`` only bit ``ctz(i)`` (trailing zeros of ``i``) flips,
so each next state updates the running pre-activations / local fields in
O(width) instead of recomputing them in O(width^2) (Gray 1953; Knuth, TAOCP
7.2.1.1).

Parallelism and reproducibility
-------------------------------
The ``2^n`` steps are split into ``2^chunk_bits`` chunks of consecutive
indices, a number fixed by ``n`` alone, never by the thread count. Chunk
``c`` starts from its own first Gray state, computed directly, and keeps a
max-shifted sum ``(m_c, s_c)`` with ``sum_{states of c} e^{l} = s_c e^{m_c}``.
The chunks are combined serially in chunk order (:func:`combine_chunks`), so
``prange`` never reduces and results are bit-identical for any number of
Numba threads. A kernel call walks the chunks ``ch_lo <= ch < ch_hi``
only, so ``log_partition`` runs the walk as several calls (Ctrl-C is seen
between them, ``ebm_ref._interrupt``) with the same per-chunk results.

Rounding drift
--------------
Every ``RESYNC`` steps (and at each chunk start) the state's pre-activations
are recomputed from scratch, so no running quantity carries more than
``RESYNC`` incremental updates. This bounds the per-state error of the
log-weight (see :func:`rbm_value_error` and :func:`ising_value_error`).

Cost per state
--------------
* RBM, general path (:func:`rbm_walk`): ``O(m)`` pre-activation updates and
  :func:`_softplus_sum`, one ``exp`` per summed-out unit and one ``log``
  per product group.
* RBM, multiplicative path (:func:`rbm_lse_mult`, used by ``log_partition``
  when :func:`rbm_mult_plan` finds every pre-activation within +-600): keeps
  :math:`E_j = e^{a_j}`, one multiplication per unit and one ``log`` per
  product group, no ``exp`` per unit.
* Ising (:func:`ising_walk`): local fields updated over the non-zeros of
  the flipped unit's column only (4 on a lattice).
* Every state adds one ``exp`` to its chunk's running log-sum-exp.

The kernels do not check their inputs.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from .._jit import jit, pjit
from .._numerics import nb_sigmoid
from ._bounds import RESYNC

__all__ = [
    "CHUNK_BITS",
    "MOMENT_CHUNK_BITS",
    "RESYNC",
    "rbm_layers",
    "rbm_walk",
    "rbm_lse_mult",
    "rbm_mult_plan",
    "softplus_groups",
    "ising_arrays",
    "ising_walk",
]

#: log2 of the number of chunks of a log-partition walk (fewer if 2^n is smaller).
CHUNK_BITS = 10
#: log2 of the number of chunks of a moment walk (per-chunk accumulators are
#: ``width^2`` floats each, so fewer chunks).
MOMENT_CHUNK_BITS = 7

MODE_LSE = 0
MODE_VALUES = 1
MODE_MOMENTS = 2


@jit
def _ctz(i):
    """Number of trailing zero bits of ``i > 0``."""
    b = 0
    while (i & 1) == 0:
        i >>= 1
        b += 1
    return b


@jit
def _lse_push(mx, s, val):
    """Add ``e^val`` to the shifted sum ``s e^mx``; return the new ``(mx, s)``."""
    if val > mx:
        # exp(-inf) = 0 handles the empty start (mx = -inf)
        return val, s * math.exp(mx - val) + 1.0
    return mx, s + math.exp(val - mx)


# ---------------------------------------------------------------------- RBM
#: Most factors in one product of :func:`_softplus_sum` (each is in (1, 2]).
SOFTPLUS_GROUP = 512
#: The multiplicative path needs every pre-activation within [-LIMIT, LIMIT].
MULT_RANGE_LIMIT = 600.0


@jit
def _softplus_sum(a, gstart):
    r"""``sum_j softplus(a_j) = sum_j max(a_j, 0) + log prod_j (1 + e^{-|a_j|})``.

    One ``exp`` per unit and one ``log`` per group of at most
    ``SOFTPLUS_GROUP`` factors (each in (1, 2], so no overflow), instead of
    an ``exp`` and a ``log1p`` per unit; four partial products break the
    multiplication chain.
    """
    pos = 0.0
    tot = 0.0
    for g in range(gstart.shape[0] - 1):
        j = gstart[g]
        stop = gstart[g + 1]
        p0 = 1.0
        p1 = 1.0
        p2 = 1.0
        p3 = 1.0
        while j + 4 <= stop:
            x0 = a[j]
            x1 = a[j + 1]
            x2 = a[j + 2]
            x3 = a[j + 3]
            pos += (max(x0, 0.0) + max(x1, 0.0)) + (max(x2, 0.0) + max(x3, 0.0))
            p0 *= 1.0 + math.exp(-abs(x0))
            p1 *= 1.0 + math.exp(-abs(x1))
            p2 *= 1.0 + math.exp(-abs(x2))
            p3 *= 1.0 + math.exp(-abs(x3))
            j += 4
        while j < stop:
            x0 = a[j]
            pos += max(x0, 0.0)
            p0 *= 1.0 + math.exp(-abs(x0))
            j += 1
        tot += math.log((p0 * p1) * (p2 * p3))
    return pos + tot


@jit
def _log_prod_1p(E, gstart):
    """``sum_j log(1 + E_j)`` as one ``log`` per group (groups keep the product finite)."""
    tot = 0.0
    for g in range(gstart.shape[0] - 1):
        j = gstart[g]
        stop = gstart[g + 1]
        p0 = 1.0
        p1 = 1.0
        p2 = 1.0
        p3 = 1.0
        while j + 4 <= stop:
            p0 *= 1.0 + E[j]
            p1 *= 1.0 + E[j + 1]
            p2 *= 1.0 + E[j + 2]
            p3 *= 1.0 + E[j + 3]
            j += 4
        while j < stop:
            p0 *= 1.0 + E[j]
            j += 1
        tot += math.log((p0 * p1) * (p2 * p3))
    return tot


@jit
def _rbm_reset(i, c, b, M, z, a):
    """Set ``z`` to Gray state ``g(i)`` and ``a = b + z M``; return ``c.z``."""
    n, m = M.shape
    g = i ^ (i >> 1)
    for j in range(m):
        a[j] = b[j]
    lin = 0.0
    for k in range(n):
        if (g >> (n - 1 - k)) & 1:
            z[k] = 1.0
            lin += c[k]
            for j in range(m):
                a[j] += M[k, j]
        else:
            z[k] = 0.0
    return lin


@pjit
def rbm_walk(c, b, M, gstart, chunk_bits, ch_lo, ch_hi, mode, log_z, out_max, out_sum, out_vals, out_z, out_y, out_zy):
    r"""Walk all ``z`` in {0,1}^n for ``l(z) = c.z + sum_j softplus(b_j + (z M)_j)``.

    ``mode`` 0: per-chunk shifted sums into ``out_max``/``out_sum``;
    1: ``l(z)`` into ``out_vals[index(z)]``; 2: per-chunk sums of ``w z``,
    ``w sigma(a)`` and ``w z sigma(a)^T`` with ``w = e^{l(z) - log_z}`` into
    ``out_z``, ``out_y``, ``out_zy``. No input checks.
    """
    n, m = M.shape
    chunk_len = 1 << (n - chunk_bits)
    for ch in prange(ch_lo, ch_hi):
        z = np.empty(n)
        a = np.empty(m)
        ws = np.empty(m)
        start = ch * chunk_len
        mx = -np.inf
        s = 0.0
        lin = 0.0
        for i in range(start, start + chunk_len):
            if ((i - start) & (RESYNC - 1)) == 0:
                lin = _rbm_reset(i, c, b, M, z, a)
            else:
                k = n - 1 - _ctz(i)
                dz = 1.0 - 2.0 * z[k]
                z[k] += dz
                lin += dz * c[k]
                for j in range(m):
                    a[j] += dz * M[k, j]
            val = lin + _softplus_sum(a, gstart)
            if mode == MODE_LSE:
                mx, s = _lse_push(mx, s, val)
            elif mode == MODE_VALUES:
                out_vals[i ^ (i >> 1)] = val
            else:
                w = math.exp(val - log_z)
                for j in range(m):
                    ws[j] = w * nb_sigmoid(a[j])
                    out_y[ch, j] += ws[j]
                for k in range(n):
                    if z[k] != 0.0:
                        out_z[ch, k] += w
                        for j in range(m):
                            out_zy[ch, k, j] += ws[j]
        out_max[ch] = mx
        out_sum[ch] = s


@pjit
def rbm_lse_mult(c, b, M, T, Tinv, gstart, chunk_bits, ch_lo, ch_hi, out_max, out_sum):
    r"""Shifted sums of :func:`rbm_walk` keeping :math:`E_j = e^{a_j}` instead of ``a``.

    A flip of unit ``k`` multiplies ``E`` by ``T[k] = e^{M[k]}`` (on) or
    ``Tinv[k] = e^{-M[k]}`` (off), and
    :math:`\sum_j \operatorname{softplus}(a_j) = \sum_j \log(1 + E_j)` is one
    ``log`` per group: no transcendental per unit. Only valid when every
    pre-activation stays within ``[-MULT_RANGE_LIMIT, MULT_RANGE_LIMIT]``
    and each group's product stays finite (:func:`rbm_mult_plan`).
    No input checks.
    """
    n, m = M.shape
    chunk_len = 1 << (n - chunk_bits)
    for ch in prange(ch_lo, ch_hi):
        z = np.empty(n)
        a = np.empty(m)
        E = np.empty(m)
        start = ch * chunk_len
        mx = -np.inf
        s = 0.0
        lin = 0.0
        for i in range(start, start + chunk_len):
            if ((i - start) & (RESYNC - 1)) == 0:
                lin = _rbm_reset(i, c, b, M, z, a)
                for j in range(m):
                    E[j] = math.exp(a[j])
            else:
                k = n - 1 - _ctz(i)
                if z[k] == 0.0:
                    z[k] = 1.0
                    lin += c[k]
                    for j in range(m):
                        E[j] *= T[k, j]
                else:
                    z[k] = 0.0
                    lin -= c[k]
                    for j in range(m):
                        E[j] *= Tinv[k, j]
            mx, s = _lse_push(mx, s, lin + _log_prod_1p(E, gstart))
        out_max[ch] = mx
        out_sum[ch] = s


def softplus_groups(m):
    """Group starts (plus the end) for :func:`_softplus_sum`."""
    return np.append(np.arange(0, m, SOFTPLUS_GROUP, dtype=np.int64), np.int64(m))


def rbm_mult_plan(b, M):
    r"""``(T, Tinv, gstart)`` for :func:`rbm_lse_mult`, or ``None`` if unsafe.

    Each pre-activation lies in :math:`[b_j + \sum_k \min(M_{kj}, 0),
    b_j + \sum_k \max(M_{kj}, 0)]`; the path is used only if all these
    ranges are inside ``[-600, 600]`` (no overflow, no subnormal ``E_j``)
    and every :math:`|M_{kj}| \le 600` (finite factors), and units are grouped so that each group's
    :math:`\sum_j \operatorname{softplus}(a^{\max}_j) \le 600` (its product
    of :math:`1 + E_j` stays below :math:`e^{600}`).
    """
    lo = b + np.minimum(M, 0.0).sum(axis=0)
    hi = b + np.maximum(M, 0.0).sum(axis=0)
    if lo.size == 0 or lo.min() < -MULT_RANGE_LIMIT or hi.max() > MULT_RANGE_LIMIT:
        return None
    if M.size and np.abs(M).max() > MULT_RANGE_LIMIT:  # e^{+-M} itself must be finite
        return None
    sp_hi = np.logaddexp(0.0, hi)
    starts = [0]
    acc = 0.0
    for j, v in enumerate(sp_hi):
        if acc + v > MULT_RANGE_LIMIT and j > starts[-1]:
            starts.append(j)
            acc = 0.0
        acc += v
    starts.append(len(sp_hi))
    return np.exp(M), np.exp(-M), np.asarray(starts, dtype=np.int64)


def rbm_layers(model):
    """``(c, b, M, enumerates_hidden)`` for the smaller layer of an RBM.

    ``H <= V``: enumerate ``h`` with ``c = b_h``, ``b = b_v``, ``M = W^T``;
    else enumerate ``v`` with ``c = b_v``, ``b = b_h``, ``M = W``.
    """
    p = model.params
    W = p["W"]
    if W.shape[1] <= W.shape[0]:
        return p["b_h"], p["b_v"], np.ascontiguousarray(W.T), True
    return p["b_v"], p["b_h"], np.ascontiguousarray(W), False


# -------------------------------------------------------------------- Ising
@jit
def _ising_reset(i, lo, h, indptr, indices, data, z, f):
    """Set ``z`` to Gray state ``g(i)``, ``f = S z``; return ``z.(S z/2 + h)``."""
    n = h.shape[0]
    g = i ^ (i >> 1)
    for k in range(n):
        z[k] = 1.0 if (g >> (n - 1 - k)) & 1 else lo
    val = 0.0
    for k in range(n):
        acc = 0.0
        for p in range(indptr[k], indptr[k + 1]):
            acc += data[p] * z[indices[p]]
        f[k] = acc
        val += z[k] * (0.5 * acc + h[k])
    return val


@pjit
def ising_walk(lo, h, indptr, indices, data, const, n_walk, chunk_bits, ch_lo, ch_hi, mode, log_z, out_max, out_sum, out_vals, out_m1, out_m2):
    r"""Walk all ``z`` in {lo,1}^n for ``l(z) = const + z.S z/2 + h.z``.

    ``S`` (symmetric, zero diagonal) is given in CSR form (row ``k`` =
    column ``k``). Flipping unit ``k`` by ``dz`` changes ``l`` by
    ``dz (f_k + h_k)`` with ``f = S z``, then ``f += dz S[:, k]`` over the
    non-zeros only. Only the first ``2^n_walk`` indices are walked: the
    states whose first ``n - n_walk`` units are ``lo`` (``n_walk = n - 1``
    is half the states, enough for a spin model without field, where
    ``l(z) = l(-z)``). Modes as in :func:`rbm_walk`; mode 2 accumulates
    ``w z`` into ``out_m1`` and ``w z_k z_j`` (``j >= k``) into ``out_m2``.
    No input checks.
    """
    n = h.shape[0]
    chunk_len = 1 << (n_walk - chunk_bits)
    flip = lo + 1.0
    for ch in prange(ch_lo, ch_hi):
        z = np.empty(n)
        f = np.empty(n)
        start = ch * chunk_len
        mx = -np.inf
        s = 0.0
        val = 0.0
        for i in range(start, start + chunk_len):
            if ((i - start) & (RESYNC - 1)) == 0:
                val = _ising_reset(i, lo, h, indptr, indices, data, z, f)
            else:
                k = n - 1 - _ctz(i)
                dz = flip - 2.0 * z[k]
                val += dz * (f[k] + h[k])
                z[k] += dz
                for p in range(indptr[k], indptr[k + 1]):
                    f[indices[p]] += dz * data[p]
            tot = const + val
            if mode == MODE_LSE:
                mx, s = _lse_push(mx, s, tot)
            elif mode == MODE_VALUES:
                out_vals[i ^ (i >> 1)] = tot
            else:
                w = math.exp(tot - log_z)
                for k in range(n):
                    wz = w * z[k]
                    out_m1[ch, k] += wz
                    for j in range(k, n):
                        out_m2[ch, k, j] += wz * z[j]
        out_max[ch] = mx
        out_sum[ch] = s


def ising_arrays(model):
    r"""``(lo, h_eff, indptr, indices, data, const, S)`` of an Ising model.

    The formula :math:`l(x) = \tfrac12 x^\top J x + h^\top x` is evaluated for
    any ``J`` (the finite-difference checks move single entries): with
    :math:`S` the off-diagonal part of :math:`(J + J^\top)/2` (equal to ``J``
    bit for bit when ``J`` is symmetric), the diagonal enters through
    :math:`x_k^2`: a constant :math:`\tfrac12\sum_k J_{kk}` for spins, an extra
    field :math:`\tfrac12 J_{kk}` for {0,1} units.
    """
    p = model.params
    J, h = p["J"], p["h"]
    S = 0.5 * (J + J.T)
    np.fill_diagonal(S, 0.0)
    diag = np.diag(J).copy()
    if model.domain == "spin":
        lo, h_eff, const = -1.0, h.copy(), 0.5 * float(diag.sum())
    else:
        lo, h_eff, const = 0.0, h + 0.5 * diag, 0.0
    nz = S != 0.0
    indptr = np.zeros(S.shape[0] + 1, dtype=np.int64)
    indptr[1:] = np.cumsum(nz.sum(axis=1))
    rows, cols = np.nonzero(nz)
    return lo, h_eff, indptr, cols.astype(np.int64), S[rows, cols].copy(), const, S
