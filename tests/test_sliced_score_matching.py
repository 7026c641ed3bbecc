"""SlicedScoreMatching and the Hessian-vector primitives hvp / grad_params_of_hvp.

See docs/pseudo-likelihood-and-ssm.md. Statistical assertions use a
false-failure rate alpha = 1e-4 each (two-sided z < 3.89), stated next to
each test, with a planted-bug negative control.
"""

import itertools

import numpy as np
import pytest
from scipy import stats

from ebm_ref.energies import GRBM, RBM, GaussianMixture, LatentEnergy, MLPEnergy, StudentT
from ebm_ref.objectives import ScoreMatching, SlicedScoreMatching
from ebm_ref.testing import check_grad

ALPHA = 1e-4
ZCRIT = stats.norm.ppf(1 - ALPHA / 2)


def _student(d=2, scale=1.0):
    r = np.random.default_rng(1)
    return StudentT(r.normal(0, scale, d), r.normal(-0.3, 0.3, d), np.log(r.uniform(1.5, 8.0, d)))


def _mixture(d=3, scale=1.0):
    r = np.random.default_rng(2)
    return GaussianMixture(r.normal(0, scale, 3), r.normal(0, 2, (3, d)), r.normal(-0.3, 0.2, (3, d)))


def _grbm(V=4, H=3, scale=0.7):
    r = np.random.default_rng(3)
    return GRBM(r.normal(0, scale, (V, H)), r.normal(0, 0.5, V), r.normal(0, 0.5, H), r.normal(-0.2, 0.2, V))


def _mlp(sizes=(3, 5, 4), activation="softplus", scale=1.0, seed=4):
    m = MLPEnergy(sizes, activation=activation, seed=seed)
    return m.with_params({k: scale * v for k, v in m.params.items()})


MODELS = {
    "studentt": lambda: _student(),
    "studentt-5": lambda: _student(5),
    "mixture": lambda: _mixture(),
    "grbm": lambda: _grbm(),
    "mlp-softplus": lambda: _mlp(),
    "mlp-tanh": lambda: _mlp((4, 6), "tanh"),
    "mlp-swish-3layers": lambda: _mlp((2, 4, 3, 5), "swish"),
}


def _x(model, n=6, seed=0, sd=1.2):
    return np.random.default_rng(seed).normal(0, sd, (n, model.n_features))


# ------------------------------------------------------------- the primitives
@pytest.mark.parametrize("name", list(MODELS))
def test_hvp_is_the_derivative_of_grad_x(name):
    # central differences of grad_x along v (truncation O(h^2) ~ 1e-10 at h = 1e-5)
    model = MODELS[name]()
    r = np.random.default_rng(5)
    x = _x(model)
    v = r.normal(size=x.shape)
    h = 1e-5
    fd = (model.grad_x(x + h * v) - model.grad_x(x - h * v)) / (2 * h)
    hv = model.hvp(x, v)
    np.testing.assert_allclose(hv, fd, rtol=1e-6, atol=1e-7 * (1 + np.abs(fd).max()))
    # unit directions give the Hessian diagonal exactly (a second, exact check)
    d = model.n_features
    diag = np.stack([model.hvp(x, np.tile(np.eye(d)[k], (x.shape[0], 1)))[:, k] for k in range(d)], axis=1)
    np.testing.assert_allclose(diag, model.hessian_diag(x), rtol=1e-12, atol=1e-13)
    assert model.hvp(x[0], v[0]).shape == (d,)


@pytest.mark.parametrize("scale", [0.1, 1.0, 5.0, 50.0])
@pytest.mark.parametrize(
    "make",
    [_student, _mixture, _grbm, lambda scale: _mlp(scale=scale), lambda scale: _mlp((3, 4, 4, 3), "tanh", scale)],
    ids=["studentt", "mixture", "grbm", "mlp", "mlp-tanh-3"],
)
def test_grad_params_of_hvp_fd(make, scale):
    model = make(scale=scale)
    r = np.random.default_rng(6)
    x = _x(model, n=5)
    v, u = r.normal(size=x.shape), r.normal(size=x.shape)
    g = model.grad_params_of_hvp(x, v, u)

    def f(theta):
        return float(np.sum(u * model._with_params_unchecked(theta).hvp(x, v)))

    check_grad(f, lambda th: g, model.params, name=type(model).__name__).assert_ok()


