"""Replica exchange: ``samplers.parallel_tempering`` and ``tempered`` models.

What is shown (see docs/parallel-tempering.md for the algorithm):

* ``RBM.tempered`` is the visible marginal of ``exp(-beta E(v, h))``
  (brute force over v and h), and the base class refuses to temper;
* the exact transition matrix of one full replica-exchange step (local
  moves at every temperature, then the swap move of either parity) leaves
  the exact product distribution over replicas invariant to 1e-12, for a
  3x2 RBM (Gibbs and flip moves) and small Ising models (3 units, 3
  replicas; 2 units, 4 replicas, so that one swap move holds two pairs);
  a swap ratio with the temperatures the wrong way round breaks it;
* the implementation *is* that matrix: the joint states of 20,000 chains
  after one and two steps from a fixed joint state follow the matrix rows
  (chi-square), and the planted wrong ratio fails the same test;
* the beta = 1 chains follow the exact marginal, from exact starts (every
  sampler) and from a fixed start in a bimodal RBM where plain Gibbs fails
  the same test; the planted bug fails from exact starts;
* the pooled swap rates match their exact expectation under the product
  distribution (z-test), and the planted bug fails it;
* reproducibility (1 vs 2 threads in subprocesses, chain prefixes, the
  local moves are the public samplers) and bad-input errors.

False-failure rates: every chi-square and z-test below is a one-sided test
at ``ALPHA = 1e-4`` (an exact sampler fails it with probability 1e-4;
tests that make several comparisons divide ALPHA between them, Bonferroni);
all seeds are fixed, so a run is deterministic and the stated rate is the
probability that a correct implementation would have drawn a failing seed.
"""

import pathlib
import textwrap

import numpy as np
import pytest
from scipy import stats

from _threads_harness import run_at_thread_counts
from ebm_ref.energies import GRBM, RBM, Ising, StudentT
from ebm_ref.energies._base import EnergyModel
from ebm_ref.samplers import TemperingResult, gibbs, parallel_tempering
from ebm_ref.samplers import tempering as pt_mod
from ebm_ref.testing._samplercheck import _pooled_chisquare, _state_index, enumerate_distribution
from zoo import random_rbm

REPO = pathlib.Path(__file__).resolve().parent.parent
ALPHA = 1e-4


def _rbm(seed=0, V=3, H=2, scale=2.0):
    return random_rbm(V, H, scale, bias_scale=1.0, seed=seed)


def _ising(d, scale, seed):
    return Ising.random(d, scale, seed=seed)


def _reversed_ratio(e_k_xk, e_k1_xk1, e_k_xk1, e_k1_xk):
    """Planted bug: the ratio with the two temperatures exchanged."""
    return (e_k_xk1 + e_k1_xk) - (e_k_xk + e_k1_xk1)


# ------------------------------------------------------------------ tempered


def test_rbm_tempered_is_the_marginal_of_the_scaled_joint():
    m = _rbm(1, V=4, H=3, scale=3.0)
    vs, _ = enumerate_distribution(m)
    hs, _ = enumerate_distribution(RBM(np.zeros((3, 1)), np.zeros(3), np.zeros(1)))
    for beta in (0.0, 0.3, 1.0):
        t = m.tempered(beta)
        assert isinstance(t, RBM) and t is not m
        # F_beta(v) = -log sum_h exp(-beta E(v, h)), by brute force over h
        joint = np.array([[m.joint_energy(v, h) for h in hs] for v in vs])
        f_brute = -np.logaddexp.reduce(-beta * joint, axis=1)
        np.testing.assert_allclose(t.energy(vs), f_brute, rtol=1e-13, atol=1e-13)
    np.testing.assert_array_equal(m.tempered(1.0).params["W"], m.params["W"])
    np.testing.assert_allclose(enumerate_distribution(m.tempered(0.0))[1], np.full(16, 1 / 16), rtol=1e-14)
    # large weights: no overflow at beta * |W| ~ 50
    big = RBM(np.full((3, 2), 50.0), np.full(3, -50.0), np.zeros(2)).tempered(0.9)
    assert np.all(np.isfinite(big.energy(vs[:8, :3])))


