r"""Cluster samplers for zero-field ferromagnetic Ising models: Swendsen-Wang and Wolff.

Both rest on the Fortuin-Kasteleyn representation of
:math:`p(s) \propto \exp(\sum_{i<j} J_{ij} s_i s_j)` (``E(s) = -1/2 s.J.s``):
put a bond on every aligned pair ``s_i = s_j`` independently with probability
``p_ij = 1 - exp(-2 J_ij)``; given the bonds, every connected cluster may be
flipped as a whole without changing the joint weight. Why it needs ``J >= 0``
and no field, the costs and the measured speed-up near the critical point
are in ``docs/cluster-samplers.md``.

Kernels run one chain per ``prange`` iteration; chain ``c`` reads and writes
only its own row of every array and draws only from its own xoshiro256**
row (``ebm_ref._rng``), so the results are bit-identical for any thread
count and any prefix of the chains. Spins are kept as an int8 copy per chain
(8x less memory traffic than float64 at L = 256).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import prange

from .._jit import jit, pjit
from .._rng import nb_next_u64, nb_randint, nb_uniform
from ..energies import Ising
from ..energies.lattice import csr_from_edges
from ._common import finish, prepare, record, run_steps, unsupported
from ._flip import final_energies
from ._result import SampleResult

__all__ = ["swendsen_wang", "wolff", "ClusterSampleResult"]

_S63 = np.uint64(63)


@dataclass(frozen=True)
class ClusterSampleResult(SampleResult):
    """A :class:`SampleResult` with the mean cluster size of every chain.

    Attributes
    ----------
    mean_cluster_size : ndarray of shape (n_chains,)
        Mean over the ``n_steps`` steps of the size of the cluster that
        contains a uniformly chosen site: for Wolff the size of the flipped
        cluster, for Swendsen-Wang ``sum_C |C|^2 / d`` over all clusters of
        the step's decomposition (the same quantity averaged over the site).
        In zero field its expectation is the susceptibility
        ``sum_j E[s_0 s_j]`` (the improved estimator). NaN when
        ``n_steps = 0``.
    """

    mean_cluster_size: np.ndarray | None = None


# --------------------------------------------------------------------------
# Python side: checks and the coupling graph


def _check_model(model, name):
    """Refuse anything but a zero-field ferromagnetic Ising model on spins."""
    if not isinstance(model, Ising):  # the cluster moves are defined by the pair couplings J
        raise unsupported(name, model, ["Ising (domain='spin', zero field, J >= 0)"])
    if model.domain != "spin":
        raise ValueError(
            f"`model` of {name} must have domain='spin'; got domain={model.domain!r}. The cluster "
            f"moves flip spins s -> -s, which has no meaning on 0/1 units. A 0/1 model with x = (s+1)/2 "
            f"is the spin model with couplings J/4 and fields h/2 + J.sum(1)/4, which is zero only "
            f"when h = -J.sum(1)/2: build that spin model with Ising(J/4, h/2 + J.sum(1)/4, "
            f"domain='spin') if its field is zero, otherwise sample the 0/1 model with gibbs."
        )
    spec = getattr(model, "lattice", None)
    if spec is not None:
        if spec.beta * spec.field != 0.0:
            raise ValueError(
                f"`model` of {name} must have zero field; got an Ising.lattice with field={spec.field!r} "
                f"at beta={spec.beta!r}. A field breaks the s -> -s symmetry the cluster flip relies "
                f"on; use gibbs (or parallel tempering) for a model with a field."
            )
        if spec.beta * spec.coupling < 0.0:
            raise ValueError(
                f"`model` of {name} must be ferromagnetic (J >= 0); got an Ising.lattice with "
                f"coupling={spec.coupling!r} at beta={spec.beta!r}. Bonds on anti-aligned pairs are "
                f"not implemented; use gibbs for antiferromagnets."
            )
    else:
        h = model.params["h"]
        if np.any(h != 0.0):
            k = int(np.flatnonzero(h != 0.0)[0])
            raise ValueError(
                f"`model` of {name} must have zero field h; got h[{k}] = {float(h[k])!r}. A field breaks the "
                f"s -> -s symmetry the cluster flip relies on; use gibbs (or parallel tempering) for "
                f"a model with a field."
            )
    i, j, w = model.edges()
    if np.any(w < 0.0):
        k = int(np.flatnonzero(w < 0.0)[0])
        raise ValueError(
            f"`model` of {name} must be ferromagnetic, every J[i, j] >= 0; got J[{int(i[k])}, {int(j[k])}] "
            f"= {float(w[k])!r}. Negative couplings (frustration) are not handled by these cluster moves; use "
            f"gibbs."
        )
    return i, j, w


def bond_probability(w):
    """``p = 1 - exp(-2 w)``, computed as ``-expm1(-2 w)`` (full precision for small ``w``).

    For ``w >= 18.4`` the result rounds to exactly 1.0, so ``u < p`` always
    holds (the uniforms lie in the open interval (0, 1)); no overflow for
    any finite ``w >= 0``.
    """
    return -np.expm1(-2.0 * np.asarray(w, dtype=np.float64))


def _mean_sizes(total, n_steps, scale):
    """Per-chain means of the accumulated integer sizes (NaN without steps)."""
    if n_steps == 0:
        return np.full(total.shape[0], np.nan)
    return total.astype(np.float64) / (float(n_steps) * scale)


# --------------------------------------------------------------------------
# Kernels (no input checks)


@jit
def _find(parent, i):
    """Root of ``i``, halving the path on the way (every node points to its grandparent)."""
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


@jit
def _spins_int8(xc):
    """int8 copy of one chain's spins (+1 where ``x > 0``, else -1)."""
    s = np.empty(xc.shape[0], dtype=np.int8)
    for i in range(xc.shape[0]):
        s[i] = 1 if xc[i] > 0.0 else -1
    return s


