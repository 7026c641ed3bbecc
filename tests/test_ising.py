"""Ising model: derivative algebra, builders, conditionals, input checks."""

import numpy as np
import pytest

from ebm_ref.energies import Ising
from ebm_ref.testing import check_energy_derivatives


def _states(rng, n, d, domain):
    b = rng.integers(0, 2, size=(n, d)).astype(float)
    return 2.0 * b - 1.0 if domain == "spin" else b


@pytest.mark.parametrize("domain", ["spin", "binary"])
@pytest.mark.parametrize("d", [1, 4, 9, 16])
@pytest.mark.parametrize("scale", [0.5, 5.0, 20.0])
def test_derivatives_match_finite_differences(domain, d, scale, rng):
    model = Ising.random(d, scale, rng, domain=domain)
    # real points (the continuous extension) and states of the domain
    for x in (rng.normal(size=(4, d)), _states(rng, 3, d, domain), rng.normal(size=(1, d))):
        check_energy_derivatives(model, x, seed=1).assert_ok()


@pytest.mark.parametrize("domain", ["spin", "binary"])
def test_lattice_derivatives(domain, rng):
    model = Ising.lattice(3, 0.7, coupling=-1.3, field=0.4, domain=domain)
    check_energy_derivatives(model, rng.normal(size=(3, 9))).assert_ok()


def test_hooks_are_those_of_the_formula_for_nonsymmetric_J(rng):
    # the finite-difference checks move single entries, so the private hooks
    # must hold for any J (diagonal included): compare with the formula
    d = 5
    J = rng.normal(size=(d, d))
    h = rng.normal(size=d)
    model = Ising.random(d, 1.0, 0)._with_params_unchecked({"J": J, "h": h})
    x = rng.normal(size=(3, d))
    e = np.array([-0.5 * xi @ J @ xi - h @ xi for xi in x])
    np.testing.assert_allclose(model._energy(x), e, rtol=1e-13)
    np.testing.assert_allclose(model._grad_x(x), -0.5 * x @ (J + J.T) - h, rtol=1e-13)
    np.testing.assert_array_equal(model._hessian_diag(x), np.tile(-np.diag(J), (3, 1)))
    c = rng.normal(size=(3, d))
    np.testing.assert_array_equal(model._grad_params_of_hessian_diag(x, c)["J"], -np.diag(c.sum(0)))
    # the public method zeroes the structural diagonal
    assert np.all(model.grad_params_of_hessian_diag(x, c)["J"] == 0.0)


def test_J_gradients_exactly_symmetric(rng):
    # a gradient step must keep J exactly symmetric (docs/conventions.md)
    model = Ising.random(23, 2.0, rng)
    x = rng.normal(size=(37, 23))
    w = rng.uniform(size=37)
    for g in (
        model.grad_params(x, w)["J"],
        model.grad_params_of_grad_x(x, rng.normal(size=(37, 23)))["J"],
        model.grad_params_of_hessian_diag(x, rng.normal(size=(37, 23)))["J"],
    ):
        np.testing.assert_array_equal(g, g.T)
        assert np.all(np.diag(g) == 0.0)
    stepped = model.with_params({"J": model.params["J"] - 0.1 * model.grad_params(x, w)["J"]})
    assert stepped.n_features == 23


def test_single_state_shapes(rng):
    model = Ising.random(6, 2.0, 3)
    s = _states(rng, 1, 6, "spin")[0]
    assert model.energy(s).shape == ()
    assert model.grad_x(s).shape == (6,)
    assert model.hessian_diag(s).shape == (6,)
    assert model.conditional_prob(s).shape == (6,)
    g = model.grad_params(s)
    assert g["J"].shape == (6, 6) and g["h"].shape == (6,)
    assert np.all(np.diag(g["J"]) == 0.0)
    np.testing.assert_allclose(g["J"], -0.5 * (np.outer(s, s) - np.eye(6)), rtol=0, atol=0)


