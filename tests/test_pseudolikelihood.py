"""PseudoLikelihood: value vs enumeration, exact gradient (FD), consistency,
the stochastic one-unit estimator (unbiasedness, scikit-learn), reproducibility, errors.

See docs/pseudo-likelihood-and-ssm.md. Statistical assertions use a
false-failure rate alpha = 1e-4 each (stated next to each test).
"""

import numpy as np
import pytest
from scipy import optimize, stats

from ebm_ref import exact
from ebm_ref.energies import EnergyModel, RBM, GaussianMixture, Ising
from ebm_ref.objectives import PseudoLikelihood
from ebm_ref.testing import check_grad
from zoo import random_rbm

ALPHA = 1e-4


def _rbm(V=5, H=3, scale=1.0, seed=0):
    return random_rbm(V, H, scale, seed=seed)


class _RBMWithoutHook(RBM):
    """An RBM without its closed form: the base class's energies of flipped states are used."""

    _flip_energy_delta = EnergyModel._flip_energy_delta
    _grad_params_of_flip_energy_delta = EnergyModel._grad_params_of_flip_energy_delta


def _states(model, n, seed):
    r = np.random.default_rng(seed)
    x = (r.random((n, model.n_features)) < 0.5).astype(float)
    return 2.0 * x - 1.0 if model.domain == "spin" else x


MODELS = {
    "rbm": lambda: _rbm(),
    "rbm-nohook": lambda: _RBMWithoutHook(*_rbm().params.values()),
    "ising-spin": lambda: Ising.random(6, 1.5, seed=1),
    "ising-binary": lambda: Ising.random(6, 1.5, seed=2, domain="binary"),
    "lattice-spin": lambda: Ising.lattice(3, 0.4, field=0.2),
    "lattice-binary-free": lambda: Ising.lattice((2, 3), 0.7, coupling=-1.0, field=0.3, domain="binary", boundary="free"),
}


def _log_conditionals(model, x):
    """log p(x_k | x_-k) from the enumerated distribution (definition)."""
    states, probs = exact.probabilities(model)
    lo = 0.0 if model.domain == "binary" else -1.0
    bits = (states != lo).astype(np.int64)
    d = model.n_features
    weights = 1 << np.arange(d - 1, -1, -1)
    index = {int(b): i for i, b in enumerate(bits @ weights)}
    xb = (x != lo).astype(np.int64)
    out = np.empty(x.shape)
    for i in range(x.shape[0]):
        key = int(xb[i] @ weights)
        p = probs[index[key]]
        for k in range(d):
            q = probs[index[key ^ int(weights[k])]]
            out[i, k] = np.log(p) - np.log(p + q)
    return out


@pytest.mark.parametrize("name", list(MODELS))
def test_full_value_is_sum_of_enumerated_log_conditionals(name):
    model = MODELS[name]()
    x = _states(model, 9, seed=3)
    expected = -_log_conditionals(model, x).sum(axis=1)
    pl = PseudoLikelihood()
    np.testing.assert_allclose(pl.per_sample(model, x), expected, rtol=1e-12, atol=1e-12)
    assert pl.value(model, x) == pytest.approx(expected.mean(), rel=1e-12)
    assert pl.value_and_grad(model, x)[0] == pytest.approx(expected.mean(), rel=1e-12)


def test_flip_energy_delta_is_the_energy_change_of_a_flip():
    # hook vs the definition E(x^(k)) - E(x), also for real (non-state) inputs
    r = np.random.default_rng(4)
    for model in (_rbm(6, 4, 3.0), Ising.random(7, 2.0, 5), Ising.lattice((3, 4), 0.5, field=-0.2, domain="binary")):
        x = r.normal(0.5, 1.0, (5, model.n_features))
        step = 1.0 - 2.0 * x if model.domain == "binary" else -2.0 * x
        got = model.flip_energy_delta(x)
        for k in range(model.n_features):
            xf = x.copy()
            xf[:, k] += step[:, k]
            np.testing.assert_allclose(got[:, k], model.energy(xf) - model.energy(x), rtol=1e-10, atol=1e-10)
        assert model.flip_energy_delta(x[0]).shape == (model.n_features,)


