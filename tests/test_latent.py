"""LatentEnergy / ConditionalLatentEnergy (the ellipse model) and its data."""

import numpy as np
import pytest
from scipy import special, stats

from ebm_ref._rng import as_seed_sequence
from ebm_ref.energies import ConditionalLatentEnergy, LatentEnergy
from ebm_ref.datasets import bars_and_stripes, conditional_ellipse_data, ellipse_data, ellipse_radii
from ebm_ref.energies.latent import DEFAULT_Z_GRID
from ebm_ref.testing import check_energy_derivatives, check_grad

W = np.array([1.7, 1.2])
BETAS = [1e-2, 0.3, 1.0, 5.0, 40.0, np.inf]


def _points(seed=0, n=5):
    """Points near and off the ellipse (inside, outside, near the origin)."""
    rng = np.random.default_rng(seed)
    y = ellipse_data(n, seed) * rng.uniform(0.3, 1.6, size=(n, 1))
    return y


def _grid_energies(model, y):
    """E(y_i, z_j) by brute force through joint_energy, shape (n, m)."""
    z = model.z_grid
    return np.stack([model.joint_energy(y, np.full(y.shape[0], zj)) for zj in z], axis=1)


def _min_gap(E):
    s = np.sort(E, axis=1)
    return float(np.min(s[:, 1] - s[:, 0]))


@pytest.mark.parametrize("beta", BETAS)
def test_primitives_match_finite_differences(beta):
    model = LatentEnergy(W, beta=beta)
    y = _points(1)
    if np.isinf(beta):
        # F_inf is smooth only away from ties; FD steps are ~1e-5
        assert _min_gap(_grid_energies(model, y)) > 1e-3
    check_energy_derivatives(model, y, seed=3).assert_ok()  # rtol 1e-6
    check_energy_derivatives(model, y[2], seed=4).assert_ok()  # single state


@pytest.mark.parametrize("beta", [0.5, 3.0, np.inf])
def test_other_z_grid(beta):
    grid = np.linspace(-1.0, 2.5, 13)
    model = LatentEnergy([0.8, -2.1], z_grid=grid, beta=beta)
    y = _points(5, 4)
    if np.isinf(beta):
        assert _min_gap(_grid_energies(model, y)) > 1e-3
    check_energy_derivatives(model, y, seed=6).assert_ok()


