"""Boltzmann-machine posterior: LowRankBoltzmann, its auxiliary sampler and the bound L~_k.

Statistical tests use fixed seeds and a per-assertion false-failure rate alpha = 1e-4 (two-sided
z = 3.89; chi-square at its 1 - 1e-4 quantile); each has a planted-bug negative control that must
fail at p < 1e-6. See docs/boltzmann-posterior.md.
"""

import math

import numba
import numpy as np
import pytest
from scipy import stats
from scipy.special import expit

from ebm_ref import exact
from ebm_ref.energies import Ising, LowRankBoltzmann
from ebm_ref.estimate import boltzmann_bound
from ebm_ref.samplers import boltzmann_auxiliary
from ebm_ref.samplers import boltzmann as sb
from ebm_ref.testing import check_energy_derivatives

ALPHA = 1e-4
Z_CRIT = 3.89  # two-sided normal quantile at ALPHA


def _all_states(m):
    return ((np.arange(2**m)[:, None] >> np.arange(m - 1, -1, -1)) & 1).astype(float)


def _codes(x):
    m = x.shape[1]
    return (x @ (2.0 ** np.arange(m - 1, -1, -1))).astype(np.int64)


# ------------------------------------------------------------------ Gauss-Hermite integrals over r


def _aux_integrals(model, g0, g1, shift=None, zcond=None, n=60):
    r"""``out[z] = E_{r ~ N(mean, Sigma_c)} [prod_i g_{z_i}(r_i)]`` for every code ``z``, by quadrature.

    ``mean = a`` (the representation of b) or ``a + Sigma_c zcond`` (the kernel r | zcond).
    ``r = mean + U eps2 + sqrt(s) eps1``: given eps2 the coordinates are independent, so a
    k-dimensional tensor Gauss-Hermite rule over eps2 (k <= 2) and a 1-D rule per coordinate over
    eps1 compute the m-dimensional integral exactly up to the rules' error.
    """
    aux = model.auxiliary(shift)
    a, s, U = aux.mean, aux.diag, aux.U
    m, k = U.shape
    y, w = np.polynomial.hermite_e.hermegauss(n)
    w = w / w.sum()
    mean = a.copy()
    if zcond is not None:
        mean = mean + aux.covariance() @ zcond
    grids = np.meshgrid(*([y] * k), indexing="ij") if k else []
    pts = np.stack([g.ravel() for g in grids], axis=1) if k else np.zeros((1, 0))
    wts = np.ones(pts.shape[0])
    if k:
        for g in np.meshgrid(*([w] * k), indexing="ij"):
            wts = wts * g.ravel()
    Z = _all_states(m)
    base = mean[None, :] + pts @ U.T  # (P, m)
    r = base[:, :, None] + np.sqrt(s)[None, :, None] * y[None, None, :]  # (P, m, n)
    log_e1 = np.log(g1(r) @ w)  # (P, m)
    log_e0 = np.log(g0(r) @ w)
    return wts @ np.exp(log_e1 @ Z.T + log_e0 @ (1.0 - Z).T)


def _kernel_matrix(model, shift=None, n=60):
    """Exact transition matrix P[z, z'] of the auxiliary chain on codes (quadrature)."""
    sig = expit
    m = model.n_features
    return np.array([_aux_integrals(model, lambda r: sig(-r), sig, shift, zc, n) for zc in _all_states(m)])


# ------------------------------------------------------------------ models

MODEL5 = LowRankBoltzmann(
    [0.3, -0.8, 0.5, -0.2, 0.1],
    [[0.9, -0.4], [0.7, 0.8], [-0.6, 0.5], [0.4, -1.0], [-0.8, -0.3]],
    [-0.5, 0.4, -0.3, 0.2, 0.1],
)


# ------------------------------------------------------------------ derivatives


