"""Statistical tests of the discrete samplers and of block Gibbs on a GRBM.

Stationarity: N = 20 000 chains started from exact samples, k steps,
Pearson chi-square of the final states against the exact distribution
(cells with expected count < 5 pooled), alpha = 1e-4. Ergodicity: the
same test from one fixed state after many steps. Deliberately wrong
samplers (plain NumPy, vectorised over chains) go through the very same
test and must be rejected. Plus the API contract and error messages.
"""

import numpy as np
import pytest
from scipy import stats

from ebm_ref.energies import GRBM, RBM, Ising, StudentT
from ebm_ref.samplers._binary import rwmh_binary
from ebm_ref.samplers import gibbs
from ebm_ref.samplers import gwg
from test_sampler_kernels import MODELS, all_states, chi2_pvalue, exact_pi, state_index

N_CHAINS = 20_000
ALPHA = 1e-4


def stationarity_pvalue(sample_fn, model, k, seed, start=None):
    """p-value of the chi-square of ``sample_fn(model, x0, k)`` against pi.

    ``start=None``: x0 are N exact draws (stationarity); else every chain starts at
    ``start`` (ergodicity).
    """
    pi = exact_pi(model)
    X = all_states(model.n_features, model.domain)
    if start is None:
        idx = np.random.default_rng(seed).choice(len(pi), size=N_CHAINS, p=pi)
        x0 = X[idx]
    else:
        x0 = np.repeat(np.asarray(start, float)[None], N_CHAINS, axis=0)
    x = sample_fn(model, x0, k)
    counts = np.bincount(state_index(x, model.domain), minlength=len(pi))
    return chi2_pvalue(counts, pi)


# ------------------------------------------------------------ the samplers


def run_gibbs_seq(model, x0, k):
    return gibbs(model, x0, k, seed=7, method="sequential").x


def run_gibbs_cb(model, x0, k):
    return gibbs(model, x0, k, seed=8, method="checkerboard").x


def run_gibbs_block(model, x0, k):
    return gibbs(model, x0, k, seed=9).x


def run_gwg(model, x0, k):
    return gwg(model, x0, k, seed=10).x


def run_mh(model, x0, k):
    return rwmh_binary(model, x0, k, seed=11).x


def _other(x, domain):
    return -x if domain == "spin" else 1.0 - x


def np_gwg(forward_only):
    """Plain-NumPy GWG; ``forward_only=True`` is WRONG (q(i|x) used for the reverse move too)."""

    def run(model, x0, k):
        rng = np.random.default_rng(12)
        x = x0.copy()
        n, d = x.shape
        rows = np.arange(n)

        def log_q(z):
            lg = -0.5 * (_other(z, model.domain) - z) * model.grad_x(z)
            return lg - np.logaddexp.reduce(lg, axis=1, keepdims=True)

        for _ in range(k):
            lq = log_q(x)
            cum = np.cumsum(np.exp(lq), axis=1)
            i = np.minimum((cum < rng.random(n)[:, None] * cum[:, -1:]).sum(1), d - 1)
            y = x.copy()
            y[rows, i] = _other(x[rows, i], model.domain)
            reverse = lq[rows, i] if forward_only else log_q(y)[rows, i]
            log_alpha = model.energy(x) - model.energy(y) + reverse - lq[rows, i]
            acc = np.log(rng.random(n)) < np.minimum(0.0, log_alpha)
            x[acc] = y[acc]
        return x

    return run


def np_stale_gibbs(model, x0, k):
    """WRONG: each sweep draws every site from the fields at the sweep's start."""
    rng = np.random.default_rng(13)
    x = x0.copy()
    down = -1.0 if model.domain == "spin" else 0.0
    for _ in range(k):
        p = model.conditional_prob(x)
        x = np.where(rng.random(x.shape) < p, 1.0, down)
    return x


