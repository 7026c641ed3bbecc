"""Objectives: exact gradients (finite differences with the seed fixed), API, errors.

Every gradient is compared with central differences of ``value_and_grad(...)[0]``
at the same seed (docs/objectives.md: rel. err. <= 1e-6, ``check_grad``'s floor).
"""

import functools

import numpy as np
import pytest

from ebm_ref import objectives as O
from ebm_ref.energies import GRBM, GaussianMixture, Ising, MLPEnergy, StudentT
from ebm_ref.testing import check_grad
from zoo import random_rbm

SEED = 11


# ----------------------------------------------------------------- model zoo
def _rbm():
    return random_rbm(6, 3, 1.0, bias_scale=0.5, seed=1)


def _ising_spin():
    return Ising.random(6, 1.5, seed=2)


def _ising_binary():
    return Ising.random(6, 1.5, seed=3, domain="binary")


def _student():
    return StudentT([0.3, -0.2], [-0.5, 0.1], [np.log(4.0), np.log(7.0)])


def _mixture():
    r = np.random.default_rng(4)
    return GaussianMixture(r.normal(size=3), r.normal(0, 2, (3, 2)), r.normal(-0.3, 0.2, (3, 2)))


def _mlp():
    return MLPEnergy((2, 8, 8), activation="softplus", seed=5)


def _mlp_tanh():
    return MLPEnergy((3, 6), activation="tanh", seed=6)


def _grbm():
    r = np.random.default_rng(7)
    return GRBM(r.normal(0, 0.7, (2, 3)), r.normal(0, 0.5, 2), r.normal(0, 0.5, 3), r.normal(-0.2, 0.2, 2))


BINARY = {"rbm": _rbm, "ising-spin": _ising_spin, "ising-binary": _ising_binary}
REAL = {"studentt": _student, "mixture": _mixture, "mlp": _mlp, "mlp-tanh": _mlp_tanh, "grbm": _grbm}


def _data(model, n=12, seed=0):
    r = np.random.default_rng(seed)
    d = model.n_features
    if model.domain == "binary":
        return (r.random((n, d)) < 0.5).astype(float)
    if model.domain == "spin":
        return np.where(r.random((n, d)) < 0.5, 1.0, -1.0)
    return r.normal(0, 1.2, (n, d))


def check_fd(obj, model, x, seed=SEED):
    loss, g = obj.value_and_grad(model, x, seed)
    assert set(g) == set(model.params)
    for k, v in model.params.items():
        assert g[k].shape == v.shape
    # the value is deterministic given the seed, and value() agrees
    assert obj.value(model, x, seed) == pytest.approx(loss, rel=1e-13, abs=1e-13)

    def f(theta):
        return obj.value_and_grad(model._with_params_unchecked(theta), x, seed)[0]

    res = check_grad(f, lambda th: g, model.params, zero_mask=model.structural_zeros(), name=repr(obj))
    res.assert_ok()
    return loss


REAL_OBJECTIVES = {
    "sm": lambda: O.ScoreMatching(),
    "dsm": lambda: O.DenoisingScoreMatching(0.3),
    "diffsm-manual": lambda: O.DiffusionScoreMatching(O.ManualFlow(0.2, 0.6)),
    "diffsm-gauss": lambda: O.DiffusionScoreMatching(O.GaussianFlow(0.1, 0.8, 5.0)),
    "ed-gauss": lambda: O.EnergyDiscrepancy("gaussian", t=0.2, m=8, w=1.0),
    "ed-gauss-w0": lambda: O.EnergyDiscrepancy("gaussian", t=0.05, m=4, w=0.0),
    "energy": lambda: O.LatentEnergyLoss(),
    "hinge": lambda: O.LatentHingeLoss(margin=0.5, grid_size=7),
    "log": lambda: O.LatentLogLoss(grid_size=7),
}
BINARY_OBJECTIVES = {
    "rm": lambda: O.RatioMatching(),
    "grm": lambda: O.GradientRatioMatching(),
    "ed-bern": lambda: O.EnergyDiscrepancy("bernoulli", t=0.2, m=8, w=1.0),
    "ed-bern-w0": lambda: O.EnergyDiscrepancy("bernoulli", t=0.1, m=4, w=0.0),
    "mle": lambda: O.ExactMLE(),
    "energy": lambda: O.LatentEnergyLoss(),
}