@pytest.mark.parametrize("scale", [0.1, 1.0, 10.0, 50.0])
@pytest.mark.parametrize("kind", ["rbm", "ising-spin", "ising-binary"])
def test_hook_parameter_derivative_fd(kind, scale):
    # grad_params_of_flip_energy_delta against central differences of sum(c * Delta)
    r = np.random.default_rng(int(scale * 10))
    if kind == "rbm":
        model = _rbm(5, 4, scale, seed=6)
    else:
        model = Ising.random(6, scale, 7, domain="spin" if kind == "ising-spin" else "binary")
    x = _states(model, 7, seed=8)
    c = r.normal(size=x.shape)
    with np.errstate(over="raise", invalid="raise"):
        g = model.grad_params_of_flip_energy_delta(x, c)

    def f(theta):
        return float(np.sum(c * model._with_params_unchecked(theta).flip_energy_delta(x)))

    check_grad(f, lambda th: g, model.params, zero_mask=model.structural_zeros(), name=kind).assert_ok()


def _fd_objective(obj, model, x, seed=None):
    """The objective's value and gradient, and the finite-difference report of that gradient."""
    loss, g = obj.value_and_grad(model, x, seed)

    def f(theta):
        return obj.value(model._with_params_unchecked(theta), x, seed)

    report = check_grad(f, lambda th: g, model.params, zero_mask=model.structural_zeros(), name=repr(obj))
    return loss, g, report


@pytest.mark.parametrize("stochastic", [False, True])
@pytest.mark.parametrize(
    "make",
    [
        lambda s: _rbm(3, 2, s, seed=9),
        lambda s: _rbm(8, 5, s, seed=10),
        lambda s: _RBMWithoutHook(*_rbm(6, 3, s, seed=11).params.values()),
        lambda s: Ising.random(4, s, 12),
        lambda s: Ising.random(9, s, 13, domain="binary"),
    ],
    ids=["rbm3x2", "rbm8x5", "rbm-nohook", "ising4", "ising9-binary"],
)
@pytest.mark.parametrize("scale", [0.3, 2.0, 50.0])
def test_gradient_fd(make, scale, stochastic):
    model = make(scale)
    x = _states(model, 11, seed=14)
    obj = PseudoLikelihood(stochastic=stochastic)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, g, report = _fd_objective(obj, model, x, seed=15 if stochastic else None)
    assert set(g) == set(model.params)
    assert np.isfinite(loss) and all(np.all(np.isfinite(v)) for v in g.values())
    assert report.passed, report


def test_lattice_matches_dense_twin():
    lat = Ising.lattice(4, 0.45, field=0.1)
    dense = Ising(lat.params["J"], lat.params["h"])
    x = _states(lat, 10, seed=16)
    for obj, seed in ((PseudoLikelihood(), None), (PseudoLikelihood(stochastic=True), 3)):
        l1, g1 = obj.value_and_grad(lat, x, seed)
        l2, g2 = obj.value_and_grad(dense, x, seed)
        assert l1 == pytest.approx(l2, rel=1e-13)
        for k in g1:
            np.testing.assert_allclose(g1[k], g2[k], rtol=1e-12, atol=1e-14)


def test_large_weights_do_not_overflow():
    # |W| ~ 50: every flip changes the energy by hundreds; softplus and sigmoid stay finite
    model = _rbm(10, 6, 50.0, seed=17)
    x = _states(model, 20, seed=18)
    with np.errstate(all="raise"):
        loss, g = PseudoLikelihood().value_and_grad(model, x)
    assert np.isfinite(loss) and loss > 0
    assert all(np.all(np.isfinite(v)) for v in g.values())


# ------------------------------------------------------------- consistency
def _free_vector(model):
    iu = np.triu_indices(model.n_features, 1)
    return np.concatenate([model.params["J"][iu], model.params["h"]])


def _model_from(theta, d, domain):
    iu = np.triu_indices(d, 1)
    J = np.zeros((d, d))
    J[iu] = theta[: iu[0].size]
    J = J + J.T
    return Ising(J, theta[iu[0].size :], domain=domain)


