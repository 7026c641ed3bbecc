"""Swendsen-Wang and Wolff (ebm_ref.samplers.cluster).

1. Exact kernels: the transition matrices of both algorithms, built by
   enumerating every bond configuration (see ``sw_matrix`` and
   ``wolff_matrix``), leave the exact Boltzmann distribution invariant and
   satisfy detailed balance, on a 3x3 torus (512 states), a random 7-spin
   graph with J >= 0, a 2x2 torus (doubled bonds) and a free 2x3 lattice;
   the same matrices with a planted bug do not.
2. The Numba kernels against exact probabilities: N = 20 000 chains from
   exact draws and from a fixed state, pooled chi-square at alpha = 1e-4,
   and the same test rejects the kernels fed the wrong bond probability and
   a serial Swendsen-Wang that bonds anti-aligned pairs (the same code
   without that bug passes).
3. Beyond enumeration: energy and specific heat of a 16 x 16 torus against
   Kaufman's exact values (with the wrong-bond mutant as negative control).
4. Reproducibility (1 vs 2 threads, chain prefixes), large couplings, a
   256 x 256 lattice without a dense J, and the error messages.
"""

import functools
import math
import pathlib
import textwrap

import numba
import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

from _threads_harness import run_at_thread_counts
from ebm_ref.energies import RBM, Ising
from ebm_ref.exact import ising_energy_2d, ising_specific_heat_2d
from ebm_ref.observables import ising_observables
from ebm_ref.samplers import SampleResult, swendsen_wang, wolff
from ebm_ref.samplers import cluster
from test_sampler_kernels import chi2_pvalue

REPO = pathlib.Path(__file__).resolve().parent.parent
ALPHA = 1e-4  # false-failure rate of every statistical assertion below
N_CHAINS = 20_000
SAMPLERS = {"sw": swendsen_wang, "wolff": wolff}
BETA_C = 0.5 * math.log(1.0 + math.sqrt(2.0))


# ----------------------------------------------------------- small models


def all_spins(d):
    """All 2^d spin states; unit 0 is the most significant bit of the index."""
    bits = (np.arange(2**d)[:, None] >> np.arange(d - 1, -1, -1)) & 1
    return 2.0 * bits - 1.0


def state_index(x):
    d = x.shape[1]
    return (((x + 1.0) / 2.0) @ (2.0 ** np.arange(d - 1, -1, -1))).astype(np.int64)


def exact_pi(model):
    e = model.energy(all_spins(model.n_features))
    return np.exp(-e - logsumexp(-e))


def torus3(K=0.4):
    return Ising.lattice(3, K)


def random_graph(seed=5, d=7):
    """Random graph on 7 spins, J >= 0 with a weak (0.05) and a strong (2.5) bond."""
    r = np.random.default_rng(seed)
    J = np.zeros((d, d))
    iu = np.triu_indices(d, 1)
    keep = r.random(iu[0].size) < 0.6
    J[iu[0][keep], iu[1][keep]] = r.uniform(0.1, 1.2, keep.sum())
    J[0, 1], J[2, 3] = 0.05, 2.5
    return Ising(J + J.T, np.zeros(d))


MODELS = {
    "torus3": torus3,
    "graph7": random_graph,
    # L = 2: the two bonds of each neighbour pair add up, J_ij = 2 beta
    "torus2": lambda: Ising.lattice(2, 0.3),
    "free2x3": lambda: Ising.lattice((2, 3), 0.7, boundary="free"),
}


def true_p(w):
    return -np.expm1(-2.0 * w)


def wrong_p(w):  # the planted bug: the factor 2 of s_i s_j = +-1 forgotten
    return -np.expm1(-w)


# ----------------------------------------------- exact transition matrices


def bond_components(d, ei, ej):
    """Every bond configuration ``b`` (bit e = edge e open) and its clusters.

    Returns ``B`` (2^m, m) bool and ``lab`` (2^m, d): the smallest site index
    of each site's cluster, built edge by edge (cached per graph).
    """
    return _bond_components(d, tuple(ei), tuple(ej))