@pytest.mark.parametrize("domain", ["spin", "binary"])
def test_no_overflow_at_scale_50(domain, rng):
    model = Ising.random(12, 50.0, rng, domain=domain)
    x = _states(rng, 20, 12, domain)
    with np.errstate(all="raise"):
        vals = [model.energy(x), model.grad_x(x), model.hessian_diag(x), model.conditional_prob(x)]
        vals += list(model.grad_params(x).values())
    assert all(np.all(np.isfinite(v)) for v in vals)
    p = model.conditional_prob(x)
    assert np.all((p >= 0.0) & (p <= 1.0))


@pytest.mark.parametrize("domain", ["spin", "binary"])
def test_conditionals_consistent_with_energy(domain, rng):
    model = Ising.random(7, 3.0, rng, domain=domain)
    x = _states(rng, 10, 7, domain)
    low = -1.0 if domain == "spin" else 0.0
    logit = model.conditional_logit(x)
    for i in range(7):
        x0, x1 = x.copy(), x.copy()
        x0[:, i] = low
        x1[:, i] = 1.0
        np.testing.assert_allclose(logit[:, i], model.energy(x0) - model.energy(x1), rtol=1e-12, atol=1e-12)
    p = model.conditional_prob(x)
    np.testing.assert_allclose(p, 1.0 / (1.0 + np.exp(-logit)), rtol=1e-12)


def test_lattice_layout():
    beta, cpl, fld = 0.37, 1.5, -0.2
    m2 = Ising.lattice(2, beta, coupling=cpl, field=fld)
    J2 = m2.params["J"]
    # L = 2: left and right neighbours coincide -> two bonds per neighbour pair
    expected = np.array([[0, 1, 1, 0], [1, 0, 0, 1], [1, 0, 0, 1], [0, 1, 1, 0]]) * 2 * beta * cpl
    np.testing.assert_allclose(J2, expected, rtol=1e-15)
    np.testing.assert_allclose(m2.params["h"], beta * fld)
    assert m2.lattice_size == 2

    L = 4
    m = Ising.lattice(L, beta)
    J = m.params["J"]
    assert m.n_features == 16 and m.lattice_size == 4
    for r in range(L):
        for c in range(L):
            i = r * L + c
            nbrs = {r * L + (c + 1) % L, r * L + (c - 1) % L, ((r + 1) % L) * L + c, ((r - 1) % L) * L + c}
            assert set(np.flatnonzero(J[i])) == nbrs
            np.testing.assert_allclose(J[i, sorted(nbrs)], beta)
    # energy of the all-up state: 2 L^2 bonds (physics H = -sum_<ij> s_i s_j)
    np.testing.assert_allclose(m.energy(np.ones(16)), -beta * 2 * L * L, rtol=1e-14)
    mb = Ising.lattice(3, beta, domain="binary")
    assert mb.domain == "binary"
    np.testing.assert_array_equal(mb.params["J"], Ising.lattice(3, beta).params["J"])


def test_lattice_size_tracks_parameters():
    m = Ising.lattice(3, 0.5)
    assert m.with_params({"J": 2 * m.params["J"]}).lattice_size == 3
    J = m.params["J"].copy()
    J[0, 4] = J[4, 0] = 0.1  # a diagonal neighbour: not a lattice bond
    assert m.with_params({"J": J}).lattice_size is None
    assert Ising.random(9, 1.0, 0).lattice_size is None


def test_random_reproducible_and_distributed():
    a = Ising.random(200, 3.0, 11)
    b = Ising.random(200, 3.0, np.random.SeedSequence(11))
    for k in ("J", "h"):
        np.testing.assert_array_equal(a.params[k], b.params[k])
    J = a.params["J"]
    assert np.array_equal(J, J.T) and np.all(np.diag(J) == 0.0)
    g = np.random.default_rng(5)
    assert not np.array_equal(Ising.random(5, 1.0, g).params["J"], Ising.random(5, 1.0, g).params["J"])
    iu = np.triu_indices(200, 1)
    z = J[iu] / (3.0 / np.sqrt(200))
    n = z.size
    # sample variance of n iid N(0,1): sd sqrt(2/n); two-sided alpha = 1e-4 -> 3.89 sd
    assert abs(np.mean(z**2) - 1.0) < 3.89 * np.sqrt(2.0 / n)
    # sample mean: sd 1/sqrt(n); alpha = 1e-4 -> 3.89 sd
    assert abs(np.mean(z)) < 3.89 / np.sqrt(n)


