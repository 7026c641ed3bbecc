r"""Replica exchange (parallel tempering) for binary models.

One replica per inverse temperature ``beta_k``; replica ``k`` samples the
model of ``model.tempered(beta_k)`` with an ordinary local kernel of this
package (``gibbs``, ``gwg`` or binary ``rwmh``), and neighbouring replicas
exchange states with the exact Metropolis ratio on their marginal (free)
energies. Why it is built from the public local samplers rather than one
fused kernel: every local move is then the tested kernel itself, and the
reproducibility of the whole (``docs/conventions.md``) follows
from theirs plus per-chain swap streams. The cost is a Python loop over
temperatures and swap blocks (see ``docs/parallel-tempering.md``).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from .._jit import jit
from .._numerics import nb_exp_nonpos
from .._rng import as_seed_sequence, chain_states, nb_uniform
from .._validation import as_float_array, check_int, check_nonneg_int, check_finite
from ._binary import rwmh_binary
from ._flip import final_energies
from ._result import SampleResult
from ._common import check_int64

__all__ = ["parallel_tempering", "TemperingResult"]

# Purposes drawn from the user's seed (distinct from the package's other
# stream numbers): local moves of temperature k in swap block r use
# SeedSequence(entropy, spawn_key + (_STREAM_LOCAL, k, r)); swap decisions
# use chain_states(seed, n_chains, _STREAM_SWAP), one row per chain.
_STREAM_LOCAL = 0x5054
_STREAM_SWAP = 0x5055

_SAMPLERS = ("gibbs", "gwg", "rwmh")


@dataclass(frozen=True)
class TemperingResult(SampleResult):
    """What :func:`parallel_tempering` returns: the ``beta = 1`` chains plus every replica.

    The :class:`SampleResult` fields describe the replica at ``beta = 1``
    (the target distribution); the others describe the whole ladder.
    Replica ``k`` always means "the state currently at ``betas[k]``" (states
    move between temperatures, the temperatures do not move).

    Attributes
    ----------
    x : ndarray of shape (n_chains, d) (or (d,) for a single chain)
        Final states at ``beta = 1``.
    acceptance_rate : ndarray of shape (n_chains,) or None
        Acceptance rate of the *local* moves at ``beta = 1`` (``gwg`` and
        ``rwmh``; NaN when ``n_steps == 0``); ``None`` for ``gibbs``.
    trace : ndarray of shape (n_saved, n_chains, d) or None
        States at ``beta = 1`` after steps ``thin, 2 thin, ...``; a step
        that ends with a swap move is recorded after the swap.
    energies : ndarray of shape (n_chains,)
        ``model.energy`` of ``x`` (free energies for an RBM).
    betas : ndarray of shape (n_betas,)
        The ladder, increasing, ending at 1.0.
    replicas : ndarray of shape (n_betas, n_chains, d) (or (n_betas, d))
        Final states of every replica; ``replicas[-1]`` is ``x``.
    replica_energies : ndarray of shape (n_betas, n_chains) (or (n_betas,))
        ``model.tempered(betas[k]).energy(replicas[k])``.
    swap_rate : ndarray of shape (n_betas - 1,)
        Fraction of accepted swaps between ``betas[k]`` and ``betas[k+1]``,
        pooled over chains (a ratio of integer counts, so it does not depend
        on the thread count); NaN for a pair never proposed.
    swap_rate_per_chain : ndarray of shape (n_chains, n_betas - 1) (or (n_betas - 1,))
        The same, chain by chain.
    n_swaps_proposed : ndarray of shape (n_betas - 1,)
        Number of swaps proposed per chain for each pair (the same for
        every chain: even pairs in even swap moves, odd pairs in odd ones).
    """

    betas: np.ndarray
    replicas: np.ndarray
    replica_energies: np.ndarray
    swap_rate: np.ndarray
    swap_rate_per_chain: np.ndarray
    n_swaps_proposed: np.ndarray


def parallel_tempering(model, betas, x0, n_steps, seed, sampler="gibbs", swap_every=1, thin=0):
    r"""Replica-exchange Monte Carlo (parallel tempering) for binary models.

    Parameters
    ----------
    model : RBM or Ising (any binary model with ``tempered`` and a local sampler)
        The target, sampled at ``beta = 1``. Replica ``k`` samples
        ``model.tempered(betas[k])``, whose joint energy is ``betas[k]``
        times the model's (for an RBM the free energy at ``beta`` is *not*
        ``beta F``: see ``RBM.tempered``).
    betas : array_like of shape (n_betas,)
        Inverse temperatures, strictly increasing, in ``[0, 1]``, the last
        exactly ``1.0`` (the same order as the AIS schedules of
        ``ebm_ref.estimate``: from the easy end to the target). ``[1.0]``
        alone is allowed and is the plain local sampler.
    x0 : ndarray of shape (n_chains, d), (d,) or (n_betas, n_chains, d)
        Initial states in the model's domain: a 2-D (or 1-D) array starts
        every replica from the same states; a 3-D array gives each replica
        its own (``x0[k]`` at ``betas[k]``). Never modified.
    n_steps : int
        Number of steps (>= 0). One step is one step of the local sampler
        (see ``ebm_ref.samplers.gibbs``, ``gwg``, ``rwmh``) at every
        temperature, followed, when the step number is a multiple of
        ``swap_every``, by one swap move.
    seed : int, numpy.random.SeedSequence or numpy.random.Generator
        Chain ``c`` (at every temperature) draws only from streams derived
        from ``(seed, c)``.
    sampler : {"gibbs", "gwg", "rwmh"}, default "gibbs"
        The local kernel: block Gibbs (RBM) or heat-bath sweeps (Ising);
        Gibbs-with-gradients; random-walk Metropolis with a uniform
        single-unit flip.
    swap_every : int, default 1
        Number of local steps between swap moves (>= 1).
    thin : int, default 0
        Save the ``beta = 1`` states after steps ``thin, 2 thin, ...``
        (0: no trace).

    Returns
    -------
    TemperingResult
        ``x``, ``trace``, ``energies``, ``acceptance_rate`` of the
        ``beta = 1`` replica (as any sampler's :class:`SampleResult`), plus
        ``betas``, ``replicas``, ``replica_energies``, ``swap_rate``,
        ``swap_rate_per_chain`` and ``n_swaps_proposed``.

    Raises
    ------
    TypeError
        For a model that is not binary, or arguments of the wrong type.
    ValueError
        For a model without ``tempered``; ``betas`` not 1-D, not strictly
        increasing, outside ``[0, 1]`` or not ending at 1.0; ``x0`` of the
        wrong shape or outside the domain; an unknown ``sampler``;
        ``swap_every < 1``, ``n_steps < 0`` or ``thin < 0``.

    Notes
    -----
    With :math:`E_k` the energy of ``model.tempered(betas[k])`` (for an
    RBM the free energy :math:`F_{\beta_k}`), a swap of the states
    :math:`x_k, x_{k+1}` of neighbouring replicas is accepted when

    .. math::

        u < \min\Big(1, \exp\big[E_k(x_k) + E_{k+1}(x_{k+1})
                              - E_k(x_{k+1}) - E_{k+1}(x_k)\big]\Big),

    the Metropolis ratio of the product distribution
    :math:`\prod_k p_{\beta_k}(x_k)` (Swendsen & Wang 1986; Geyer 1991;
    Hukushima & Nemoto 1996). For the Ising model
    :math:`E_k = \beta_k E` and the exponent is
    :math:`(\beta_{k+1} - \beta_k)(E(x_{k+1}) - E(x_k))`. Swap moves
    alternate between the even pairs ``(0, 1), (2, 3), ...`` (moves 0, 2,
    4, ...) and the odd pairs ``(1, 2), (3, 4), ...``; within a move the
    pairs are disjoint, so their order does not matter. Each step leaves
    the product distribution invariant, and its ``beta = 1`` marginal is
    the model's.

    Random numbers: the local moves of temperature ``k`` in swap block
    ``r`` run the public local sampler with its own seed derived from
    ``(seed, k, r)``; every swap move draws one uniform per proposed pair
    and chain, in pair order, from the chain's own swap stream. Chain ``c``
    is therefore bit-identical whatever the number of chains and of Numba
    threads. The exponential is a fixed polynomial (``nb_exp_nonpos``), so
    the decision does not depend on how NumPy vectorises ``exp``.

    Costs: ``n_betas`` local sampler calls per swap block plus two energy
    evaluations per proposed pair; prefer ``swap_every`` > 1 for many
    short blocks on small problems. A swap block shorter than
    ``swap_every`` (the end of a run whose ``n_steps`` is not a multiple)
    ends without a swap.

    References
    ----------
    Swendsen, R. H. & Wang, J.-S. (1986). Replica Monte Carlo simulation of
    spin glasses. Phys. Rev. Lett. 57(21).
    Geyer, C. J. (1991). Markov chain Monte Carlo maximum likelihood.
    Computing Science and Statistics: Proc. 23rd Symposium on the Interface.
    Hukushima, K. & Nemoto, K. (1996). Exchange Monte Carlo method and
    application to spin glass simulations. J. Phys. Soc. Jpn. 65(6).
    """
    if getattr(model, "domain", None) not in ("binary", "spin"):
        raise TypeError(
            "`parallel_tempering` supports binary models (RBM, Ising: domain 'binary' or 'spin'); "
            f"got {type(model).__name__}."
        )
    if not isinstance(sampler, str):
        raise TypeError(f"`sampler` must be a str, one of {list(_SAMPLERS)}; got {type(sampler).__name__}.")
    if sampler not in _SAMPLERS:
        raise ValueError(f"`sampler` must be one of {list(_SAMPLERS)}; got {sampler!r}.")
    betas = _check_betas(betas)
    n_steps = check_int64(check_nonneg_int(n_steps, "n_steps"), "n_steps")
    thin = check_int64(check_nonneg_int(thin, "thin"), "thin")
    swap_every = check_int64(check_int(swap_every, "swap_every", minimum=1), "swap_every")
    K = betas.shape[0]
    X, was_1d = _check_x0(model, x0, K)
    n, d = X.shape[1], X.shape[2]
    # tempered models built up front: an unsupported model fails before any work
    models = [model if b == 1.0 else model.tempered(float(b)) for b in betas]
    ss = as_seed_sequence(seed)
    local = _local_sampler(sampler)

    swap_rng = chain_states(ss, n, _STREAM_SWAP)
    energies = np.stack([final_energies(models[k], X[k]) for k in range(K)])
    accepted_swaps = np.zeros((n, max(K - 1, 0)), dtype=np.int64)
    proposed = np.zeros(max(K - 1, 0), dtype=np.int64)
    n_saved = n_steps // thin if thin > 0 else 0
    trace = np.empty((n_saved, n, d)) if thin > 0 else None
    local_accepted = np.zeros(n, dtype=np.int64)
    has_rate = sampler != "gibbs"

    t = 0
    block = 0
    saved = 0
    while t < n_steps:
        m = min(swap_every, n_steps - t)
        top_trace = None
        for k in range(K):
            sub = np.random.SeedSequence(ss.entropy, spawn_key=tuple(ss.spawn_key) + (_STREAM_LOCAL, k, block))
            want_trace = k == K - 1 and thin > 0
            res = local(models[k], X[k], m, sub, 1 if want_trace else 0)
            X[k] = res.x
            energies[k] = res.energies
            if k == K - 1:
                top_trace = res.trace
                if has_rate:
                    local_accepted += np.rint(res.acceptance_rate * m).astype(np.int64)
        swapped = m == swap_every
        if swapped and K > 1:
            _swap_move(models, X, energies, block % 2, swap_rng, accepted_swaps, proposed)
        if thin > 0:
            for s in range(t + 1, t + m + 1):
                if s % thin == 0:
                    trace[saved] = X[K - 1] if (s == t + m and swapped) else top_trace[s - t - 1]
                    saved += 1
        t += m
        block += 1

    with np.errstate(invalid="ignore", divide="ignore"):
        rate_chain = accepted_swaps / proposed.astype(np.float64)
        rate = accepted_swaps.sum(axis=0) / (proposed.astype(np.float64) * n)
    if has_rate:
        acc = np.full(n, np.nan) if n_steps == 0 else local_accepted / float(n_steps)
    else:
        acc = None
    if was_1d:
        return TemperingResult(
            x=X[K - 1, 0].copy(), acceptance_rate=acc, trace=trace, energies=energies[K - 1, 0].copy(),
            betas=betas, replicas=X[:, 0].copy(), replica_energies=energies[:, 0].copy(),
            swap_rate=rate, swap_rate_per_chain=rate_chain[0].copy(), n_swaps_proposed=proposed,
        )
    return TemperingResult(
        x=X[K - 1].copy(), acceptance_rate=acc, trace=trace, energies=energies[K - 1].copy(),
        betas=betas, replicas=X, replica_energies=energies,
        swap_rate=rate, swap_rate_per_chain=rate_chain, n_swaps_proposed=proposed,
    )


# --------------------------------------------------------------------- pieces


def _swap_log_ratio(e_k_xk, e_k1_xk1, e_k_xk1, e_k1_xk):
    """Log Metropolis ratio of exchanging ``x_k`` and ``x_{k+1}`` (per chain).

    ``e_a_xb`` is the energy of replica ``a``'s model at the state of
    replica ``b``. A separate function so that the tests can plant a wrong
    ratio and see the statistical checks fail.
    """
    return (e_k_xk + e_k1_xk1) - (e_k_xk1 + e_k1_xk)


@jit
def _swap_decisions(log_ratio, rng, out):
    """``out[c] = u_c < min(1, exp(log_ratio[c]))``, one uniform from row ``c`` each."""
    for c in range(log_ratio.shape[0]):
        u = nb_uniform(rng[c])
        lr = log_ratio[c]
        out[c] = lr >= 0.0 or u < nb_exp_nonpos(lr)


def _swap_move(models, X, energies, parity, swap_rng, accepted_swaps, proposed):
    """One swap move on the pairs ``(k, k+1)`` with ``k = parity, parity + 2, ...``, in place."""
    K = len(models)
    n = X.shape[1]
    acc = np.empty(n, dtype=np.bool_)
    for k in range(parity, K - 1, 2):
        e_k_xk1 = final_energies(models[k], X[k + 1])
        e_k1_xk = final_energies(models[k + 1], X[k])
        lr = np.ascontiguousarray(_swap_log_ratio(energies[k], energies[k + 1], e_k_xk1, e_k1_xk), dtype=np.float64)
        _swap_decisions(lr, swap_rng, acc)
        if acc.any():
            xk = X[k, acc].copy()
            X[k, acc] = X[k + 1, acc]
            X[k + 1, acc] = xk
            energies[k, acc] = e_k_xk1[acc]
            energies[k + 1, acc] = e_k1_xk[acc]
        accepted_swaps[:, k] += acc
        proposed[k] += 1


def _local_sampler(name):
    """``f(model, x, n_steps, seed, thin) -> SampleResult`` for the named local kernel."""
    from ._gibbs_sweeps import gibbs
    from ._gwg import gwg

    if name == "gibbs":
        return lambda m, x, k, s, th: gibbs(m, x, k, s, thin=th)
    if name == "gwg":
        return lambda m, x, k, s, th: gwg(m, x, k, s, thin=th)
    return lambda m, x, k, s, th: rwmh_binary(m, x, k, s, thin=th)


def _check_betas(betas):
    """Strictly increasing inverse temperatures in [0, 1] ending at exactly 1.0."""
    if isinstance(betas, numbers.Number):
        raise ValueError(f"`betas` must be a 1-D array of inverse temperatures ending at 1.0; got the scalar {betas!r}.")
    if np.asarray(betas).dtype == np.bool_:  # [False, True] would read as the ladder [0, 1]
        raise TypeError("`betas` must be real inverse temperatures; got a bool array.")
    b = as_float_array(betas, "betas")
    if b.ndim != 1 or b.shape[0] == 0:
        raise ValueError(f"`betas` must be a non-empty 1-D array; got shape {b.shape}.")
    check_finite(b, "betas")
    if np.any(b < 0.0) or np.any(b > 1.0):
        raise ValueError(f"`betas` must lie in [0, 1]; got min {b.min()!r}, max {b.max()!r}.")
    if np.any(np.diff(b) <= 0.0):
        i = int(np.argmax(np.diff(b) <= 0.0))
        raise ValueError(
            f"`betas` must be strictly increasing (from the hot end to beta = 1); "
            f"got betas[{i}] = {b[i]!r} >= betas[{i + 1}] = {b[i + 1]!r}."
        )
    if b[-1] != 1.0:
        raise ValueError(f"`betas` must end at exactly 1.0 (the target distribution); got last value {b[-1]!r}.")
    return b.copy()


def _check_x0(model, x0, K):
    """``x0`` as a fresh ``(K, n_chains, d)`` float64 array and whether it was 1-D."""
    arr = as_float_array(x0, "x0")
    if arr.ndim == 3:
        if arr.shape[0] != K:
            raise ValueError(
                f"`x0` of shape (n_betas, n_chains, d) must have n_betas = {K} (one start per temperature); "
                f"got shape {arr.shape}."
            )
        if arr.shape[1] == 0:
            raise ValueError(f"`x0` must contain at least one chain; got shape {arr.shape}.")
        rows = [model.check_states(arr[k], "x0")[0] for k in range(K)]
        return np.ascontiguousarray(np.stack(rows), dtype=np.float64), False
    if arr.ndim not in (1, 2):
        raise ValueError(
            f"`x0` must have shape (n_chains, {model.n_features}), ({model.n_features},) or "
            f"(n_betas, n_chains, {model.n_features}); got shape {arr.shape}."
        )
    x2d, was_1d = model.check_states(arr, "x0")
    return np.ascontiguousarray(np.repeat(x2d[None], K, axis=0), dtype=np.float64), was_1d
