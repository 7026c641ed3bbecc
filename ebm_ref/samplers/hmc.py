r"""Hamiltonian Monte Carlo (Duane et al. 1987; Neal 2011) for continuous energies.

Built-in models (``StudentT``, ``GaussianMixture``, ``GRBM`` free energy,
``MLPEnergy``) are evaluated by the per-model kernels of ``_continuous``
(``pack_model`` / ``_eval_tile``), in tiles of consecutive chains exactly as
the Langevin driver does; chain ``c`` reads and writes only its own rows and
its arithmetic does not depend on the tile, so results are bit-identical for
any thread count and chain prefix. Other real-domain models run through
their energy and gradient on fixed-size blocks of chains (see
``_generic_run``). No input checks in the kernels.

Random numbers per step and chain: ``d`` normals (the momentum, unit order)
then one uniform (the accept test).
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from .._jit import jit, pjit
from .._rng import nb_normal, nb_uniform, np_normals, np_uniforms
from .._validation import check_int
from . import _continuous as _k
from ._binary import BLOCK
from ._common import check_step_size, finish, prepare

__all__ = ["hmc"]

SUPPORTED = ("StudentT", "GaussianMixture", "GRBM (on its free energy over v)", "MLPEnergy",
                                   "any EnergyModel with domain='real' (generic NumPy path)")

# Kernel variants. Only VARIANT_EXACT is reachable from the public API; the
# others are planted bugs that the tests must detect.
VARIANT_EXACT = 0
VARIANT_NO_FINAL_HALF_KICK = 1  # the last momentum half step is forgotten
VARIANT_KINETIC_SIGN = 2  # H = E - K in the accept test
VARIANT_FROZEN_GRAD = 3  # every kick uses the gradient at the start of the trajectory


@jit
def leapfrog_tile(kind, ip, fp, X, P, G, E, G0, eps, n_leap, invm, work, variant):
    r"""``n_leap`` leapfrog steps of every row of ``X``/``P`` in place.

    On entry ``G`` holds :math:`\nabla E(X)`; on exit ``X``, ``P``, ``G``,
    ``E`` hold the end point, its momentum, gradient and energy. Each step:
    ``p -= eps/2 g; x += eps M^{-1} p; g = grad E(x); p -= eps/2 g``, with
    the inner half kicks merged into full ones. ``G0`` is scratch (used by
    the frozen-gradient control).
    """
    T, d = X.shape
    half = 0.5 * eps
    for b in range(T):
        for j in range(d):
            G0[b, j] = G[b, j]
            P[b, j] -= half * G[b, j]
    for step in range(n_leap):
        for b in range(T):
            for j in range(d):
                X[b, j] += eps * invm[j] * P[b, j]
        _k._eval_tile(kind, ip, fp, X, G, E, True, work, True)
        K = G0 if variant == VARIANT_FROZEN_GRAD else G
        if step < n_leap - 1:
            for b in range(T):
                for j in range(d):
                    P[b, j] -= eps * K[b, j]
        elif variant != VARIANT_NO_FINAL_HALF_KICK:
            for b in range(T):
                for j in range(d):
                    P[b, j] -= half * K[b, j]


@pjit
def leapfrog_batch(kind, ip, fp, n_work, x, p, eps, n_leap, invm):
    """Leapfrog end points ``(x, p)`` of every row (in place), one chain at a time (for tests)."""
    n, d = x.shape
    for c in prange(n):
        X = x[c: c + 1]
        P = p[c: c + 1]
        G = np.empty((1, d))
        G0 = np.empty((1, d))
        E = np.empty(1)
        work = np.empty((1, max(n_work, 1)))
        _k._eval_tile(kind, ip, fp, X, G, E, True, work, True)
        leapfrog_tile(kind, ip, fp, X, P, G, E, G0, eps, n_leap, invm, work, VARIANT_EXACT)


@pjit
def hmc_run(kind, ip, fp, n_work, x, n_steps, eps, n_leap, invm, variant, rng, thin, trace,
            accepted, energies, tile):
    """HMC on every chain (tiles of ``tile`` chains per prange item); fills the outputs in place."""
    n, d = x.shape
    n_tiles = (n + tile - 1) // tile
    for ti in prange(n_tiles):
        c0 = ti * tile
        c1 = min(n, c0 + tile)
        T = c1 - c0
        X = x[c0:c1]
        work = np.empty((T, max(n_work, 1)))
        G = np.empty((T, d))
        G0 = np.empty((T, d))
        XP = np.empty((T, d))
        GP = np.empty((T, d))
        P = np.empty((T, d))
        E = np.empty(T)
        EP = np.empty(T)
        K0 = np.empty(T)
        acc = np.zeros(T, dtype=np.int64)
        _k._eval_tile(kind, ip, fp, X, G, E, True, work, True)
        for t in range(n_steps):
            for b in range(T):
                s = rng[c0 + b]
                k0 = 0.0
                for j in range(d):
                    pj = nb_normal(s) / math.sqrt(invm[j])
                    P[b, j] = pj
                    k0 += pj * pj * invm[j]
                    XP[b, j] = X[b, j]
                    GP[b, j] = G[b, j]
                K0[b] = 0.5 * k0
                EP[b] = E[b]
            leapfrog_tile(kind, ip, fp, XP, P, GP, EP, G0, eps, n_leap, invm, work, variant)
            for b in range(T):
                log_u = math.log(nb_uniform(rng[c0 + b]))
                k1 = 0.0
                for j in range(d):
                    k1 += P[b, j] * P[b, j] * invm[j]
                k1 *= 0.5
                if variant == VARIANT_KINETIC_SIGN:
                    log_alpha = (E[b] - K0[b]) - (EP[b] - k1)
                else:
                    log_alpha = (E[b] + K0[b]) - (EP[b] + k1)
                # u < 1, so this is log u < min(0, log alpha); NaN rejects
                if EP[b] < np.inf and log_u < log_alpha:
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
        for b in range(T):
            accepted[c0 + b] = acc[b]
            energies[c0 + b] = E[b]


def _eval_blocks(model, x):
    """Energies and gradients of ``x`` on zero-padded blocks of ``BLOCK`` rows (non-finite rows: +inf)."""
    n, d = x.shape
    n_pad = -(-n // BLOCK) * BLOCK
    xp = np.zeros((n_pad, d))
    xp[:n] = x
    e = np.empty(n_pad)
    g = np.empty((n_pad, d))
    for b in range(0, n_pad, BLOCK):
        e[b: b + BLOCK], g[b: b + BLOCK] = _k._eval_rows(model, xp[b: b + BLOCK], True)
    return e[:n], g[:n]


def _generic_run(model, x, n_steps, eps, n_leap, invm, rng, thin, trace):
    """HMC through the model's energy and gradient, all chains at once (same draws as the kernel).

    Evaluations go through fixed ``BLOCK``-row blocks, so chain ``c`` does
    not depend on the number of chains when the model's arithmetic is
    row-wise. Returns ``(accepted, energies)``; ``x`` is updated in place.
    """
    n, d = x.shape
    e, g = _eval_blocks(model, x)
    accepted = np.zeros(n, dtype=np.int64)
    p = np.empty((n, d))
    for t in range(n_steps):
        for j in range(d):
            p[:, j] = np_normals(rng) / np.sqrt(invm[j])
        k0 = 0.5 * np.sum(p * p * invm, axis=1)
        xp, gp = x.copy(), g.copy()
        with np.errstate(invalid="ignore", over="ignore"):
            p -= 0.5 * eps * gp
            for step in range(n_leap):
                xp += eps * invm * p
                ep, gp = _eval_blocks(model, xp)
                p -= (eps if step < n_leap - 1 else 0.5 * eps) * gp
            k1 = 0.5 * np.sum(p * p * invm, axis=1)
            log_u = np.log(np_uniforms(rng))
            ok = (ep < np.inf) & (log_u < (e + k0) - (ep + k1))
        x[ok] = xp[ok]
        g[ok] = gp[ok]
        e[ok] = ep[ok]
        accepted += ok
        if thin > 0 and (t + 1) % thin == 0:
            trace[(t + 1) // thin - 1] = x
    return accepted, e


def _check_inverse_mass(inverse_mass, d):
    if inverse_mass is None:
        return np.ones(d)
    try:
        m = np.array(inverse_mass, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"`inverse_mass` must be None or an array of {d} positive numbers; "
            f"got {type(inverse_mass).__name__}."
        ) from None
    if m.shape != (d,):
        raise ValueError(f"`inverse_mass` must have shape ({d},) (the diagonal); got shape {m.shape}.")
    if not np.all(np.isfinite(m)) or np.any(m <= 0):
        raise ValueError(f"`inverse_mass` must be finite and > 0 entrywise; got {m!r}.")
    return np.ascontiguousarray(m)


def hmc(model, x0, n_steps, step_size, n_leapfrog, seed, thin=0, inverse_mass=None):
    r"""Hamiltonian Monte Carlo with a leapfrog integrator and a diagonal mass matrix.

    Parameters
    ----------
    model : EnergyModel
        A model with ``domain == "real"``. ``StudentT``, ``GaussianMixture``,
        ``GRBM`` (its free energy :math:`F(v)`) and ``MLPEnergy`` run in
        Numba kernels; any other real-domain model (``LatentEnergy``, ...)
        runs through its ``energy`` / ``grad_x`` on blocks of 128 chains.
    x0 : array_like of shape (n_chains, d) or (d,)
        Initial states, one row per chain; not modified.
    n_steps : int
        Number of HMC transitions per chain, ``>= 0``.
    step_size : float
        Leapfrog step :math:`\varepsilon > 0`.
    n_leapfrog : int
        Leapfrog steps per transition :math:`L \ge 1`.
    seed : int, numpy.random.SeedSequence or numpy.random.Generator
        Chain ``c`` uses its own stream derived from ``(seed, c)``
        (docs/conventions.md).
    thin : int, default 0
        ``> 0`` stores the states after transitions ``thin, 2 thin, ...``.
    inverse_mass : array_like of shape (d,), optional
        Diagonal of :math:`M^{-1}` (default: ones, the identity mass).

    Returns
    -------
    SampleResult
        ``acceptance_rate`` (accepted / ``n_steps`` per chain, NaN when
        ``n_steps == 0``), ``trace`` and ``energies`` (``E`` of the final
        states).

    Raises
    ------
    TypeError
        If ``model`` is not a real-domain ``EnergyModel`` (the message lists
        the supported ones) or an argument has the wrong type.
    ValueError
        For ``step_size <= 0``, ``n_leapfrog < 1``, ``n_steps < 0``,
        ``thin < 0``, an ``inverse_mass`` of the wrong shape or not
        positive, or an ``x0`` of the wrong shape or with NaN/inf.

    Notes
    -----
    With :math:`H(x, p) = E(x) + \tfrac12 p^\top M^{-1} p`, one transition
    draws :math:`p \sim \mathcal N(0, M)`, runs :math:`L` leapfrog steps

    .. math::

        p \leftarrow p - \tfrac{\varepsilon}{2}\nabla E(x),\quad
        x \leftarrow x + \varepsilon M^{-1} p,\quad
        p \leftarrow p - \tfrac{\varepsilon}{2}\nabla E(x),

    and accepts the end point :math:`(x', p')` iff :math:`\log u <
    H(x, p) - H(x', p')`. The leapfrog map is reversible (after a momentum
    flip) and volume-preserving, so this leaves :math:`p(x) \propto e^{-E}`
    invariant; the momentum flip itself is not applied since the momentum
    is redrawn at the next transition. An end point with :math:`E = +\infty`
    or a NaN Hamiltonian is rejected. A transition costs :math:`L`
    energy-and-gradient evaluations (the gradient at the current state is
    carried over). Step-size advice: docs/dula-and-hmc.md.

    Randomness: per transition, chain ``c`` draws ``d`` normals then one
    uniform from its own row of the per-chain streams; bit-identical for any
    number of threads and of chains (on the generic path this also requires
    the model's batch arithmetic to be row-wise).

    References
    ----------
    Duane, S., Kennedy, A. D., Pendleton, B. J. & Roweth, D. (1987). Hybrid
    Monte Carlo. Physics Letters B 195(2), 216-222.
    Neal, R. M. (2011). MCMC using Hamiltonian dynamics. In Handbook of
    Markov Chain Monte Carlo, chapter 5.

    Examples
    --------
    >>> import numpy as np
    >>> from ebm_ref.energies import StudentT
    >>> from ebm_ref.samplers import hmc
    >>> m = StudentT(np.zeros(2), np.zeros(2), np.log(np.full(2, 5.0)))
    >>> res = hmc(m, np.zeros((100, 2)), 20, 0.3, 5, seed=0)
    >>> res.x.shape, res.acceptance_rate.shape
    ((100, 2), (100,))
    """
    return _hmc(model, x0, n_steps, step_size, n_leapfrog, seed, thin, inverse_mass, VARIANT_EXACT)


def _hmc(model, x0, n_steps, step_size, n_leapfrog, seed, thin, inverse_mass, variant):
    """``hmc`` with a kernel variant (the tests use the planted bugs)."""
    _k.check_real_model("hmc", model, SUPPORTED)
    eps = check_step_size(step_size)
    n_leap = check_int(n_leapfrog, "n_leapfrog", minimum=1)
    prep = prepare(model, x0, n_steps, seed, thin=thin)
    n, d = prep.x.shape
    invm = _check_inverse_mass(inverse_mass, d)
    packed = _k.pack_model(model)
    if packed is None:
        if variant != VARIANT_EXACT:  # pragma: no cover - test-only guard
            raise ValueError("kernel variants exist on the Numba path only")
        accepted, energies = _generic_run(model, prep.x, prep.n_steps, eps, n_leap, invm, prep.rng,
                                          prep.thin, prep.trace)
    else:
        kind, ip, fp, n_work = packed
        accepted = np.zeros(n, dtype=np.int64)
        energies = np.empty(n)
        hmc_run(kind, ip, fp, n_work, prep.x, prep.n_steps, eps, n_leap, invm, variant, prep.rng,
                prep.thin, prep.trace, accepted, energies, _k.tile_size(n))
    return finish(prep, energies, _k.acceptance_rate(accepted, prep.n_steps))