@pytest.mark.parametrize("m,k", [(1, 0), (1, 1), (4, 1), (6, 3), (9, 2)])
@pytest.mark.parametrize("scale", [0.5, 5.0, 50.0])
def test_derivatives_match_finite_differences(m, k, scale, rng):
    model = LowRankBoltzmann.random(m, k, scale, rng)
    states = rng.integers(0, 2, size=(3, m)).astype(float)
    for x in (rng.normal(size=(4, m)), states, rng.normal(size=(1, m))):
        check_energy_derivatives(model, x, seed=1).assert_ok()


def test_hooks_are_the_formula(rng):
    model = LowRankBoltzmann.random(5, 2, 3.0, rng)
    p = model.params
    S = np.diag(p["d_diag"]) + p["U"] @ p["U"].T
    x = rng.normal(size=(4, 5))
    e = np.array([-0.5 * xi @ S @ xi - p["mu"] @ xi for xi in x])
    np.testing.assert_allclose(model.energy(x), e, rtol=1e-13)
    np.testing.assert_allclose(model.grad_x(x), -x @ S - p["mu"], rtol=1e-13)
    np.testing.assert_allclose(model.hessian_diag(x), np.tile(-np.diag(S), (4, 1)), rtol=1e-13)
    # 1-D input gives scalar / (d,) results
    assert model.energy(x[0]).shape == () and model.grad_x(x[0]).shape == (5,)


def test_large_weights_stay_finite(rng):
    # |W| ~ 50: polynomial energy, no exp anywhere in the primitives; the sampler saturates cleanly
    model = LowRankBoltzmann.random(6, 2, 50.0 * math.sqrt(6), rng)
    x = rng.integers(0, 2, size=(50, 6)).astype(float)
    assert np.all(np.isfinite(model.energy(x))) and np.all(np.isfinite(model.grad_x(x)))
    res = boltzmann_auxiliary(model, x, 5, seed=0)
    assert np.all((res.x == 0) | (res.x == 1)) and np.all(np.isfinite(res.energies))
    r = rng.normal(scale=800.0, size=(3, 6))
    assert np.all(np.isfinite(model.log_density_r(r, shift=model.min_shift() + 1.0)))


def test_to_ising_same_distribution(rng):
    model = LowRankBoltzmann.random(7, 3, 2.0, rng)
    ising = model.to_ising()
    assert isinstance(ising, Ising) and ising.domain == "binary"
    Z = _all_states(7)
    np.testing.assert_allclose(model.energy(Z), ising.energy(Z), rtol=1e-13, atol=1e-13)
    # continuous extensions differ (d_i z_i^2 / 2 vs linear), as documented
    x = np.full((1, 7), 0.5)
    assert not np.allclose(model.energy(x), ising.energy(x))


@pytest.mark.parametrize("d,scale", [(1, 1.0), (5, 0.5), (8, 3.0), (12, 50.0)])
def test_from_ising_same_distribution(d, scale, rng):
    ising = Ising.random(d, scale, rng, domain="binary")
    model = LowRankBoltzmann.from_ising(ising)
    assert model.rank == d and model.min_shift() >= 0.0
    Z = _all_states(d)
    # eigh reconstructs J to ~1e-15 ||J|| per entry; energies are sums of d^2 such entries
    tol = 1e-13 * max(1.0, np.abs(ising.params["J"]).sum())
    np.testing.assert_allclose(model.energy(Z), ising.energy(Z), rtol=0, atol=tol)
    # and back: the Ising view of the converted model has the same couplings to rounding
    np.testing.assert_allclose(model.to_ising().params["J"], ising.params["J"], rtol=0, atol=tol)


def test_sampler_on_a_dense_ising_model():
    # a dense binary Ising model through from_ising (rank d): stationarity from exact draws, chi-square at alpha
    ising = Ising.random(6, 1.5, 21, domain="binary")
    model = LowRankBoltzmann.from_ising(ising)
    _, probs = exact.probabilities(ising)
    x0 = _exact_draws(probs, 6, N_CHAINS, seed=12)
    res = boltzmann_auxiliary(model, x0, 3, seed=6)
    assert _chi2_pvalue(res.x, probs) > ALPHA


