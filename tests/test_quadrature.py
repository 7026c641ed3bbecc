"""quadrature_log_partition against closed forms (StudentT, GRBM,
GaussianMixture, a ring energy with an erfc closed form), the shift at large
energy offsets, explicit bounds, and refusals."""

import math

import numpy as np
import pytest
from scipy import integrate, special

from ebm_ref.energies import GRBM, RBM, GaussianMixture, StudentT
from ebm_ref.energies._base import EnergyModel
from ebm_ref.exact import log_partition
from ebm_ref.exact._quadrature import quadrature_log_partition


class Ring(EnergyModel):
    r"""Test energy :math:`E(x) = (\|x\|^2 - \rho)^2 + c` (no closed-form method).

    Parameters have shape (1,): the foundation's ``as_float_array`` turns a
    0-d array into shape (1,).
    """

    def __init__(self, d, rho, c):
        self._d = d
        self._set_params({"rho": [rho], "c": [c]}, {"rho": (1,), "c": (1,)})

    @property
    def n_features(self):
        return self._d

    def _u(self, x):
        return (x * x).sum(axis=1) - self._params["rho"]

    def _energy(self, x):
        return self._u(x) ** 2 + self._params["c"]

    def _grad_x(self, x):
        return 4.0 * self._u(x)[:, None] * x

    def _hessian_diag(self, x):
        return 4.0 * self._u(x)[:, None] + 8.0 * x * x

    def _grad_params(self, x, w):
        return {"rho": np.array([-2.0 * w @ self._u(x)]), "c": np.array([w.sum()])}

    def _grad_params_of_grad_x(self, x, v):
        return {"rho": np.array([-4.0 * (v * x).sum()]), "c": np.zeros(1)}

    def _grad_params_of_hessian_diag(self, x, c):
        return {"rho": np.array([-4.0 * c.sum()]), "c": np.zeros(1)}


def assert_agrees(model, exact, exact_bound=0.0, bounds=None):
    value, bound = quadrature_log_partition(model, bounds=bounds)
    assert np.isfinite(bound) and bound >= 0.0
    # quadrature vs closed form to 1e-9 ...
    assert abs(value - exact) < 1e-9, (value, exact, bound)
    # ... and within the stated error (plus the closed form's own bound and rounding of log)
    assert abs(value - exact) <= bound + exact_bound + 4e-16 * max(1.0, abs(exact)), (value, exact, bound)
    return value, bound


@pytest.mark.parametrize("df", [1.0, 3.0, 1e3])
def test_student_t_1d(df):
    model = StudentT([0.7], [-0.4], [math.log(df)])
    assert_agrees(model, *model._exact_log_partition())


@pytest.mark.parametrize("dfs", [(3.0, 1e3), pytest.param((1.0, 1.0), marks=pytest.mark.slow)])
def test_student_t_2d(dfs):
    model = StudentT([5.0, -2.0], [-2.0, 1.0], np.log(dfs))
    assert_agrees(model, *model._exact_log_partition())


@pytest.mark.parametrize("V", [1, 2])
def test_grbm(rng, V):
    model = GRBM(2.0 * rng.standard_normal((V, 3)), rng.standard_normal(V), rng.standard_normal(3), 0.4 * rng.standard_normal(V))
    assert_agrees(model, *model._exact_log_partition())


def test_mixture_1d_two_component():
    model = GaussianMixture.two_component(0.2, -3.0, 3.0, 0.0, math.log(0.1))
    assert_agrees(model, 0.0, model._exact_log_partition()[1])


def test_mixture_2d_separated_narrow_modes():
    # one narrow mode at the origin, one wide mode far away: the scan must find both
    model = GaussianMixture([0.0, 0.0], [[0.0, 0.0], [50.0, 50.0]], [[-3.0, -3.0], [0.0, 0.0]])
    assert_agrees(model, 0.0, model._exact_log_partition()[1])


@pytest.mark.parametrize("offset", [0.0, 5000.0, -5000.0])
def test_ring_2d_closed_form_and_shift(offset):
    # Z = int exp(-(r^2 - 4)^2) r dr dtheta = pi int_0^inf exp(-(u - 4)^2) du = pi^(3/2)/2 erfc(-4);
    # an offset of +-5000 over/underflows exp(-E) without the shift
    model = Ring(2, 4.0, offset)
    exact = 1.5 * math.log(math.pi) - math.log(2.0) + math.log(special.erfc(-4.0)) - offset
    assert_agrees(model, exact)


def test_ring_1d_vs_scipy_quad():
    model = Ring(1, 4.0, 0.0)
    z, _ = integrate.quad(lambda t: math.exp(-((t * t - 4.0) ** 2)), -np.inf, np.inf, points=None, epsabs=0, epsrel=1e-13, limit=200)
    assert_agrees(model, math.log(z), 1e-13)


def test_explicit_bounds_give_the_same_value():
    model = StudentT([0.5, -1.0], [0.0, 0.3], [math.log(4.0), math.log(9.0)])
    exact, eb = model._exact_log_partition()
    assert_agrees(model, exact, eb, bounds=[(-20.0, 20.0), (-30.0, 30.0)])
    one = StudentT([0.5], [0.0], [math.log(4.0)])
    assert_agrees(one, *one._exact_log_partition(), bounds=(-3.0, 3.0))


def test_dispatch_from_exact_module_for_models_without_closed_form():
    from ebm_ref.exact import log_partition

    model = Ring(2, 1.0, 0.0)
    exact = 1.5 * math.log(math.pi) - math.log(2.0) + math.log(special.erfc(-1.0))
    value, bound = log_partition(model, return_error=True)
    assert abs(value - exact) < 1e-9 and 0 <= bound < 1e-8


def test_ring_derivatives_are_right():
    # the test energy itself is checked, so the references above are trustworthy
    from ebm_ref.testing import check_energy_derivatives

    check_energy_derivatives(Ring(2, 4.0, 1.0), np.array([[0.3, -1.2], [2.0, 0.5]])).assert_ok()


def test_refusals():
    with pytest.raises(ValueError, match="n_features = 3"):
        quadrature_log_partition(StudentT(np.zeros(3), np.zeros(3), np.zeros(3)))
    with pytest.raises(ValueError, match="domain='real'"):
        quadrature_log_partition(RBM(np.zeros((2, 2)), np.zeros(2), np.zeros(2)))
    model = StudentT([0.0], [0.0], [0.0])
    with pytest.raises(ValueError, match=r"`bounds` must have shape \(1, 2\)"):
        quadrature_log_partition(model, bounds=[(0.0, 1.0), (0.0, 1.0)])
    with pytest.raises(ValueError, match="low < high"):
        quadrature_log_partition(model, bounds=[(1.0, 0.0)])
    with pytest.raises(ValueError, match="low < high"):
        quadrature_log_partition(model, bounds=[(-np.inf, 0.0)])
    with pytest.raises(ValueError, match="`rtol` must lie in"):
        quadrature_log_partition(model, rtol=0.0)


@pytest.mark.parametrize("seed", [4, 5])
def test_non_normalisable_mlp_is_refused_with_a_clear_error(seed):
    # A random MLP energy is linear at infinity and decreases along some
    # direction, so exp(-E) is not integrable: refuse instead of crashing.
    from ebm_ref.energies import MLPEnergy

    model = MLPEnergy((2, 8, 8), seed=seed)
    with pytest.raises(ValueError, match="normalisable"):
        log_partition(model)
