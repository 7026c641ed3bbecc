r"""Block Gibbs for RBM and GRBM: BLAS products on fixed blocks of chains, Numba draws.

The public ``gibbs`` (``_gibbs_sweeps``) builds the run with
:func:`rbm_block_gibbs` or :func:`grbm_block_gibbs` and calls it in chunks
of steps inside :func:`one_thread_blas`. Chains go in
blocks of ``_common.BLOCK`` (a multiple of ``_rng.LANES``) so that every
BLAS call has the same shape whatever the number of chains, and the draws
advance ``LANES`` chains in lock-step (see ``_bernoulli_rows``).
"""

from __future__ import annotations

import concurrent.futures
import threading

import numba
import numpy as np

from .._jit import jit_nogil
from .._numerics import nb_exp_nonpos
from .._rng import LANES, draw_normals, lane_uniform, lane_words, load_lanes, store_lanes
from .._threads import one_thread_blas, worker_pool
from ._common import BLOCK

__all__ = ["BlockGibbs", "rbm_block_gibbs", "grbm_block_gibbs"]


@jit_nogil
def _bernoulli_rows(pre, bias, out, rng, lo, hi):
    """``out[c, j] = [u < sigmoid(pre[c, j] + bias[j])]`` for chains ``lo <= c < hi``. No input checks.

    Layout: blocks of chains, each chains by units (``pre``, ``out`` of
    shape ``(n_blocks, BLOCK, n_units)``; chain ``c`` is row ``c % BLOCK``
    of block ``c // BLOCK``), ``lo`` a multiple of ``LANES``, and
    ``n_blocks * BLOCK >= hi``. Serial and ``nogil`` on purpose: parallelism
    comes from the Python threads of ``_block_gibbs``, each running this
    kernel on its own chains. A ``prange`` version between the BLAS
    products was measured 2-9x slower per step at 2 threads (Numba's OpenMP
    workers spin-wait after a parallel region and fight OpenBLAS's spinning
    workers for the cores).

    Chains go in lock-step groups of ``LANES`` (16 adjacent rows), in
    three vectorised loops per group:

    1. unit by unit, one loop over the lanes advances every lane's
       xoshiro256** state (the separate words ``S0 .. S3``), so lane ``g``
       gets exactly the uniforms ``nb_uniform`` would give chain
       ``c0 + g``, in unit order, stored unit-major in ``U``;
    2. ``U`` transposed into ``UT`` (chain-major, a plain copy);
    3. chain by chain, one loop over the units decides along the
       contiguous rows of ``pre`` and ``out``. The decision is branch-free:
       with ``e = exp(-|a|)``, ``u < sigmoid(a)`` iff ``u (1 + e) < top``
       where ``top = 1`` for ``a >= 0`` and ``e`` otherwise (a select, not
       a mispredicted branch; the polynomial ``nb_exp_nonpos`` vectorises
       where ``libm`` ``exp`` does not).

    Measured at 1 thread, 784 x 500, 1000 chains (both half-steps): 3.3 ms
    per sweep, of which 0.5 ms random numbers, 0.5 ms transpose and 2.3 ms
    decisions; one fused loop per lane group (random number and decision
    together, on chains-as-columns blocks) took 6-9 ms. Compiled for an
    AVX2 CPU (``bench --isa avx2``, docs/cli.md): 4.8 ms (6.3 while
    ``nb_exp_nonpos`` converted through int64). Lanes past ``hi``
    run on an all-zero state that is never written back, and their
    uniforms are not used (padding rows of ``out`` are never written).
    """
    m = pre.shape[2]
    B = pre.shape[1]
    L = LANES
    S0, S1, S2, S3 = lane_words()
    U = np.empty(m * L)
    UT = np.empty(L * m)
    for c0 in range(lo, hi, L):
        used = min(L, hi - c0)
        load_lanes(rng, c0, used, S0, S1, S2, S3)
        for j in range(m):
            base = j * L
            for g in range(L):
                U[base + g] = lane_uniform(S0, S1, S2, S3, g)
        store_lanes(rng, c0, used, S0, S1, S2, S3)
        # unit-major reads, lane-strided writes (all lanes): measured 0.47
        # against 0.82 ms per sweep for the loop over lanes outside
        for j in range(m):
            for g in range(L):
                UT[g * m + j] = U[j * L + g]
        for g in range(used):
            p_c = pre[c0 // B, c0 % B + g]
            o_c = out[c0 // B, c0 % B + g]
            u_c = UT[g * m : (g + 1) * m]
            for j in range(m):
                a = p_c[j] + bias[j]
                e = nb_exp_nonpos(-abs(a))
                top = 1.0 if a >= 0.0 else e
                o_c[j] = 1.0 if u_c[j] * (1.0 + e) < top else 0.0


@jit_nogil
def _gaussian_rows(pre, mu, sigma, out, rng, lo, hi):
    """``out[., c, k] = pre[., c, k] + mu[k] + sigma[k] eps`` for chains ``lo <= c < hi``. Layout and threads as in ``_bernoulli_rows``.

    The normals ``eps`` come from ``draw_normals`` (lock-step lanes, bit for
    bit ``nb_normal`` chain by chain), one block's chains at a time.
    """
    m = pre.shape[2]
    B = pre.shape[1]
    eps_all = np.empty((B, m))
    scratch = np.empty(2 * m * LANES)
    c = lo
    while c < hi:
        b, i = c // B, c % B
        w = min(B - i, hi - c)
        eps = eps_all[:w]
        draw_normals(rng[c: c + w], 0, eps, scratch)
        for r in range(w):
            p_c = pre[b, i + r]
            o_c = out[b, i + r]
            for k in range(m):
                o_c[k] = p_c[k] + mu[k] + sigma[k] * eps[r, k]
        c += w


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
    chunks (``_common.run_steps``): the block-major states ``v`` and the
    RNG rows carry everything between chunks (the hidden states are
    redrawn from ``v`` in every step), hence one call's bits, and every
    worker thread has finished its part when a chunk returns, so Ctrl-C
    between chunks never leaves a worker running.

    States are kept block by block: ``v[b]`` holds the 128 chains of block
    ``b`` as rows (shape ``(n_blocks, 128, n_visible)``, padding rows zero),
    and the pre-activations are ``v[b] @ A_h`` and ``h[b] @ A_v``
    (``A_h = W``, ``A_v = W^T`` for the RBM, a transposed view that BLAS
    reads as such). At 1 thread, 784 x 500, these products were measured
    ~20% faster than the transposed ``W^T vT[b]``, ``W hT[b]`` on
    chains-as-columns blocks (OpenBLAS packs the 128-chain side less
    often), and within a few % of one product over all 1024 chains.

    Every product is cut into tiles fixed by the model's shape (``_tiles``:
    a few column slices of output units, by one block of chains), and each
    tile is one BLAS call on one thread:
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
        n_v, n_h = A_h.shape
        self.prep, self.n, self.nb = prep, n, nb
        self.bias_h, self.draw_v = bias_h, draw_v
        # block-major: every block's chains contiguous, for the BLAS calls and
        # for the draws alike; padding rows stay zero
        self.v = v = np.zeros((nb, B, n_v))
        v.reshape(nb * B, n_v)[:n] = prep.x
        self.h = h = np.zeros((nb, B, n_h))
        self.pre_h = pre_h = np.empty_like(h)
        self.pre_v = pre_v = np.empty_like(v)
        self.starts = starts = list(range(0, n, B))
        h_cut = _tiles(n_h)
        v_cut = _tiles(n_v)
        # (tile of A, input, output) of every product, built once: for small
        # models the slicing would cost more than the arithmetic
        self.block_jobs = {
            r: (
                [(v[r // B], A_h[:, t], pre_h[r // B, :, t]) for t in h_cut],
                [(h[r // B], A_v[:, t], pre_v[r // B, :, t]) for t in v_cut],
            )
            for r in starts
        }
        # threads: decided once for the whole run (results never depend on it)
        step_work = nb * B * (2 * n_v * n_h + 16 * (n_v + n_h))
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
                out[a:z] = self.v[r // B, a - r : z - r]

    def _by_blocks(self, mine, t0, count):
        rng = self.prep.rng
        for t in range(t0, t0 + count):
            for r in mine:
                hi = min(r + BLOCK, self.n)
                h_jobs, v_jobs = self.block_jobs[r]
                for x, a, out in h_jobs:
                    np.matmul(x, a, out=out)
                _bernoulli_rows(self.pre_h, self.bias_h, self.h, rng, r, hi)
                for x, a, out in v_jobs:
                    np.matmul(x, a, out=out)
                self.draw_v(self.pre_v, self.v, rng, r, hi)
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
                for x, a, out in h_jobs:
                    np.matmul(x, a, out=out)
                barrier.wait()
                _bernoulli_rows(self.pre_h, self.bias_h, self.h, rng, lo, hi)
                barrier.wait()
                for x, a, out in v_jobs:
                    np.matmul(x, a, out=out)
                barrier.wait()
                self.draw_v(self.pre_v, self.v, rng, lo, hi)
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
        self.prep.x[...] = self.v.reshape(-1, self.v.shape[2])[: self.n]


def rbm_block_gibbs(model, prep):
    """The :class:`BlockGibbs` run of an RBM on ``prep``'s chains."""
    p = model.params
    W = np.ascontiguousarray(p["W"])
    b_v = np.ascontiguousarray(p["b_v"])

    def draw_v(pre_v, v, rng, lo, hi):
        _bernoulli_rows(pre_v, b_v, v, rng, lo, hi)

    return BlockGibbs(prep, W, np.ascontiguousarray(p["b_h"]), W.T, draw_v)


def grbm_block_gibbs(model, prep):
    """The :class:`BlockGibbs` run of a GRBM on ``prep``'s chains (Gaussian visibles)."""
    p = model.params
    W = np.ascontiguousarray(p["W"])
    # W^T (v / sigma^2) = (W / sigma^2)^T v: scale W once instead of every v.
    W_h = np.ascontiguousarray(W * np.exp(-p["log_var"])[:, None])
    sigma = np.exp(0.5 * p["log_var"])
    mu = np.ascontiguousarray(p["mu"])

    def draw_v(pre_v, v, rng, lo, hi):
        _gaussian_rows(pre_v, mu, sigma, v, rng, lo, hi)

    return BlockGibbs(prep, W_h, np.ascontiguousarray(p["b_h"]), W.T, draw_v)