def test_tempered_bad_input_and_unsupported_models():
    m = _rbm()
    with pytest.raises(ValueError, match="beta"):
        m.tempered(-0.1)
    with pytest.raises(ValueError, match="beta"):
        m.tempered(np.inf)
    with pytest.raises(ValueError, match="beta"):
        m.tempered(np.nan)
    with pytest.raises(TypeError, match="beta"):
        m.tempered("1")
    with pytest.raises(TypeError, match="beta"):
        m.tempered(True)
    st = StudentT(np.zeros(2), np.zeros(2), np.zeros(2))
    with pytest.raises(ValueError, match="StudentT does not support tempering"):
        st.tempered(0.5)


# ---------------------------------------------------- exact transition matrix


def _kernel_gibbs_rbm(m):
    """Block Gibbs on v: T(v, v') = sum_h p(h|v) p(v'|h)."""
    vs, _ = enumerate_distribution(m)
    hs = enumerate_distribution(RBM(np.zeros((m.n_hidden, 1)), np.zeros(m.n_hidden), np.zeros(1)))[0]
    ph1 = m.prob_h_given_v(vs)  # (nv, H)
    p_h = np.prod(np.where(hs[None] == 1.0, ph1[:, None], 1 - ph1[:, None]), axis=2)  # (nv, nh)
    pv1 = m.prob_v_given_h(hs)  # (nh, V)
    p_v = np.prod(np.where(vs[None] == 1.0, pv1[:, None], 1 - pv1[:, None]), axis=2)  # (nh, nv)
    return p_h @ p_v


def _kernel_sweep(m):
    """Sequential heat-bath sweep (sites 0, ..., d-1), from energies only."""
    xs, _ = enumerate_distribution(m)
    n, d = xs.shape
    idx = {tuple(x): i for i, x in enumerate(xs)}
    T = np.eye(n)
    for site in range(d):
        M = np.zeros((n, n))
        for i, x in enumerate(xs):
            alts = []
            for val in (xs.min(), xs.max()):
                y = x.copy()
                y[site] = val
                alts.append(y)
            e = m.energy(np.array(alts))
            p = np.exp(-(e - e.min()))
            p /= p.sum()
            for y, py in zip(alts, p):
                M[i, idx[tuple(y)]] += py
        T = T @ M
    return T


def _kernel_flip(m):
    """Random-walk Metropolis, uniform single-unit flip: T(x, x^(i)) = min(1, e^{E(x) - E(x^(i))}) / d."""
    xs, _ = enumerate_distribution(m)
    n, d = xs.shape
    idx = {tuple(x): i for i, x in enumerate(xs)}
    e = m.energy(xs)
    lo, hi = xs.min(), xs.max()
    T = np.zeros((n, n))
    for i, x in enumerate(xs):
        for site in range(d):
            y = x.copy()
            y[site] = hi if x[site] == lo else lo
            j = idx[tuple(y)]
            T[i, j] += min(1.0, np.exp(e[i] - e[j])) / d
        T[i, i] += 1.0 - T[i].sum()
    return T


def _kron_all(mats):
    out = np.ones((1, 1))
    for M in mats:
        out = np.kron(out, M)
    return out


def _swap_matrix(models, parity, ratio=None):
    """Exact matrix of one swap move on joint states (replica 0 most significant)."""
    ratio = pt_mod._swap_log_ratio if ratio is None else ratio
    K = len(models)
    xs, _ = enumerate_distribution(models[0])
    n = xs.shape[0]
    E = np.array([m.energy(xs) for m in models])  # E[k, i] = E_k(x_i)
    joint = np.array(np.unravel_index(np.arange(n**K), (n,) * K)).T  # (n^K, K) state indices
    S = np.zeros((n**K, n**K))
    pairs = list(range(parity, K - 1, 2))
    for a, J in enumerate(joint):
        # each proposed pair independently: swap with its acceptance probability
        outcomes = [(J.copy(), 1.0)]
        for k in pairs:
            lr = ratio(E[k, J[k]], E[k + 1, J[k + 1]], E[k, J[k + 1]], E[k + 1, J[k]])
            acc = min(1.0, float(np.exp(lr)))
            new = []
            for state, p in outcomes:
                s = state.copy()
                s[k], s[k + 1] = state[k + 1], state[k]
                new += [(s, p * acc), (state, p * (1.0 - acc))]
            outcomes = new
        for state, p in outcomes:
            S[a, np.ravel_multi_index(tuple(state), (n,) * K)] += p
    return S