def _free_grad(g, d):
    # d/dJ_ij of the symmetric parameterisation = dJ_ij + dJ_ji
    iu = np.triu_indices(d, 1)
    return np.concatenate([(g["J"] + g["J"].T)[iu], g["h"]])


def _expected_grad(model, states, probs):
    """sum_x p(x) grad PL(x): the hook's parameter derivative with c = -p sigmoid(-Delta)."""
    delta = model.flip_energy_delta(states)
    return model.grad_params_of_flip_energy_delta(states, -probs[:, None] / (1.0 + np.exp(delta)))


def test_expected_gradient_vanishes_at_the_truth():
    # population version of Besag's consistency: E_p grad PL(theta*) = 0 exactly;
    # cross-checked against the per-state gradients of the objective
    pl = PseudoLikelihood()
    for model in (Ising.random(5, 1.5, 19), Ising.random(5, 1.5, 20, domain="binary"), _rbm(4, 2, 1.5, seed=21)):
        states, probs = exact.probabilities(model)
        expected = _expected_grad(model, states, probs)
        by_state = {k: np.zeros_like(v) for k, v in expected.items()}
        for i in range(len(probs)):
            gi = pl.value_and_grad(model, states[i : i + 1])[1]
            for k in by_state:
                by_state[k] += probs[i] * gi[k]
        for k in expected:
            np.testing.assert_allclose(expected[k], by_state[k], atol=1e-14)
            assert np.max(np.abs(expected[k])) < 1e-12, (type(model).__name__, k)
        # a wrong model (truth with perturbed fields) has a non-zero expected gradient
        wrong = model.with_params({k: v + 0.3 for k, v in model.params.items() if k in ("h", "b_v")})
        assert max(np.max(np.abs(v)) for v in _expected_grad(wrong, states, probs).values()) > 1e-2


def _sandwich_cov(model, n):
    """Asymptotic covariance A^-1 B A^-1 / n of the maximum-PL estimate (free parameters).

    B = E_p[g g^T] from the per-state gradients; A = d E_p[g] / d theta by
    central differences of the exact expected gradient (a test-side Jacobian).
    """
    d = model.n_features
    states, probs = exact.probabilities(model)
    pl = PseudoLikelihood()
    theta0 = _free_vector(model)
    G = np.array([_free_grad(pl.value_and_grad(model, s[None])[1], d) for s in states])
    B = (G * probs[:, None]).T @ G

    def mean_grad(theta):
        return _free_grad(_expected_grad(_model_from(theta, d, model.domain), states, probs), d)

    h = 1e-5
    A = np.empty((theta0.size, theta0.size))
    for j in range(theta0.size):
        e = np.zeros(theta0.size)
        e[j] = h
        A[:, j] = (mean_grad(theta0 + e) - mean_grad(theta0 - e)) / (2 * h)
    A = 0.5 * (A + A.T)
    Ainv = np.linalg.inv(A)
    return Ainv @ B @ Ainv / n