def test_large_weights_no_overflow():
    # MLP weights x50: pre-activations in the hundreds; every activation derivative saturates cleanly
    model = _mlp((4, 8, 8), "softplus", scale=50.0)
    x = _x(model, n=10)
    obj = SlicedScoreMatching(n_projections=2, distribution="gaussian")
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, g = obj.value_and_grad(model, x, 3)
    assert np.isfinite(loss) and all(np.all(np.isfinite(a)) for a in g.values())
    grbm = _grbm(scale=50.0)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, g = obj.value_and_grad(grbm, _x(grbm), 3)
    assert np.isfinite(loss) and all(np.all(np.isfinite(a)) for a in g.values())


# -------------------------------------------------------- exactness vs SM
@pytest.mark.parametrize("variance_reduced", [False, True])
@pytest.mark.parametrize("name", ["studentt", "studentt-5", "mixture", "grbm", "mlp-softplus", "mlp-swish-3layers"])
def test_all_rademacher_directions_give_score_matching(name, variance_reduced):
    # (1/2^d) sum over all sign vectors of v v^T = I exactly, so SSM = SM in value and gradient
    model = MODELS[name]()
    d = model.n_features
    assert d <= 6
    x = _x(model, n=5)
    signs = np.array(list(itertools.product([-1.0, 1.0], repeat=d)))
    v = np.broadcast_to(signs, (x.shape[0],) + signs.shape)
    obj = SlicedScoreMatching(variance_reduced=variance_reduced)
    loss, g = obj.value_and_grad_with(model, x, v)
    loss0, g0 = ScoreMatching().value_and_grad(model, x)
    assert loss == pytest.approx(loss0, rel=1e-12, abs=1e-12)
    for k in g0:
        np.testing.assert_allclose(g[k], g0[k], rtol=1e-10, atol=1e-12 * (1 + np.abs(g0[k]).max()))


@pytest.mark.slow
@pytest.mark.parametrize("variance_reduced", [False, True])
@pytest.mark.parametrize("distribution", ["gaussian", "rademacher"])
def test_mean_over_seeds_is_score_matching(distribution, variance_reduced):
    """Mean of the SSM loss (and one gradient entry) over S seeds vs SM.

    z = (mean - SM) / (sd / sqrt(S)), |z| < 3.89: false-failure rate 1e-4
    per assertion. Negative control: directions scaled by 1.1 (E[v v^T] =
    1.21 I, a planted normalisation bug) must be rejected by the same test.
    """
    model = _mlp((3, 6, 4), "softplus", seed=7)
    x = _x(model, n=8, seed=8)
    sm, g_sm = ScoreMatching().value_and_grad(model, x)
    obj = SlicedScoreMatching(n_projections=2, distribution=distribution, variance_reduced=variance_reduced)
    S = 1500
    vals, gb, bad = np.empty(S), np.empty(S), np.empty(S)
    for s in range(S):
        v = obj.directions(*x.shape, s)
        vals[s], g = obj.value_and_grad_with(model, x, v)
        gb[s] = g["b1"][0]
        bad[s] = obj.value_and_grad_with(model, x, 1.1 * v)[0]
    z = (vals.mean() - sm) / (vals.std(ddof=1) / np.sqrt(S))
    zg = (gb.mean() - g_sm["b1"][0]) / (gb.std(ddof=1) / np.sqrt(S))
    zb = (bad.mean() - sm) / (bad.std(ddof=1) / np.sqrt(S))
    assert abs(z) < ZCRIT, z
    assert abs(zg) < ZCRIT, zg
    assert abs(zb) > ZCRIT, zb
    # value_and_grad with seed s uses exactly these directions
    assert obj.value(model, x, S - 1) == pytest.approx(vals[-1], rel=1e-14, abs=1e-15)