def _product_distribution(models):
    return _kron_all([enumerate_distribution(m)[1][None, :] for m in models])[0]


def _full_step(models, kernel, parity, ratio=None):
    return _kron_all([kernel(m) for m in models]) @ _swap_matrix(models, parity, ratio)


CASES_EXACT = [
    ("rbm-gibbs", lambda: _rbm(2), [0.3, 0.6, 1.0], _kernel_gibbs_rbm),
    ("rbm-flip", lambda: _rbm(3), [0.2, 0.55, 1.0], _kernel_flip),
    ("ising3-gibbs", lambda: _ising(3, 2.5, 4), [0.25, 0.6, 1.0], _kernel_sweep),
    ("ising2-4replicas", lambda: _ising(2, 3.0, 5), [0.1, 0.4, 0.7, 1.0], _kernel_sweep),
]


@pytest.mark.parametrize("name,make,betas,kernel", CASES_EXACT, ids=[c[0] for c in CASES_EXACT])
def test_exact_step_leaves_product_distribution_invariant(name, make, betas, kernel):
    model = make()
    models = [model.tempered(b) for b in betas]
    pi = _product_distribution(models)
    for parity in (0, 1):
        T = _full_step(models, kernel, parity)
        np.testing.assert_allclose(T.sum(axis=1), 1.0, rtol=0, atol=1e-12)
        assert np.max(np.abs(pi @ T - pi)) < 1e-12
        # negative control: the ratio with the temperatures reversed
        bad = _full_step(models, kernel, parity, ratio=_reversed_ratio)
        assert np.max(np.abs(pi @ bad - pi)) > 1e-3


def _joint_counts(res, n_states):
    """Counts of the joint replica states (replica 0 most significant)."""
    K = res.replicas.shape[0]
    idx = np.zeros(res.replicas.shape[1], dtype=np.int64)
    for k in range(K):
        idx = idx * n_states + _state_index(res.replicas[k], "binary" if res.replicas.min() >= 0 else "spin")
    return np.bincount(idx, minlength=n_states**K)


def _chi2_fails(counts, probs, alpha):
    keep = probs > 0
    if counts[~keep].sum() > 0:  # a state of probability 0 was reached
        return True, np.inf, 0
    stat, dof = _pooled_chisquare(counts[keep].astype(float), probs[keep] * counts.sum())
    return stat > stats.chi2.isf(alpha, dof), stat, dof


@pytest.mark.parametrize("name,make,betas,kernel", CASES_EXACT[:3], ids=[c[0] for c in CASES_EXACT[:3]])
def test_one_and_two_steps_follow_the_exact_matrix(name, make, betas, kernel, monkeypatch):
    model = make()
    models = [model.tempered(b) for b in betas]
    sampler = "rwmh" if kernel is _kernel_flip else "gibbs"
    xs, _ = enumerate_distribution(model)
    n = xs.shape[0]
    K = len(betas)
    T0 = _full_step(models, kernel, 0)
    T1 = _full_step(models, kernel, 1)
    # a start where the swaps matter: low-energy state at the hot end
    e = model.energy(xs)
    start = [int(np.argmin(e)), int(np.argmax(e)), int(np.argmax(e))][:K]
    a = np.ravel_multi_index(tuple(start), (n,) * K)
    n_chains = 20_000
    x0 = np.repeat(xs[start][:, None, :], n_chains, axis=1)
    alpha = ALPHA / 2  # two comparisons
    for n_steps, row in ((1, T0[a]), (2, (T0 @ T1)[a])):
        res = parallel_tempering(model, betas, x0, n_steps, seed=11, sampler=sampler)
        failed, stat, dof = _chi2_fails(_joint_counts(res, n), row, alpha)
        assert not failed, (n_steps, stat, dof)
    monkeypatch.setattr(pt_mod, "_swap_log_ratio", _reversed_ratio)
    res = parallel_tempering(model, betas, x0, 1, seed=11, sampler=sampler)
    assert _chi2_fails(_joint_counts(res, n), T0[a], alpha)[0]


