r"""Heat-bath kernels of homogeneous Ising lattices and colour orders of the sites.

A homogeneous lattice (one coupling ``K``, one field) needs no couplings at
all: a neighbour table and a 5-entry probability table (``lattice_gibbs_run``),
or, for a periodic lattice with even sides, the lock-step checkerboard
kernel ``lattice_checkerboard_grid`` with integer thresholds. Both make
exactly the decisions of the general site-by-site Gibbs sweep of
``_binary.site_gibbs_run`` (same uniforms, same order), so every path gives
the same chains bit for bit (docs/lattices.md). No input checks in the
kernels.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from .._jit import jit, pjit
from .._numerics import sigmoid
from .._rng import LANES, draw_bits, lane_words, load_lanes, nb_uniform, store_lanes
from ._common import record, trace_slot

__all__ = [
    "lattice_gibbs_run", "lattice_checkerboard_grid", "lattice_checkerboard_run", "uniform_thresholds",
    "lattice_neighbours", "lattice_table", "homogeneous_lattice", "lattice_colour_order", "colour_order",
    "greedy_colour_order",
]


@pjit
def lattice_gibbs_run(nb, table, spin, order, x, step0, n_steps, thin, rng, trace):
    r"""Heat-bath sweeps of a homogeneous periodic lattice with a probability table.

    ``nb`` is ``(d, 4)`` (up, down, left, right); ``table[k]`` is the
    probability of the up state given the neighbour sum: for spins the sum
    ``S`` in ``{-4,-2,0,2,4}`` maps to ``k = (S + 4) / 2``, for 0/1 units
    ``k = S``. Same random numbers, in the same order, as
    :func:`site_gibbs_run`. ``step0``: sweeps already done (the trace
    index of a run in chunks). No input checks.
    """
    n = x.shape[0]
    if spin:
        up, down, scale, shift = 1.0, -1.0, 0.5, 2.0
    else:
        up, down, scale, shift = 1.0, 0.0, 1.0, 0.0
    for c in prange(n):
        xc = x[c]
        s = rng[c]
        for t in range(step0, step0 + n_steps):
            for o in range(order.shape[0]):
                i = order[o]
                ssum = xc[nb[i, 0]] + xc[nb[i, 1]] + xc[nb[i, 2]] + xc[nb[i, 3]]
                k = int(ssum * scale + shift)
                xc[i] = up if nb_uniform(s) < table[k] else down
            record(trace, c, xc, t, thin)



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
def lattice_checkerboard_grid(L1, L2, thresholds, spin, x, step0, n_steps, thin, rng, trace):
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
    first (site by site, all lanes at once: ``draw_bits``), then all
    ``L2/2 * LANES`` updates run as one flat loop over contiguous memory
    (the other colour's rows ``r - 1``, ``r + 1`` at the same offset, its
    row ``r`` shifted by one site; ``_heat_bath_run``). Sites of one colour do not interact, so
    drawing first and updating after changes nothing. Lanes never mix:
    chain ``c`` is always lane ``c % LANES`` of group ``c // LANES``,
    whatever ``n_chains``; lanes past ``n_chains`` run on an all-zero state
    and are never written back. ``step0``: sweeps already done (the trace
    index of a run in chunks; the int8 copies are rebuilt from ``x`` at
    every call, a lossless copy). No input checks.
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
        S0, S1, S2, S3 = lane_words()
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
        for t in range(step0, step0 + n_steps):
            for colour in range(2):
                other = sub[1 - colour]
                for r in range(L1):
                    own = sub[colour, r]
                    a = other[(r + L1 - 1) % L1]
                    b = other[(r + 1) % L1]
                    same = other[r]
                    draw_bits(S0, S1, S2, S3, U, h, LANES)
                    # column 2j has the other colour's sites j - 1 and j on its
                    # left and right; column 2j + 1 has sites j and j + 1
                    lo = 0 if (r + colour) % 2 == 0 else LANES
                    _heat_bath_run(own[LANES: LANES + w], a[LANES: LANES + w], b[LANES: LANES + w],
                                   same[lo: lo + w], same[lo + LANES: lo + LANES + w], U,
                                   shift, halve, t0, t1, t2, t3, t4, down, delta)
                    _frame_row(own, w)
            k = trace_slot(t, thin)
            if k >= 0:
                _unpack_lattice(sub, trace[k], c0, used, L1, L2)
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


def lattice_checkerboard_run(L, thresholds, spin, x, step0, n_steps, thin, rng, trace):
    """:func:`lattice_checkerboard_grid` on the square ``L x L`` lattice (``L`` even). No input checks."""
    lattice_checkerboard_grid(L, L, thresholds, spin, x, step0, n_steps, thin, rng, trace)


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