@pytest.mark.parametrize("obj_name", list(REAL_OBJECTIVES))
@pytest.mark.parametrize("model_name", list(REAL))
def test_fd_real(obj_name, model_name):
    model = REAL[model_name]()
    check_fd(REAL_OBJECTIVES[obj_name](), model, _data(model))


@pytest.mark.parametrize("obj_name", list(BINARY_OBJECTIVES))
@pytest.mark.parametrize("model_name", list(BINARY))
def test_fd_binary(obj_name, model_name):
    model = BINARY[model_name]()
    check_fd(BINARY_OBJECTIVES[obj_name](), model, _data(model))


@pytest.mark.parametrize("model_name", list(BINARY))
def test_fd_contrastive_with_candidates_binary(model_name):
    model = BINARY[model_name]()
    x = _data(model, 8, seed=1)
    cand = _data(model, 20, seed=2)
    check_fd(O.LatentHingeLoss(margin=2.0, candidates=cand), model, x)
    check_fd(O.LatentLogLoss(candidates=cand), model, x)


@pytest.mark.parametrize("model_name", ["grbm", "studentt", "mixture"])
def test_fd_exact_mle_continuous(model_name):
    """Closed-form / enumerable log Z (GRBM hidden enumeration, Student-t, mixture)."""
    model = REAL[model_name]()
    check_fd(O.ExactMLE(), model, _data(model))


# ------------------------------------------------------------ CD and PCD
def check_fd_frozen(cd, model, x, negatives):
    loss, g = cd.surrogate(model, x, negatives)

    def f(theta):
        m = model._with_params_unchecked(theta)
        return float(np.mean(m.energy(x)) - np.mean(m.energy(negatives)))

    assert loss == pytest.approx(f(model.params), rel=1e-13)
    check_grad(f, lambda th: g, model.params, zero_mask=model.structural_zeros()).assert_ok()


@pytest.mark.parametrize("model_name", list(BINARY))
def test_cd_binary_frozen_and_same_seed(model_name):
    model = BINARY[model_name]()
    x = _data(model, 30)
    cd = O.CD(k=2)
    neg = cd.negatives(model, x, SEED)
    assert neg.shape == x.shape
    loss, g = cd.value_and_grad(model, x, SEED)
    assert loss == pytest.approx(float(np.mean(model.energy(x)) - np.mean(model.energy(neg))), rel=1e-13)
    check_fd_frozen(cd, model, x, neg)
    # binary samplers: thresholds u < p(theta) do not move under a 6e-6 change
    check_fd(cd, model, x)


@pytest.mark.parametrize("model_name", list(BINARY))
def test_pcd_binary_does_not_advance_when_asked(model_name):
    model = BINARY[model_name]()
    x = _data(model, 20)
    pcd = O.PCD(k=1, n_chains=15)
    pcd.value_and_grad(model, x, 1)  # initialise and advance once
    chains = pcd.chains.copy()
    l1, g1 = pcd.value_and_grad(model, x, SEED, advance=False)
    assert np.array_equal(pcd.chains, chains)
    l2 = pcd.value(model, x, SEED)
    assert l1 == l2 and np.array_equal(pcd.chains, chains)

    def f(theta):
        return pcd.value_and_grad(model._with_params_unchecked(theta), x, SEED, advance=False)[0]

    check_grad(f, lambda th: g1, model.params, zero_mask=model.structural_zeros()).assert_ok()
    assert np.array_equal(pcd.chains, chains)
    # a copy advances independently; advancing changes the chains
    other = pcd.copy()
    other.value_and_grad(model, x, SEED)
    assert np.array_equal(pcd.chains, chains)
    l3, _ = pcd.value_and_grad(model, x, SEED)
    assert l3 == l1 and np.array_equal(pcd.chains, other.chains)


def test_pcd_chains_persist_and_reset():
    model = _rbm()
    x = _data(model, 10)
    pcd = O.PCD(k=1, n_chains=7)
    assert pcd.chains is None
    pcd.value_and_grad(model, x, 0)
    assert pcd.chains.shape == (7, 6)
    c1 = pcd.chains.copy()
    pcd.value_and_grad(model, x, 1)
    # the second call starts where the first ended: same as sampling from c1
    from ebm_ref.objectives._base import _sampler_seed
    from ebm_ref.samplers import gibbs

    expected = gibbs(model, c1, 1, seed=_sampler_seed(1)).x
    assert np.array_equal(pcd.chains, expected)
    pcd.reset()
    assert pcd.chains is None