@functools.lru_cache(maxsize=None)
def _bond_components(d, ei, ej):
    m = len(ei)
    B = ((np.arange(2**m)[:, None] >> np.arange(m)) & 1).astype(bool)
    lab = np.empty((2**m, d), dtype=np.int64)
    lab[0] = np.arange(d)
    for e in range(m):
        # configurations whose highest open edge is e: those of the lower
        # edges, then edge e merges the two clusters (labels are cluster minima)
        prev = lab[: 2**e]
        la, lb = prev[:, ei[e]], prev[:, ej[e]]
        lo, hi = np.minimum(la, lb), np.maximum(la, lb)
        lab[2**e : 2 ** (e + 1)] = np.where(prev == hi[:, None], lo[:, None], prev)
    return B, lab


def subset_sums(g, m):
    """``G[M] = sum_{b subset of M} g[b]`` for every mask M (zeta transform)."""
    G = g.copy()
    for e in range(m):
        v = G.reshape(-1, 2, 2**e)
        v[:, 1, :] += v[:, 0, :]
    return G


def sw_matrix(model, p_fn=true_p, any_pair=False):
    r"""Exact Swendsen-Wang matrix ``T[s, s']``.

    With ``A(s)`` the aligned edges and ``r_e = p_e / (1 - p_e)``, a bond
    set ``b`` subset of ``A(s)`` has probability ``Q(s) prod_{e in b} r_e``,
    ``Q(s) = prod_{e in A(s)} (1 - p_e)``, and then each of its ``c(b)``
    clusters flips with probability 1/2. ``s'`` is reachable from ``b`` iff
    every bond joins two sites with ``s'_i = s'_j``, i.e. ``b`` is inside
    ``A(s) & A(s')``; so ``T[s, s'] = Q(s) G[A(s) & A(s')]`` with
    ``G[M] = sum_{b subset of M} prod r_e 2^{-c(b)}``. ``any_pair``: the
    planted bug of bonding every coupled pair (aligned or not); then ``s'``
    is reachable iff ``s_i s'_i = s_j s'_j`` on every bond.
    """
    d = model.n_features
    ei, ej, w = model.edges()
    p = p_fn(w)
    m = len(ei)
    B, lab = bond_components(d, ei, ej)
    c = (lab == np.arange(d)).sum(axis=1)
    G = subset_sums(np.exp(B.astype(float) @ np.log(p / (1.0 - p))) * 0.5**c, m)
    S = all_spins(d)
    bit = 1 << np.arange(m)
    if any_pair:
        prod = S[:, None, :] * S[None, :, :]
        M = (prod[..., ei] == prod[..., ej]) @ bit
        return np.exp(np.log1p(-p).sum()) * G[M]
    same = S[:, ei] == S[:, ej]
    A = same @ bit
    Q = np.exp(same @ np.log1p(-p))
    return Q[:, None] * G[A[:, None] & A[None, :]]


