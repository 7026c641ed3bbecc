"""Monte Carlo observables and their error bars (docs/thermodynamics.md)."""

import math

import numpy as np
import pytest
from scipy import stats

from ebm_ref import exact
from ebm_ref.energies import Ising
from ebm_ref.observables import Estimate, integrated_autocorr_time, ising_observables, lattice_series
from ebm_ref.samplers import gibbs

BETA_C = 0.5 * math.log1p(math.sqrt(2.0))
Z4 = 4.0  # two-sided normal quantile: alpha = 6.3e-5 per assertion


def _ar1(phi, n, k, seed):
    """k independent stationary AR(1) chains x_t = phi x_{t-1} + sqrt(1 - phi^2) e_t (unit variance)."""
    rng = np.random.default_rng(seed)
    x = np.empty((n, k))
    x[0] = rng.normal(size=k)
    e = rng.normal(size=(n, k)) * math.sqrt(1.0 - phi * phi)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + e[t]
    return x


# ------------------------------------------------------------------ tau_int


@pytest.mark.parametrize("phi", [0.0, 0.5, 0.9])
def test_tau_of_ar1(phi):
    n, k = 20000, 8
    tau = (1.0 + phi) / (1.0 - phi)  # 1 + 2 sum_t phi^t
    x = _ar1(phi, n, k, seed=11)
    got = integrated_autocorr_time(x)
    # Sokal: sd(tau_hat)/tau ~ sqrt(2 (2M + 1) / (n k)), M ~ c tau the window; bias: the
    # dropped tail 2 phi^{M+1}/(1 - phi) (< 1e-4 tau here) plus the mean subtraction,
    # at most (2M + 1) tau / (n k) relative
    M = math.ceil(5.0 * tau) + 1
    rel_sd = math.sqrt(2.0 * (2 * M + 1) / (n * k))
    bias = (2 * M + 1) / (n * k) + 2.0 * phi ** (M + 1) / (1.0 - phi) / tau
    tol = (Z4 * rel_sd + bias) * tau
    assert abs(got - tau) < tol, (got, tau, tol)
    # planted bug: the "1 + sum rho" convention (half the autocorrelation sum) is rejected
    if phi > 0:
        assert abs(0.5 * (got + 1.0) - tau) > tol


def test_tau_properties():
    x = _ar1(0.7, 5000, 3, seed=2)
    t = integrated_autocorr_time(x)
    assert integrated_autocorr_time(3.0 * x - 7.0) == pytest.approx(t, rel=1e-12)
    assert integrated_autocorr_time(x[:, 0]) == integrated_autocorr_time(x[:, :1])
    assert integrated_autocorr_time(np.full((100, 2), 4.0)) == 1.0
    # c moves the window: a larger window on the same data still estimates the same tau
    assert abs(integrated_autocorr_time(x, c=8.0) - t) < 0.2 * t


# ------------------------------------------------------------------ error bars


def _coverage_bounds(R, p=0.9545):
    """Binomial bound on the fraction of R replicas inside +-2 stderr.

    p = P(|Z| < 2); +-4 binomial sd (alpha 6e-5) plus 0.01 for the noise and the
    O(tau / n) low bias of an estimated stderr (their effect on the coverage of
    a 2-sigma interval is ~0.003 at the stderr's ~8 % relative noise here).
    """
    sd = math.sqrt(p * (1 - p) / R)
    return p - Z4 * sd - 0.01, p + Z4 * sd + 0.01


def test_stderr_of_mean_calibrated_on_ar1():
    R, n, k, phi = 300, 4000, 4, 0.9
    x = _ar1(phi, n, k * R, seed=5).reshape(n, R, k)
    inside, naive_inside = 0, 0
    for r in range(R):
        H = x[:, r, :]
        est = ising_observables(H, np.ones_like(H), beta=1.0, n_sites=1)["energy"]
        inside += abs(est.value) < 2.0 * est.stderr  # true mean 0
        naive = H.std() / math.sqrt(H.size)  # planted bug: no autocorrelation
        naive_inside += abs(est.value) < 2.0 * naive
    lo, hi = _coverage_bounds(R)
    assert lo < inside / R < hi, inside / R
    # the iid stderr covers about P(|Z| < 2 / sqrt(19)) = 35 %
    assert not lo < naive_inside / R < hi


