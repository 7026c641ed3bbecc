r"""Private Numba kernels of the discrete samplers (Ising, RBM on ``v``).

Layout (QuantEcon's wrapper -> kernel split): the public functions in
``gibbs.py``, ``gwg.py`` and ``mh.py`` validate and allocate through
``_common.prepare``; the ``@pjit`` drivers below run ``prange`` over chains,
chain ``c`` reading and writing only row ``c`` of ``x``, ``rng``, ``trace``
and ``accepted``. Every per-chain quantity (local fields, pre-activations,
log-sum-exps) is accumulated chain by chain in a fixed order, so the result
does not depend on the number of threads nor on the number of chains. No
input checks are made in the kernels.

Ising models are handed to the kernels as the CSR form of ``J`` (only the
non-zero couplings; a lattice has four per site), so one kernel serves dense
random models and sparse lattices alike. Lattice models (``Ising.lattice``,
which store no ``J``) reach the lattice kernels from their structure alone:
a neighbour table or the checkerboard kernel, a 5-entry probability table,
and :func:`lattice_energy_rows` for the final energies (see
``docs/lattices.md``).

Random numbers consumed per step (fixed, whatever is accepted):

* Ising Gibbs sweep: one uniform per site, in sweep order;
* Gibbs-with-gradients: one uniform for the proposed unit, one for the
  accept test;
* binary random-walk MH: one uniform for the unit, one for the accept test.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from .._jit import jit, jit_inline, pjit
from .._numerics import nb_sigmoid, nb_softplus
from .._rng import nb_randint, nb_uniform
from ..energies.ising import coupling_csr, ising_fields, lattice_csr
from ._common import finish, prepare, unsupported

__all__ = ["rwmh_binary", "model_kind", "ising_csr", "ising_h", "lattice_csr", "rows_blockwise", "BLOCK"]

# Fixed batch size of every BLAS call on chains (see ``rows_blockwise``).
BLOCK = 128


# --------------------------------------------------------------------------
# Python-side helpers shared by gibbs.py / gwg.py / mh.py


def model_kind(model):
    """``"rbm"``, ``"grbm"``, ``"ising"`` or ``None`` for any other object."""
    from ..energies import rbm as _rbm

    if isinstance(model, _rbm.RBM):
        return "rbm"
    for modname, clsname, kind in (("ising", "Ising", "ising"), ("grbm", "GRBM", "grbm")):
        try:
            mod = __import__(f"ebm_ref.energies.{modname}", fromlist=[clsname])
        except ImportError:  # pragma: no cover - the model module is part of the package
            continue
        if isinstance(model, getattr(mod, clsname)):
            return kind
    return None


def ising_csr(model):
    """CSR arrays ``(indptr, indices, data)`` of the couplings (see ``energies.ising.coupling_csr``)."""
    return coupling_csr(model)


def ising_h(model):
    """The fields ``h`` as a C-contiguous float64 array (no dense ``J`` for a lattice)."""
    return ising_fields(model)


def rows_blockwise(fn, x, fill=0.0, block=BLOCK):
    """Apply a row-wise batch function ``fn`` in zero-padded blocks of ``block`` rows.

    Why: OpenBLAS may round row ``i`` of ``A @ B`` differently for different
    numbers of rows of ``A`` (measured: rows of a 10-row product differ in
    the last bits from the same rows inside a 1024-row product), which would
    break chain-prefix invariance (see ``docs/conventions.md``). With every call on exactly
    ``block`` rows, chain ``c`` always sits at row ``c mod block`` of a
    product of the same shape, and no BLAS mixes the contents of different
    rows; measured bit-identical for rows of 128-row blocks inside a 1024-row
    product and across positions. ``fill`` pads the last block.
    """
    n = x.shape[0]
    n_pad = -(-n // block) * block
    xp = np.full((n_pad, x.shape[1]), fill, dtype=np.float64)
    xp[:n] = x
    out = [np.asarray(fn(xp[b : b + block])) for b in range(0, n_pad, block)]
    return np.concatenate(out, axis=0)[:n]


def final_energies(model, x):
    """Per-chain energies ``model.energy`` of the final states, batch-size invariant.

    Ising lattice: :func:`lattice_energy_rows` from the structure (O(d) per
    chain, no ``J``). Other Ising: summed chain by chain over the non-zero
    couplings (O(nnz) per chain, where the dense ``x J x`` would cost O(d^2), 2e9 operations per
    block for a 64 x 64 lattice). Other models: ``model.energy`` on
    fixed-shape blocks (see ``rows_blockwise``).
    """
    spec = getattr(model, "lattice", None) if model_kind(model) == "ising" else None
    if spec is not None:
        out = np.empty(x.shape[0])
        lattice_energy_rows(
            spec.shape[0], spec.shape[1], spec.boundary == "periodic",
            spec.beta * spec.coupling, spec.beta * spec.field, x, out,
        )
        return out
    if model_kind(model) == "ising":
        indptr, indices, data = ising_csr(model)
        out = np.empty(x.shape[0])
        ising_energy_rows(indptr, indices, data, np.ascontiguousarray(model.params["h"]), x, out)
        return out
    fill = -1.0 if model.domain == "spin" else 0.0
    return np.ascontiguousarray(rows_blockwise(model.energy, x, fill=fill))


def acceptance(accepted, n_steps):
    """Fraction of accepted proposals; NaN per chain when ``n_steps == 0`` (nothing proposed)."""
    if n_steps == 0:
        return np.full(accepted.shape[0], np.nan)
    return accepted / float(n_steps)


# --------------------------------------------------------------------------
# Small jitted helpers


@jit
def _ising_fields(indptr, indices, data, h, xc, f):
    """Local fields ``f_i = h_i + sum_j J_ij x_j`` of one chain (CSR order). No input checks."""
    for i in range(xc.shape[0]):
        fi = h[i]
        for k in range(indptr[i], indptr[i + 1]):
            fi += data[k] * xc[indices[k]]
        f[i] = fi


@jit
def bernoulli_logit(u, a):
    r"""``u < sigmoid(a)`` without a branch or a division: ``u e^{-a} < 1 - u``.

    Equivalent for every real ``a``: ``e^{-a} = inf`` (a < -709) gives
    False (sigmoid rounds to 0), ``e^{-a} = 0`` gives True (sigmoid rounds
    to 1). A data-dependent branch on the sign of ``a``, as in a stable
    sigmoid, is mispredicted half the time on random pre-activations
    (measured 2.5x slower per unit).
    """
    return u * math.exp(-a) < 1.0 - u


@pjit
def ising_energy_rows(indptr, indices, data, h, x, out):
    r"""``out[c] = -1/2 x_c^T J x_c - h^T x_c`` chain by chain (CSR order). No input checks."""
    for c in prange(x.shape[0]):
        xc = x[c]
        e = 0.0
        for i in range(xc.shape[0]):
            fi = 0.0
            for k in range(indptr[i], indptr[i + 1]):
                fi += data[k] * xc[indices[k]]
            e -= xc[i] * (0.5 * fi + h[i])
        out[c] = e


@jit_inline
def _sort2(a, b):
    """``(min, max)`` of two ints."""
    return (a, b) if a <= b else (b, a)


@jit_inline
def _lattice_site_field(xc, r, col, L1, L2, periodic, K):
    r"""``sum_j J_ij x_j`` of site ``(r, col)`` in the order of the CSR of ``J`` (see ``lattice_energy_rows``)."""
    d = L1 * L2
    i = r * L2 + col
    if r > 0:
        n0 = i - L2
    else:
        n0 = (L1 - 1) * L2 + col if periodic else d
    if r < L1 - 1:
        n1 = i + L2
    else:
        n1 = col if periodic else d
    if col > 0:
        n2 = i - 1
    else:
        n2 = i + L2 - 1 if periodic else d
    if col < L2 - 1:
        n3 = i + 1
    else:
        n3 = i - L2 + 1 if periodic else d
    n0, n1 = _sort2(n0, n1)
    n2, n3 = _sort2(n2, n3)
    n0, n2 = _sort2(n0, n2)
    n1, n3 = _sort2(n1, n3)
    n1, n2 = _sort2(n1, n2)
    fi = 0.0
    # runs of equal indices in n0 <= n1 <= n2 <= n3 (a missing neighbour is d)
    cnt = 1.0
    if n1 == n0:
        cnt += 1.0
    else:
        if n0 < d:
            fi += (K * cnt) * xc[n0]
        cnt = 1.0
    if n2 == n1:
        cnt += 1.0
    else:
        if n1 < d:
            fi += (K * cnt) * xc[n1]
        cnt = 1.0
    if n3 == n2:
        cnt += 1.0
    else:
        if n2 < d:
            fi += (K * cnt) * xc[n2]
        cnt = 1.0
    if n3 < d:
        fi += (K * cnt) * xc[n3]
    return fi


@pjit
def lattice_energy_rows(L1, L2, periodic, K, hval, x, out):
    r"""``ising_energy_rows`` of a lattice from its structure, bit for bit. No input checks.

    Every operation of :func:`ising_energy_rows` on the CSR of the lattice's
    ``J`` is repeated in the same order: for site ``i`` the distinct
    neighbours ascending, each weighted by ``K * (number of bonds)`` (the
    stored ``J_ij``), summed from 0; then ``e -= x_i (f_i / 2 + h)``. Edge
    sites sort their neighbours with a 4-input network (a missing neighbour
    of a free edge sorts last as ``d``; equal neighbours, on a periodic
    side of length 2, merge into one entry); an interior site's are always
    up, left, right, down, each with one bond.
    """
    for c in prange(x.shape[0]):
        xc = x[c]
        e = 0.0
        if K == 0.0:  # J = 0 stores no coupling at all
            for i in range(L1 * L2):
                e -= xc[i] * (0.5 * 0.0 + hval)
            out[c] = e
            continue
        for r in range(L1):
            if 0 < r < L1 - 1 and L2 > 2:
                i = r * L2
                e -= xc[i] * (0.5 * _lattice_site_field(xc, r, 0, L1, L2, periodic, K) + hval)
                for i in range(r * L2 + 1, r * L2 + L2 - 1):
                    fi = 0.0
                    fi += K * xc[i - L2]
                    fi += K * xc[i - 1]
                    fi += K * xc[i + 1]
                    fi += K * xc[i + L2]
                    e -= xc[i] * (0.5 * fi + hval)
                i = r * L2 + L2 - 1
                e -= xc[i] * (0.5 * _lattice_site_field(xc, r, L2 - 1, L1, L2, periodic, K) + hval)
            else:
                for col in range(L2):
                    i = r * L2 + col
                    e -= xc[i] * (0.5 * _lattice_site_field(xc, r, col, L1, L2, periodic, K) + hval)
        out[c] = e


@jit
def _flip_value(xi, spin):
    """The other state of a unit: ``-x`` for spins, ``1 - x`` for 0/1."""
    if spin:
        return -xi
    return 1.0 - xi


@jit
def _categorical(w, total, u):
    """Index ``j`` with probability ``w_j / total`` by inverse CDF of ``u``. No input checks."""
    target = u * total
    cum = 0.0
    last = 0
    for j in range(w.shape[0]):
        if w[j] > 0.0:
            last = j
            cum += w[j]
            if target < cum:
                return j
    # Rounding may leave target just above the running sum: the last unit
    # with positive weight is the one the exact inverse CDF would pick.
    return last


@jit
def _normalise_logits(lg, w):
    r"""Fill ``w = exp(lg - max lg)`` and return ``(total, log_sum_exp)``."""
    m = -np.inf
    for j in range(lg.shape[0]):
        if lg[j] > m:
            m = lg[j]
    total = 0.0
    for j in range(lg.shape[0]):
        w[j] = math.exp(lg[j] - m)
        total += w[j]
    return total, m + math.log(total)


@jit
def _ising_gwg_logits(xc, f, spin, lg):
    r"""GWG logits ``-dE~_j / 2`` of an Ising state from its local fields.

    ``grad_x E = -f``; ``dE~_j = (x_{-j} - x_j) grad_j``: spins
    ``2 x_j f_j``, 0/1 units ``-(1 - 2 x_j) f_j``.
    """
    for j in range(xc.shape[0]):
        if spin:
            lg[j] = -xc[j] * f[j]
        else:
            lg[j] = 0.5 * (1.0 - 2.0 * xc[j]) * f[j]


@jit
def _rbm_pre_hidden(W, b_h, vc, a):
    """``a = b_h + W^T v`` for one chain, summed over visible units in order."""
    for j in range(a.shape[0]):
        a[j] = b_h[j]
    for k in range(vc.shape[0]):
        vk = vc[k]
        if vk != 0.0:
            for j in range(a.shape[0]):
                a[j] += vk * W[k, j]


@jit
def _rbm_gwg_logits(W, b_v, vc, a, sig, lg):
    r"""GWG logits ``-dE~_k/2 = (2 v_k - 1) g_k / 2`` with ``g = dF/dv = -b_v - W sigma(a)``."""
    for j in range(a.shape[0]):
        sig[j] = nb_sigmoid(a[j])
    for k in range(vc.shape[0]):
        g = -b_v[k]
        for j in range(a.shape[0]):
            g -= W[k, j] * sig[j]
        lg[k] = 0.5 * (2.0 * vc[k] - 1.0) * g


# --------------------------------------------------------------------------
# Ising Gibbs (heat-bath) sweeps


@pjit
def ising_gibbs_run(indptr, indices, data, h, spin, order, x, n_steps, thin, rng, trace):
    r"""``n_steps`` heat-bath sweeps visiting sites in ``order``. No input checks.

    Site ``i`` is redrawn from its exact conditional, ``p(s_i=+1|rest) =
    sigmoid(2 f_i)`` (spins) or ``p(x_i=1|rest) = sigmoid(f_i)`` (0/1), with
    the local field recomputed from the current neighbours.
    """
    n = x.shape[0]
    for c in prange(n):
        xc = x[c]
        s = rng[c]
        saved = 0
        for t in range(n_steps):
            for o in range(order.shape[0]):
                i = order[o]
                fi = h[i]
                for k in range(indptr[i], indptr[i + 1]):
                    fi += data[k] * xc[indices[k]]
                u = nb_uniform(s)
                if spin:
                    xc[i] = 1.0 if bernoulli_logit(u, 2.0 * fi) else -1.0
                else:
                    xc[i] = 1.0 if bernoulli_logit(u, fi) else 0.0
            if thin > 0 and (t + 1) % thin == 0:
                trace[saved, c, :] = xc
                saved += 1


@pjit
def lattice_gibbs_run(nb, table, spin, order, x, n_steps, thin, rng, trace):
    r"""Heat-bath sweeps of a homogeneous periodic lattice with a probability table.

    ``nb`` is ``(d, 4)`` (up, down, left, right); ``table[k]`` is the
    probability of the up state given the neighbour sum: for spins the sum
    ``S`` in ``{-4,-2,0,2,4}`` maps to ``k = (S + 4) / 2``, for 0/1 units
    ``k = S``. Same random numbers, in the same order, as
    :func:`ising_gibbs_run`. No input checks.
    """
    n = x.shape[0]
    if spin:
        up, down, scale, shift = 1.0, -1.0, 0.5, 2.0
    else:
        up, down, scale, shift = 1.0, 0.0, 1.0, 0.0
    for c in prange(n):
        xc = x[c]
        s = rng[c]
        saved = 0
        for t in range(n_steps):
            for o in range(order.shape[0]):
                i = order[o]
                ssum = xc[nb[i, 0]] + xc[nb[i, 1]] + xc[nb[i, 2]] + xc[nb[i, 3]]
                k = int(ssum * scale + shift)
                xc[i] = up if nb_uniform(s) < table[k] else down
            if thin > 0 and (t + 1) % thin == 0:
                trace[saved, c, :] = xc
                saved += 1


_U5 = np.uint64(5)
_U9 = np.uint64(9)
_R7, _R57, _R17, _R45, _R19, _R12 = (np.uint64(k) for k in (7, 57, 17, 45, 19, 12))


# Chains advanced together by one kernel iteration (one prange item). The
# xoshiro step of ``_draw_bits`` vectorises across 16 uint64 lanes; with 8
# the same loop stays scalar (measured ~3x slower per update).
LANES = 16


_ZERO = np.uint64(0)


@jit_inline
def load_lanes(rng, c0, used, S0, S1, S2, S3):
    """Lane ``g < used`` takes chain ``c0 + g``'s xoshiro256** state; the other lanes an all-zero one."""
    for g in range(S0.shape[0]):
        live = g < used
        S0[g] = rng[c0 + g, 0] if live else _ZERO
        S1[g] = rng[c0 + g, 1] if live else _ZERO
        S2[g] = rng[c0 + g, 2] if live else _ZERO
        S3[g] = rng[c0 + g, 3] if live else _ZERO