def test_shift_leaves_b_unchanged(rng):
    # 1/2 z^T (Sigma + cI) z + (mu - c/2)^T z = 1/2 z^T Sigma z + mu^T z on {0,1}^m, for any c
    model = LowRankBoltzmann.random(6, 2, 2.0, rng)
    Z = _all_states(6)
    p = model.params
    for c in (0.0, 0.7, 13.0):
        shifted = LowRankBoltzmann(p["d_diag"] + c, p["U"], p["mu"] - 0.5 * c)
        np.testing.assert_allclose(shifted.energy(Z), model.energy(Z), rtol=1e-13, atol=1e-12)


# ------------------------------------------------------------------ the auxiliary representation


@pytest.mark.parametrize("m,k,seed", [(2, 1, 0), (5, 2, 1), (8, 1, 2), (10, 2, 3)])
@pytest.mark.parametrize("extra", [0.0, 0.9])
def test_representation_z_marginal_is_b(m, k, seed, extra):
    # b(z) = int p(z|r) p(r) dr with p(r) = prod(1 + e^{r_i}) N(r; a, Sigma_c) / Z and p(z|r) = Bernoulli(sigmoid(r)).
    # (1 + e^r) sigmoid(r) = e^r is entire, so Gauss-Hermite with 60 nodes is exact to rounding here.
    model = LowRankBoltzmann.random(m, k, 2.0, seed)
    shift = model.min_shift() + extra
    weight = lambda r: np.exp(np.logaddexp(0.0, r))  # noqa: E731  prod(1 + e^r), the density's non-Gaussian factor
    pz = lambda r: model.prob_z_given_r(r.reshape(-1, m)).reshape(r.shape)  # noqa: E731  r is (P, m, n)
    g1 = lambda r: weight(r) * pz(np.swapaxes(r, 1, 2)).swapaxes(1, 2)  # noqa: E731
    g0 = lambda r: weight(r) * (1.0 - pz(np.swapaxes(r, 1, 2)).swapaxes(1, 2))  # noqa: E731
    unnorm = _aux_integrals(model, g0, g1, shift)
    _, probs = exact.probabilities(model.to_ising())
    np.testing.assert_allclose(unnorm / unnorm.sum(), probs, rtol=1e-10, atol=1e-12)
    # and the normaliser is Z itself
    np.testing.assert_allclose(np.log(unnorm.sum()), exact.log_partition(model.to_ising()), rtol=0, atol=1e-10)


def test_log_density_r_integrates_to_Z_times_b():
    # m = 2: integrate exp(log_density_r) p(z|r) over R^2 with a 2-D Gauss-Hermite rule in whitened
    # coordinates r = a + L y; any error in the Gaussian normalisation or quadratic form would not cancel
    model = LowRankBoltzmann([0.4, -0.3], [[0.8], [-0.5]], [0.2, -0.1])
    shift = model.min_shift() + 0.5
    aux = model.auxiliary(shift)
    L = np.linalg.cholesky(aux.covariance())
    y, w = np.polynomial.hermite_e.hermegauss(80)
    Y1, Y2 = np.meshgrid(y, y, indexing="ij")
    W = np.outer(w, w).ravel()
    Yf = np.stack([Y1.ravel(), Y2.ravel()], axis=1)
    r = aux.mean + Yf @ L.T
    # dr = |L| dy; hermegauss integrates against exp(-|y|^2/2)
    f = np.exp(model.log_density_r(r, shift) + 0.5 * np.sum(Yf**2, axis=1)) * np.prod(np.diag(L))
    pz = model.prob_z_given_r(r)
    log_z = exact.log_partition(model.to_ising())
    _, probs = exact.probabilities(model.to_ising())
    for idx, z in enumerate(_all_states(2)):
        q = np.sum(W * f * np.prod(np.where(z == 1.0, pz, 1.0 - pz), axis=1))
        assert abs(q - math.exp(log_z) * probs[idx]) < 1e-10 * math.exp(log_z)