def np_mh_half(model, x0, k):
    """WRONG: uniform-flip MH accepting with half the energy change."""
    rng = np.random.default_rng(14)
    x = x0.copy()
    n, d = x.shape
    rows = np.arange(n)
    for _ in range(k):
        i = rng.integers(d, size=n)
        y = x.copy()
        y[rows, i] = _other(x[rows, i], model.domain)
        log_alpha = -0.5 * (model.energy(y) - model.energy(x))
        acc = np.log(rng.random(n)) < np.minimum(0.0, log_alpha)
        x[acc] = y[acc]
    return x


GIBBS_ISING = [(m, f) for m in ("ising-spin-8", "ising-binary-8", "lattice-3-spin", "lattice-2-binary")
               for f in (run_gibbs_seq, run_gibbs_cb)]
FLIPS = [(m, f) for m in ("ising-spin-8", "ising-binary-8", "rbm-8x4") for f in (run_gwg, run_mh)]
CASES = GIBBS_ISING + [("rbm-8x4", run_gibbs_block)] + FLIPS


def _ids(case):
    return f"{case[0]}-{case[1].__name__}"


def _k(fn, model, stationary):
    """Steps: sweeps for Gibbs, single flips for GWG/MH.

    From pi, 5 sweeps or 3 d flips. From one state, enough to forget it:
    the 3x3 lattice at beta = 0.6 and the strongly coupled 8-spin model
    tunnel between their low-energy modes slowly (measured: 200 sweeps or
    60 d flips leave p < 1e-11; 1000 sweeps / 250 d flips give p ~ 0.6).
    """
    if fn in (run_gibbs_seq, run_gibbs_cb, np_stale_gibbs):
        return 5 if stationary else 1000
    if fn is run_gibbs_block:
        return 5 if stationary else 200
    if isinstance(model, RBM):
        return (3 if stationary else 60) * model.n_features
    return (3 if stationary else 250) * model.n_features


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_stationarity_from_exact_samples(case):
    name, fn = case
    model = MODELS[name]()
    p = stationarity_pvalue(fn, model, _k(fn, model, True), seed=21)
    # alpha = 1e-4 per assertion (chi-square, pooled cells): false-failure rate 1e-4
    assert p > ALPHA, p


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_ergodicity_from_one_state(case):
    name, fn = case
    model = MODELS[name]()
    start = np.full(model.n_features, -1.0 if model.domain == "spin" else 0.0)
    p = stationarity_pvalue(fn, model, _k(fn, model, False), seed=22, start=start)
    # alpha = 1e-4 per assertion (chi-square after burn-in from one state)
    assert p > ALPHA, p


def test_numpy_reference_gwg_passes():
    # the correct twin of the forward-only control passes the same test
    model = MODELS["ising-spin-8"]()
    p = stationarity_pvalue(np_gwg(False), model, 24, seed=21)
    assert p > ALPHA, p  # alpha = 1e-4


@pytest.mark.parametrize(
    "name,fn,k",
    [
        ("ising-spin-8", np_gwg(True), 24),
        ("rbm-8x4", np_gwg(True), 24),
        ("ising-spin-8", np_stale_gibbs, 5),
        ("ising-binary-8", np_stale_gibbs, 5),
        ("ising-spin-8", np_mh_half, 24),
    ],
    ids=["gwg-forward-ising", "gwg-forward-rbm", "stale-gibbs-spin", "stale-gibbs-binary", "mh-half-dE"],
)
def test_wrong_samplers_are_rejected(name, fn, k):
    model = MODELS[name]()
    p = stationarity_pvalue(fn, model, k, seed=21)
    assert p < ALPHA, p  # the same alpha = 1e-4 test rejects the planted bug


# ------------------------------------------------------------------- GRBM


def small_grbm():
    r = np.random.default_rng(5)
    # variances far from 1, so that v / sigma and v / sigma^2 differ (negative control)
    return GRBM(r.normal(0, 1.0, (3, 2)), r.normal(0, 1, 3), r.normal(0, 1, 2), np.array([1.2, -1.0, 0.7]))


def _mixture_draws(model, n, seed):
    w, means, var = model.visible_mixture()
    rng = np.random.default_rng(seed)
    comp = rng.choice(len(w), size=n, p=w)
    return means[comp] + np.sqrt(var) * rng.standard_normal((n, means.shape[1]))


