r"""The continuous samplers in NumPy, for real-domain models without a Numba
form (``LatentEnergy``, user subclasses): the same moves, draws and accept
rule as ``_continuous.metropolis_run``, through the model's own energy and
gradient.

Chain-prefix invariance
-----------------------
A model's batch arithmetic may go through BLAS, whose blocking (and thus
rounding) can depend on the number of rows. Every evaluation therefore runs
on zero-padded blocks of exactly ``BLOCK`` rows: chain ``c`` always sits at
row ``c % BLOCK`` of a block of the same shape, so its bits depend neither
on the number of chains nor on the other chains' values (as long as the
model treats rows independently, which every ``EnergyModel`` must). A row
with a NaN/inf entry (a diverged proposal) is evaluated as zeros, then gets
energy +inf and a NaN gradient, so the accept test rejects it; the block
keeps its shape.

Draws: per step chain ``c`` takes ``d`` normals then (with ``adjust``) one
uniform from its own row, in the Numba kernels' order.
"""

from __future__ import annotations

import math

import numpy as np

from .._rng import np_normals, np_uniforms
from .._threads import one_thread_blas
from ._common import BLOCK

MOVE_RWMH = 0
MOVE_LANGEVIN = 1
MOVE_HMC = 2


def eval_blocks(model, x, need_grad):
    """Energies ``(n,)`` and gradients ``(n, d)`` (or ``None``) on blocks of ``BLOCK`` rows.

    Uses the model's private hooks: the states are already validated and
    the public methods would refuse the non-finite rows.
    """
    n, d = x.shape
    n_pad = -(-n // BLOCK) * BLOCK
    fin = np.all(np.isfinite(x), axis=1)
    xp = np.zeros((n_pad, d))
    xp[:n][fin] = x[fin]
    e = np.empty(n_pad)
    g = np.empty((n_pad, d)) if need_grad else None
    # one BLAS thread: OpenBLAS rounds a multi-threaded product differently
    # (measured: RBM 784 x 500 energies of 128-row blocks, 1 vs 2 threads,
    # up to 1.1e-13 apart), and the setting is process-wide
    with one_thread_blas():
        for b in range(0, n_pad, BLOCK):
            blk = xp[b: b + BLOCK]
            e[b: b + BLOCK] = model._energy(blk)
            if need_grad:
                g[b: b + BLOCK] = model._grad_x(blk)
    e = e[:n]
    e[~fin] = np.inf
    if need_grad:
        g = g[:n]
        g[~fin] = np.nan
    return e, g


def generic_run(model, move, x, t0, n_steps, step, adjust, n_leap, invm, rng, thin, trace, accepted):
    """Steps ``t0 .. t0 + n_steps - 1`` of ``move`` on every chain (``x`` in place).

    Arguments as for ``_continuous.metropolis_run`` (``accepted`` is added
    to). Returns the energies of the final states.
    """
    n, d = x.shape
    grad = move != MOVE_RWMH
    e, g = eval_blocks(model, x, grad)
    noise = math.sqrt(2.0 * step)
    eps = np.empty((n, d))
    for t in range(n_steps):
        for j in range(d):
            eps[:, j] = np_normals(rng)
        with np.errstate(invalid="ignore", over="ignore"):
            if move == MOVE_RWMH:
                xp = x + step * eps
                ep, gp = eval_blocks(model, xp, False)
            elif move == MOVE_LANGEVIN:
                xp = x - step * g + noise * eps
                ep, gp = eval_blocks(model, xp, True)
            else:
                p = eps / np.sqrt(invm)
                k0 = 0.5 * np.sum(p * p * invm, axis=1)
                xp, ep, gp = _leapfrog(model, x.copy(), p, g.copy(), step, n_leap, invm)
            if adjust:
                log_u = np.log(np_uniforms(rng))
                if move == MOVE_RWMH:
                    log_alpha = e - ep
                elif move == MOVE_LANGEVIN:
                    fwd = np.sum((xp - x + step * g) ** 2, axis=1)
                    bwd = np.sum((x - xp + step * gp) ** 2, axis=1)
                    log_alpha = e - ep + (fwd - bwd) / (4.0 * step)
                else:
                    log_alpha = (e + k0) - (ep + 0.5 * np.sum(p * p * invm, axis=1))
                ok = (ep < np.inf) & (log_u < log_alpha)
            else:
                ok = np.ones(n, dtype=bool)
        x[ok] = xp[ok]
        if grad:
            g[ok] = gp[ok]
        e[ok] = ep[ok]
        if adjust:
            accepted += ok
        if thin > 0 and (t0 + t + 1) % thin == 0:
            trace[(t0 + t + 1) // thin - 1] = x
    return e


def _leapfrog(model, x, p, g, eps, n_leap, invm):
    """Leapfrog end points (``x``, ``p`` in place), their energies and gradients."""
    p -= 0.5 * eps * g
    for step in range(n_leap):
        x += eps * invm * p
        e, g = eval_blocks(model, x, True)
        p -= (eps if step < n_leap - 1 else 0.5 * eps) * g
    return x, e, g