@pytest.mark.parametrize("model_name", ["studentt", "mixture", "mlp"])
def test_cd_continuous_frozen(model_name):
    from ebm_ref.samplers import langevin

    model = REAL[model_name]()
    x = _data(model, 25)
    cd = O.CD(k=3, sampler=functools.partial(langevin, step_size=0.01))
    neg = cd.negatives(model, x, SEED)
    loss, _ = cd.value_and_grad(model, x, SEED)
    assert loss == pytest.approx(float(np.mean(model.energy(x)) - np.mean(model.energy(neg))), rel=1e-12)
    check_fd_frozen(cd, model, x, neg)
    pcd = O.PCD(k=2, n_chains=9, sampler=functools.partial(langevin, step_size=0.01))
    loss, g = pcd.value_and_grad(model, x, SEED)
    check_fd_frozen(pcd, model, x, pcd.chains)


def test_cd_grbm_gibbs_langevin_frozen():
    from ebm_ref.samplers import gibbs_langevin

    model = _grbm()
    x = _data(model, 20)
    cd = O.CD(k=2, sampler=functools.partial(gibbs_langevin, step_size=0.05))
    check_fd_frozen(cd, model, x, cd.negatives(model, x, SEED))
    check_fd_frozen(O.CD(k=1), model, x, O.CD(k=1).negatives(model, x, SEED))  # default: block Gibbs


def test_cd_needs_sampler_for_continuous_models():
    with pytest.raises(TypeError, match="sampler"):
        O.CD().value_and_grad(_student(), _data(_student()), 0)


# --------------------------------------------------------------- stochastic
@pytest.mark.parametrize(
    "obj,model",
    [
        (O.DenoisingScoreMatching(0.5), _student()),
        (O.EnergyDiscrepancy("gaussian", 0.3, 4), _student()),
        (O.EnergyDiscrepancy("bernoulli", 0.3, 4), _rbm()),
    ],
    ids=["dsm", "ed-gauss", "ed-bern"],
)
def test_stochastic_objectives_seeded(obj, model):
    x = _data(model, 10)
    a = obj.value(model, x, 5)
    assert obj.value(model, x, np.random.SeedSequence(5)) == a
    assert obj.value(model, x, 6) != a
    with pytest.raises(TypeError, match="seed"):
        obj.value(model, x)


def test_energy_discrepancy_negatives_follow_the_kernel():
    model = _rbm()
    x = _data(model, 400)
    ed = O.EnergyDiscrepancy("bernoulli", t=0.25, m=3)
    y, neg = ed.negatives(model, x, 0)
    assert y.shape == x.shape and neg.shape == (400, 3, 6)
    # flip rate of each stage is t: a binomial proportion of 2400 / 7200
    # units; |rate - t| < 4.4 sd covers alpha = 1e-5 per check.
    r1 = np.mean(y != x)
    r2 = np.mean(neg != y[:, None, :])
    assert abs(r1 - 0.25) < 4.4 * np.sqrt(0.25 * 0.75 / x.size)
    assert abs(r2 - 0.25) < 4.4 * np.sqrt(0.25 * 0.75 / neg.size)
    spin = _ising_spin()
    s = _data(spin, 50)
    y, neg = O.EnergyDiscrepancy("bernoulli", t=0.5, m=2).negatives(spin, s, 0)
    assert set(np.unique(neg)) <= {-1.0, 1.0}


def test_energy_discrepancy_w_stabiliser_bounds_loss():
    """With w > 0 each term is >= log(w/m): the loss is bounded below."""
    model = _student()
    x = _data(model, 50) + 30.0  # far from the model: E(x) >> E(x')
    ed = O.EnergyDiscrepancy("gaussian", t=0.1, m=4, w=1.0)
    assert ed.value(model, x, 0) >= np.log(1.0 / 4) - 1e-12


# ------------------------------------------------------------- value checks
def test_score_matching_value_by_hand():
    model = _student()
    x = _data(model, 9)
    g = model.grad_x(x)
    h = model.hessian_diag(x)
    expected = np.mean(0.5 * np.sum(g**2, 1) - np.sum(h, 1))
    assert O.ScoreMatching().value(model, x) == pytest.approx(expected, rel=1e-14)
    # diffusion SM with m = 1 is plain SM, gradients included
    ones = O.DiffusionScoreMatching(lambda z: (np.ones_like(z), np.zeros_like(z)))
    l1, g1 = ones.value_and_grad(model, x)
    l2, g2 = O.ScoreMatching().value_and_grad(model, x)
    assert l1 == pytest.approx(l2, rel=1e-14)
    for k in g1:
        np.testing.assert_allclose(g1[k], g2[k], rtol=1e-13, atol=1e-15)