def test_exact_kernel_leaves_b_invariant():
    # T1: the auxiliary chain's exact z-kernel P (quadrature of r | z, then z | r) satisfies b P = b.
    # sigmoid is not entire, so the rule is not exact: the error is bounded by comparing 60 and 120 nodes.
    model = LowRankBoltzmann.random(4, 1, 2.0, 5)
    _, b = exact.probabilities(model.to_ising())
    P60 = _kernel_matrix(model, n=60)
    P120 = _kernel_matrix(model, n=120)
    quad_err = np.abs(P120 - P60).max()
    assert quad_err < 1e-12
    np.testing.assert_allclose(P120.sum(axis=1), 1.0, atol=1e-12)
    assert np.abs(b @ P120 - b).sum() < 1e-11
    # a planted bug (the linear term not shifted by -c/2) breaks invariance by far more
    p = model.params
    c = model.min_shift() + 1.0
    buggy = LowRankBoltzmann(p["d_diag"], p["U"], p["mu"] + 0.5 * c)  # a = mu when the code forgets -c/2
    Pb = _kernel_matrix(buggy, shift=c, n=60)
    assert np.abs(b @ Pb - b).sum() > 1e-2


# ------------------------------------------------------------------ the sampler

N_CHAINS = 20_000


def _chi2_pvalue(x, probs):
    """Pooled chi-square of the codes ``x`` against ``probs`` (bins with expected count < 5 merged)."""
    n = x.shape[0]
    counts = np.bincount(_codes(x), minlength=probs.size).astype(float)
    expected = n * probs
    small = expected < 5.0
    obs = np.append(counts[~small], counts[small].sum())
    exp_ = np.append(expected[~small], expected[small].sum())
    if exp_[-1] == 0.0:
        obs, exp_ = obs[:-1], exp_[:-1]
    stat = np.sum((obs - exp_) ** 2 / exp_)
    return stats.chi2.sf(stat, obs.size - 1)


def _exact_draws(probs, m, n, seed):
    idx = np.random.default_rng(seed).choice(probs.size, size=n, p=probs)
    return _all_states(m)[idx]


def _steps_to_mix(model, z0, tv_target, shift=None):
    """Smallest n with TV(delta_{z0} P^n, b) < tv_target, from the exact kernel.

    40 nodes: the rule's error (measured 3e-16 against 120 nodes for MODEL5) is negligible next to tv_target.
    """
    P = _kernel_matrix(model, shift=shift, n=40)
    _, b = exact.probabilities(model.to_ising())
    row = np.zeros(b.size)
    row[_codes(z0[None])[0]] = 1.0
    for n in range(1, 500):
        row = row @ P
        if 0.5 * np.abs(row - b).sum() < tv_target:
            return n
    raise AssertionError("no mixing within 500 steps")


def test_sampler_exact_start():
    _, probs = exact.probabilities(MODEL5.to_ising())
    x0 = _exact_draws(probs, 5, N_CHAINS, seed=11)
    res = boltzmann_auxiliary(MODEL5, x0, 3, seed=1)
    assert _chi2_pvalue(res.x, probs) > ALPHA
    assert res.acceptance_rate is None