def _fit_pl(x, d, domain):
    pl = PseudoLikelihood()

    def fun(theta):
        loss, g = pl.value_and_grad(_model_from(theta, d, domain), x)
        return loss, _free_grad(g, d)

    res = optimize.minimize(fun, np.zeros(d * (d - 1) // 2 + d), jac=True, method="L-BFGS-B", options={"gtol": 1e-10, "ftol": 1e-15, "maxiter": 1000})
    assert res.success, res.message
    return res.x


@pytest.mark.slow
@pytest.mark.parametrize("domain", ["spin", "binary"])
def test_minimising_pl_recovers_the_couplings(domain):
    """Consistency: maximum-PL estimate from n exact draws vs the truth.

    The estimate is asymptotically N(theta*, A^-1 B A^-1 / n) (sandwich
    covariance, computed exactly by enumeration at theta*). The squared
    Mahalanobis distance is then chi-square with m = 15 degrees of freedom;
    threshold chi2.ppf(1 - alpha, m) with alpha = 1e-4 (false-failure rate).
    Negative control: the same data fitted as if drawn from a model whose
    couplings are 1.3 times larger must fail (power).
    """
    d, n = 5, 20000
    truth = Ising.random(d, 2.0, 22, domain=domain)
    states, probs = exact.probabilities(truth)
    rng = np.random.default_rng(23)
    x = states[rng.choice(len(probs), size=n, p=probs)]
    theta_hat = _fit_pl(x, d, domain)
    cov = _sandwich_cov(truth, n)
    m = theta_hat.size
    threshold = stats.chi2.ppf(1 - ALPHA, m)
    diff = theta_hat - _free_vector(truth)
    stat = diff @ np.linalg.solve(cov, diff)
    assert stat < threshold, (stat, threshold)
    # negative control: a truth 1.3x too strong is rejected
    wrong = _free_vector(truth).copy()
    wrong[: d * (d - 1) // 2] *= 1.3
    diff_wrong = theta_hat - wrong
    assert diff_wrong @ np.linalg.solve(cov, diff_wrong) > threshold


# ------------------------------------------------------- stochastic estimator
def test_stochastic_mean_over_seeds_is_the_full_pl():
    """Mean of the one-unit estimate over S seeds vs the full PL (and its gradient entry).

    z = (mean - full) / (sd / sqrt(S)); |z| < 3.89 is a two-sided test with
    false-failure rate alpha = 1e-4. Negative control: an estimator that
    never picks the last unit (a planted off-by-one) is rejected.
    """
    model = _rbm(6, 3, 1.5, seed=24)
    x = _states(model, 10, seed=25)
    full, g_full = PseudoLikelihood().value_and_grad(model, x)
    obj = PseudoLikelihood(stochastic=True)
    S = 3000
    vals = np.empty(S)
    gb = np.empty(S)
    for s in range(S):
        vals[s], g = obj.value_and_grad(model, x, s)
        gb[s] = g["b_h"][0]
    zcrit = stats.norm.ppf(1 - ALPHA / 2)
    z = (vals.mean() - full) / (vals.std(ddof=1) / np.sqrt(S))
    assert abs(z) < zcrit, z
    zg = (gb.mean() - g_full["b_h"][0]) / (gb.std(ddof=1) / np.sqrt(S))
    assert abs(zg) < zcrit, zg
    # planted bug: units drawn from [0, d-1)
    d = model.n_features
    bad = np.array([obj.per_sample(model, x, np.random.default_rng(s).integers(0, d - 1, x.shape[0])).mean() for s in range(S)])
    zb = (bad.mean() - full) / (bad.std(ddof=1) / np.sqrt(S))
    assert abs(zb) > zcrit, zb


def test_stochastic_value_uses_the_documented_units():
    model = _rbm(7, 3, seed=26)
    x = _states(model, 12, seed=27)
    obj = PseudoLikelihood(stochastic=True)
    units = obj.units(12, 7, 5)
    assert units.shape == (12,) and units.min() >= 0 and units.max() < 7
    assert obj.value(model, x, 5) == pytest.approx(obj.per_sample(model, x, units).mean(), rel=1e-14)


def test_matches_sklearn_score_samples():
    # sklearn flips unit rng.randint(0, V, n) of sample i, rng = RandomState(random_state),
    # and returns V * log sigmoid(F(v~) - F(v)) = minus our per-sample loss
    from sklearn.neural_network import BernoulliRBM

    V, H, n = 8, 4, 30
    model = _rbm(V, H, 2.0, seed=28)
    x = _states(model, n, seed=29)
    p = model.params
    sk = BernoulliRBM(n_components=H, random_state=123)
    sk.components_ = p["W"].T.copy()
    sk.intercept_hidden_ = p["b_h"].copy()
    sk.intercept_visible_ = p["b_v"].copy()
    sk.n_features_in_ = V
    got = sk.score_samples(x)
    units = np.random.RandomState(123).randint(0, V, n)
    ours = PseudoLikelihood(stochastic=True).per_sample(model, x, units)
    np.testing.assert_allclose(-got, ours, rtol=1e-12, atol=1e-12)
    # and the mean over all units is the full PL (per-sample, exactly)
    allu = np.mean([PseudoLikelihood().per_sample(model, x, np.full(n, k)) for k in range(V)], axis=0)
    np.testing.assert_allclose(allu, PseudoLikelihood().per_sample(model, x), rtol=1e-12)


def test_reproducible_and_prefix_invariant():
    model = Ising.random(6, 1.0, 30)
    x = _states(model, 40, seed=31)
    obj = PseudoLikelihood(stochastic=True)
    a = obj.value_and_grad(model, x, 7)
    b = obj.value_and_grad(model, x, np.random.SeedSequence(7))
    assert a[0] == b[0] and all(np.array_equal(a[1][k], b[1][k]) for k in a[1])
    np.testing.assert_array_equal(obj.units(10, 6, 7), obj.units(40, 6, 7)[:10])
    np.testing.assert_array_equal(obj.per_sample(model, x[:10], obj.units(10, 6, 7)), obj.per_sample(model, x, obj.units(40, 6, 7))[:10])


def test_errors():
    model = _rbm()
    x = _states(model, 4, seed=32)
    with pytest.raises(TypeError, match="seed"):
        PseudoLikelihood(stochastic=True).value_and_grad(model, x, None)
    with pytest.raises(TypeError, match="stochastic"):
        PseudoLikelihood(stochastic=1)
    with pytest.raises(ValueError, match="domain"):
        PseudoLikelihood().value(GaussianMixture(np.zeros(2), np.zeros((2, 1)), np.zeros((2, 1))), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="x"):
        PseudoLikelihood().value(model, x + 0.5)
    with pytest.raises(ValueError, match="units"):
        PseudoLikelihood().per_sample(model, x, np.array([0, 1, 2, 5]))
    with pytest.raises(ValueError, match="units"):
        PseudoLikelihood().per_sample(model, x, np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match="c"):
        model.grad_params_of_flip_energy_delta(x, np.zeros((4, 2)))


def test_a_users_numpy_pl_passes_the_kit_and_a_wrong_one_fails():
    # what a user does: an independent NumPy PL for an Ising model on spins,
    # log p(s_k | s_-k) = log sigmoid(2 s_k ((J s)_k + h_k)), compared with ebm_ref's;
    # (J s)_k is written (J + J^T) s / 2, so that the gradient is that of every entry of J
    # moved alone (what the finite-difference check does, docs/conventions.md)
    from scipy.special import expit

    from ebm_ref.testing import check_objective_grad, compare_objective

    def users_pl(p, s, seed, factor=2.0):
        J, h = p["J"], p["h"]
        z = factor * s * (0.5 * (s @ J + s @ J.T) + h)
        loss = np.mean(np.sum(np.logaddexp(0.0, -z), axis=1))
        c = -factor * expit(-z) * s / s.shape[0]  # dloss / d((J s)_k + h_k)
        gJ = 0.5 * (c.T @ s + s.T @ c)
        np.fill_diagonal(gJ, 0.0)
        return loss, {"J": gJ, "h": c.sum(axis=0)}

    model = Ising.random(6, 1.0, seed=33)
    s = _states(model, 30, seed=34)
    check_objective_grad(users_pl, model, s).assert_ok()
    assert compare_objective("PseudoLikelihood", users_pl, model, s).passed
    # a planted bug (the binary-domain factor 1 used on spins) is caught
    assert not compare_objective("PseudoLikelihood", lambda p, x, seed: users_pl(p, x, seed, 1.0), model, s).passed


def test_large_lattice_value_without_dense_j():
    # 70 x 70 = 4900 units, above the dense-J limit: the value comes from neighbour sums;
    # log p(s_k | s_-k) = log sigmoid(s_k * conditional_logit_k) (spins), an independent route
    from ebm_ref.energies.ising import MAX_DENSE_UNITS

    model = Ising.lattice(70, 0.44, field=0.05)
    assert model.n_features > MAX_DENSE_UNITS
    s = _states(model, 3, seed=35)
    z = model.conditional_logit(s)
    expected = np.logaddexp(0.0, -s * z).sum(axis=1)
    np.testing.assert_allclose(PseudoLikelihood().per_sample(model, s), expected, rtol=1e-12)
    with pytest.raises(ValueError, match="dense"):
        PseudoLikelihood().value_and_grad(model, s)
