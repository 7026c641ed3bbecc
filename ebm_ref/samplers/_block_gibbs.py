r"""Block Gibbs for RBM and GRBM: BLAS products on fixed blocks of chains, Numba draws.

The public ``gibbs`` (``_gibbs_sweeps``) builds the run with
:func:`rbm_block_gibbs` or :func:`grbm_block_gibbs` and calls it in chunks
of steps inside :func:`one_thread_blas`. Chains go in
blocks of ``_common.BLOCK`` (a multiple of ``_rng.LANES``) so that every
BLAS call has the same shape whatever the number of chains, and the draws
advance ``LANES`` chains in lock-step (see ``_bernoulli_cols``).
"""

from __future__ import annotations

import concurrent.futures
import threading

import numba
import numpy as np

from .._jit import jit_nogil
from .._numerics import nb_exp_nonpos
from .._rng import LANES, lane_bits, load_lanes, nb_normal, store_lanes
from .._threads import one_thread_blas, worker_pool
from ._common import BLOCK

__all__ = ["BlockGibbs", "rbm_block_gibbs", "grbm_block_gibbs"]

_TWO_M52 = 2.0 ** -52


@jit_nogil
def _bernoulli_cols(pre, bias, out, rng, lo, hi):
    """``out[j, c] = [u < sigmoid(pre[j, c] + bias[j])]`` for chains ``lo <= c < hi``. No input checks.

    Layout: blocks of chains, each units by chains (``pre``, ``out`` of
    shape ``(n_blocks, n_units, BLOCK)``; chain ``c`` is column ``c % BLOCK``
    of block ``c // BLOCK``), ``lo`` a multiple of ``LANES``, and
    ``n_blocks * BLOCK >= hi``. Serial and ``nogil`` on purpose: parallelism
    comes from the Python threads of ``_block_gibbs``, each running this
    kernel on its own chains. A ``prange`` version between the BLAS
    products was measured 2-9x slower per step at 2 threads (Numba's OpenMP
    workers spin-wait after a parallel region and fight OpenBLAS's spinning
    workers for the cores).

    Chains go in lock-step groups of ``LANES`` (16 adjacent
    columns): unit by unit, one loop over the lanes advances every lane's
    xoshiro256** state (kept in the separate words ``S0 .. S3``) and
    decides, which vectorises, so lane ``g`` gets exactly the uniforms
    ``nb_uniform`` would give chain ``c0 + g``, in unit order. The decision
    is branch-free: with ``e = exp(-|a|)``, ``u < sigmoid(a)`` iff
    ``u (1 + e) < top`` where ``top = 1`` for ``a >= 0`` and ``e`` otherwise
    (a select, not a mispredicted branch; the polynomial ``nb_exp_nonpos``
    vectorises where ``libm`` ``exp`` does not). Lanes past ``hi`` run on an
    all-zero state; their states are never written back, and their outputs
    land in padding columns whose results are discarded.
    """
    m = pre.shape[1]
    B = pre.shape[2]
    L = LANES
    S0 = np.zeros(L, dtype=np.uint64)
    S1 = np.zeros(L, dtype=np.uint64)
    S2 = np.zeros(L, dtype=np.uint64)
    S3 = np.zeros(L, dtype=np.uint64)
    for c0 in range(lo, hi, L):
        used = min(L, hi - c0)
        load_lanes(rng, c0, used, S0, S1, S2, S3)
        for j in range(m):
            b = bias[j]
            p_j = pre[c0 // B, j, c0 % B : c0 % B + L]
            o_j = out[c0 // B, j, c0 % B : c0 % B + L]
            for g in range(L):
                u = (float(lane_bits(S0, S1, S2, S3, g)) + 0.5) * _TWO_M52
                a = p_j[g] + b
                e = nb_exp_nonpos(-abs(a))
                top = 1.0 if a >= 0.0 else e
                o_j[g] = 1.0 if u * (1.0 + e) < top else 0.0
        store_lanes(rng, c0, used, S0, S1, S2, S3)


@jit_nogil
def _gaussian_cols(pre, mu, sigma, out, rng, lo, hi):
    """``out[., k, c] = pre[., k, c] + mu[k] + sigma[k] eps`` for chains ``lo <= c < hi``. Layout and threads as in ``_bernoulli_cols``."""
    m = pre.shape[1]
    B = pre.shape[2]
    for c in range(lo, hi):
        s = rng[c]
        b, i = c // B, c % B
        for k in range(m):
            out[b, k, i] = pre[b, k, i] + mu[k] + sigma[k] * nb_normal(s)


if BLOCK % LANES:  # pragma: no cover - a constant's invariant
    raise ImportError("BLOCK must be a multiple of LANES")


# Extra threads only for at least this much single-thread work, counted in
# multiply-adds (2 V H per chain and step for the products, 16 (V + H) for
# the draws): per step when the half-steps are split (four barriers per
# step, ~60 us each measured on 2 cores), per call when threads take whole
# blocks (one hand-off, ~60 us). 3e7 is about 2 ms of one core. Results do
# not depend on the choice.
_MIN_WORK = 3e7

# Product tiles: a side of at least _TILE_MIN output units is cut into
# max(2, ceil(units / _TILE_MAX)) tiles of near-equal width, so that two
# threads can share the products of one block; a smaller side is one tile.
# Each tile is one more BLAS call that packs the block's chains again, so
# tiles are kept few: at 1 thread, 784 x 500 and 1000 chains, 2 + 2 tiles
# cost ~2% over whole products, 4 + 2 tiles of at most 256 units ~3%.
# Tiles depend on the model's shape only, so every tile is the same
# single-threaded BLAS call whatever the thread count or chain count.
_TILE_MIN = 128
_TILE_MAX = 512


def _tiles(n):
    """The tiles of a side of ``n`` output units (widths multiples of 8 but the last)."""
    count = max(2, -(-n // _TILE_MAX)) if n >= _TILE_MIN else 1
    per_tile = -(-n // count)  # ceil(n / count)
    width = -(-per_tile // 8) * 8  # rounded up to a multiple of 8
    return [slice(j, min(j + width, n)) for j in range(0, n, width)]


class BlockGibbs:
    """Shared loop: ``h | v`` then ``v | h`` on padded blocks; ``finish`` writes back into ``prep.x``.

    Calling it as ``run(t0, count)`` runs steps ``t0 .. t0 + count - 1`` (the trace is
    indexed by the global step), so the public ``gibbs`` calls it in
    chunks (``_common.run_steps``): the block-major states ``vT`` and the
    RNG rows carry everything between chunks (the hidden states are
    redrawn from ``vT`` in every step), hence one call's bits, and every
    worker thread has finished its part when a chunk returns, so Ctrl-C
    between chunks never leaves a worker running.

    States are kept transposed, block by block: ``vT[b]`` holds the 128
    chains of block ``b`` as columns (shape ``(n_blocks, n_visible, 128)``),
    the pre-activations are ``A_h @ vT[b]`` and ``A_v @ hT[b]``
    (``A_h = W^T``, ``A_v = W`` for the RBM), and a lane group of 16 chains
    reads 16 adjacent numbers per unit. At 1 thread, 784 x 500, these
    products were measured 3% faster than the row-major ``v W``, ``h W^T``.

    Every product is cut into tiles fixed by the model's shape (``_tiles``:
    a few slices of output units, by one block of chains), and each tile is
    one BLAS call on one thread:
    OpenBLAS is pinned to one thread for the whole call (then restored)
    whenever its thread control is found. A tile's result then depends on
    nothing but its inputs, so the thread count and the schedule below
    cannot change any bit. The draws are per chain (each chain its own
    stream), so how chains are split between threads changes nothing
    either.

    ``k = numba.get_num_threads()`` Python threads (the calling one and
    workers of one process-wide pool) share the work, running the ``nogil``
    draw kernels and the GIL-free products side by side, when there is
    enough of it (``_MIN_WORK``; otherwise the calling thread does it all):

    * with at least ``2 k`` blocks, the blocks are dealt round-robin and
      each thread runs its blocks through all the steps on its own
      (product, draws, product, draws on the same chains while they are in
      cache; blocks never read each other's chains, so no synchronisation);
    * with fewer blocks, each half-step is split: the tiles of all blocks
      dealt round-robin, a barrier, the draws in ``k`` contiguous chain
      ranges, a barrier.

    Without the OpenBLAS control (another BLAS) the loop runs serially on
    the BLAS's own threads: one code path for any Numba thread count.
    """

    def __init__(self, prep, A_h, bias_h, A_v, draw_v):
        n = prep.x.shape[0]
        B = BLOCK
        nb = -(-n // B)
        self.prep, self.n, self.nb = prep, n, nb
        self.bias_h, self.draw_v = bias_h, draw_v
        # block-major: every block's chains contiguous, for the BLAS calls and
        # for the draws alike
        self.vT = vT = np.zeros((nb, A_h.shape[1], B))
        for b in range(nb):
            vT[b, :, : min(B, n - b * B)] = prep.x[b * B : (b + 1) * B].T
        self.hT = hT = np.zeros((nb, A_h.shape[0], B))
        self.pre_h = pre_h = np.empty_like(hT)
        self.pre_v = pre_v = np.empty_like(vT)
        self.starts = starts = list(range(0, n, B))
        h_cut = _tiles(A_h.shape[0])
        v_cut = _tiles(A_v.shape[0])
        # (tile of A, input, output) of every product, built once: for small
        # models the slicing would cost more than the arithmetic
        self.block_jobs = {
            r: (
                [(A_h[t], vT[r // B], pre_h[r // B, t]) for t in h_cut],
                [(A_v[t], hT[r // B], pre_v[r // B, t]) for t in v_cut],
            )
            for r in starts
        }
        # threads: decided once for the whole run (results never depend on it)
        step_work = nb * B * (2 * A_h.shape[0] * A_h.shape[1] + 16 * (A_h.shape[0] + A_h.shape[1]))
        k = numba.get_num_threads()
        self.whole_blocks = len(starts) >= 2 * k
        if k > 1 and (step_work * prep.n_steps if self.whole_blocks else step_work) < _MIN_WORK:
            k = 1
        self.k = k

    def _save(self, t, lo, hi):
        prep, B = self.prep, BLOCK
        if prep.thin > 0 and (t + 1) % prep.thin == 0:
            out = prep.trace[(t + 1) // prep.thin - 1]
            for r in range(lo - lo % B, hi, B):
                a, z = max(lo, r), min(hi, r + B)
                out[a:z] = self.vT[r // B, :, a - r : z - r].T

    def _by_blocks(self, mine, t0, count):
        rng = self.prep.rng
        for t in range(t0, t0 + count):
            for r in mine:
                hi = min(r + BLOCK, self.n)
                h_jobs, v_jobs = self.block_jobs[r]
                for a, x, out in h_jobs:
                    np.matmul(a, x, out=out)
                _bernoulli_cols(self.pre_h, self.bias_h, self.hT, rng, r, hi)
                for a, x, out in v_jobs:
                    np.matmul(a, x, out=out)
                self.draw_v(self.pre_v, self.vT, rng, r, hi)
                self._save(t, r, hi)

    def _by_tiles(self, i, k, barrier, t0, count):
        starts, n, rng = self.starts, self.n, self.prep.rng
        h_jobs = [j for r in starts for j in self.block_jobs[r][0]][i::k]
        v_jobs = [j for r in starts for j in self.block_jobs[r][1]][i::k]
        # contiguous chain ranges on lane-group boundaries
        width = -(-n // (k * LANES)) * LANES
        lo, hi = min(i * width, n), min((i + 1) * width, n)
        try:
            for t in range(t0, t0 + count):
                for a, x, out in h_jobs:
                    np.matmul(a, x, out=out)
                barrier.wait()
                _bernoulli_cols(self.pre_h, self.bias_h, self.hT, rng, lo, hi)
                barrier.wait()
                for a, x, out in v_jobs:
                    np.matmul(a, x, out=out)
                barrier.wait()
                self.draw_v(self.pre_v, self.vT, rng, lo, hi)
                self._save(t, lo, hi)
                barrier.wait()
        except BaseException:
            barrier.abort()  # release the other threads instead of a deadlock
            raise

    def __call__(self, t0, count):
        """Steps ``t0 .. t0 + count - 1`` of every chain; returns when every thread is done."""
        starts = self.starts
        with one_thread_blas() as pinned:
            k = self.k if pinned else 1
            if k == 1:
                self._by_blocks(starts, t0, count)
                return
            pool = worker_pool(k - 1)
            if self.whole_blocks:
                others = [pool.submit(self._by_blocks, starts[i::k], t0, count) for i in range(1, k)]
            else:
                barrier = threading.Barrier(k)
                others = [pool.submit(self._by_tiles, i, k, barrier, t0, count) for i in range(1, k)]
            broken = None
            try:
                if self.whole_blocks:
                    self._by_blocks(starts[0::k], t0, count)
                else:
                    self._by_tiles(0, k, barrier, t0, count)
            except threading.BrokenBarrierError as e:
                broken = e  # a worker failed: raise its error, not this one
            finally:
                concurrent.futures.wait(others)  # they write into these arrays
            for f in others:
                f.result()
            if broken is not None:
                raise broken

    def finish(self):
        """Write the final visible states back into ``prep.x``."""
        B, n, x = BLOCK, self.n, self.prep.x
        for b in range(self.nb):
            x[b * B : (b + 1) * B] = self.vT[b, :, : min(B, n - b * B)].T


def rbm_block_gibbs(model, prep):
    """The :class:`BlockGibbs` run of an RBM on ``prep``'s chains."""
    p = model.params
    W = np.ascontiguousarray(p["W"])
    b_v = np.ascontiguousarray(p["b_v"])

    def draw_v(pre_v, vT, rng, lo, hi):
        _bernoulli_cols(pre_v, b_v, vT, rng, lo, hi)

    return BlockGibbs(prep, W.T, np.ascontiguousarray(p["b_h"]), W, draw_v)


def grbm_block_gibbs(model, prep):
    """The :class:`BlockGibbs` run of a GRBM on ``prep``'s chains (Gaussian visibles)."""
    p = model.params
    W = np.ascontiguousarray(p["W"])
    # W^T (v / sigma^2) = (W / sigma^2)^T v: scale W once instead of every v.
    W_h = np.ascontiguousarray(W * np.exp(-p["log_var"])[:, None])
    sigma = np.exp(0.5 * p["log_var"])
    mu = np.ascontiguousarray(p["mu"])

    def draw_v(pre_v, vT, rng, lo, hi):
        _gaussian_cols(pre_v, mu, sigma, vT, rng, lo, hi)

    return BlockGibbs(prep, W_h.T, np.ascontiguousarray(p["b_h"]), W, draw_v)