@pytest.mark.parametrize(
    "make, exc, pattern",
    [
        (lambda: Ising([[0, 1], [2, 0]], [0, 0]), ValueError, r"`J`.*symmetric"),
        (lambda: Ising([[1, 0], [0, 0]], [0, 0]), ValueError, r"`J`.*zero diagonal"),
        (lambda: Ising(np.zeros((2, 3)), [0, 0]), ValueError, r"`J`.*square"),
        (lambda: Ising(np.zeros(3), [0, 0, 0]), ValueError, r"`J`.*square"),
        (lambda: Ising(np.zeros((2, 2)), [0, 0, 0]), ValueError, r"`h`.*shape \(2,\)"),
        (lambda: Ising([[0, np.nan], [np.nan, 0]], [0, 0]), ValueError, r"`J`.*finite"),
        (lambda: Ising(np.zeros((2, 2)), [np.inf, 0]), ValueError, r"`h`.*finite"),
        (lambda: Ising(np.zeros((2, 2)), [0, 0], domain="real"), ValueError, r"`domain`"),
        (lambda: Ising(np.zeros((2, 2)), [0, 0], domain="ising"), ValueError, r"`domain`"),
        (lambda: Ising(np.zeros((2, 2)), ["a", "b"]), TypeError, r"`h`"),
        (lambda: Ising.lattice(1, 0.3), ValueError, r"`L`"),
        (lambda: Ising.lattice(2.0, 0.3), TypeError, r"`L`"),
        (lambda: Ising.lattice(3, np.nan), ValueError, r"`beta`"),
        (lambda: Ising.lattice(3, -0.1), ValueError, r"`beta`"),
        (lambda: Ising.lattice(3, 0.3, domain="x"), ValueError, r"`domain`"),
        (lambda: Ising.random(0, 1.0, 0), ValueError, r"`d`"),
        (lambda: Ising.random(3, -1.0, 0), ValueError, r"`scale`"),
        (lambda: Ising.random(3, 1.0, None), TypeError, r"`seed`"),
    ],
)
def test_bad_construction(make, exc, pattern):
    with pytest.raises(exc, match=pattern):
        make()


def test_bad_states_and_params():
    m = Ising.random(3, 1.0, 0)
    with pytest.raises(ValueError, match=r"`x`.*-1.0/\+1.0.*0/1 states"):
        m.check_states([[0.0, 1.0, 1.0]])
    with pytest.raises(ValueError, match=r"`x`.*-1.0/\+1.0"):
        m.check_states([[0.5, 1.0, 1.0]])
    mb = Ising.random(3, 1.0, 0, domain="binary")
    with pytest.raises(ValueError, match=r"`x`.*0.0/1.0.*spins"):
        mb.check_states([[-1.0, 1.0, 1.0]])
    with pytest.raises(ValueError, match=r"`x`.*shape"):
        m.energy(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"`x`.*finite"):
        m.grad_x([[np.nan, 1.0, 1.0]])
    with pytest.raises(ValueError, match=r"`J`.*symmetric"):
        m.with_params({"J": np.triu(np.ones((3, 3)), 1)})
    with pytest.raises(ValueError, match=r"`v`"):
        m.grad_params_of_grad_x(np.ones((2, 3)), np.ones((2, 2)))
    # valid states pass and come back as float (n, d)
    x2, was_1d = m.check_states(np.array([1, -1, 1]))
    assert x2.shape == (1, 3) and was_1d and x2.dtype == np.float64
