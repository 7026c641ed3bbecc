r"""The continuous Metropolis driver: random-walk MH, ULA/MALA and HMC on
every real-domain model with a Numba form.

How a model reaches the driver
------------------------------
``model.numba_form()`` gives ``(kind, ip, fp, n_work)``; the driver calls
:func:`ebm_ref.energies.kernels.continuous_eval_tile`, which branches on
``kind`` to the model's own jitted function. The driver therefore has one
signature whatever the model, so ``cache=True`` compiles it once per
machine; passing jitted functions as arguments would miss the on-disk cache
in every new process (docs/threads.md). Models without a continuous Numba
form run the same algorithms in NumPy (``_generic.generic_run``).

One step of every move
----------------------
draw ``d`` normals per chain (the proposal's noise or the momentum) ->
build the proposal (``MOVE_RWMH``: ``x + s eps``; ``MOVE_LANGEVIN``: ``x -
eta grad E + sqrt(2 eta) eps``; ``MOVE_HMC``: ``L`` leapfrog steps) ->
with ``adjust``, draw one uniform and accept iff ``log u < log alpha`` (the
move's Metropolis-Hastings ratio, :func:`_log_alpha`; ``E(x') = +inf`` and
a NaN ratio reject) -> store the state if the step is traced.

Reproducibility
---------------
``prange`` runs over tiles of consecutive chains (up to 32, see
``tile_size``); chain ``c`` reads and writes row ``c`` of ``x``, of the RNG
states and of every output, and its energies and gradients depend on its
own state only, whatever tile it sits in (the MLP kernel pads every tile to
one fixed shape, ``energies._mlp_kernel``). Its result therefore depends
neither on the thread count nor on the number of chains nor on the tile
size; the tests check all three bit for bit.

Running in chunks
-----------------
All per-chain state is in the arrays passed in: ``x`` and the RNG rows are
updated in place, the energy and gradient of the current state are carried
in ``energies`` / ``grads`` (the Numba driver; the generic path recomputes
them from ``x``, a pure function of it, so the same bits), ``t0`` is the
number of steps already done (it places the traced states) and
``accepted`` is added to. Calling
the driver for steps ``[0, k)`` then ``[k, n)`` gives the bits of one call
for ``[0, n)``. No input checks in the kernels.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
from numba import prange

from .._jit import OFF, ON, jit, jit_inline, pjit
from .._rng import LANES, draw_normals, nb_uniform
from .._threads import one_thread_blas
from ..energies import EnergyModel
from ..energies.kernels import BLAS_KINDS, CONTINUOUS_KINDS, TILE_ROWS, continuous_eval_tile
from ._common import run_steps, trace_slot, unsupported
from ._generic import generic_run

MOVE_RWMH = 0
MOVE_LANGEVIN = 1
MOVE_HMC = 2

SUPPORTED = (
    "StudentT",
    "GaussianMixture",
    "GRBM (on its free energy over v)",
    "MLPEnergy",
    "any EnergyModel with domain='real' (generic NumPy path)",
)


# ------------------------------------------------------- wrapper helpers
def acceptance_rate(accepted, n_steps):
    """Per-chain ``accepted / n_steps``; NaN when ``n_steps == 0`` (nothing
    was proposed; the binary samplers use the same convention)."""
    if n_steps == 0:
        return np.full(accepted.shape[0], np.nan)
    return accepted / float(n_steps)


def check_real_model(sampler, model, supported=SUPPORTED):
    """``TypeError`` unless ``model`` is an ``EnergyModel`` on the real line."""
    if not isinstance(model, EnergyModel) or getattr(model, "domain", None) != "real":
        raise unsupported(sampler, model, supported)


def pack_model(model):
    """``model.numba_form()`` if it is one of the continuous family, else ``None``."""
    form = model.numba_form()
    if form is None or form.kind not in CONTINUOUS_KINDS:
        return None
    return form


def tile_size(n_chains, blas):
    """Chains per prange iteration. Results do not depend on it.

    A BLAS-tiled kernel (``blas``, the MLP's) pads every tile to
    ``TILE_ROWS`` rows, so a smaller tile costs as much as a full one: full
    tiles (``min(TILE_ROWS, n_chains)``), however few per thread. Other
    kernels work chain by chain: up to ``TILE_ROWS`` chains while leaving
    two tiles per thread for load balance.
    """
    import numba

    if blas:
        return int(max(1, min(TILE_ROWS, n_chains)))
    per = n_chains // (2 * numba.get_num_threads())
    return int(max(1, min(TILE_ROWS, per)))


_LABELS = {MOVE_RWMH: "mh", MOVE_LANGEVIN: "langevin", MOVE_HMC: "hmc"}


def run(model, move, prep, step, adjust=True, n_leap=1, invm=None):
    """Run ``move`` on the prepared chains (Numba path or generic path).

    ``prep`` comes from ``_common.prepare``; ``prep.x``, ``prep.rng`` and
    ``prep.trace`` are updated in place, in chunks of steps
    (``_common.run_steps``: Ctrl-C between chunks, same bits as one call).
    Returns ``(accepted, energies)``.
    """
    n, d = prep.x.shape
    invm = np.ones(d) if invm is None else invm
    form = pack_model(model)
    accepted = np.zeros(n, dtype=np.int64)
    energies = np.empty(n)
    adjust = bool(adjust)
    if form is None:
        def chunk(t0, count):
            energies[:] = generic_run(model, move, prep.x, t0, count, step, adjust, n_leap, invm,
                                      prep.rng, prep.thin, prep.trace, accepted)
    else:
        kind, ip, fp, n_work = form
        tile = tile_size(n, kind in BLAS_KINDS)

        # the energy and gradient of each chain's current state, carried
        # from one chunk to the next (recomputing them would cost one
        # gradient evaluation per chunk)
        grads = np.empty((n, d))

        def chunk(t0, count):
            metropolis_run(kind, ip, fp, n_work, move, prep.x, t0, count, step, adjust, n_leap, invm,
                           prep.rng, prep.thin, prep.trace, accepted, energies, grads, t0 + count == prep.n_steps,
                           tile)
    # a kernel's products are single-threaded BLAS calls, one per Numba
    # thread: OpenBLAS's own threads would only compete for the cores
    pin = one_thread_blas() if form is not None and form.kind in BLAS_KINDS else contextlib.nullcontext()
    with pin:
        run_steps(prep, chunk, _LABELS[move])
    return accepted, energies


# ----------------------------------------------------------------- kernels
@jit
def leapfrog_tile(kind, ip, fp, X, P, G, E, eps, n_leap, invm, work):
    r"""``n_leap`` leapfrog steps of every row of ``X``/``P`` in place.

    On entry ``G`` holds :math:`\nabla E(X)`; on exit ``X``, ``P``, ``G``,
    ``E`` hold the end point, its momentum, gradient and energy. Each step:
    ``p -= eps/2 g; x += eps M^{-1} p; g = grad E(x); p -= eps/2 g``, with
    the inner half kicks merged into full ones.
    """
    T, d = X.shape
    half = 0.5 * eps
    for b in range(T):
        for j in range(d):
            P[b, j] -= half * G[b, j]
    for step in range(n_leap):
        for b in range(T):
            for j in range(d):
                X[b, j] += eps * invm[j] * P[b, j]
        continuous_eval_tile(kind, ip, fp, X, G, E, ON, work, ON)
        kick = eps if step < n_leap - 1 else half
        for b in range(T):
            for j in range(d):
                P[b, j] -= kick * G[b, j]


@jit_inline
def _log_alpha(move, X, G, E, XP, GP, EP, P, K0, b, step, invm):
    """log of the Metropolis-Hastings ratio of chain ``b``'s proposal."""
    d = X.shape[1]
    if move == MOVE_LANGEVIN:
        # log q(x | x') - log q(x' | x) for q(b | a) = N(b; a - eta g(a), 2 eta I)
        fwd = 0.0
        bwd = 0.0
        for j in range(d):
            r1 = XP[b, j] - X[b, j] + step * G[b, j]
            r2 = X[b, j] - XP[b, j] + step * GP[b, j]
            fwd += r1 * r1
            bwd += r2 * r2
        log_alpha = E[b] - EP[b]
        log_alpha += (fwd - bwd) * (1.0 / (4.0 * step))
        return log_alpha
    if move == MOVE_HMC:
        k1 = 0.0
        for j in range(d):
            k1 += P[b, j] * P[b, j] * invm[j]
        k1 *= 0.5
        return (E[b] + K0[b]) - (EP[b] + k1)
    return E[b] - EP[b]


@pjit
def metropolis_run(kind, ip, fp, n_work, move, x, t0, n_steps, step, adjust, n_leap, invm, rng, thin,
                   trace, accepted, energies, grads, last, tile):
    """Steps ``t0 .. t0 + n_steps - 1`` of ``move`` on every chain, in place.

    ``step`` is the proposal scale (RW-MH), ``eta`` (Langevin) or the
    leapfrog step (HMC); ``adjust=False`` takes every proposal (ULA);
    ``n_leap`` and ``invm`` (diagonal of the inverse mass) are used by HMC
    only. Adds the accepted counts to ``accepted``.

    ``energies`` and ``grads`` carry each chain's current energy and
    gradient between calls: computed from ``x`` when ``t0 == 0``, read
    otherwise, written back at the end. ``last`` (the final call of a run)
    makes ``energies`` those of the final states also for ULA, whose steps
    do not evaluate energies.
    """
    n, d = x.shape
    noise = math.sqrt(2.0 * step)
    grad = move != MOVE_RWMH
    n_tiles = (n + tile - 1) // tile
    for ti in prange(n_tiles):
        c0 = ti * tile
        T = min(n, c0 + tile) - c0
        X = x[c0: c0 + T]
        # TILE_ROWS rows (>= T): a tiled kernel (the MLP's) uses them all as its padded tile
        work = np.empty((TILE_ROWS, max(n_work, 1)))
        G = np.empty((T, d))
        XP = np.empty((T, d))
        GP = np.empty((T, d))
        P = np.empty((T, d))
        NZ = np.empty((T, d))
        NU = np.empty(2 * d * LANES)  # draw_normals' scratch
        E = np.empty(T)
        EP = np.empty(T)
        K0 = np.empty(T)
        if t0 == 0:
            # a run of no steps needs the energies only
            continuous_eval_tile(kind, ip, fp, X, G, E, grad and not (last and n_steps == 0), work, ON)
        else:
            for b in range(T):
                E[b] = energies[c0 + b]
                if grad:
                    for j in range(d):
                        G[b, j] = grads[c0 + b, j]
        for t in range(n_steps):
            # each chain's d normals of this step, in order (lock-step lanes)
            draw_normals(rng[c0: c0 + T], 0, NZ, NU)
            for b in range(T):
                if move == MOVE_RWMH:
                    for j in range(d):
                        XP[b, j] = X[b, j] + step * NZ[b, j]
                elif move == MOVE_LANGEVIN:
                    for j in range(d):
                        XP[b, j] = X[b, j] - step * G[b, j] + noise * NZ[b, j]
                else:
                    k0 = 0.0
                    for j in range(d):
                        pj = NZ[b, j] / math.sqrt(invm[j])
                        P[b, j] = pj
                        k0 += pj * pj * invm[j]
                        XP[b, j] = X[b, j]
                        GP[b, j] = G[b, j]
                    K0[b] = 0.5 * k0
                    EP[b] = E[b]
            if move == MOVE_HMC:
                leapfrog_tile(kind, ip, fp, XP, P, GP, EP, step, n_leap, invm, work)
            else:
                # ULA never reads E of a proposal: the MLP may skip it
                continuous_eval_tile(kind, ip, fp, XP, GP, EP, grad, work, adjust)
            for b in range(T):
                ok = True
                if adjust:
                    log_u = math.log(nb_uniform(rng[c0 + b]))
                    log_alpha = _log_alpha(move, X, G, E, XP, GP, EP, P, K0, b, step, invm)
                    # u < 1 so log u < 0: this is log u < min(0, log alpha),
                    # and a NaN log alpha rejects
                    ok = EP[b] < np.inf and log_u < log_alpha
                    if ok:
                        accepted[c0 + b] += 1
                if ok:
                    for j in range(d):
                        X[b, j] = XP[b, j]
                        G[b, j] = GP[b, j]
                    E[b] = EP[b]
            k = trace_slot(t0 + t, thin)
            if k >= 0:
                for b in range(T):
                    for j in range(d):
                        trace[k, c0 + b, j] = X[b, j]
        if last and not adjust and n_steps > 0:
            continuous_eval_tile(kind, ip, fp, X, G, E, OFF, work, ON)
        for b in range(T):
            energies[c0 + b] = E[b]
            if grad:
                for j in range(d):
                    grads[c0 + b, j] = G[b, j]