@pjit
def sw_run(ei, ej, p, x, t0, n_steps, thin, rng, trace, sq_total):
    r"""Swendsen-Wang steps ``t0 .. t0 + n_steps - 1`` of every chain.

    One step: for every edge ``e = (ei[e], ej[e])`` in the given order, if the
    two spins are equal, draw ``u`` and put a bond when ``u < p[e]``
    (union-find, the larger root index linked below the smaller); then visit
    the sites in index order and, at the first site of each cluster, draw
    one 64-bit word whose top bit decides whether that cluster flips.
    ``sq_total[c]`` accumulates ``sum_C |C|^2`` over the steps (added to,
    so a run in chunks adds up to one call's total).
    """
    n, d = x.shape
    m = ei.shape[0]
    for c in prange(n):
        st = rng[c]
        s = _spins_int8(x[c])
        parent = np.empty(d, dtype=np.int64)
        decision = np.empty(d, dtype=np.int8)
        size = np.empty(d, dtype=np.int64)
        sq = 0
        for t in range(t0, t0 + n_steps):
            for i in range(d):
                parent[i] = i
                decision[i] = 0
                size[i] = 0
            for e in range(m):
                a = ei[e]
                b = ej[e]
                if s[a] == s[b]:
                    if nb_uniform(st) < p[e]:
                        ra = _find(parent, a)
                        rb = _find(parent, b)
                        if ra < rb:
                            parent[rb] = ra
                        elif rb < ra:
                            parent[ra] = rb
            for i in range(d):
                r = _find(parent, i)
                if decision[r] == 0:
                    decision[r] = 2 if (nb_next_u64(st) >> _S63) != 0 else 1
                size[r] += 1
                if decision[r] == 2:
                    s[i] = -s[i]
            for i in range(d):
                if parent[i] == i:
                    sq += size[i] * size[i]
            record(trace, c, s, t, thin)
        for i in range(d):
            x[c, i] = float(s[i])
        sq_total[c] += sq