@jit_inline
def store_lanes(rng, c0, used, S0, S1, S2, S3):
    """Write lanes ``g < used`` back to chain ``c0 + g``'s state."""
    for g in range(used):
        rng[c0 + g, 0] = S0[g]
        rng[c0 + g, 1] = S1[g]
        rng[c0 + g, 2] = S2[g]
        rng[c0 + g, 3] = S3[g]


@jit
def _draw_bits(S0, S1, S2, S3, U, n_sites, lanes):
    """``U[j * lanes + g]``: the 52 high bits of lane ``g``'s next ``n_sites`` xoshiro256** outputs.

    Site by site, all lanes at once: the inner loop over lanes applies one
    xoshiro256** step to the separate state words ``S0[g] .. S3[g]`` and
    has no dependency between lanes, so it vectorises; each lane still
    produces the same outputs, in the same order, as ``nb_uniform``.
    """
    for j in range(n_sites):
        base = j * lanes
        for g in range(lanes):
            s0 = S0[g]
            s1 = S1[g]
            s2 = S2[g] ^ s0
            s3 = S3[g] ^ s1
            m = s1 * _U5
            U[base + g] = (((m << _R7) | (m >> _R57)) * _U9) >> _R12
            S1[g] = s1 ^ s2
            S0[g] = s0 ^ s3
            S2[g] = s2 ^ (s1 << _R17)
            S3[g] = (s3 << _R45) | (s3 >> _R19)