def test_grm_equals_rm_for_ising_and_not_for_rbm():
    """Ising energies are affine in each unit: the Taylor ratio is exact."""
    for model in (_ising_spin(), _ising_binary()):
        x = _data(model, 15)
        a, ga = O.RatioMatching().value_and_grad(model, x)
        b, gb = O.GradientRatioMatching().value_and_grad(model, x)
        assert a == pytest.approx(b, rel=1e-12)
        for k in ga:
            np.testing.assert_allclose(ga[k], gb[k], rtol=1e-10, atol=1e-13)
    rbm = _rbm()
    x = _data(rbm, 15)
    assert abs(O.RatioMatching().value(rbm, x) - O.GradientRatioMatching().value(rbm, x)) > 1e-3


def test_gaussian_flow_m_is_inverse_jacobian():
    from scipy import stats

    loc, scale, df = 0.4, 0.7, 3.0
    gf = O.GaussianFlow(loc, scale, df)
    x = np.linspace(-8, 8, 41)[:, None]
    m, dm = gf(x)

    def T(z):
        return stats.norm.ppf(stats.t.cdf(z, df, loc=loc, scale=scale))

    h = 1e-5
    tprime = (T(x + h) - T(x - h)) / (2 * h)
    np.testing.assert_allclose(m, 1.0 / tprime, rtol=1e-7)
    m_p, _ = gf(x + h)
    m_m, _ = gf(x - h)
    np.testing.assert_allclose(dm, (m_p - m_m) / (2 * h), rtol=1e-6, atol=1e-9)
    # far tails keep their digits (lower-tail evaluation on both sides)
    m_far, _ = gf(loc + np.array([[1e4], [-1e4]]))
    assert np.all(np.isfinite(m_far)) and m_far[0, 0] == pytest.approx(m_far[1, 0], rel=1e-9)


def test_manual_flow():
    mf = O.ManualFlow(0.5, 0.6)
    m, dm = mf(np.array([[0.5], [1.1]]))
    np.testing.assert_allclose(m[:, 0], [1.0, 1.0 + 0.36 / 0.6])
    np.testing.assert_allclose(dm[:, 0], [0.0, 2 * 0.6 / 0.6])


def test_latent_offending_answer_is_lowest_allowed_candidate():
    model = _student()
    x = np.array([[0.0, 0.0], [1.0, 1.0]])
    cand = np.array([[0.05, 0.0], [0.3, -0.2], [2.0, 2.0], [5.0, 5.0]])
    hinge = O.LatentHingeLoss(margin=1.0, candidates=cand, min_distance=0.1)
    yh = hinge.offending(model, x)
    # candidate 0 is too close to x[0]; among the rest the lowest energy wins
    e = model.energy(cand)
    assert np.array_equal(yh[0], cand[1 + np.argmin(e[1:])])
    assert np.array_equal(yh[1], cand[np.argmin(e)])
    fy = model.energy(x)
    fh = model.energy(yh)
    assert hinge.value(model, x) == pytest.approx(np.mean(np.maximum(0, 1.0 - (fh - fy))), rel=1e-14)
    assert O.LatentLogLoss(candidates=cand, min_distance=0.1).value(model, x) == pytest.approx(
        np.mean(np.logaddexp(0, fy - fh)), rel=1e-14
    )
    with pytest.raises(ValueError, match="min_distance"):
        O.LatentHingeLoss(candidates=cand[:1], min_distance=10.0).value(model, x)


# ------------------------------------------------------------------ errors
def test_wrong_domain_and_type_errors():
    with pytest.raises(ValueError, match="domain"):
        O.ScoreMatching().value(_rbm(), _data(_rbm()))
    with pytest.raises(ValueError, match="domain"):
        O.RatioMatching().value(_student(), _data(_student()))
    with pytest.raises(ValueError, match="domain"):
        O.EnergyDiscrepancy("gaussian", 0.1).value(_rbm(), _data(_rbm()), 0)
    with pytest.raises(ValueError, match="domain"):
        O.EnergyDiscrepancy("bernoulli", 0.1).value(_student(), _data(_student()), 0)
    with pytest.raises(TypeError, match="model"):
        O.ScoreMatching().value("not a model", np.zeros((2, 2)))
    with pytest.raises(ValueError, match="`x`"):
        O.RatioMatching().value(_rbm(), np.full((3, 6), 0.5))
    with pytest.raises(ValueError, match="`x`"):
        O.ScoreMatching().value(_student(), np.zeros((3, 5)))
    with pytest.raises(ValueError, match="`x`"):
        O.RatioMatching().value(_ising_spin(), np.zeros((3, 6)))  # 0/1 given to a spin model