# ------------------------------------------------- beta = 1 against exact p


def _exact_starts(models, n_chains, seed):
    """Per-replica exact samples, shape (K, n_chains, d)."""
    r = np.random.default_rng(seed)
    out = []
    for m in models:
        xs, p = enumerate_distribution(m)
        out.append(xs[r.choice(len(p), size=n_chains, p=p)])
    return np.stack(out)


def _marginal_fails(model, x, alpha=ALPHA):
    xs, p = enumerate_distribution(model)
    counts = np.bincount(_state_index(np.atleast_2d(x), model.domain), minlength=len(p))
    return _chi2_fails(counts, p, alpha)


MARGINAL_MODELS = {
    "rbm": lambda: _rbm(6, V=5, H=3, scale=1.5),
    "ising": lambda: _ising(5, 2.5, 7),
    # a 3x3 periodic lattice (3-colour checkerboard) in a field, below T_c
    "lattice": lambda: Ising.lattice(3, 0.6, field=0.1),
}


@pytest.mark.parametrize("sampler", ["gibbs", "gwg", "rwmh"])
@pytest.mark.parametrize("which", list(MARGINAL_MODELS))
def test_beta1_marginal_from_exact_starts(sampler, which):
    model = MARGINAL_MODELS[which]()
    betas = [0.2, 0.5, 0.8, 1.0]
    x0 = _exact_starts([model.tempered(b) for b in betas], 20_000, seed=1)
    res = parallel_tempering(model, betas, x0, 6, seed=2, sampler=sampler, swap_every=2)
    failed, stat, dof = _marginal_fails(model, res.x)
    assert not failed, (stat, dof)


def test_planted_reversed_ratio_fails_from_exact_starts(monkeypatch):
    model = _rbm(6, V=5, H=3, scale=1.5)
    betas = [0.2, 0.5, 0.8, 1.0]
    x0 = _exact_starts([model.tempered(b) for b in betas], 20_000, seed=1)
    monkeypatch.setattr(pt_mod, "_swap_log_ratio", _reversed_ratio)
    res = parallel_tempering(model, betas, x0, 6, seed=2, swap_every=2)
    assert _marginal_fails(model, res.x)[0]


def _bimodal_rbm():
    """Two modes, v = 0 and v = 1 (6 units), separated by a barrier plain Gibbs does not cross.

    With k units on, p(v) is proportional to exp(-4k) (1 + exp(6k - 12)):
    1 at k = 0 and at k = 6, about 2.5e-3 at k = 3. From v = 0, plain Gibbs
    turns the hidden unit on with probability sigmoid(-12) ~ 6e-6 per step.
    """
    V = 6
    return RBM(np.full((V, 1), 6.0), np.full(V, -4.0), np.array([-12.0]))


@pytest.mark.slow
def test_fixed_start_bimodal_rbm_mixes_where_plain_gibbs_does_not():
    model = _bimodal_rbm()
    _, p = enumerate_distribution(model)
    assert p[0] > 0.2 and p[-1] > 0.2  # both modes carry mass
    betas = np.linspace(0.0, 1.0, 8)
    x0 = np.zeros((20_000, 6))
    res = parallel_tempering(model, betas, x0, 60, seed=3)
    failed, stat, dof = _marginal_fails(model, res.x, ALPHA / 2)
    assert not failed, (stat, dof)
    # negative control: plain Gibbs at beta = 1 with the same number of steps stays in its mode
    plain = gibbs(model, x0, 60, seed=3)
    assert _marginal_fails(model, plain.x, ALPHA / 2)[0]


@pytest.mark.slow
@pytest.mark.parametrize("sampler,n_steps,swap_every", [("gibbs", 60, 3), ("gwg", 480, 8)])
def test_fixed_start_ising(sampler, n_steps, swap_every):
    # a frustrated 8-unit model (couplings of both signs, scale 2.5), every chain from all -1; a
    # Gibbs step is a sweep, a GWG step one proposed flip (480 = 60 sweeps' worth of flips)
    model = _ising(8, 2.5, 12)
    x0 = -np.ones((20_000, 8))
    res = parallel_tempering(model, [0.25, 0.5, 0.75, 1.0], x0, n_steps, seed=13, sampler=sampler,
                             swap_every=swap_every)
    failed, stat, dof = _marginal_fails(model, res.x)
    assert not failed, (stat, dof)