@jit
def _heat_bath_run(own, a, b, e, f, u, shift, halve, t0, t1, t2, t3, t4, down, delta):
    """``own[q] = up`` iff ``u[q] < T[k]``, ``k`` from the neighbour sum ``a[q] + b[q] + e[q] + f[q]``.

    Flat, contiguous, branch-free (the 5-entry threshold table is a chain
    of selects): the loop the compiler vectorises.
    """
    for q in range(own.shape[0]):
        k = (np.int64(a[q]) + np.int64(b[q]) + np.int64(e[q]) + np.int64(f[q]) + shift) >> halve
        thr = t0 if k == 0 else t1
        thr = thr if k <= 1 else t2
        thr = thr if k <= 2 else t3
        thr = thr if k <= 3 else t4
        own[q] = down + delta * np.int8(u[q] < thr)


@pjit
def lattice_checkerboard_grid(L1, L2, thresholds, spin, x, n_steps, thin, rng, trace):
    r"""Checkerboard heat-bath sweeps of a homogeneous periodic ``L1 x L2`` lattice, both sides even.

    Visits the sites with ``(r + c)`` even, then odd, each colour row by row:
    exactly the order of :func:`lattice_colour_order`, with exactly the
    decisions of :func:`lattice_gibbs_run` (same xoshiro256** draws;
    ``thresholds[k]`` is the integer ``T`` with ``(r >> 12) < T`` iff
    ``nb_uniform < table[k]``), so the two kernels give bit-identical
    chains (tested). Faster because chains ``c`` with the same ``c // LANES``
    are advanced together on int8 copies of their spins stored by colour,
    ``sub[colour, r, (j + 1) * LANES + g]`` for column ``2 j + (r + colour) % 2``
    of lane ``g``, each row framed by copies of its last site (in front) and
    first site (behind) so that the periodic neighbours need no special
    case: for one row of one colour, the ``L2/2`` sites' draws are made
    first (site by site, all lanes at once: ``_draw_bits``), then all
    ``L2/2 * LANES`` updates run as one flat loop over contiguous memory
    (the other colour's rows ``r - 1``, ``r + 1`` at the same offset, its
    row ``r`` shifted by one site; ``_heat_bath_run``). Sites of one colour do not interact, so
    drawing first and updating after changes nothing. Lanes never mix:
    chain ``c`` is always lane ``c % LANES`` of group ``c // LANES``,
    whatever ``n_chains``; lanes past ``n_chains`` run on an all-zero state
    and are never written back. No input checks.
    """
    n = x.shape[0]
    h = L2 // 2
    w = h * LANES
    up = np.int8(1)
    down = np.int8(-1) if spin else np.int8(0)
    delta = np.int8(up - down)
    shift = 4 if spin else 0
    halve = 1 if spin else 0
    t0 = thresholds[0]
    t1 = thresholds[1]
    t2 = thresholds[2]
    t3 = thresholds[3]
    t4 = thresholds[4]
    n_groups = (n + LANES - 1) // LANES
    for grp in prange(n_groups):
        c0 = grp * LANES
        used = min(LANES, n - c0)
        sub = np.zeros((2, L1, w + 2 * LANES), dtype=np.int8)
        U = np.empty(w, dtype=np.uint64)
        S0 = np.zeros(LANES, dtype=np.uint64)
        S1 = np.zeros(LANES, dtype=np.uint64)
        S2 = np.zeros(LANES, dtype=np.uint64)
        S3 = np.zeros(LANES, dtype=np.uint64)
        load_lanes(rng, c0, used, S0, S1, S2, S3)
        for g in range(used):
            for colour in range(2):
                for r in range(L1):
                    for j in range(h):
                        i = r * L2 + 2 * j + (r + colour) % 2
                        sub[colour, r, (j + 1) * LANES + g] = up if x[c0 + g, i] > 0.5 else down
        for colour in range(2):
            for r in range(L1):
                _frame_row(sub[colour, r], w)
        saved = 0
        for t in range(n_steps):
            for colour in range(2):
                other = sub[1 - colour]
                for r in range(L1):
                    own = sub[colour, r]
                    a = other[(r + L1 - 1) % L1]
                    b = other[(r + 1) % L1]
                    same = other[r]
                    _draw_bits(S0, S1, S2, S3, U, h, LANES)
                    # column 2j has the other colour's sites j - 1 and j on its
                    # left and right; column 2j + 1 has sites j and j + 1
                    lo = 0 if (r + colour) % 2 == 0 else LANES
                    _heat_bath_run(own[LANES: LANES + w], a[LANES: LANES + w], b[LANES: LANES + w],
                                   same[lo: lo + w], same[lo + LANES: lo + LANES + w], U,
                                   shift, halve, t0, t1, t2, t3, t4, down, delta)
                    _frame_row(own, w)
            if thin > 0 and (t + 1) % thin == 0:
                _unpack_lattice(sub, trace[saved], c0, used, L1, L2)
                saved += 1
        _unpack_lattice(sub, x, c0, used, L1, L2)
        store_lanes(rng, c0, used, S0, S1, S2, S3)