def _grbm_ks_pvalues(model, v):
    """KS p-values of each coordinate and of two fixed projections vs the exact mixture."""
    w, means, var = model.visible_mixture()
    dirs = [np.eye(3)[k] for k in range(3)] + [np.array([1.0, -1.0, 0.5]), np.array([0.3, 0.8, -1.0])]
    out = []
    for u in dirs:
        m, sd = means @ u, np.sqrt(var @ u**2)

        def cdf(t, m=m, sd=sd):
            return stats.norm.cdf((np.asarray(t)[..., None] - m) / sd) @ w

        out.append(stats.kstest(v @ u, cdf).pvalue)
    return np.array(out)


def np_grbm_gibbs_wrong_scale(model, v, k, seed=15):
    """WRONG: p(h|v) with v / sigma instead of v / sigma^2."""
    p = model.params
    rng = np.random.default_rng(seed)
    sig = np.exp(0.5 * p["log_var"])
    for _ in range(k):
        ph = 1.0 / (1.0 + np.exp(-((v / sig) @ p["W"] + p["b_h"])))
        h = (rng.random(ph.shape) < ph).astype(float)
        v = h @ p["W"].T + p["mu"] + sig * rng.standard_normal(v.shape)
    return v


def test_grbm_block_gibbs_stationary_and_ergodic():
    model = small_grbm()
    v0 = _mixture_draws(model, N_CHAINS, 31)
    # 5 KS tests per run: Bonferroni, each at alpha / 5 so the run's false-failure rate is <= 1e-4
    p = _grbm_ks_pvalues(model, gibbs(model, v0, 5, seed=32).x)
    assert p.min() > ALPHA / 5, p
    p = _grbm_ks_pvalues(model, gibbs(model, np.zeros((N_CHAINS, 3)), 50, seed=33).x)
    assert p.min() > ALPHA / 5, p
    # negative control: the same test rejects a sampler with the wrong hidden conditional
    p = _grbm_ks_pvalues(model, np_grbm_gibbs_wrong_scale(model, v0, 5))
    assert p.min() < ALPHA / 5, p


def test_grbm_one_step_moments_match_conditionals():
    # From a fixed v: E[v'] = W E[h|v] + mu, Var[v'] = sigma^2 + sum_j W_kj^2 q_j (1 - q_j)
    model = small_grbm()
    p = model.params
    v = np.array([0.3, -1.0, 2.0])
    q = model.prob_h_given_v(v)
    mean = p["W"] @ q + p["mu"]
    var = np.exp(p["log_var"]) + (p["W"] ** 2) @ (q * (1 - q))
    x = gibbs(model, np.repeat(v[None], N_CHAINS, 0), 1, seed=34).x
    z = (x.mean(0) - mean) / np.sqrt(var / N_CHAINS)
    # alpha = 1e-4 over 3 coordinates (Bonferroni): |z| < 4.15
    assert np.abs(z).max() < stats.norm.isf(ALPHA / 6), z


# ------------------------------------------------------------ API contract


ALL = [
    ("gibbs", "ising-spin-8"), ("gibbs", "lattice-3-spin"), ("gibbs", "rbm-8x4"),
    ("gwg", "ising-binary-8"), ("gwg", "rbm-8x4"), ("mh", "ising-spin-8"), ("mh", "rbm-8x4"),
]
FUNCS = {"gibbs": gibbs, "gwg": gwg, "mh": rwmh_binary}