def test_jackknife_specific_heat_on_iid_gaussians():
    # H iid N(mu, s^2): c = beta^2 s^2 / N, and the sample variance has sd sqrt(2/(nk)) s^2
    R, n, k, beta, N, s = 200, 1000, 4, 0.5, 10, 2.0
    rng = np.random.default_rng(8)
    truth = beta**2 * s**2 / N
    true_sd = beta**2 * math.sqrt(2.0 / (n * k)) * s**2 / N
    inside, ratios = 0, []
    for _ in range(R):
        H = rng.normal(-30.0, s, size=(n, k))
        est = ising_observables(H, rng.normal(size=(n, k)), beta, N)["specific_heat"]
        inside += abs(est.value - truth) < 2.0 * est.stderr
        ratios.append(est.stderr / true_sd)
    lo, hi = _coverage_bounds(R)
    assert lo < inside / R < hi
    # the jackknife stderr (256 blocks: ~4 % noise each) averages to the true sd:
    # sd of the mean ratio ~0.003; 0.02 allows the O(1/(nk)) jackknife bias
    assert abs(np.mean(ratios) - 1.0) < 0.02


def test_jackknife_specific_heat_on_ar1():
    # correlated: blocks of >= 20 tau; var of AR(1) is 1, c = beta^2 / N
    R, n, k, beta, N, phi = 150, 4000, 4, 1.0, 1, 0.9
    x = _ar1(phi, n, k * R, seed=9).reshape(n, R, k)
    inside, naive_inside = 0, 0
    for r in range(R):
        H = x[:, r, :]
        # M = H rescaled into |M| <= N = 1: the same autocorrelation (hence the same blocks) as M = H
        est = ising_observables(H, H / np.abs(H).max(), beta, N)["specific_heat"]
        inside += abs(est.value - 1.0) < 2.0 * est.stderr
        naive = math.sqrt(2.0 / H.size)  # planted bug: iid formula for the variance's error
        naive_inside += abs(est.value - 1.0) < 2.0 * naive
    lo, hi = _coverage_bounds(R)
    assert lo < inside / R < hi, inside / R
    assert not lo < naive_inside / R < hi


def test_values_are_the_definitions():
    rng = np.random.default_rng(3)
    n, k, N, beta = 500, 3, 16, 0.37
    H = rng.normal(-20.0, 3.0, size=(n, k))
    M = rng.integers(-N, N + 1, size=(n, k)).astype(float)
    out = ising_observables(H, M, beta, N)
    assert set(out) == {"energy", "abs_magnetization", "susceptibility", "specific_heat", "binder"}
    assert all(isinstance(v, Estimate) for v in out.values())
    assert out["energy"].value == pytest.approx(H.mean() / N, rel=1e-14)
    assert out["abs_magnetization"].value == pytest.approx(np.abs(M).mean() / N, rel=1e-14)
    assert out["susceptibility"].value == pytest.approx(beta * (np.mean(M**2) - np.mean(np.abs(M)) ** 2) / N, rel=1e-12)
    assert out["specific_heat"].value == pytest.approx(beta**2 * np.var(H) / N, rel=1e-12)
    assert out["binder"].value == pytest.approx(1.0 - np.mean(M**4) / (3.0 * np.mean(M**2) ** 2), rel=1e-12)
    assert out["energy"].tau_int == integrated_autocorr_time(H / N)
    assert all(v.stderr > 0 and v.tau_int > 0 for v in out.values())


# ------------------------------------------------------------------ lattice_series


@pytest.mark.parametrize("shape, boundary", [(2, "periodic"), (3, "periodic"), ((3, 4), "periodic"), ((3, 4), "free")])
def test_lattice_series_is_energy_over_beta(shape, boundary):
    beta, coupling, field = 0.7, -1.3, 0.4
    model = Ising.lattice(shape, beta, coupling=coupling, field=field, boundary=boundary)
    d = model.n_features
    x = np.where(np.random.default_rng(0).random((6, 5, d)) < 0.5, -1.0, 1.0)
    H, M = lattice_series(model, x)
    assert H.shape == M.shape == (6, 5)
    E = model.energy(x.reshape(-1, d)).reshape(6, 5)
    np.testing.assert_allclose(H * beta, E, rtol=1e-13, atol=1e-13)
    np.testing.assert_array_equal(M, x.sum(axis=2))
    # a dense model with the same J and h needs beta, and gives the same series
    p = model.params
    dense = Ising(p["J"], p["h"])
    H2, M2 = lattice_series(dense, x, beta=beta)
    np.testing.assert_allclose(H2, H, rtol=1e-13, atol=1e-13)
    np.testing.assert_array_equal(M2, M)