@jit
def _frame_row(row, w):
    """Copy the last site of a framed row in front of it and its first site behind it."""
    for g in range(LANES):
        row[g] = row[w + g]
        row[w + LANES + g] = row[LANES + g]


@jit
def _unpack_lattice(sub, out, c0, used, L1, L2):
    """``out[c0 + g, r * L2 + col]`` from the colour-split int8 copy (see ``lattice_checkerboard_grid``)."""
    h = L2 // 2
    for g in range(used):
        for colour in range(2):
            for r in range(L1):
                for j in range(h):
                    out[c0 + g, r * L2 + 2 * j + (r + colour) % 2] = sub[colour, r, (j + 1) * LANES + g]


def lattice_checkerboard_run(L, thresholds, spin, x, n_steps, thin, rng, trace):
    """:func:`lattice_checkerboard_grid` on the square ``L x L`` lattice (``L`` even). No input checks."""
    lattice_checkerboard_grid(L, L, thresholds, spin, x, n_steps, thin, rng, trace)


def uniform_thresholds(table):
    """uint64 ``T`` per ``p`` with ``m < T`` iff ``(float(m) + 0.5) * 2^-52 < p``.

    ``m = r >> 12`` is the 52-bit integer behind ``nb_uniform``. The test is
    monotone in ``m``, so the accepted ``m`` form a prefix; ``T`` is found by
    bisection with the *same floating-point operations* as ``nb_uniform``,
    so integer and float comparisons agree for every ``m``.
    """
    out = np.empty(len(table), dtype=np.uint64)
    scale = 2.0**-52
    for k, p in enumerate(table):
        p = float(p)
        lo, hi = 0, 2**52  # invariant: all m < lo accepted, all m >= hi rejected
        while lo < hi:
            mid = (lo + hi) // 2
            if (float(mid) + 0.5) * scale < p:
                lo = mid + 1
            else:
                hi = mid
        out[k] = lo
    return out


