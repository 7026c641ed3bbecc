"""GaussianMixture: derivatives vs finite differences, energy vs its
definition, log Z = 0 by quadrature, the two-component family, sampling,
bad input, large parameters."""

import math
import warnings

import numpy as np
import pytest
from scipy import integrate, special, stats

from ebm_ref.energies import GaussianMixture
from ebm_ref.testing import check_energy_derivatives


def make(rng, K, d, logit_scale=1.0, spread=2.0):
    return GaussianMixture(
        logit_scale * rng.standard_normal(K),
        spread * rng.standard_normal((K, d)),
        0.5 * rng.standard_normal((K, d)),
    )


def log_density_by_definition(model, x):
    """log sum_k pi_k prod_d N(x_d; m_kd, s_kd) with scipy.stats, independently of the class."""
    lam = model.params["logits"]
    pi = np.exp(lam - special.logsumexp(lam))
    comps = []
    for k in range(model.n_components):
        comps.append(np.log(pi[k]) + stats.norm.logpdf(x, model.means[k], np.exp(model.log_scales[k])).sum(axis=1))
    return special.logsumexp(np.stack(comps, axis=1), axis=1)


# ----------------------------------------------------------------- derivatives
@pytest.mark.parametrize("K", [1, 2, 4])
@pytest.mark.parametrize("d", [1, 2, 5])
@pytest.mark.parametrize("logit_scale", [1.0, 5.0])
def test_derivatives_match_finite_differences(rng, K, d, logit_scale):
    model = make(rng, K, d, logit_scale=logit_scale)
    x = 2.0 * rng.standard_normal((4, d))
    check_energy_derivatives(model, x, seed=3).assert_ok()


def test_derivatives_saturated_responsibilities(rng):
    # far from the means one component takes all the responsibility
    model = GaussianMixture([40.0, -40.0, 3.0], [[0.0, 0.0], [5.0, 5.0], [-5.0, 2.0]], [[0.0, 0.5], [-0.5, 0.0], [0.2, 0.2]])
    x = np.array([[30.0, -20.0], [4.0, 4.0], [-6.0, 2.5]])
    check_energy_derivatives(model, x).assert_ok()
    check_energy_derivatives(model, x[1]).assert_ok()


# ------------------------------------------------------------------ definition
@pytest.mark.parametrize("K,d", [(1, 1), (3, 2), (5, 4)])
def test_energy_matches_definition(rng, K, d):
    model = make(rng, K, d, logit_scale=3.0)
    x = 3.0 * rng.standard_normal((7, d))
    np.testing.assert_allclose(-model.energy(x), log_density_by_definition(model, x), rtol=1e-13, atol=1e-12)
    np.testing.assert_allclose(model.log_prob(x), -model.energy(x), rtol=0, atol=0)
    assert abs(model.weights.sum() - 1.0) < 1e-15


def test_two_component_family():
    rho = 0.2
    model = GaussianMixture.two_component(rho, -1.0, 2.0, 0.0, math.log(0.5))
    x = np.linspace(-4, 5, 11)[:, None]
    ref = np.log(rho * stats.norm.pdf(x[:, 0], -1.0, 1.0) + (1 - rho) * stats.norm.pdf(x[:, 0], 2.0, 0.5))
    np.testing.assert_allclose(-model.energy(x), ref, rtol=1e-13)
    np.testing.assert_allclose(model.weights, [rho, 1 - rho], rtol=1e-15)
    m2 = GaussianMixture.two_component(0.7, [0.0, 1.0], [2.0, -1.0])
    assert m2.means.shape == (2, 2) and np.all(m2.log_scales == 0.0)
    for bad in (0.0, 1.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="`rho` must lie in the open interval"):
            GaussianMixture.two_component(bad, 0.0, 1.0)
    with pytest.raises(TypeError, match="`rho` must be a real number"):
        GaussianMixture.two_component("0.5", 0.0, 1.0)
    with pytest.raises(ValueError, match="same shape"):
        GaussianMixture.two_component(0.5, [0.0, 1.0], [1.0])


# ----------------------------------------------------------------------- log Z
def test_closed_form_log_z_is_zero():
    model = GaussianMixture([0.3, -2.0], [[0.0], [3.0]], [[0.0], [-1.0]])
    value, bound = model._exact_log_partition()
    assert value == 0.0 and 0.0 <= bound < 1e-14
    assert np.all(model._exact_mean_grad_params()["logits"] == 0.0)


@pytest.mark.parametrize("K", [1, 2, 3])
def test_log_z_zero_by_scipy_quadrature_1d(rng, K):
    model = make(rng, K, 1, logit_scale=2.0)
    z, err = integrate.quad(
        lambda t: math.exp(-float(model.energy(np.array([t])))), -np.inf, np.inf, epsabs=0, epsrel=1e-12, limit=400
    )
    # quadrature to 1e-9
    assert abs(math.log(z)) < 1e-9, (z, err)