# ---------------------------------------------------------------- swap rates


def _exact_swap_rates(models):
    """a_k = E over p_k x p_{k+1} of min(1, exp(log ratio)), by enumeration."""
    xs, _ = enumerate_distribution(models[0])
    out = []
    for k in range(len(models) - 1):
        pk = enumerate_distribution(models[k])[1]
        pk1 = enumerate_distribution(models[k + 1])[1]
        ek, ek1 = models[k].energy(xs), models[k + 1].energy(xs)
        lr = pt_mod._swap_log_ratio(ek[:, None], ek1[None, :], ek[None, :], ek1[:, None])
        out.append(float(np.sum(pk[:, None] * pk1[None, :] * np.minimum(1.0, np.exp(lr)))))
    return np.array(out)


def _swap_rate_z(model, betas, sampler, monkeypatch=None):
    models = [model.tempered(b) for b in betas]
    a = _exact_swap_rates(models)
    x0 = _exact_starts(models, 4_000, seed=4)
    res = parallel_tempering(model, betas, x0, 40, seed=5, sampler=sampler)
    assert np.array_equal(res.n_swaps_proposed, [20] * (len(betas) - 1))
    per_chain = res.swap_rate_per_chain
    np.testing.assert_allclose(res.swap_rate, per_chain.mean(axis=0), rtol=1e-12)
    se = per_chain.std(axis=0, ddof=1) / np.sqrt(per_chain.shape[0])
    return (res.swap_rate - a) / se, a


@pytest.mark.parametrize("sampler", ["gibbs", "rwmh"])
def test_swap_rates_match_their_exact_expectation(sampler):
    model = _rbm(8, V=4, H=2, scale=2.0)
    betas = [0.1, 0.4, 0.7, 1.0]
    # chains are independent, so the mean of the per-chain rates is
    # asymptotically normal around the exact rate (20 swaps per chain and
    # pair, 4000 chains); two-sided, Bonferroni over the three pairs
    z, a = _swap_rate_z(model, betas, sampler)
    assert np.all((a > 0.05) & (a < 0.95))  # informative rates
    assert np.all(np.abs(z) < stats.norm.isf(ALPHA / 2 / 3)), (z, a)


def test_swap_rates_planted_bug_fails(monkeypatch):
    model = _rbm(8, V=4, H=2, scale=2.0)
    betas = [0.1, 0.4, 0.7, 1.0]
    monkeypatch.setattr(pt_mod, "_swap_log_ratio", _reversed_ratio)
    models = [model.tempered(b) for b in betas]
    x0 = _exact_starts(models, 4_000, seed=4)
    res = parallel_tempering(model, betas, x0, 40, seed=5)
    monkeypatch.undo()
    a = _exact_swap_rates(models)
    se = res.swap_rate_per_chain.std(axis=0, ddof=1) / np.sqrt(4_000)
    assert np.any(np.abs((res.swap_rate - a) / se) > stats.norm.isf(ALPHA / 2 / 3))


# ----------------------------------------------------------- result, seeds