def _as_shape(L):
    """``L`` (square side) or ``(L1, L2)`` -> ``(L1, L2)``."""
    if isinstance(L, (tuple, list)):
        return int(L[0]), int(L[1])
    return int(L), int(L)


def lattice_neighbours(L):
    """``(L1*L2, 4)`` int64 neighbour table (up, down, left, right) of the periodic lattice.

    ``L`` is the side of a square lattice or the shape ``(L1, L2)``; on a
    side of length 2 both neighbours along it are the same site (its two
    bonds).
    """
    L1, L2 = _as_shape(L)
    r, c = np.divmod(np.arange(L1 * L2), L2)
    return np.stack(
        [((r - 1) % L1) * L2 + c, ((r + 1) % L1) * L2 + c, r * L2 + (c - 1) % L2, r * L2 + (c + 1) % L2],
        axis=1,
    ).astype(np.int64)


def lattice_table(K, field, spin):
    """Heat-bath probabilities of the up state for each neighbour sum (see ``lattice_gibbs_run``)."""
    from .._numerics import sigmoid

    if spin:
        sums = np.array([-4.0, -2.0, 0.0, 2.0, 4.0])
        return sigmoid(2.0 * (K * sums + field))
    sums = np.arange(5.0)
    return sigmoid(K * sums + field)