def test_lattice_series_bad_input():
    model = Ising.lattice(3, 0.4)
    x = np.ones((2, 2, 9))
    with pytest.raises(TypeError, match="`model`"):
        lattice_series("model", x)
    with pytest.raises(ValueError, match="domain"):
        lattice_series(Ising.lattice(3, 0.4, domain="binary"), x)
    with pytest.raises(ValueError, match="`beta`.*contradicts"):
        lattice_series(model, x, beta=0.5)
    with pytest.raises(ValueError, match="`beta` is required"):
        lattice_series(Ising(model.params["J"], model.params["h"]), x)
    with pytest.raises(ValueError, match="beta"):
        lattice_series(Ising.lattice(3, 0.0), x)
    with pytest.raises(ValueError, match="`trace`"):
        lattice_series(model, np.ones((2, 9)))
    with pytest.raises(ValueError, match="`trace`"):
        lattice_series(model, np.ones((2, 2, 8)))
    with pytest.raises(ValueError, match="`trace`.*-1.0/\\+1.0"):
        lattice_series(model, np.zeros((2, 2, 9)))
    assert lattice_series(model, x, beta=0.4)[0].shape == (2, 2)


@pytest.mark.parametrize(
    "call, exc, pattern",
    [
        (lambda: integrated_autocorr_time(np.ones((3, 2, 2))), ValueError, "`x`"),
        (lambda: integrated_autocorr_time([1.0]), ValueError, "`x`"),
        (lambda: integrated_autocorr_time([1.0, np.nan, 2.0]), ValueError, "`x`"),
        (lambda: integrated_autocorr_time(["a", "b"]), TypeError, "`x`"),
        (lambda: integrated_autocorr_time([1.0, 2.0, 3.0], c=0.0), ValueError, "`c`"),
        (lambda: ising_observables(np.ones((10, 2)), np.ones((10, 3)), 0.4, 4), ValueError, "`magnetization`"),
        (lambda: ising_observables(np.ones((3, 2)), np.ones((3, 2)), 0.4, 4), ValueError, "`energy`"),
        (lambda: ising_observables(np.ones((10, 2)), np.ones((10, 2)), -0.4, 4), ValueError, "`beta`"),
        (lambda: ising_observables(np.ones((10, 2)), np.ones((10, 2)), 0.4, 0), ValueError, "`n_sites`"),
        (lambda: ising_observables(np.ones((10, 2)), np.ones((10, 2)), 0.4, 4.0), TypeError, "`n_sites`"),
        (lambda: ising_observables(np.full((10, 2), np.inf), np.ones((10, 2)), 0.4, 4), ValueError, "`energy`"),
    ],
)
def test_bad_input(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


# ------------------------------------------------------------------ sampler vs exact


def _sample(L, beta, burn, n_meas, seed, seg):
    """32 chains of checkerboard Gibbs from all +1, burn-in, then ``n_meas`` saved sweeps."""
    model = Ising.lattice(L, beta)
    x = gibbs(model, np.ones((32, L * L)), burn, seed=seed).x
    Hs, Ms = [], []
    for s in range(n_meas // seg):  # segments keep the float64 trace small
        r = gibbs(model, x, seg, seed=seed * 1000 + s + 1, thin=1)
        H, M = lattice_series(model, r.trace)
        Hs.append(H)
        Ms.append(M)
        x = r.x
    return ising_observables(np.concatenate(Hs), np.concatenate(Ms), beta, L * L)


# t with 31 degrees of freedom (the 32 independent chains bound the number of
# independent blocks when tau is long), two-sided alpha = 1e-4 per assertion
Z_T = stats.t.isf(0.5e-4, df=31)


def _check_against_exact(L, beta, out):
    e, c = exact.ising_energy_2d(L, beta), exact.ising_specific_heat_2d(L, beta)
    z_e = (out["energy"].value - e) / out["energy"].stderr
    z_c = (out["specific_heat"].value - c) / out["specific_heat"].stderr
    assert abs(z_e) < Z_T, (L, beta, out["energy"], e)
    assert abs(z_c) < Z_T, (L, beta, out["specific_heat"], c)
    # planted bug: the exact values at a 2 % different beta (a sampler at the wrong
    # temperature) are rejected by the same test
    e_bad = exact.ising_energy_2d(L, 1.02 * beta)
    assert abs((out["energy"].value - e_bad) / out["energy"].stderr) > Z_T


@pytest.mark.parametrize("L, burn_c", [(16, 500), (32, 1000)])
@pytest.mark.parametrize("beta", [0.3, BETA_C, 0.6])
def test_gibbs_matches_exact_thermodynamics(L, burn_c, beta):
    # burn-in: tau_int(E) measured ~32 (L = 16) and ~110 (L = 32) sweeps at beta_c, ~2 elsewhere
    burn = burn_c if beta == BETA_C else 200
    out = _sample(L, beta, burn, 2000, seed=L + int(100 * beta), seg=250)
    _check_against_exact(L, beta, out)


@pytest.mark.slow
@pytest.mark.parametrize("beta", [0.3, BETA_C, 0.6])
def test_gibbs_matches_exact_thermodynamics_L64(beta):
    burn = 4000 if beta == BETA_C else 300
    out = _sample(64, beta, burn, 4000, seed=64 + int(100 * beta), seg=50)
    _check_against_exact(64, beta, out)