@pytest.mark.parametrize(
    "make,exc,pattern",
    [
        (lambda: O.DenoisingScoreMatching(0.0), ValueError, "sigma"),
        (lambda: O.DenoisingScoreMatching("a"), TypeError, "sigma"),
        (lambda: O.EnergyDiscrepancy("uniform", 0.1), ValueError, "perturbation"),
        (lambda: O.EnergyDiscrepancy("bernoulli", 1.0), ValueError, "`t`"),
        (lambda: O.EnergyDiscrepancy("gaussian", -1.0), ValueError, "`t`"),
        (lambda: O.EnergyDiscrepancy("gaussian", 0.1, m=0), ValueError, "`m`"),
        (lambda: O.EnergyDiscrepancy("gaussian", 0.1, w=-1.0), ValueError, "`w`"),
        (lambda: O.CD(k=0), ValueError, "`k`"),
        (lambda: O.CD(k=1.5), TypeError, "`k`"),
        (lambda: O.PCD(n_chains=0), ValueError, "n_chains"),
        (lambda: O.CD(sampler=3), TypeError, "sampler"),
        (lambda: O.DiffusionScoreMatching(2.0), TypeError, "`m`"),
        (lambda: O.LatentHingeLoss(margin=0.0), ValueError, "margin"),
        (lambda: O.LatentLogLoss(grid_size=1), ValueError, "grid_size"),
        (lambda: O.LatentEnergyLoss(beta=-1.0), ValueError, "beta"),
        (lambda: O.GaussianFlow(0.0, -1.0, 3.0), ValueError, "scale"),
        (lambda: O.ManualFlow(0.0, 0.0), ValueError, "`c`"),
    ],
)
def test_constructor_errors(make, exc, pattern):
    with pytest.raises(exc, match=pattern):
        make()


def test_diffusion_m_bad_output():
    model = _student()
    x = _data(model, 4)
    with pytest.raises(ValueError, match="shape"):
        O.DiffusionScoreMatching(lambda z: (np.ones(3), np.zeros(3))).value(model, x)
    with pytest.raises(TypeError, match="tuple"):
        O.DiffusionScoreMatching(lambda z: np.ones_like(z)).value(model, x)
    with pytest.raises(ValueError, match="finite"):
        O.DiffusionScoreMatching(lambda z: (np.full_like(z, np.nan), z)).value(model, x)


def test_inputs_not_mutated_and_single_state():
    model = _rbm()
    x = _data(model, 5)
    x0 = x.copy()
    for obj in (O.RatioMatching(), O.GradientRatioMatching(), O.EnergyDiscrepancy("bernoulli", 0.2, 3), O.CD()):
        obj.value_and_grad(model, x, 0)
        assert np.array_equal(x, x0)
    # a single state is a batch of one
    a = O.RatioMatching().value(model, x[0])
    b = O.RatioMatching().value(model, x[:1])
    assert a == b


def test_repr():
    assert "sigma=0.3" in repr(O.DenoisingScoreMatching(0.3))
    assert "bernoulli" in repr(O.EnergyDiscrepancy("bernoulli", 0.1))


# ------------------------------------------------------- latent (ellipse) model
def _ellipse(n=300, seed=0):
    r = np.random.default_rng(seed)
    th = r.uniform(0, 2 * np.pi, n)
    return np.stack([1.5 * np.cos(th), 2.0 * np.sin(th)], 1) + r.normal(0, 0.05, (n, 2))


@pytest.mark.parametrize("beta", [1.0, np.inf])
@pytest.mark.parametrize(
    "make",
    [
        lambda: O.LatentEnergyLoss(),
        lambda: O.LatentEnergyLoss(beta=5.0),
        lambda: O.LatentHingeLoss(margin=1.0),
        lambda: O.LatentHingeLoss(margin=1.0, beta=np.inf),
        lambda: O.LatentLogLoss(grid_size=12),
        lambda: O.LatentLogLoss(grid_size=12, beta=2.0),
    ],
    ids=["energy", "energy-b5", "hinge", "hinge-binf", "log", "log-b2"],
)
def test_fd_latent_energy_losses(make, beta):
    from ebm_ref.energies import LatentEnergy

    model = LatentEnergy([1.1, 0.9], beta=beta)
    check_fd(make(), model, _ellipse(15, seed=1))