def test_sampler_fixed_start():
    # From z = 0 the exact kernel reaches TV < 1e-3 after n0 steps; at N = 20,000 a TV of 1e-3 shifts
    # the chi-square statistic by far less than its sd (sqrt(2 * 31) ~ 8), so the test keeps alpha.
    _, probs = exact.probabilities(MODEL5.to_ising())
    z0 = np.zeros(5)
    n0 = _steps_to_mix(MODEL5, z0, 1e-3)
    assert n0 <= 40
    res = boltzmann_auxiliary(MODEL5, np.tile(z0, (N_CHAINS, 1)), n0, seed=2)
    assert _chi2_pvalue(res.x, probs) > ALPHA
    # a larger shift is a valid representation too (slower mixing: more steps by its own kernel)
    n1 = _steps_to_mix(MODEL5, z0, 1e-3, shift=MODEL5.min_shift() + 1.5)
    assert n1 > n0
    res = boltzmann_auxiliary(MODEL5, np.tile(z0, (N_CHAINS, 1)), n1, seed=3, shift=MODEL5.min_shift() + 1.5)
    assert _chi2_pvalue(res.x, probs) > ALPHA


def _run_kernel(a, s, U, x0, seed, n_steps):
    from ebm_ref._rng import as_seed_sequence, chain_states

    x = np.array(x0, dtype=float)
    rng = chain_states(as_seed_sequence(seed), x.shape[0])
    trace = np.empty((0, x.shape[0], x.shape[1]))
    sb._aux_gibbs_run(a, s, np.sqrt(s), np.ascontiguousarray(U), x, rng, 0, n_steps, 0, trace)
    return x


def test_sampler_negative_controls():
    _, probs = exact.probabilities(MODEL5.to_ising())
    x0 = _exact_draws(probs, 5, N_CHAINS, seed=11)
    aux = MODEL5.auxiliary()
    assert aux.shift > 0.0
    # the driver called with the correct parameters reproduces the public function bit for bit
    good = _run_kernel(aux.mean, aux.diag, aux.U, x0, 1, 3)
    np.testing.assert_array_equal(good, boltzmann_auxiliary(MODEL5, x0, 3, seed=1).x)
    # bug 1: Sigma shifted but the linear term not (a = mu instead of mu - c/2)
    bad = _run_kernel(MODEL5.params["mu"].copy(), aux.diag, aux.U, x0, 1, 3)
    assert _chi2_pvalue(bad, probs) < 1e-6
    # bug 2: no diagonal shift at all (negative d_i clamped to a zero variance, a = mu)
    bad = _run_kernel(MODEL5.params["mu"].copy(), np.maximum(MODEL5.params["d_diag"], 0.0), aux.U, x0, 1, 3)
    assert _chi2_pvalue(bad, probs) < 1e-6


def test_sampler_reproducible(rng):
    model = LowRankBoltzmann.random(7, 2, 2.0, rng)
    x0 = rng.integers(0, 2, size=(100, 7)).astype(float)
    keep = x0.copy()
    a = boltzmann_auxiliary(model, x0, 12, seed=5, thin=4)
    np.testing.assert_array_equal(x0, keep)  # not mutated
    b = boltzmann_auxiliary(model, x0, 12, seed=5, thin=4)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.energies, b.energies)
    # chain prefix
    c = boltzmann_auxiliary(model, x0[:10], 12, seed=5, thin=4)
    np.testing.assert_array_equal(c.x, a.x[:10])
    np.testing.assert_array_equal(c.trace, a.trace[:, :10])
    np.testing.assert_array_equal(c.energies, a.energies[:10])
    # thread count
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        d = boltzmann_auxiliary(model, x0, 12, seed=5, thin=4)
    finally:
        numba.set_num_threads(old)
    np.testing.assert_array_equal(d.x, a.x)
    np.testing.assert_array_equal(d.energies, a.energies)
    # trace: states after steps 4, 8, 12; the last is the final state
    assert a.trace.shape == (3, 100, 7)
    np.testing.assert_array_equal(a.trace[-1], a.x)
    np.testing.assert_allclose(a.energies, model.energy(a.x), rtol=1e-12, atol=1e-12)
    # n_steps = 0 returns x0; a single state gives a single state
    np.testing.assert_array_equal(boltzmann_auxiliary(model, x0, 0, seed=1).x, x0)
    assert boltzmann_auxiliary(model, x0[0], 3, seed=1).x.shape == (7,)
    # seeds: SeedSequence same as int, Generator advances
    e = boltzmann_auxiliary(model, x0, 12, seed=np.random.SeedSequence(5))
    np.testing.assert_array_equal(e.x, a.x)
    g = np.random.default_rng(0)
    assert not np.array_equal(boltzmann_auxiliary(model, x0, 12, g).x, boltzmann_auxiliary(model, x0, 12, g).x)