def test_result_fields_trace_and_local_moves_are_the_public_sampler():
    model = _rbm(9, V=5, H=3)
    betas = [0.5, 1.0]
    x0 = (np.random.default_rng(0).random((7, 5)) < 0.5).astype(float)
    res = parallel_tempering(model, betas, x0, 12, seed=4, sampler="gwg", swap_every=4, thin=3)
    assert isinstance(res, TemperingResult)
    assert res.trace.shape == (4, 7, 5) and res.replicas.shape == (2, 7, 5)
    np.testing.assert_array_equal(res.trace[-1], res.x)  # step 12 ends with a swap: recorded after it
    np.testing.assert_array_equal(res.replicas[-1], res.x)
    np.testing.assert_allclose(res.energies, model.energy(res.x), rtol=1e-13)
    np.testing.assert_allclose(res.replica_energies[0], model.tempered(0.5).energy(res.replicas[0]), rtol=1e-13)
    assert res.acceptance_rate.shape == (7,) and res.swap_rate.shape == (1,)
    assert res.swap_rate_per_chain.shape == (7, 1) and np.array_equal(res.n_swaps_proposed, [2])  # moves 0 and 2 of 0, 1, 2
    # betas = [1.0]: the plain local sampler with the seed of temperature 0, block 0
    one = parallel_tempering(model, [1.0], x0, 12, seed=4, swap_every=12, thin=3)
    ss = np.random.SeedSequence(4)
    sub = np.random.SeedSequence(ss.entropy, spawn_key=(pt_mod._STREAM_LOCAL, 0, 0))
    ref = gibbs(model, x0, 12, sub, thin=3)
    np.testing.assert_array_equal(one.x, ref.x)
    np.testing.assert_array_equal(one.trace, ref.trace)
    assert one.acceptance_rate is None and one.swap_rate.shape == (0,)
    # single chain: 1-D in, 1-D out, equal to chain 0
    single = parallel_tempering(model, betas, x0[0], 12, seed=4, sampler="gwg", swap_every=4, thin=3)
    np.testing.assert_array_equal(single.x, res.x[0])
    np.testing.assert_array_equal(single.replicas, res.replicas[:, 0])
    np.testing.assert_array_equal(single.trace, res.trace[:, :1])
    # zero steps: x0 back, NaN rates
    zero = parallel_tempering(model, betas, x0, 0, seed=4, sampler="rwmh")
    np.testing.assert_array_equal(zero.x, x0)
    assert np.all(np.isnan(zero.swap_rate)) and np.all(np.isnan(zero.acceptance_rate))


SETUP = textwrap.dedent(
    """
    import numpy as np
    from ebm_ref.energies import RBM, Ising
    from ebm_ref.samplers import parallel_tempering

    def _models():
        r = np.random.default_rng(1)
        rbm = RBM(r.normal(size=(20, 10)), r.normal(size=20), r.normal(size=10))
        return {"rbm": rbm, "ising": Ising.random(12, 1.5, seed=3), "lattice": Ising.lattice(5, 0.44)}

    CASES = [(s, m) for s in ("gibbs", "gwg", "rwmh") for m in ("rbm", "ising")] + [("gibbs", "lattice")]
    FIELDS = ("x", "acceptance_rate", "trace", "energies", "replicas", "replica_energies",
              "swap_rate_per_chain")

    def run(sampler, name, n):
        model = _models()[name]
        r = np.random.default_rng(0)
        x = (r.random((n, model.n_features)) < 0.5).astype(float)
        if model.domain == "spin":
            x = 2 * x - 1
        res = parallel_tempering(model, [0.3, 0.6, 1.0], x, 7, seed=123, sampler=sampler,
                                 swap_every=2, thin=3)
        return {k: getattr(res, k) for k in FIELDS if getattr(res, k) is not None}, res
    """
)
exec(SETUP)