def homogeneous_lattice(model):
    """``(L, K, field)`` when ``model`` is ``Ising.lattice``-shaped with one coupling and field, else None.

    ``J`` must equal ``K`` times the lattice's bond counts exactly (two bonds
    per neighbour pair at L = 2) and ``h`` must be constant.
    """
    L = getattr(model, "lattice_size", None)
    if L is None:
        return None
    J, h = model.params["J"], model.params["h"]
    nb = lattice_neighbours(L)
    rows = np.repeat(np.arange(L * L), 4)
    counts = np.zeros_like(J)
    np.add.at(counts, (rows, nb.ravel()), 1.0)
    K = J[0, nb[0, 3]] / counts[0, nb[0, 3]]
    if not np.array_equal(J, K * counts) or not np.all(h == h[0]):
        return None
    return L, float(K), float(h[0])


def lattice_colour_order(L, boundary="periodic"):
    """Sites of a 2-D lattice sorted by colour: ``(order, n_colours)``.

    ``L`` is the side of a square lattice or the shape ``(L1, L2)``. Free
    boundary, or periodic with both sides even: the checkerboard
    ``(r + c) mod 2`` (two colours). Periodic with an odd side (no
    2-colouring exists): ``(f1(r) + f2(c)) mod 3`` with ``f`` a proper
    colouring of each cycle (``i mod 2``, and 2 for the last index of an odd
    cycle); neighbours differ in exactly one coordinate, where ``f`` differs
    by 1 or 2, so their colours differ mod 3. Within a colour, sites keep
    index order (a stable sort).
    """
    L1, L2 = _as_shape(L)
    r, c = np.divmod(np.arange(L1 * L2), L2)
    if boundary == "free" or (L1 % 2 == 0 and L2 % 2 == 0):
        colour = (r + c) % 2
    else:
        f1 = np.arange(L1) % 2
        f2 = np.arange(L2) % 2
        if L1 % 2:
            f1[-1] = 2
        if L2 % 2:
            f2[-1] = 2
        colour = (f1[r] + f2[c]) % 3
    return np.argsort(colour, kind="stable").astype(np.int64), int(colour.max()) + 1


def colour_order(model, indptr, indices):
    """Colour-class order of the sites: the lattice colouring when ``model.lattice_size`` is set, else greedy."""
    L = getattr(model, "lattice_size", None)
    if L is not None:
        return lattice_colour_order(L)
    return greedy_colour_order(indptr, indices, model.n_features)