@pytest.mark.parametrize("fname,name", ALL)
def test_result_contract(fname, name, rng):
    model = MODELS[name]()
    X = all_states(model.n_features, model.domain)
    x0 = X[rng.integers(len(X), size=7)]
    res = FUNCS[fname](model, x0, 12, seed=3, thin=4)
    assert res.x.shape == x0.shape
    assert res.trace.shape == (3, 7, model.n_features)
    np.testing.assert_array_equal(res.trace[-1], res.x)
    assert set(np.unique(res.x)) <= set(np.unique(X))
    np.testing.assert_allclose(res.energies, model.energy(res.x), rtol=1e-12, atol=1e-12)
    if fname == "gibbs":
        assert res.acceptance_rate is None
    else:
        assert res.acceptance_rate.shape == (7,)
        assert np.all((res.acceptance_rate >= 0) & (res.acceptance_rate <= 1))
        # the rate is a count of accepted flips over 12 proposals
        np.testing.assert_allclose(res.acceptance_rate * 12, np.round(res.acceptance_rate * 12), atol=1e-12)
    # a single state gives a single state back
    one = FUNCS[fname](model, x0[0], 3, seed=3)
    assert one.x.shape == (model.n_features,) and one.energies.shape == (1,) or one.energies.shape == ()
    assert FUNCS[fname](model, x0, 5, seed=3).trace is None


def test_acceptance_rate_nan_without_steps():
    model = MODELS["ising-spin-8"]()
    res = gwg(model, -np.ones((2, 8)), 0, seed=0)
    assert np.all(np.isnan(res.acceptance_rate))


def test_gwg_accepts_every_flip_of_independent_units():
    # with J = 0 and h = 0 every proposal is exact and accepted (log alpha = 0)
    model = Ising(np.zeros((5, 5)), np.zeros(5))
    res = gwg(model, np.ones((3, 5)), 50, seed=1)
    np.testing.assert_array_equal(res.acceptance_rate, 1.0)


def test_saturated_rbm_has_no_nan():
    r = np.random.default_rng(0)
    model = RBM(50.0 * r.normal(size=(6, 3)), 50.0 * r.normal(size=6), 50.0 * r.normal(size=3))
    x0 = (r.random((4, 6)) < 0.5).astype(float)
    with np.errstate(all="raise"):
        for f in (gibbs, gwg, rwmh_binary):
            res = f(model, x0, 20, seed=2)
            assert np.all(np.isfinite(res.energies)) and set(np.unique(res.x)) <= {0.0, 1.0}


# ------------------------------------------------------------------- errors


def test_unsupported_models_name_the_supported_ones():
    t = StudentT(np.zeros(2), np.zeros(2), np.zeros(2))
    with pytest.raises(TypeError, match=r"`gibbs` does not support StudentT.*RBM, GRBM, Ising"):
        gibbs(t, np.zeros(2), 1, seed=0)
    with pytest.raises(TypeError, match=r"`gwg` does not support GRBM.*RBM, Ising"):
        gwg(small_grbm(), np.zeros(3), 1, seed=0)
    with pytest.raises(TypeError, match=r"rwmh.*does not support GRBM.*RBM, Ising"):
        rwmh_binary(small_grbm(), np.zeros(3), 1, seed=0)


@pytest.mark.parametrize("f", [gibbs, gwg, rwmh_binary])
def test_bad_inputs(f):
    model = MODELS["ising-spin-8"]()
    with pytest.raises(ValueError, match=r"`x0`.*shape"):
        f(model, np.ones((2, 7)), 1, seed=0)
    with pytest.raises(ValueError, match=r"`x0`.*-1.0/\+1.0"):
        f(model, np.zeros((2, 8)), 1, seed=0)
    with pytest.raises(ValueError, match=r"`n_steps`.*>= 0"):
        f(model, np.ones(8), -1, seed=0)
    with pytest.raises(TypeError, match=r"`n_steps`"):
        f(model, np.ones(8), 2.0, seed=0)
    with pytest.raises(ValueError, match=r"`thin`"):
        f(model, np.ones(8), 2, seed=0, thin=-1)
    with pytest.raises(TypeError, match=r"`seed`"):
        f(model, np.ones(8), 2, seed=None)


def test_bad_method():
    with pytest.raises(ValueError, match=r"`method`.*sequential.*checkerboard.*'block'"):
        gibbs(MODELS["ising-spin-8"](), np.ones(8), 1, seed=0, method="block")
    with pytest.raises(ValueError, match=r"`method`.*block"):
        gibbs(MODELS["rbm-8x4"](), np.ones(8), 1, seed=0, method="checkerboard")