def test_bit_identical_with_one_and_two_threads(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(
        SETUP
        + textwrap.dedent(
            """
            import sys
            out = {}
            for s, m in CASES:
                arrays, res = run(s, m, 300)
                for k, v in arrays.items():
                    out[f"{s}-{m}/{k}"] = v
                out[f"{s}-{m}/swap_rate"] = res.swap_rate
            np.savez(sys.argv[1], **out)
            """
        )
    )
    results = run_at_thread_counts(script, tmp_path)
    assert len(results[0]) == 3 * 7 + 4 * 8  # 8 fields per case; Gibbs has no acceptance rate
    assert results[0].keys() == results[1].keys()
    for k in results[0]:
        assert np.array_equal(results[0][k], results[1][k], equal_nan=True), k


@pytest.mark.parametrize("case", CASES, ids=[f"{s}-{m}" for s, m in CASES])
def test_chain_prefix_invariance(case):
    small, _ = run(*case, 10)
    big, _ = run(*case, 300)  # three 128-chain BLAS blocks for the RBM
    for k, v in small.items():
        if k == "trace":
            ref = big[k][:, :10]
        elif k in ("replicas", "replica_energies"):
            ref = big[k][:, :10]
        else:
            ref = big[k][:10]
        assert np.array_equal(v, ref, equal_nan=True), k


def test_same_seed_same_result_x0_untouched_generator_seed():
    model = _rbm(9, V=5, H=3)
    x0 = (np.random.default_rng(0).random((6, 5)) < 0.5).astype(float)
    x0.flags.writeable = False
    keep = x0.copy()
    a = parallel_tempering(model, [0.5, 1.0], x0, 5, seed=9)
    b = parallel_tempering(model, [0.5, 1.0], x0, 5, seed=np.random.SeedSequence(9))
    np.testing.assert_array_equal(a.replicas, b.replicas)
    np.testing.assert_array_equal(x0, keep)
    g = np.random.default_rng(0)
    c = parallel_tempering(model, [0.5, 1.0], x0, 5, seed=g)
    d = parallel_tempering(model, [0.5, 1.0], x0, 5, seed=g)
    assert not np.array_equal(c.replicas, d.replicas)  # a Generator advances


# ---------------------------------------------------------------- bad input


class _Binary(EnergyModel):
    """A binary model with no ``tempered``."""

    domain = "binary"

    def __init__(self):
        self._set_params({"a": np.zeros(2)}, {"a": (2,)})

    @property
    def n_features(self):
        return 2

    def _energy(self, x):
        return x @ self._params["a"]

    _grad_x = _hessian_diag = _grad_params = _grad_params_of_grad_x = _grad_params_of_hessian_diag = None


def test_bad_input():
    model = _rbm()
    x0 = np.zeros((4, 3))
    for betas, msg in (
        ([1.0, 0.5], "strictly increasing"),
        ([0.5, 0.5, 1.0], "strictly increasing"),
        ([0.2, 0.9], "end at exactly 1.0"),
        ([0.5, 1.5], r"\[0, 1\]"),
        ([-0.1, 1.0], r"\[0, 1\]"),
        ([np.nan, 1.0], "finite"),
        ([[0.5, 1.0]], "1-D"),
        ([], "1-D"),
        (1.0, "1-D array"),
    ):
        with pytest.raises(ValueError, match=msg):
            parallel_tempering(model, betas, x0, 2, 0)
    with pytest.raises(TypeError, match="betas"):
        parallel_tempering(model, ["a", "b"], x0, 2, 0)
    with pytest.raises(ValueError, match="x0"):
        parallel_tempering(model, [0.5, 1.0], np.zeros((4, 2)), 2, 0)
    with pytest.raises(ValueError, match="n_betas = 2"):
        parallel_tempering(model, [0.5, 1.0], np.zeros((3, 4, 3)), 2, 0)
    with pytest.raises(ValueError, match="x0"):
        parallel_tempering(model, [0.5, 1.0], np.full((4, 3), -1.0), 2, 0)
    with pytest.raises(ValueError, match="x0"):
        parallel_tempering(model, [0.5, 1.0], np.zeros((2, 4, 3, 1)), 2, 0)
    with pytest.raises(ValueError, match="sampler"):
        parallel_tempering(model, [0.5, 1.0], x0, 2, 0, sampler="mala")
    with pytest.raises(ValueError, match="swap_every"):
        parallel_tempering(model, [0.5, 1.0], x0, 2, 0, swap_every=0)
    with pytest.raises(TypeError, match="swap_every"):
        parallel_tempering(model, [0.5, 1.0], x0, 2, 0, swap_every=1.5)
    with pytest.raises(ValueError, match="n_steps"):
        parallel_tempering(model, [0.5, 1.0], x0, -1, 0)
    with pytest.raises(ValueError, match="thin"):
        parallel_tempering(model, [0.5, 1.0], x0, 2, 0, thin=-1)
    with pytest.raises(TypeError, match="seed"):
        parallel_tempering(model, [0.5, 1.0], x0, 2, None)
    grbm = GRBM(np.zeros((2, 1)), np.zeros(2), np.zeros(1), np.zeros(2))
    with pytest.raises(TypeError, match="binary models"):
        parallel_tempering(grbm, [0.5, 1.0], np.zeros((3, 2)), 2, 0)
    with pytest.raises(ValueError, match="does not support tempering"):
        parallel_tempering(_Binary(), [0.5, 1.0], np.zeros((3, 2)), 2, 0)