# --------------------------------------------------- exact gradient, definition
@pytest.mark.parametrize("variance_reduced", [False, True])
@pytest.mark.parametrize("config", [(1, "rademacher"), (3, "gaussian")])
@pytest.mark.parametrize("name", list(MODELS))
def test_gradient_fd_with_seed_fixed(name, config, variance_reduced):
    model = MODELS[name]()
    x = _x(model, n=7, seed=9)
    obj = SlicedScoreMatching(n_projections=config[0], distribution=config[1], variance_reduced=variance_reduced)
    loss, g = obj.value_and_grad(model, x, 10)
    assert set(g) == set(model.params)
    assert obj.value(model, x, 10) == pytest.approx(loss, rel=1e-13, abs=1e-13)

    def f(theta):
        return obj.value(model._with_params_unchecked(theta), x, 10)

    check_grad(f, lambda th: g, model.params, name=repr(obj)).assert_ok()


@pytest.mark.parametrize("variance_reduced", [False, True])
@pytest.mark.parametrize("name", ["studentt", "mixture", "grbm", "mlp-softplus"])
def test_value_matches_brute_force_definition(name, variance_reduced):
    # the definition with the full Hessian, built column by column from central
    # differences of grad_x (test side; error ~1e-9, tolerance 1e-6 relative)
    model = MODELS[name]()
    x = _x(model, n=4, seed=11)
    obj = SlicedScoreMatching(n_projections=3, distribution="gaussian", variance_reduced=variance_reduced)
    v = obj.directions(*x.shape, 12)
    n, d = x.shape
    h = 1e-5
    total = 0.0
    for i in range(n):
        H = np.empty((d, d))
        for k in range(d):
            e = np.zeros(d)
            e[k] = h
            H[:, k] = (model.grad_x(x[i] + e) - model.grad_x(x[i] - e)) / (2 * h)
        g = model.grad_x(x[i])
        for p in range(v.shape[1]):
            first = 0.5 * g @ g if variance_reduced else 0.5 * (v[i, p] @ g) ** 2
            total += first - v[i, p] @ H @ v[i, p]
    expected = total / (n * v.shape[1])
    assert obj.value(model, x, 12) == pytest.approx(expected, rel=1e-6, abs=1e-8)


# ------------------------------------------------------------ reproducibility
def test_same_seed_same_bits_and_prefix():
    model = _mlp()
    x = _x(model, n=20)
    obj = SlicedScoreMatching(n_projections=2, distribution="gaussian")
    a = obj.value_and_grad(model, x, 5)
    b = obj.value_and_grad(model, x, np.random.SeedSequence(5))
    assert a[0] == b[0] and all(np.array_equal(a[1][k], b[1][k]) for k in a[1])
    np.testing.assert_array_equal(obj.directions(5, 3, 5), obj.directions(20, 3, 5)[:5])
    rad = SlicedScoreMatching(n_projections=3).directions(7, 4, 1)
    assert set(np.unique(rad)) == {-1.0, 1.0} and rad.shape == (7, 3, 4)


def test_errors():
    x = np.zeros((3, 2))
    with pytest.raises(TypeError, match="seed"):
        SlicedScoreMatching().value_and_grad(_student(), x, None)
    with pytest.raises(TypeError, match="hvp"):
        SlicedScoreMatching().value_and_grad(LatentEnergy([1.0, 0.5]), x, 0)
    with pytest.raises(ValueError, match="domain"):
        SlicedScoreMatching().value(RBM(np.zeros((2, 1)), np.zeros(2), np.zeros(1)), x, 0)
    with pytest.raises(ValueError, match="n_projections"):
        SlicedScoreMatching(n_projections=0)
    with pytest.raises(TypeError, match="n_projections"):
        SlicedScoreMatching(n_projections=1.5)
    with pytest.raises(ValueError, match="distribution"):
        SlicedScoreMatching(distribution="normal")
    with pytest.raises(TypeError, match="variance_reduced"):
        SlicedScoreMatching(variance_reduced="yes")
    with pytest.raises(ValueError, match="directions"):
        SlicedScoreMatching().value_and_grad_with(_student(), x, np.ones((3, 2)))
    with pytest.raises(ValueError, match="v"):
        _student().hvp(x, np.ones((3, 3)))
    with pytest.raises(ValueError, match="u"):
        _mlp((2, 3)).grad_params_of_hvp(x, np.ones((3, 2)), np.ones((2, 2)))