@pjit
def wolff_run(indptr, indices, p, x, t0, n_steps, thin, rng, trace, size_total):
    r"""Wolff single-cluster flips ``t0 .. t0 + n_steps - 1`` of every chain.

    One step: a seed site drawn uniformly (``nb_randint``) is flipped and
    pushed on a stack; while the stack is not empty, pop ``i`` and, for each
    neighbour ``j`` of ``i`` in CSR order still equal to the seed's old
    spin, draw ``u`` and, when ``u < p_ij``, flip ``j`` and push it. Each
    bond is therefore tried at most once (a flipped site no longer matches).
    ``size_total[c]`` accumulates the flipped cluster sizes (added to).
    """
    n, d = x.shape
    for c in prange(n):
        st = rng[c]
        s = _spins_int8(x[c])
        stack = np.empty(d, dtype=np.int64)
        total = 0
        for t in range(t0, t0 + n_steps):
            seed = nb_randint(st, d)
            old = s[seed]
            s[seed] = -old
            stack[0] = seed
            top = 1
            size = 1
            while top > 0:
                top -= 1
                i = stack[top]
                for k in range(indptr[i], indptr[i + 1]):
                    j = indices[k]
                    if s[j] == old:
                        if nb_uniform(st) < p[k]:
                            s[j] = -old
                            stack[top] = j
                            top += 1
                            size += 1
            total += size
            record(trace, c, s, t, thin)
        for i in range(d):
            x[c, i] = float(s[i])
        size_total[c] += total


# --------------------------------------------------------------------------
# Public samplers



# Parameters, Returns and Raises are the same for both samplers: one text,
# filled into each docstring at import (the "{shared}" line).
_SHARED_DOC = """    Parameters
    ----------
    model : Ising
        ``domain="spin"``, zero field (``h = 0``, or ``field = 0`` for
        ``Ising.lattice``) and ferromagnetic couplings ``J >= 0`` on any
        coupling graph. A lattice model is used through its structure
        (``model.edges()``), so e.g. a 256 x 256 lattice needs no dense
        ``J``.
    x0 : ndarray of shape (n_chains, d) or (d,)
        Initial spins, -1.0/+1.0. Never modified.
    n_steps : int
        Number of steps (>= 0); see the definition of one step above.
    seed : int, numpy.random.SeedSequence or numpy.random.Generator
        Chain ``c`` draws only from its own stream: the same seed gives the
        same bits with any number of Numba threads, and chain ``c`` does not
        depend on how many chains run.
    thin : int, default 0
        Save the states after steps ``thin, 2 thin, ...`` (0: no trace).

    Returns
    -------
    ClusterSampleResult
        A :class:`SampleResult` (``x`` shaped like ``x0``,
        ``acceptance_rate=None``: every move is accepted, ``trace``,
        ``energies`` = ``model.energy`` of the final states) with one more
        field, ``mean_cluster_size`` (``(n_chains,)``; NaN when
        ``n_steps = 0``).

    Raises
    ------
    TypeError
        For a model that is not an ``Ising``, or a non-integer ``n_steps``,
        ``thin`` or a bad ``seed`` type.
    ValueError
        For ``domain="binary"`` (the message gives the equivalent spin
        model), a non-zero field, a negative coupling, ``x0`` of the wrong
        shape or outside {-1, +1}, ``n_steps < 0`` or ``thin < 0``.
"""


def _shared_doc(fn):
    fn.__doc__ = fn.__doc__.replace("    {shared}\n", _SHARED_DOC, 1)
    return fn