def test_latent_losses_use_the_requested_free_energy():
    from ebm_ref.energies import LatentEnergy

    y = _ellipse(20, seed=2)
    m1 = LatentEnergy([1.2, 1.7], beta=1.0)
    minf = LatentEnergy([1.2, 1.7], beta=np.inf)
    a, ga = O.LatentEnergyLoss(beta=np.inf).value_and_grad(m1, y)
    b, gb = O.LatentEnergyLoss().value_and_grad(minf, y)
    assert a == pytest.approx(b, rel=1e-14)
    np.testing.assert_allclose(ga["w"], gb["w"], rtol=1e-13)
    assert a == pytest.approx(np.mean(m1.free_energy(y, np.inf)), rel=1e-14)
    with pytest.raises(TypeError, match="free_energy"):
        O.LatentEnergyLoss(beta=2.0).value(_student(), _data(_student()))


def test_zero_temperature_energy_loss_recovers_the_ellipse():
    from ebm_ref.energies import LatentEnergy
    from ebm_ref.train import Adam, fit

    y = _ellipse(500, seed=0)
    model, hist = fit(LatentEnergy([1.0, 1.0], beta=np.inf), y, O.LatentEnergyLoss(), Adam(0.05), 200, 100, seed=0)
    assert hist.loss[-1] < hist.loss[0]
    # Radii (1.5, 2.0): the noise (sd 0.05 over 500 points) moves a radius by
    # ~0.003; the 48-point z-grid makes F_inf overestimate the squared distance
    # by up to (r pi/48)^2 ~ 0.017, which biases the radii by ~0.02. 0.05 covers both.
    np.testing.assert_allclose(model.params["w"], [1.5, 2.0], atol=0.05)


@pytest.mark.parametrize("beta", [1.0, np.inf])
@pytest.mark.parametrize(
    "make",
    [lambda: O.LatentEnergyLoss(), lambda: O.LatentHingeLoss(margin=1.0, grid_size=8), lambda: O.LatentLogLoss(grid_size=8)],
    ids=["energy", "hinge", "log"],
)
def test_fd_conditional_latent_losses(make, beta):
    from ebm_ref.energies import ConditionalLatentEnergy

    model = ConditionalLatentEnergy((1, 4, 2), activation="tanh", beta=beta, seed=3)
    r = np.random.default_rng(5)
    xc = r.uniform(0, 1, (10, 1))
    y = _ellipse(10, seed=6)
    obj = make()
    loss, g = obj.value_and_grad(model, (xc, y))
    assert obj.value(model, (xc, y)) == pytest.approx(loss, rel=1e-13)
    assert set(g) == set(model.params)

    def f(theta):
        return obj.value(model.with_params(theta), (xc, y))

    check_grad(f, lambda th: g, model.params).assert_ok()


def test_conditional_latent_loss_definitions():
    from ebm_ref.energies import ConditionalLatentEnergy

    model = ConditionalLatentEnergy((1, 4, 2), beta=np.inf, seed=1)
    xc = np.array([[0.2], [0.9]])
    y = np.array([[1.0, 0.5], [-2.0, 0.3]])
    cand = np.array([[0.0, 0.0], [1.0, 0.55], [3.0, -1.0], [-2.0, 2.0]])
    hinge = O.LatentHingeLoss(margin=2.0, candidates=cand, min_distance=0.1)
    yh = hinge.offending(model, (xc, y))
    for i in range(2):
        f = model.free_energy(np.repeat(xc[i : i + 1], 4, 0), cand)
        ok = np.linalg.norm(cand - y[i], axis=1) > 0.1
        assert np.array_equal(yh[i], cand[np.flatnonzero(ok)[np.argmin(f[ok])]])
    fy = model.free_energy(xc, y)
    fh = model.free_energy(xc, yh)
    assert hinge.value(model, (xc, y)) == pytest.approx(np.mean(np.maximum(0, 2.0 - (fh - fy))), rel=1e-14)
    assert O.LatentEnergyLoss().value(model, (xc, y)) == pytest.approx(np.mean(fy), rel=1e-14)
    with pytest.raises(TypeError, match="pair"):
        O.LatentEnergyLoss().value(model, y)
    with pytest.raises(ValueError, match="same number"):
        O.LatentEnergyLoss().value(model, (xc[:1], y))