def test_sampler_rank_zero_and_thin(rng):
    # k = 0: a factorised b (independent bits, p(z_i = 1) = sigmoid(mu_i + d_i / 2)); the chain still
    # couples z to r through (d + c) z, and must still sample b exactly (chi-square from z = 0, alpha = 1e-4)
    model = LowRankBoltzmann([-2.0, 0.5, 1.0], np.zeros((3, 0)), [0.3, -0.4, 0.1])
    _, probs = exact.probabilities(model.to_ising())
    n0 = _steps_to_mix(model, np.zeros(3), 1e-3)
    res = boltzmann_auxiliary(model, np.zeros((N_CHAINS, 3)), n0, seed=4, thin=3)
    assert _chi2_pvalue(res.x, probs) > ALPHA
    assert res.trace.shape == (n0 // 3, N_CHAINS, 3)


def test_sampler_chi_square_is_calibrated():
    # calibration of the test above: over 200 seeds (5,000 chains from exact draws, 3 steps) the p-values of an
    # exact sampler are U(0, 1); KS p > 1e-3. The pooled chi-square is asymptotic: bins have >= 5 expected.
    _, probs = exact.probabilities(MODEL5.to_ising())
    pvals = []
    for seed in range(200):
        x0 = _exact_draws(probs, 5, 5000, seed=1000 + seed)
        pvals.append(_chi2_pvalue(boltzmann_auxiliary(MODEL5, x0, 3, seed=seed).x, probs))
    assert stats.kstest(pvals, "uniform").pvalue > 1e-3


# ------------------------------------------------------------------ the bound L~_k

BOUND_MODEL = LowRankBoltzmann(
    [-1.0, -0.5, -1.5, -0.8, -1.2, -0.7],
    [[1.2, 0.3], [1.0, -0.9], [-1.1, 0.8], [0.9, 1.1], [-1.3, -0.6], [0.8, -1.2]],
    [0.3, -0.2, 0.4, -0.1, 0.2, -0.3],
)


def _chi2_constant(model, shift=None):
    r"""C = sum_z E_{r ~ q(r)}[p(z|r)^2] / q(z) - 1 by quadrature, so that E chi^2(h_k || q) = C / k."""
    sig = expit
    # E_q(r)[p(z|r)^2] = (1/Z) E_N[prod (1 + e^r) p(z_i|r_i)^2] = (1/Z) E_N[prod (e^r sigmoid(r) or sigmoid(-r))]
    num = _aux_integrals(model, lambda r: sig(-r), lambda r: np.exp(r) * sig(r), shift, n=120)
    ising = model.to_ising()
    _, q = exact.probabilities(ising)
    log_z = exact.log_partition(ising)
    return float(np.sum(num / math.exp(log_z) / q) - 1.0)


def test_bound_k1_matches_its_closed_form():
    # L~_1 = E_q[-E(z)] + E_{q(r)}[sum_i H(sigmoid(r_i))] (h_1 = p(z|r^(1)), a product of Bernoullis);
    # E_{q(r)}[f] = sum_z b(z) E[f(r) | z] is computed here by quadrature of r | z for every z
    model = BOUND_MODEL
    ising = model.to_ising()
    states, b = exact.probabilities(ising)
    log_z = exact.log_partition(ising)

    def ent(r):  # H(sigmoid(r)) = p softplus(-r) + (1 - p) softplus(r), stable
        p = expit(r)
        return p * np.logaddexp(0.0, -r) + (1.0 - p) * np.logaddexp(0.0, r)

    # E[sum_i H(sigmoid(r_i)) | z]: quadrature of r | z ~ N(a + Sigma_c z, Sigma_c), one coordinate at a time
    aux = model.auxiliary()
    S = aux.covariance()
    y, w = np.polynomial.hermite_e.hermegauss(120)
    w = w / w.sum()
    eh = np.array([np.sum(ent((aux.mean + S @ z)[:, None] + np.sqrt(np.diag(S))[:, None] * y) @ w) for z in states])
    exact_l1 = float(b @ (-ising.energy(states)) + b @ eh)
    res = boltzmann_bound(model, 1, 40_000, seed=3)
    assert abs(res.value - exact_l1) < Z_CRIT * res.stderr
    assert res.elbo == pytest.approx(log_z, abs=1e-10)


def test_bound_stderr_is_calibrated():
    # the reported standard error is honest: over 100 seeds, (estimate - L~_1) / stderr ~ N(0, 1), with
    # L~_1 taken from a 400,000-sample run (its own error, ~0.2 of one 4,000-sample s.e., is allowed for by
    # comparing the spread, not the centre, plus a loose centre check); KS p > 1e-3 on the centred values
    model = BOUND_MODEL
    ref = boltzmann_bound(model, 4, 400_000, seed=12345)
    z = np.array([(boltzmann_bound(model, 4, 4_000, seed=s).value - ref.value) for s in range(100)])
    se = boltzmann_bound(model, 4, 4_000, seed=0).stderr
    assert abs(z.mean()) < Z_CRIT * math.sqrt(se**2 / 100 + ref.stderr**2)
    assert stats.kstest((z - z.mean()) / se, "norm").pvalue > 1e-3


def test_bound_increases_to_log_z():
    # 0 <= log Z - L~_k = E KL(h_k || q) <= E log(1 + chi^2(h_k || q)) <= E chi^2 = C / k, exactly;
    # each estimate is compared with that band widened by 3.89 standard errors (alpha = 1e-4 per side).
    model = BOUND_MODEL
    log_z = exact.log_partition(model.to_ising())
    C = _chi2_constant(model)
    prev = None
    for k in (1, 2, 4, 8, 32, 128):
        res = boltzmann_bound(model, k, 20_000, seed=7)
        gap = log_z - res.value
        assert gap > -Z_CRIT * res.stderr
        assert gap < C / k + Z_CRIT * res.stderr
        if prev is not None:
            # increasing: paired terms (sample s shares its stream across k), one-sided z-test
            diff = res.terms - prev.terms
            se = diff.std(ddof=1) / math.sqrt(diff.size)
            if k <= 8:
                assert diff.mean() > Z_CRIT * se, (k, diff.mean(), se)
            else:
                assert diff.mean() > -Z_CRIT * se
        prev = res
    # at k = 128 the gap is below C / 128
    assert C / 128 < 0.05


def test_bound_log_joint_and_reproducibility():
    model = BOUND_MODEL
    ising = model.to_ising()
    states, b = exact.probabilities(ising)
    # a decoder-like log p(x, z): -E(z) plus a data term; L = E_b[log p(x,z)] + H(b) exactly
    wvec = np.linspace(-1, 1, 6)
    lj = lambda z: -ising.energy(z) + z @ wvec  # noqa: E731
    res = boltzmann_bound(model, 16, 4_000, seed=1, log_joint=lj)
    ent = -np.sum(b * np.log(b))
    assert res.elbo == pytest.approx(float(b @ lj(states)) + ent, abs=1e-10)
    assert res.value < res.elbo + Z_CRIT * res.stderr
    # terms of a prefix of the samples do not depend on n_samples; same seed, same terms
    res2 = boltzmann_bound(model, 16, 100, seed=1, log_joint=lj)
    np.testing.assert_array_equal(res2.terms, res.terms[:100])
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        res3 = boltzmann_bound(model, 16, 100, seed=1, log_joint=lj)
    finally:
        numba.set_num_threads(old)
    np.testing.assert_array_equal(res3.terms, res2.terms)


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda: LowRankBoltzmann([0.0, 1.0], [1.0, 2.0], [0.0, 0.0]), ValueError, "`U`"),
        (lambda: LowRankBoltzmann([0.0], [[1.0], [2.0]], [0.0, 0.0]), ValueError, "`d_diag`"),
        (lambda: LowRankBoltzmann([0.0, 1.0], [[1.0], [2.0]], [0.0]), ValueError, "`mu`"),
        (lambda: LowRankBoltzmann([0.0, np.nan], [[1.0], [2.0]], [0.0, 0.0]), ValueError, "`d_diag`"),
        (lambda: LowRankBoltzmann(["a", "b"], [[1.0], [2.0]], [0.0, 0.0]), TypeError, "`d_diag`"),
        (lambda: LowRankBoltzmann.random(3, 1, -1.0, 0), ValueError, "`scale`"),
        (lambda: MODEL5.energy(np.zeros((2, 4))), ValueError, "`x`"),
        (lambda: MODEL5.auxiliary(shift=0.0), ValueError, "`shift`"),
        (lambda: MODEL5.auxiliary(shift="1"), TypeError, "`shift`"),
        (lambda: LowRankBoltzmann([-1.0, -1.0], [[1.0], [1.0]], [0.0, 0.0]).log_density_r(np.zeros((2, 2))), ValueError, "singular"),
        (lambda: MODEL5.log_density_r(np.zeros((2, 3)), shift=2.0), ValueError, "`r`"),
        (lambda: boltzmann_auxiliary(Ising.random(3, 1.0, 0, domain="binary"), np.zeros(3), 1, 0), TypeError, "LowRankBoltzmann"),
        (lambda: boltzmann_auxiliary(MODEL5, -np.ones(5), 1, 0), ValueError, "`x0`"),
        (lambda: boltzmann_auxiliary(MODEL5, np.zeros(4), 1, 0), ValueError, "`x0`"),
        (lambda: boltzmann_auxiliary(MODEL5, np.zeros(5), -1, 0), ValueError, "`n_steps`"),
        (lambda: boltzmann_auxiliary(MODEL5, np.zeros(5), 1.5, 0), TypeError, "`n_steps`"),
        (lambda: boltzmann_auxiliary(MODEL5, np.zeros(5), 1, None), TypeError, "`seed`"),
        (lambda: boltzmann_auxiliary(MODEL5, np.zeros(5), 1, 0, shift=0.1), ValueError, "`shift`"),
        (lambda: boltzmann_auxiliary(MODEL5, np.zeros(5), 1, 0, thin=-1), ValueError, "`thin`"),
        (lambda: LowRankBoltzmann.from_ising(Ising.random(3, 1.0, 0)), ValueError, "domain='binary'"),
        (lambda: LowRankBoltzmann.from_ising(MODEL5), TypeError, "`model`"),
        (lambda: boltzmann_bound(MODEL5, 0, 10, 0), ValueError, "`k`"),
        (lambda: boltzmann_bound(MODEL5, 2, 1, 0), ValueError, "`n_samples`"),
        (lambda: boltzmann_bound(MODEL5.to_ising(), 2, 10, 0), TypeError, "`model`"),
        (lambda: boltzmann_bound(MODEL5, 2, 10, 0, log_joint=3), TypeError, "`log_joint`"),
        (lambda: boltzmann_bound(MODEL5, 2, 10, 0, log_joint=lambda z: z), ValueError, "`log_joint`"),
        (lambda: boltzmann_bound(LowRankBoltzmann.random(21, 1, 1.0, 0), 2, 10, 0), ValueError, "MAX_BOUND_BITS"),
    ],
)
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