@_shared_doc
def swendsen_wang(model, x0, n_steps, seed, thin=0):
    r"""Swendsen-Wang cluster sampler for a zero-field ferromagnetic Ising model.

    One step is one full Fortuin-Kasteleyn decomposition followed by a
    random flip of every cluster:

    1. for every coupled pair ``i < j`` with ``s_i = s_j``, put a bond with
       probability :math:`p_{ij} = 1 - e^{-2 J_{ij}}` (``J`` already
       includes ``beta``; :math:`E(s) = -\tfrac12 s^\top J s`);
    2. flip each connected cluster of the bond graph (isolated sites
       included) independently with probability 1/2.

    The step leaves :math:`p(s) \propto e^{-E(s)}` invariant and satisfies
    detailed balance; it is ergodic for any ``J >= 0`` with every
    ``J_ij`` finite.

    {shared}
    Notes
    -----
    Random numbers of chain ``c``, step by step: one uniform per aligned
    edge in the order of ``model.edges()`` (bond iff ``u < p``), then one
    64-bit word per cluster, drawn at its lowest-index site (its top bit
    decides the flip). Clusters are found by union-find with path halving;
    one step costs O((d + m) alpha(d)) for ``m`` edges.
    ``mean_cluster_size`` is the mean over steps of
    :math:`\sum_C |C|^2 / d`.

    References
    ----------
    Swendsen, R. H. & Wang, J.-S. (1987). Nonuniversal critical dynamics in
    Monte Carlo simulations. Physical Review Letters 58(2), 86-88.
    Fortuin, C. M. & Kasteleyn, P. W. (1972). On the random-cluster model.
    Physica 57(4), 536-564.
    Edwards, R. G. & Sokal, A. D. (1988). Generalization of the
    Fortuin-Kasteleyn-Swendsen-Wang representation and Monte Carlo
    algorithm. Physical Review D 38(6), 2009-2012.
    """
    i, j, w = _check_model(model, "swendsen_wang")
    prep = prepare(model, x0, n_steps, seed, thin)
    sq_total = np.zeros(prep.x.shape[0], dtype=np.int64)
    p = bond_probability(w)
    run_steps(prep, lambda t0, count: sw_run(i, j, p, prep.x, t0, count, prep.thin, prep.rng, prep.trace,
                                             sq_total), "swendsen_wang")
    return _result(model, prep, sq_total, model.n_features)


@_shared_doc
def wolff(model, x0, n_steps, seed, thin=0):
    r"""Wolff single-cluster sampler for a zero-field ferromagnetic Ising model.

    One step is one single-cluster flip: pick a seed site uniformly at
    random, grow its cluster by adding each neighbour ``j`` of a cluster
    site ``i`` that has the seed's spin with probability
    :math:`p_{ij} = 1 - e^{-2 J_{ij}}` (``J`` already includes ``beta``;
    :math:`E(s) = -\tfrac12 s^\top J s`), each bond tried once, and flip the
    whole cluster. A step thus costs O(|C|) (plus the neighbours of the
    cluster), not O(d): compare samplers per unit of work, e.g. per
    ``d / mean_cluster_size`` steps (one "sweep equivalent").

    The step satisfies detailed balance with respect to
    :math:`p(s) \propto e^{-E(s)}`; it is ergodic for any ``J >= 0`` with
    every ``J_ij`` finite (with ``J = 0`` it flips one random spin per step).

    {shared}
    Notes
    -----
    Random numbers of chain ``c``, step by step: the seed site
    (``nb_randint``), then one uniform per tested bond, in stack order
    (last in, first out) and, within a site, in increasing neighbour index.
    ``mean_cluster_size`` is the mean size of the flipped clusters.

    References
    ----------
    Wolff, U. (1989). Collective Monte Carlo updating for spin systems.
    Physical Review Letters 62(4), 361-364.
    """
    i, j, w = _check_model(model, "wolff")
    prep = prepare(model, x0, n_steps, seed, thin)
    d = model.n_features
    indptr, indices, p = csr_from_edges(i, j, bond_probability(w), d)
    size_total = np.zeros(prep.x.shape[0], dtype=np.int64)
    run_steps(prep, lambda t0, count: wolff_run(indptr, indices, p, prep.x, t0, count, prep.thin, prep.rng,
                                                prep.trace, size_total), "wolff")
    return _result(model, prep, size_total, 1.0)


def _result(model, prep, total, scale):
    base = finish(prep, final_energies(model, prep.x))
    return ClusterSampleResult(
        x=base.x, acceptance_rate=None, trace=base.trace, energies=base.energies,
        mean_cluster_size=_mean_sizes(total, prep.n_steps, scale),
    )