def greedy_colour_order(indptr, indices, d):
    """Sites sorted by colour of a greedy proper colouring of the coupling graph.

    Sites are coloured in index order with the smallest colour unused by an
    already coloured neighbour. Sites of one colour never interact, so
    updating them one after another equals updating them simultaneously:
    for a dense model every site gets its own colour. (Lattices use
    :func:`lattice_colour_order`, which needs only 3 colours for odd L where
    the greedy order would use 4.)
    """
    colour = np.full(d, -1, dtype=np.int64)
    for i in range(d):
        used = {int(colour[j]) for j in indices[indptr[i] : indptr[i + 1]] if colour[j] >= 0}
        k = 0
        while k in used:
            k += 1
        colour[i] = k
    return np.argsort(colour, kind="stable").astype(np.int64), int(colour.max()) + 1


# --------------------------------------------------------------------------
# Gibbs-with-gradients


@pjit
def ising_gwg_run(indptr, indices, data, h, spin, x, n_steps, thin, rng, trace, accepted):
    r"""Gibbs-with-gradients on an Ising model (both domains). No input checks.

    Keeps the local fields ``f`` of each chain and updates them on an
    accepted flip (``f_j += J_ij (x'_i - x_i)``); the proposal at the flipped
    state is computed from the tentative fields.
    """
    n, d = x.shape
    for c in prange(n):
        xc = x[c]
        s = rng[c]
        f = np.empty(d)
        fn = np.empty(d)
        lg = np.empty(d)
        lgn = np.empty(d)
        w = np.empty(d)
        wn = np.empty(d)
        _ising_fields(indptr, indices, data, h, xc, f)
        _ising_gwg_logits(xc, f, spin, lg)
        total, lse = _normalise_logits(lg, w)
        n_acc = 0
        saved = 0
        for t in range(n_steps):
            i = _categorical(w, total, nb_uniform(s))
            u = nb_uniform(s)
            old = xc[i]
            new = _flip_value(old, spin)
            delta = new - old
            d_energy = -delta * f[i]  # exact: E is linear in x_i (J_ii = 0)
            for j in range(d):
                fn[j] = f[j]
            for k in range(indptr[i], indptr[i + 1]):
                fn[indices[k]] += data[k] * delta
            xc[i] = new
            _ising_gwg_logits(xc, fn, spin, lgn)
            total_n, lse_n = _normalise_logits(lgn, wn)
            log_alpha = -d_energy + (lgn[i] - lse_n) - (lg[i] - lse)
            if math.log(u) < min(0.0, log_alpha):
                f, fn = fn, f
                lg, lgn = lgn, lg
                w, wn = wn, w
                total, lse = total_n, lse_n
                n_acc += 1
            else:
                xc[i] = old
            if thin > 0 and (t + 1) % thin == 0:
                trace[saved, c, :] = xc
                saved += 1
        accepted[c] = n_acc


@pjit
def rbm_gwg_run(W, b_v, b_h, x, n_steps, thin, rng, trace, accepted):
    r"""Gibbs-with-gradients on the visible units of an RBM (energy = free energy). No input checks.

    Per chain it keeps ``a = b_h + W^T v``; the exact free-energy change of
    flipping ``v_k`` is ``-b_{v,k} (v'_k - v_k) - sum_j [softplus(a'_j) -
    softplus(a_j)]`` with ``a' = a + (v'_k - v_k) W_k``.
    """
    n, V = x.shape
    H = b_h.shape[0]
    for c in prange(n):
        vc = x[c]
        s = rng[c]
        a = np.empty(H)
        an = np.empty(H)
        sig = np.empty(H)
        lg = np.empty(V)
        lgn = np.empty(V)
        w = np.empty(V)
        wn = np.empty(V)
        _rbm_pre_hidden(W, b_h, vc, a)
        _rbm_gwg_logits(W, b_v, vc, a, sig, lg)
        total, lse = _normalise_logits(lg, w)
        n_acc = 0
        saved = 0
        for t in range(n_steps):
            k = _categorical(w, total, nb_uniform(s))
            u = nb_uniform(s)
            old = vc[k]
            delta = 1.0 - 2.0 * old
            d_energy = -b_v[k] * delta
            for j in range(H):
                an[j] = a[j] + delta * W[k, j]
                d_energy -= nb_softplus(an[j]) - nb_softplus(a[j])
            vc[k] = old + delta
            _rbm_gwg_logits(W, b_v, vc, an, sig, lgn)
            total_n, lse_n = _normalise_logits(lgn, wn)
            log_alpha = -d_energy + (lgn[k] - lse_n) - (lg[k] - lse)
            if math.log(u) < min(0.0, log_alpha):
                a, an = an, a
                lg, lgn = lgn, lg
                w, wn = wn, w
                total, lse = total_n, lse_n
                n_acc += 1
            else:
                vc[k] = old
            if thin > 0 and (t + 1) % thin == 0:
                trace[saved, c, :] = vc
                saved += 1
        accepted[c] = n_acc


# --------------------------------------------------------------------------
# Binary random-walk Metropolis-Hastings (uniform single flip)