def test_free_energy_matches_definition():
    model = LatentEnergy(W, beta=2.0)
    y = _points(2)
    E = _grid_energies(model, y)
    m = E.shape[1]
    for beta in (1e-3, 0.7, 2.0, 30.0):
        ref = -(special.logsumexp(-beta * E, axis=1) - np.log(m)) / beta
        np.testing.assert_allclose(model.free_energy(y, beta), ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(model.free_energy(y, np.inf), E.min(axis=1), rtol=1e-14)
    np.testing.assert_allclose(model.energy(y), model.free_energy(y, 2.0), rtol=0, atol=0)
    np.testing.assert_array_equal(model.argmin_z(y), DEFAULT_Z_GRID[np.argmin(E, axis=1)])
    # softmin weights: a distribution over the grid
    pi = model.softmin_weights(y)
    np.testing.assert_allclose(pi.sum(axis=1), 1.0, rtol=1e-14)
    np.testing.assert_allclose(pi, special.softmax(-2.0 * E, axis=1), rtol=1e-12)


def test_free_energy_functions_match_finite_differences():
    model = LatentEnergy(W, beta=1.0)
    y = _points(3)
    wts = np.linspace(0.5, 2.0, y.shape[0])
    for beta in (0.05, 1.0, 7.0, np.inf):
        check_grad(
            lambda z: float(np.sum(model.free_energy(z, beta))),
            lambda z: model.grad_free_energy(z, beta), y, name=f"grad_free_energy beta={beta}",
        ).assert_ok()
        check_grad(
            lambda t: float(np.dot(wts, model.with_params(t).free_energy(y, beta))),
            lambda t: model.grad_params_free_energy(y, beta, weights=wts), model.params,
            name=f"grad_params_free_energy beta={beta}",
        ).assert_ok()
        # default weights: the mean
        g = model.grad_params_free_energy(y, beta)["w"]
        gw = model.grad_params_free_energy(y, beta, weights=np.full(y.shape[0], 1 / y.shape[0]))["w"]
        np.testing.assert_allclose(g, gw, rtol=1e-14)
    # the model's own beta is the default
    np.testing.assert_array_equal(model.grad_free_energy(y), model.grad_x(y))


@pytest.mark.parametrize("first", [0.7, -0.7])
def test_ties_take_first_minimiser(first):
    """y = (1, 0), w = (1, 1): E(z) = E(-z) exactly (cos even, sin odd), so
    z = 0.7 and -0.7 tie bit for bit; the first in grid order is used."""
    model = LatentEnergy([1.0, 1.0], z_grid=[first, -first, 2.0], beta=np.inf)
    y = np.array([1.0, 0.0])
    E = _grid_energies(model, y[None, :])[0]
    assert E[0] == E[1] < E[2]
    assert model.argmin_z(y) == first
    # derivatives are those of E(y, z) at z = first
    gz = np.array([np.cos(first), np.sin(first)])
    np.testing.assert_allclose(model.grad_x(y), 2 * (y - gz), rtol=1e-15)
    # dE/dw_k = -2 (y_k - w_k phi_k) phi_k
    np.testing.assert_allclose(model.grad_params(y)["w"], -2 * (y - gz) * gz, rtol=1e-15)
    np.testing.assert_array_equal(model.hessian_diag(y), [2.0, 2.0])
    assert float(model.energy(y)) == E[0]


@pytest.mark.parametrize("seed", [0, 1])
def test_large_beta_limit(seed):
    """0 <= F_beta - F_inf <= log m / beta, and |beta (F_beta - F_inf) - log m| <= (m-1) e^{-beta delta}."""
    model = LatentEnergy(W)
    y = _points(seed, 6)
    E = _grid_energies(model, y)
    m = E.shape[1]
    s = np.sort(E, axis=1)
    delta = s[:, 1] - s[:, 0]
    assert np.all(delta > 1e-3)
    F_inf = model.free_energy(y, np.inf)
    for beta in (1.0, 10.0, 100.0, 1e4):
        diff = model.free_energy(y, beta) - F_inf
        # float slack: a few ulp of F
        tol = 1e-13 * np.maximum(1.0, np.abs(F_inf))
        assert np.all(diff >= -tol)
        assert np.all(diff <= np.log(m) / beta + tol)
        bound = (m - 1) * np.exp(-beta * delta)
        assert np.all(np.abs(beta * diff - np.log(m)) <= bound + beta * tol)
    # the gradients converge to those at the argmin:
    # |dF_beta/dy_k - dF_inf/dy_k| = 2 |w_k| |<phi_k> - phi_k(z*)| <= 4 |w_k| (m-1) e^{-beta delta}
    for beta in (1e3, 1e5):
        gap = np.abs(model.grad_free_energy(y, beta) - model.grad_free_energy(y, np.inf))
        bound = 4 * np.abs(W)[None, :] * (m - 1) * np.exp(-beta * delta)[:, None]
        assert np.all(gap <= bound + 1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_small_beta_limit(seed):
    r"""F_beta = mu - beta k2/2 + beta^2 k3/6 - beta^3 k4/24 + O(beta^4) -> <E>_Z.

    The remainder after the k4 term is beta^4 k5/120 + O(beta^5 k6); for
    beta <= 1e-3 and |E - mu| <~ 20 the ratio of successive terms is below
    beta |E - mu| < 0.02, so twice the k5 term bounds it.
    """
    model = LatentEnergy(W)
    y = _points(seed, 4)
    E = _grid_energies(model, y)
    mu = E.mean(axis=1)
    c = E - mu[:, None]
    m2, m3, m4, m5 = [np.mean(c**k, axis=1) for k in (2, 3, 4, 5)]
    k2, k3, k4 = m2, m3, m4 - 3 * m2**2
    k5 = m5 - 10 * m3 * m2
    assert np.max(np.abs(c)) < 20
    for beta in (1e-3, 3e-4, 1e-4):
        F = model.free_energy(y, beta)
        series = mu - beta * k2 / 2 + beta**2 * k3 / 6 - beta**3 * k4 / 24
        # rounding of F: ~ few eps |F|
        tol = 2 * beta**4 * np.abs(k5) / 120 + 1e-14 * np.abs(mu)
        assert np.all(np.abs(F - series) <= tol)
        assert np.all(np.abs(F - mu) <= beta * k2 / 2 * 1.1)


def test_hessian_diag_formula_and_beta_inf():
    model = LatentEnergy(W, beta=0.8)
    y = _points(4)
    E = _grid_energies(model, y)
    pi = special.softmax(-0.8 * E, axis=1)
    g = np.stack([W[0] * np.cos(DEFAULT_Z_GRID), W[1] * np.sin(DEFAULT_Z_GRID)], axis=1)
    mean = pi @ g
    var = pi @ g**2 - mean**2
    np.testing.assert_allclose(model.hessian_diag(y), 2 - 4 * 0.8 * var, rtol=1e-10)
    inf_model = LatentEnergy(W, beta=np.inf)
    np.testing.assert_array_equal(inf_model.hessian_diag(y), 2.0)
    c = np.ones_like(y)
    assert np.all(inf_model.grad_params_of_hessian_diag(y, c)["w"] == 0.0)


def test_large_and_tiny_beta_stay_finite():
    model = LatentEnergy([40.0, 30.0], beta=1e6)
    y = np.array([[100.0, -80.0], [0.0, 0.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        vals = [model.energy(y), model.grad_x(y), model.hessian_diag(y), model.grad_params(y)["w"],
                model.free_energy(y, 1e-12)]
    assert all(np.all(np.isfinite(v)) for v in vals)


def test_joint_energy():
    model = LatentEnergy(W)
    y = np.array([[1.0, 2.0], [-0.5, 0.3]])
    z = np.array([0.3, 2.0])
    ref = (y[:, 0] - W[0] * np.cos(z)) ** 2 + (y[:, 1] - W[1] * np.sin(z)) ** 2
    np.testing.assert_allclose(model.joint_energy(y, z), ref, rtol=1e-15)
    assert np.ndim(model.joint_energy(y[0], 0.3)) == 0
    np.testing.assert_allclose(model.joint_energy(y, 0.3), (y[:, 0] - W[0] * np.cos(0.3)) ** 2
                               + (y[:, 1] - W[1] * np.sin(0.3)) ** 2, rtol=1e-15)


# ------------------------------------------------------------- conditional
@pytest.mark.parametrize("activation", ["tanh", "softplus", "swish"])
@pytest.mark.parametrize("beta", [0.2, 1.0, np.inf])
def test_conditional_gradients(activation, beta):
    model = ConditionalLatentEnergy(sizes=(1, 8, 8, 2), activation=activation, beta=1.0, seed=2)
    # radii near the data's so the free energy is not flat
    model = model.with_params({"b_out": np.array([2.0, 1.5])})
    x, y = conditional_ellipse_data(5, 7)
    x = x * 0.5
    if np.isinf(beta):
        f = model.decoder_weights(x)
        E = np.stack([LatentEnergy(f[i]).joint_energy(np.repeat(y[i:i + 1], 48, 0), DEFAULT_Z_GRID)
                      for i in range(5)])
        assert _min_gap(E) > 1e-3
    wts = np.linspace(0.5, 1.5, 5)
    check_grad(
        lambda t: float(np.dot(wts, model.with_params(t).free_energy(x, y, beta))),
        lambda t: model.grad_params_free_energy(x, y, beta, weights=wts), model.params,
        name="conditional grad_params",
    ).assert_ok()  # rtol 1e-6
    check_grad(
        lambda z: float(np.sum(model.free_energy(x, z, beta))),
        lambda z: model.grad_free_energy(x, z, beta), y, name="conditional grad_y",
    ).assert_ok()


def test_conditional_agrees_with_unconditional():
    model = ConditionalLatentEnergy(sizes=(2, 6, 2), activation="softplus", beta=0.7, seed=1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 2))
    y = rng.standard_normal((4, 2))
    f = model.decoder_weights(x)
    p = model.params
    h = np.logaddexp(0, x @ p["W1"].T + p["b1"])
    np.testing.assert_allclose(f, h @ p["W_out"].T + p["b_out"], rtol=1e-14)
    for i in range(4):
        lat = model.latent_at(x[i])
        assert lat.beta == 0.7
        np.testing.assert_allclose(lat.params["w"], f[i], rtol=1e-15)
        assert model.free_energy(x[i], y[i]) == pytest.approx(float(lat.energy(y[i])), rel=1e-14)
        np.testing.assert_allclose(model.grad_free_energy(x[i], y[i]), lat.grad_x(y[i]), rtol=1e-14)
        assert model.argmin_z(x[i], y[i]) == lat.argmin_z(y[i])
        assert model.joint_energy(x[i], y[i], 0.4) == pytest.approx(float(lat.joint_energy(y[i], 0.4)), rel=1e-14)
    assert list(p) == ["W1", "b1", "W_out", "b_out"]
    assert model.grad_params_free_energy(x, y)["W_out"].shape == (2, 6)


# ------------------------------------------------------------------- data
def test_ellipse_data_follows_documented_draws():
    y = ellipse_data(50, 3)
    rng = np.random.default_rng(as_seed_sequence(3))
    theta = rng.uniform(0, 2 * np.pi, 50)
    noise = rng.normal(0, 1 / 20, (50, 2))
    np.testing.assert_array_equal(y, np.stack([2.0 * np.cos(theta), 1.5 * np.sin(theta)], 1) + noise)
    np.testing.assert_array_equal(ellipse_data(50, 3), y)
    xs = np.linspace(0, 1, 50)
    y2 = ellipse_data(50, 3, x=xs)
    np.testing.assert_allclose(y2, ellipse_radii(xs) * np.stack([np.cos(theta), np.sin(theta)], 1) + noise,
                               rtol=1e-15)


def test_ellipse_radii():
    np.testing.assert_allclose(ellipse_radii(0.0), [2.0, 1.5])
    np.testing.assert_allclose(ellipse_radii(1.0), [1.5 * np.e**2, 2.0 * np.e**2], rtol=1e-15)
    np.testing.assert_allclose(ellipse_radii(0.5), [1.75 * np.e, 1.75 * np.e], rtol=1e-15)


def test_conditional_data_distribution():
    x, y = conditional_ellipse_data(4000, 0)
    assert x.shape == (4000, 1) and y.shape == (4000, 2)
    # x ~ U(0, 1): KS test, false-failure rate 1e-4
    assert stats.kstest(x[:, 0], "uniform").pvalue > 1e-4
    # the noise: y / rho(x) lies on the unit circle up to N(0, (1/20)^2)/rho;
    # E[||y||^2 ...] is awkward, so check the normalised radius instead:
    # r = ||y / rho|| = 1 + O(noise / rho), |r - 1| < 6 sd / min(rho) with
    # sd = 1/20, min(rho) = 1.5: exceeded with probability ~2e-9 per point.
    r = np.linalg.norm(y / ellipse_radii(x[:, 0]), axis=1)
    assert np.all(np.abs(r - 1) < 6 * (1 / 20) / 1.5 * 1.05)


# -------------------------------------------------------------- bad input
@pytest.mark.parametrize("beta", [0.0, -1.0, np.nan, -np.inf])
def test_bad_beta(beta):
    with pytest.raises(ValueError, match="beta"):
        LatentEnergy(W, beta=beta)
    model = LatentEnergy(W)
    with pytest.raises(ValueError, match="beta"):
        model.free_energy(np.zeros(2), beta)
    with pytest.raises(ValueError, match="beta"):
        ConditionalLatentEnergy(beta=beta)


def test_bad_inputs_latent():
    with pytest.raises(ValueError, match=r"`w`.*shape \(2,\)"):
        LatentEnergy([1.0, 2.0, 3.0])
    for bad in (np.nan, np.inf):
        with pytest.raises(ValueError, match="`w`"):
            LatentEnergy([1.0, bad])
        with pytest.raises(ValueError, match="`w`"):
            LatentEnergy(W).with_params({"w": [bad, 1.0]})
    with pytest.raises(ValueError, match="z_grid"):
        LatentEnergy(W, z_grid=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="z_grid"):
        LatentEnergy(W, z_grid=[0.0, np.nan])
    with pytest.raises(ValueError, match="z_grid"):
        LatentEnergy(W, z_grid=[])
    with pytest.raises(TypeError, match="beta"):
        LatentEnergy(W, beta="1")
    model = LatentEnergy(W)
    with pytest.raises(ValueError, match=r"`y`.*\(n, 2\)"):
        model.free_energy(np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"`x`.*\(n, 2\)"):
        model.energy(np.zeros((3, 1)))
    with pytest.raises(ValueError, match="`z`"):
        model.joint_energy(np.zeros((3, 2)), np.zeros(2))
    with pytest.raises(ValueError, match="weights"):
        model.grad_params_free_energy(np.zeros((3, 2)), weights=np.ones(2))


def test_bad_inputs_conditional():
    with pytest.raises(ValueError, match="last entry"):
        ConditionalLatentEnergy(sizes=(1, 8, 3))
    with pytest.raises(ValueError, match="1 to 3 hidden layers"):
        ConditionalLatentEnergy(sizes=(1, 2))
    with pytest.raises(ValueError, match="1 to 3 hidden layers"):
        ConditionalLatentEnergy(sizes=(1, 4, 4, 4, 4, 2))
    with pytest.raises(ValueError, match="activation"):
        ConditionalLatentEnergy(activation="relu")
    model = ConditionalLatentEnergy()
    with pytest.raises(ValueError, match="same number of samples"):
        model.free_energy(np.zeros((3, 1)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"`x`"):
        model.free_energy(np.zeros((3, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="W_out"):
        model.with_params({"W_out": np.full((2, 8), np.nan)})
    with pytest.raises(ValueError, match="W_out"):
        model.with_params({"W_out": np.zeros((8, 2))})
    with pytest.raises(ValueError, match="unknown key"):
        model.with_params({"w": np.zeros(2)})
    with pytest.raises(ValueError, match="single input"):
        model.latent_at(np.zeros((2, 1)))
    with pytest.raises(ValueError, match="`n`"):
        ellipse_data(0, 1)
    with pytest.raises(ValueError, match="`x`"):
        ellipse_data(3, 1, x=np.zeros(4))


def test_bars_and_stripes():
    """2 * 2^side - 2 distinct images, each with constant rows or constant columns."""
    for side in (1, 2, 3, 4):
        x = bars_and_stripes(side)
        assert x.shape == (2 ** (side + 1) - 2, side * side) and x.dtype == np.float64
        assert np.unique(x, axis=0).shape[0] == x.shape[0]
        img = x.reshape(-1, side, side)
        rows_const = np.all(img == img[:, :, :1], axis=(1, 2))
        cols_const = np.all(img == img[:, :1, :], axis=(1, 2))
        assert np.all(rows_const | cols_const)
        assert set(np.unique(x)) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="side"):
        bars_and_stripes(0)
    with pytest.raises(TypeError, match="side"):
        bars_and_stripes(2.0)