def wolff_matrix(model, p_fn=true_p):
    r"""Exact Wolff matrix ``T[s, s']``.

    The grown cluster of a seed is distributed as the seed's cluster in
    independent percolation on the aligned edges (each tested bond is a
    fresh coin, and each bond is tested at most once). So ``s -> s'``, with
    ``C`` the set where they differ, has probability
    ``|C|/d * conn(C) * prod_{aligned e leaving C} (1 - p_e)`` when ``s``
    is constant on ``C`` (else 0), where ``conn(C)`` is the probability
    that the open bonds among the edges inside ``C`` connect ``C``; the
    diagonal is 0 (the seed always flips).
    """
    d = model.n_features
    ei, ej, w = model.edges()
    p = p_fn(w)
    B, lab = bond_components(d, ei, ej)
    m = len(ei)
    site_bit = 1 << np.arange(d)
    subsets = (np.arange(2**d)[:, None] >> np.arange(d)) & 1  # row C: membership
    inside = subsets[:, ei] & subsets[:, ej]  # edges inside C
    inside_mask = inside @ (1 << np.arange(m))
    log_closed = inside @ np.log1p(-p)  # every edge inside C closed
    # b open, the rest of the edges inside C closed (for b inside C)
    log_open = B.astype(float) @ (np.log(p) - np.log1p(-p))
    b_mask = np.arange(2**m)
    keys, terms = [], []
    for v in range(d):
        C = (lab == v) @ site_bit  # cluster of v in each configuration
        ok = (lab[:, v] == v) & (b_mask & ~inside_mask[C] == 0)  # v is the root, b inside C
        keys.append(C[ok])
        terms.append(np.exp(log_open[ok] + log_closed[C[ok]]))
    keys, terms = np.concatenate(keys), np.concatenate(terms)
    order = np.argsort(keys, kind="stable")
    keys, terms = keys[order], terms[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    conn = np.zeros(2**d)
    for a, b in zip(starts, np.r_[starts[1:], keys.size]):
        # up to 2^17 terms for C = every site: exact summation (fsum), since
        # a running sum drifts by ~4e-13 and would hide in the 1e-12 budget
        conn[keys[a]] = math.fsum(terms[a:b])
    S = all_spins(d)
    n_states = 2**d
    flip = subsets @ (1 << np.arange(d - 1, -1, -1))  # index xor of flipping C
    size = subsets.sum(axis=1)
    T = np.zeros((n_states, n_states))
    for C in range(1, 2**d):
        members = subsets[C].astype(bool)
        vals = S[:, members]
        const = np.all(vals == vals[:, :1], axis=1)
        leaving = members[ei] != members[ej]
        aligned = S[:, ei] == S[:, ej]
        out = np.exp((aligned & leaving) @ np.log1p(-p))
        a = np.flatnonzero(const)
        T[a, a ^ flip[C]] = size[C] / d * conn[C] * out[a]
    return T


def invariance_error(T, pi):
    return np.abs(pi @ T - pi).sum()


def balance_error(T, pi):
    F = pi[:, None] * T
    return np.abs(F - F.T).max()


@pytest.fixture(scope="module")
def matrices():
    out = {}
    for name, make in MODELS.items():
        model = make()
        out[name] = (model, exact_pi(model), {"sw": sw_matrix(model), "wolff": wolff_matrix(model)})
    return out


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("alg", ["sw", "wolff"])
def test_exact_kernels_are_stochastic_invariant_and_reversible(matrices, name, alg):
    model, pi, Ts = matrices[name]
    T = Ts[alg]
    assert np.abs(T.sum(axis=1) - 1.0).max() < 1e-13  # every row a distribution
    assert invariance_error(T, pi) < 1e-12
    assert balance_error(T, pi) < 1e-15  # pi_a T_ab <= 1: ~10 roundings of size 1e-16 at most


def test_exact_kernels_are_ergodic(matrices):
    # all states reached with positive probability: T^k > 0 for some k
    for model, pi, Ts in matrices.values():
        for T in Ts.values():
            assert np.all(np.linalg.matrix_power(T, 10) > 0.0)


def test_exact_kernels_at_another_temperature_and_large_coupling():
    # near the critical point, and strong bonds (p = 1 - e^-10)
    for K in (0.4407, 1.5):
        model = torus3(K)
        pi = exact_pi(model)
        for T in (sw_matrix(model), wolff_matrix(model)):
            assert invariance_error(T, pi) < 1e-12


@pytest.mark.parametrize("name", list(MODELS))
def test_planted_bugs_break_invariance(name):
    model = MODELS[name]()
    pi = exact_pi(model)
    # Each mutant is the exact kernel of another distribution: bonds with
    # 1 - e^{-J} leave the model at J/2 invariant; bonds on anti-aligned
    # pairs mix states the model tells apart. Measured L1 errors (the three
    # mutants below): 0.72 / 0.23 / 0.91 (3x3 torus), 0.56 / 0.079 / 0.91
    # (7-spin graph), 0.44 / 0.23 / 0.68 (2x2 torus), 0.60 / 0.23 / 0.86
    # (free 2x3), against < 2e-15 for the correct kernels: a margin of 1e-2
    # separates them by 10 orders of magnitude.
    mutants = {
        "sw 1-exp(-J)": sw_matrix(model, wrong_p),
        "sw bonds on any pair": sw_matrix(model, any_pair=True),
        "wolff 1-exp(-J)": wolff_matrix(model, wrong_p),
    }
    for what, T in mutants.items():
        assert np.abs(T.sum(axis=1) - 1.0).max() < 1e-13, what  # still a kernel
        assert invariance_error(T, pi) > 1e-2, what


# ------------------------------------------- the Numba kernels, statistically


def _sample(alg, model, k, start, seed):
    pi = exact_pi(model)
    d = model.n_features
    if start is None:
        idx = np.random.default_rng(seed).choice(len(pi), size=N_CHAINS, p=pi)
        x0 = all_spins(d)[idx]
    else:
        x0 = np.repeat(np.asarray(start, float)[None], N_CHAINS, axis=0)
    return SAMPLERS[alg](model, x0, k, seed + 1000)


def _mixing_steps(T, pi, row, limit=1000):
    """Smallest k with chi-square divergence of the exact k-step law from
    state ``row`` to pi below 1e-6. The expected chi-square statistic of
    N = 20 000 draws from that law then exceeds its null value by about
    N * 1e-6 = 0.02, against a null standard deviation sqrt(2 df) >= 1: the
    false-failure rate stays alpha."""
    law = np.zeros(len(pi))
    law[row] = 1.0
    for k in range(1, limit + 1):
        law = law @ T
        if np.sum((law - pi) ** 2 / pi) < 1e-6:
            return k
    raise AssertionError("the exact chain does not mix within the limit")


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("alg", ["sw", "wolff"])
@pytest.mark.parametrize("fixed", [False, True], ids=["exact-start", "fixed-start"])
def test_kernels_match_exact_probabilities(matrices, name, alg, fixed):
    model, pi, Ts = matrices[name]
    d = model.n_features
    start = np.ones(d) if fixed else None  # the all-+1 state is the last row
    k = _mixing_steps(Ts[alg], pi, len(pi) - 1) if fixed else 5
    res = _sample(alg, model, k, start, seed=11)
    counts = np.bincount(state_index(res.x), minlength=len(pi))
    p = chi2_pvalue(counts, pi)
    assert p > ALPHA, p  # alpha = 1e-4: an exact sampler fails with probability 1e-4


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("alg", ["sw", "wolff"])
def test_kernels_with_the_wrong_bond_probability_are_rejected(monkeypatch, name, alg):
    # the mutant: the production kernel fed p = 1 - exp(-J) (patched here)
    model = MODELS[name]()
    pi = exact_pi(model)
    monkeypatch.setattr(cluster, "bond_probability", wrong_p)
    res = _sample(alg, model, 5, None, seed=11)
    counts = np.bincount(state_index(res.x), minlength=len(pi))
    p = chi2_pvalue(counts, pi)
    assert p < 1e-6, p  # the same alpha = 1e-4 test rejects it with a wide margin


@numba.njit(cache=True)
def _sw_serial(ei, ej, p, x, n_steps, seed, any_pair):
    """Plain serial Swendsen-Wang; ``any_pair=True`` plants a bug: bonds on
    every coupled pair, aligned or not (NumPy's legacy stream, seeded
    inside the jitted code)."""
    np.random.seed(seed)
    n, d = x.shape
    parent = np.empty(d, dtype=np.int64)
    flip = np.empty(d, dtype=np.int64)
    for c in range(n):
        for _ in range(n_steps):
            for i in range(d):
                parent[i] = i
                flip[i] = -1
            for e in range(ei.shape[0]):
                a, b = ei[e], ej[e]
                if (any_pair or x[c, a] == x[c, b]) and np.random.random() < p[e]:
                    while parent[a] != a:
                        a = parent[a]
                    while parent[b] != b:
                        b = parent[b]
                    if a != b:
                        parent[max(a, b)] = min(a, b)
            for i in range(d):
                r = i
                while parent[r] != r:
                    r = parent[r]
                if flip[r] < 0:
                    flip[r] = 1 if np.random.random() < 0.5 else 0
                if flip[r] == 1:
                    x[c, i] = -x[c, i]
    return x


@pytest.mark.parametrize("name", list(MODELS))
def test_sw_kernel_bonding_any_pair_is_rejected(name):
    # a second kernel mutant (in this file): the exact matrix of this bug
    # misses pi by 0.08-0.23 in L1; the same chi-square test must reject it,
    # while the same serial code without the bug passes it
    model = MODELS[name]()
    pi = exact_pi(model)
    ei, ej, w = model.edges()
    idx = np.random.default_rng(11).choice(len(pi), size=N_CHAINS, p=pi)
    p_values = {}
    for bug in (False, True):
        x = _sw_serial(ei, ej, true_p(w), all_spins(model.n_features)[idx], 5, 12, bug)
        counts = np.bincount(state_index(x), minlength=len(pi))
        p_values[bug] = chi2_pvalue(counts, pi)
    assert p_values[False] > ALPHA, p_values  # alpha = 1e-4 for the correct code
    assert p_values[True] < 1e-6, p_values


@pytest.mark.parametrize("alg", ["sw", "wolff"])
def test_testing_kit_accepts_the_samplers(alg):
    # the same question through ebm_ref.testing.check_sampler, as a user would
    # ask it of their own implementation (its own alpha = 1e-4 test)
    from ebm_ref.testing import check_sampler

    def sample(params, x0, n_steps, rng):
        return SAMPLERS[alg](Ising(params["J"], params["h"]), x0, n_steps, rng).x

    check_sampler(sample, random_graph(), n_steps=5, seed=3).assert_ok()


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("alg", ["sw", "wolff"])
def test_mean_cluster_size_is_the_improved_susceptibility_estimator(name, alg):
    # E|cluster of a uniform site| = (1/d) sum_ij P(i, j in one FK cluster)
    # = (1/d) sum_ij E[s_i s_j] = E[(sum_i s_i)^2] / d, in every stationary step
    model = MODELS[name]()
    pi = exact_pi(model)
    d = model.n_features
    truth = pi @ all_spins(d).sum(axis=1) ** 2 / d
    res = _sample(alg, model, 4, None, seed=21)
    m = res.mean_cluster_size  # iid over chains (independent exact starts)
    z = (m.mean() - truth) / (m.std(ddof=1) / np.sqrt(m.size))
    assert abs(z) < stats.norm.isf(ALPHA / 2), z  # two-sided, alpha = 1e-4


def _kaufman_z(alg, n_steps, beta, L=16, k=16):
    """z-scores of the energy and specific heat per site of ``k`` chains of
    ``n_steps`` steps on the periodic L x L torus against Kaufman's exact
    values. Chains start from Swendsen-Wang-equilibrated states (100 steps,
    > 10 autocorrelation times at L = 16); error bars from
    ebm_ref.observables (Sokal-window tau for the mean energy, blocking and
    jackknife for the specific heat)."""
    model = Ising.lattice(L, beta)
    x0 = swendsen_wang(model, _start(k, L * L, seed=4), 100, 5).x
    res = SAMPLERS[alg](model, x0, n_steps, 6, thin=1)
    trace = res.trace.reshape(-1, L * L)
    H = (model.energy(trace) / beta).reshape(n_steps, k)  # physical energy, total
    M = trace.sum(axis=1).reshape(n_steps, k)
    obs = ising_observables(H, M, beta, L * L)
    z_e = (obs["energy"].value - ising_energy_2d(L, beta)) / obs["energy"].stderr
    z_c = (obs["specific_heat"].value - ising_specific_heat_2d(L, beta)) / obs["specific_heat"].stderr
    return z_e, z_c


# two two-sided z-tests per run, Bonferroni: alpha = 1e-4 for the pair
KAUFMAN_LIMIT = stats.norm.isf(ALPHA / 4)


@pytest.mark.parametrize("alg,n_steps", [("sw", 1500), ("wolff", 3000)])
@pytest.mark.parametrize("beta", [0.3, BETA_C])
def test_energy_and_specific_heat_of_a_16x16_torus_match_kaufman(alg, n_steps, beta):
    # beyond enumeration: 2^256 states, exact values from Kaufman's formula
    z_e, z_c = _kaufman_z(alg, n_steps, beta)
    assert abs(z_e) < KAUFMAN_LIMIT and abs(z_c) < KAUFMAN_LIMIT, (z_e, z_c)


@pytest.mark.parametrize("alg,n_steps", [("sw", 300), ("wolff", 600)])
def test_kaufman_check_rejects_the_wrong_bond_probability(monkeypatch, alg, n_steps):
    # negative control (5x shorter runs): measured |z| of the energy 593 (SW)
    # and 95 (Wolff) at the full lengths, beta = 0.3
    monkeypatch.setattr(cluster, "bond_probability", wrong_p)
    z_e, _ = _kaufman_z(alg, n_steps, 0.3)
    assert abs(z_e) > KAUFMAN_LIMIT, z_e


# ------------------------------------------------------------ API contract


def _start(n, d, seed=0):
    return 2.0 * (np.random.default_rng(seed).random((n, d)) < 0.5) - 1.0


@pytest.mark.parametrize("alg", ["sw", "wolff"])
def test_result_contract_and_trace(alg):
    model = random_graph()
    x0 = _start(6, 7)
    x0_copy = x0.copy()
    res = SAMPLERS[alg](model, x0, 9, 3, thin=4)
    assert isinstance(res, SampleResult) and res.acceptance_rate is None
    assert np.array_equal(x0, x0_copy)  # never mutated
    assert res.x.shape == (6, 7) and res.trace.shape == (2, 6, 7)
    assert res.energies.shape == (6,) and res.mean_cluster_size.shape == (6,)
    np.testing.assert_allclose(res.energies, model.energy(res.x), rtol=0, atol=1e-12)
    # the trace holds the states after steps 4 and 8
    r8 = SAMPLERS[alg](model, x0, 8, 3)
    assert np.array_equal(res.trace[1], r8.x)
    assert np.array_equal(res.trace[0], SAMPLERS[alg](model, x0, 4, 3).x)
    assert np.all(res.mean_cluster_size >= 1.0) and np.all(res.mean_cluster_size <= 7.0)
    # n_steps = 0 returns x0, single state gives a single state
    r0 = SAMPLERS[alg](model, x0, 0, 3)
    assert np.array_equal(r0.x, x0) and np.all(np.isnan(r0.mean_cluster_size))
    r1 = SAMPLERS[alg](model, x0[0], 5, 3)
    assert r1.x.shape == (7,)


@pytest.mark.parametrize("alg", ["sw", "wolff"])
def test_chain_prefix_and_same_seed(alg):
    model = Ising.lattice(6, 0.44)
    x0 = _start(37, 36)
    a = SAMPLERS[alg](model, x0, 11, 7, thin=5)
    b = SAMPLERS[alg](model, x0[:10], 11, 7, thin=5)
    c = SAMPLERS[alg](model, x0, 11, 7, thin=5)
    for f in ("x", "trace", "energies", "mean_cluster_size"):
        assert np.array_equal(getattr(a, f)[..., :10, :] if f in ("x", "trace") else getattr(a, f)[:10],
                              getattr(b, f)), f
        assert np.array_equal(getattr(a, f), getattr(c, f)), f
    # a Generator seed advances: two calls differ
    g = np.random.default_rng(0)
    assert not np.array_equal(SAMPLERS[alg](model, x0, 3, g).x, SAMPLERS[alg](model, x0, 3, g).x)


SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from ebm_ref.energies import Ising
    from ebm_ref.samplers import swendsen_wang, wolff
    J = np.zeros((9, 9)); J[np.triu_indices(9, 1)] = np.linspace(0.0, 1.0, 36); J = J + J.T
    models = {"dense": Ising(J, np.zeros(9)), "lat": Ising.lattice(16, 0.44), "lat5": Ising.lattice((5, 4), 0.3)}
    out = {}
    for name, model in models.items():
        d = model.n_features
        x0 = 2.0 * (np.random.default_rng(1).random((13, d)) < 0.5) - 1.0
        for alg, f in (("sw", swendsen_wang), ("wolff", wolff)):
            r = f(model, x0, 9, 42, thin=3)
            for k in ("x", "trace", "energies", "mean_cluster_size"):
                out[f"{name}/{alg}/{k}"] = getattr(r, k)
    np.savez(sys.argv[1], **out)
    """
)


def test_bit_identical_with_one_and_two_threads(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    results = run_at_thread_counts(script, tmp_path)
    assert len(results[0]) == 3 * 2 * 4
    for k in results[0]:
        assert np.array_equal(results[0][k], results[1][k]), k


@pytest.mark.parametrize("alg", ["sw", "wolff"])
def test_large_couplings_align_each_component(alg):
    # J = 50: p = 1 - e^-100 rounds to 1, every aligned pair is bonded; the
    # stationary law is (up to e^-100) the two aligned states, reached quickly
    model = Ising.lattice(4, 50.0)
    res = SAMPLERS[alg](model, _start(40, 16), 200, 1)
    assert np.all(np.abs(res.x.sum(axis=1)) == 16)
    assert np.all(np.isfinite(res.energies)) and np.all(res.energies == -50.0 * 32)
    # both signs occur (the global flip is a cluster move)
    assert 0 < np.sum(res.x[:, 0] > 0) < 40


def test_large_lattice_without_dense_J():
    # 256 x 256: a dense J would hold 4.3e9 entries; the samplers use the structure
    model = Ising.lattice(256, 0.3)
    x0 = np.ones((1, 256 * 256))
    for f in (swendsen_wang, wolff):
        res = f(model, x0, 2, 0)
        assert res.x.shape == x0.shape and np.all(np.abs(res.x) == 1.0)
        # two summation orders of 2 d = 131 072 bond terms: they may differ by
        # up to about 2 d eps = 1.5e-11 relative (1.2e-12 measured)
        np.testing.assert_allclose(res.energies, model.energy(res.x), rtol=2e-11)


def test_no_couplings():
    # J = 0: SW flips each spin with probability 1/2, Wolff flips one random spin
    model = Ising(np.zeros((3, 3)), np.zeros(3))
    x0 = np.ones((4000, 3))
    r = wolff(model, x0, 1, 0)
    assert np.all(r.x.sum(axis=1) == 1.0) and np.all(r.mean_cluster_size == 1.0)
    r = swendsen_wang(model, x0, 1, 0)
    counts = np.bincount(state_index(r.x), minlength=8)
    assert chi2_pvalue(counts, np.full(8, 1 / 8)) > ALPHA  # uniform, alpha = 1e-4


# ------------------------------------------------------------------ errors


BAD = [
    (lambda: Ising.lattice(3, 0.4, domain="binary"), ValueError, "domain='spin'.*J/4"),
    (lambda: Ising.lattice(3, 0.4, field=0.1), ValueError, "zero field.*field=0.1"),
    (lambda: Ising(np.zeros((2, 2)), [0.0, 0.2]), ValueError, r"zero field h; got h\[1\] = 0.2"),
    (lambda: Ising.lattice(3, 0.4, coupling=-1.0), ValueError, "ferromagnetic.*coupling=-1.0"),
    (lambda: Ising(np.array([[0, 1.0, -0.5], [1.0, 0, 0], [-0.5, 0, 0]]), np.zeros(3)), ValueError,
     r"J\[0, 2\] = -0.5"),
    (lambda: RBM(np.zeros((2, 2)), np.zeros(2), np.zeros(2)), TypeError, "does not support RBM"),
]


@pytest.mark.parametrize("alg", ["sw", "wolff"])
@pytest.mark.parametrize("make,exc,msg", BAD)
def test_bad_models(alg, make, exc, msg):
    model = make()
    with pytest.raises(exc, match=msg):
        SAMPLERS[alg](model, np.ones((2, model.n_features)), 1, 0)


@pytest.mark.parametrize("alg", ["sw", "wolff"])
def test_bad_arguments(alg):
    f = SAMPLERS[alg]
    model = torus3()
    with pytest.raises(ValueError, match="x0.*-1.0/\\+1.0"):
        f(model, np.zeros((2, 9)), 1, 0)
    with pytest.raises(ValueError, match="x0.*shape"):
        f(model, np.ones((2, 8)), 1, 0)
    with pytest.raises(ValueError, match="n_steps"):
        f(model, np.ones(9), -1, 0)
    with pytest.raises(TypeError, match="n_steps"):
        f(model, np.ones(9), 1.5, 0)
    with pytest.raises(ValueError, match="thin"):
        f(model, np.ones(9), 1, 0, thin=-1)
    with pytest.raises(TypeError, match="seed"):
        f(model, np.ones(9), 1, None)