@pjit
def ising_rwmh_run(indptr, indices, data, h, spin, x, n_steps, thin, rng, trace, accepted):
    r"""Uniform single-flip MH on an Ising model. No input checks.

    ``dE = -(x'_i - x_i) f_i`` exactly, ``f_i`` recomputed from the
    neighbours of ``i`` (no running fields, so no drift).
    """
    n, d = x.shape
    for c in prange(n):
        xc = x[c]
        s = rng[c]
        n_acc = 0
        saved = 0
        for t in range(n_steps):
            i = nb_randint(s, d)
            u = nb_uniform(s)
            fi = h[i]
            for k in range(indptr[i], indptr[i + 1]):
                fi += data[k] * xc[indices[k]]
            new = _flip_value(xc[i], spin)
            d_energy = -(new - xc[i]) * fi
            if math.log(u) < min(0.0, -d_energy):
                xc[i] = new
                n_acc += 1
            if thin > 0 and (t + 1) % thin == 0:
                trace[saved, c, :] = xc
                saved += 1
        accepted[c] = n_acc


@pjit
def rbm_rwmh_run(W, b_v, b_h, x, n_steps, thin, rng, trace, accepted):
    r"""Uniform single-flip MH on the visible units of an RBM. No input checks.

    Free-energy change as in :func:`rbm_gwg_run`; ``a = b_h + W^T v`` is
    kept per chain and updated on acceptance.
    """
    n, V = x.shape
    H = b_h.shape[0]
    for c in prange(n):
        vc = x[c]
        s = rng[c]
        a = np.empty(H)
        an = np.empty(H)
        _rbm_pre_hidden(W, b_h, vc, a)
        n_acc = 0
        saved = 0
        for t in range(n_steps):
            k = nb_randint(s, V)
            u = nb_uniform(s)
            delta = 1.0 - 2.0 * vc[k]
            d_energy = -b_v[k] * delta
            for j in range(H):
                an[j] = a[j] + delta * W[k, j]
                d_energy -= nb_softplus(an[j]) - nb_softplus(a[j])
            if math.log(u) < min(0.0, -d_energy):
                vc[k] += delta
                a, an = an, a
                n_acc += 1
            if thin > 0 and (t + 1) % thin == 0:
                trace[saved, c, :] = vc
                saved += 1
        accepted[c] = n_acc


def rwmh_binary(model, x0, n_steps, seed, thin=0):
    r"""Random-walk Metropolis-Hastings with a uniform single-unit flip.

    Parameters
    ----------
    model : RBM or Ising
        For an RBM the chain runs on the visible units with the free energy.
    x0 : ndarray of shape (n_chains, d) or (d,)
        Initial states in the model's domain (never modified).
    n_steps : int
        Number of proposals per chain (>= 0).
    seed : int, numpy.random.SeedSequence or numpy.random.Generator
        Chain ``c`` uses its own stream (see ``docs/conventions.md``).
    thin : int, default 0
        Save the state after every ``thin`` steps (0: no trace).

    Returns
    -------
    SampleResult
        ``acceptance_rate`` is the fraction of accepted flips (NaN when
        ``n_steps == 0``).

    Raises
    ------
    TypeError
        For a model other than RBM or Ising.
    ValueError
        For ``x0`` of the wrong shape or outside the domain, ``n_steps < 0``.

    Notes
    -----
    One step proposes flipping a unit ``i`` drawn uniformly from ``{0, ...,
    d-1}`` (a symmetric proposal) and accepts with

    .. math::

        \log u < \min(0, -[E(x^{(i)}) - E(x)]),

    with the exact energy change: Ising :math:`-(x'_i - x_i) f_i`,
    :math:`f = Jx + h`; RBM :math:`-b_{v,i}(v'_i - v_i) - \sum_j
    [\operatorname{softplus}(a_j + (v'_i - v_i) W_{ij}) -
    \operatorname{softplus}(a_j)]`, :math:`a = b_h + W^\top v`.

    References
    ----------
    Metropolis, N. et al. (1953). Equation of state calculations by fast
    computing machines. J. Chem. Phys. 21(6).
    """
    kind = model_kind(model)
    if kind not in ("rbm", "ising"):
        raise unsupported("rwmh (binary)", model, ["RBM", "Ising"])
    prep = prepare(model, x0, n_steps, seed, thin)
    accepted = np.zeros(prep.x.shape[0], dtype=np.int64)
    if kind == "ising":
        indptr, indices, data = ising_csr(model)
        ising_rwmh_run(
            indptr, indices, data, ising_h(model), model.domain == "spin",
            prep.x, prep.n_steps, prep.thin, prep.rng, prep.trace, accepted,
        )
    else:
        p = model.params
        rbm_rwmh_run(
            np.ascontiguousarray(p["W"]), np.ascontiguousarray(p["b_v"]), np.ascontiguousarray(p["b_h"]),
            prep.x, prep.n_steps, prep.thin, prep.rng, prep.trace, accepted,
        )
    return finish(prep, final_energies(model, prep.x), acceptance(accepted, prep.n_steps))