def test_log_z_zero_by_scipy_cubature_2d(rng):
    model = make(rng, 3, 2, spread=1.0)
    res = integrate.cubature(lambda x: np.exp(-model.energy(x)), [-np.inf, -np.inf], [np.inf, np.inf], rtol=1e-12)
    assert abs(math.log(float(res.estimate))) < 1e-9


def test_mean_grad_zero_by_quadrature(rng):
    # E_p[dE/dlogits] = pi - E_p[r] = 0
    model = make(rng, 3, 1, logit_scale=2.0)

    def f(t):
        x = np.array([[t]])
        return math.exp(-float(model.energy(x[0]))) * model.grad_params(x)["logits"]

    res, _ = integrate.quad_vec(f, -np.inf, np.inf, epsabs=1e-13, epsrel=1e-11)
    np.testing.assert_allclose(res, 0.0, atol=1e-9)


# ----------------------------------------------------------------- sampling
def test_sample_matches_the_distribution():
    model = GaussianMixture.two_component(0.3, -2.0, 1.5, math.log(0.5), 0.0)
    x = model.sample(4000, seed=5)
    assert x.shape == (4000, 1)

    def cdf(t):
        return 0.3 * stats.norm.cdf(t, -2.0, 0.5) + 0.7 * stats.norm.cdf(t, 1.5, 1.0)

    # false-failure rate 1e-4
    assert stats.kstest(x[:, 0], cdf).pvalue > 1e-4
    assert np.array_equal(x, model.sample(4000, seed=5))


# ----------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "logits,means,log_scales,exc,match",
    [
        (np.zeros(2), np.zeros(2), np.zeros(2), ValueError, "`means` of GaussianMixture must be a 2-D"),
        (np.zeros(2), np.zeros((2, 3)), np.zeros((2, 2)), ValueError, r"`log_scales` of GaussianMixture must have shape \(2, 3\)"),
        (np.zeros(3), np.zeros((2, 1)), np.zeros((2, 1)), ValueError, r"`logits` of GaussianMixture must have shape \(2,\)"),
        (np.array([0.0, np.inf]), np.zeros((2, 1)), np.zeros((2, 1)), ValueError, "`logits` must contain only finite values"),
        (np.zeros(2), np.array([[np.nan], [0.0]]), np.zeros((2, 1)), ValueError, "`means` must contain only finite values"),
        (np.zeros(2), np.zeros((2, 1)), np.array([[0.0], [-np.inf]]), ValueError, "`log_scales` must contain only finite values"),
        (np.zeros(2), np.zeros((2, 1)), np.array([[0.0], [-400.0]]), ValueError, r"must lie in \[-300, 300\]"),
        (np.zeros(2), "ab", np.zeros((2, 1)), TypeError, "`means` must be a real numeric array"),
    ],
)
def test_bad_parameters_raise(logits, means, log_scales, exc, match):
    with pytest.raises(exc, match=match):
        GaussianMixture(logits, means, log_scales)


def test_bad_inputs_raise(rng):
    model = make(rng, 2, 3)
    with pytest.raises(ValueError, match=r"`x` must have shape \(n, 3\)"):
        model.energy(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="`x` must contain only finite values"):
        model.grad_x(np.array([np.nan, 0.0, 0.0]))
    with pytest.raises(ValueError, match=r"`v` must have the shape of `x`"):
        model.grad_params_of_grad_x(np.zeros((2, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="unknown key"):
        model.with_params({"means": np.zeros((2, 3))})
    with pytest.raises(ValueError, match="`n` must be >= 1"):
        model.sample(0, seed=1)


def test_with_params_keeps_fixed_attributes(rng):
    model = make(rng, 3, 2)
    before = model.params["logits"].copy()
    new = model.with_params({"logits": np.array([1.0, 2.0, 3.0])})
    assert new.means is model.means and new.log_scales is model.log_scales
    assert np.array_equal(model.params["logits"], before)
    assert not np.array_equal(new.params["logits"], model.params["logits"])
    with pytest.raises(ValueError):
        model.means[0, 0] = 1.0


def test_large_parameters_no_overflow(rng):
    model = GaussianMixture(
        [50.0, -50.0, 0.0], [[0.0, 0.0], [100.0, -100.0], [1e3, 1e3]], [[-5.0, -5.0], [3.0, 3.0], [0.0, 0.0]]
    )
    x = np.array([[1e4, -1e4], [0.0, 0.01], [500.0, 500.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            arrays = [model.energy(x), model.grad_x(x), model.hessian_diag(x)]
            arrays += list(model.grad_params(x).values())
            arrays += list(model.grad_params_of_grad_x(x, x).values())
            arrays += list(model.grad_params_of_hessian_diag(x, x).values())
    for a in arrays:
        assert np.all(np.isfinite(a))
