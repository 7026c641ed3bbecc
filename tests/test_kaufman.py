"""Kaufman's exact 2D Ising partition function against enumeration and Onsager."""

import math
import warnings

import numpy as np
import pytest
from scipy import integrate

from ebm_ref import exact
from ebm_ref.energies import Ising
from ebm_ref.exact import _kaufman
from ebm_ref.exact._kaufman import _kaufman_log_z

BETA_C = 0.5 * math.log1p(math.sqrt(2.0))  # 0.4407, Onsager's critical coupling
BETAS = [0.1, 0.3, BETA_C, 0.6, 1.0]


def _onsager(K):
    r"""Infinite-lattice log Z per site (Onsager 1944), one-dimensional form.

    ``ln(2 cosh 2K) + 1/(2 pi) int_0^pi ln[(1 + sqrt(1 - k^2 sin^2 t)) / 2] dt``
    with ``k = 2 sinh 2K / cosh^2 2K``.
    """
    k = 2.0 * math.sinh(2.0 * K) / math.cosh(2.0 * K) ** 2

    def g(t):
        return math.log(0.5 * (1.0 + math.sqrt(max(0.0, 1.0 - (k * math.sin(t)) ** 2))))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        val, _ = integrate.quad(g, 0.0, math.pi, epsabs=1e-15, epsrel=1e-14, limit=200)
    return math.log(2.0 * math.cosh(2.0 * K)) + val / (2.0 * math.pi)


def _onsager_2d(K):
    """The double-integral form, to cross-check :func:`_onsager`."""

    def g(a, b):
        return math.log(math.cosh(2 * K) ** 2 - math.sinh(2 * K) * (math.cos(a) + math.cos(b)))

    val, _ = integrate.dblquad(g, 0.0, math.pi, 0.0, math.pi, epsabs=1e-13, epsrel=1e-13)
    return math.log(2.0) + val / (2.0 * math.pi**2)


def _torus_model(m, n, K):
    """Ising model of the m x n torus with bond strength K (bonds counted with multiplicity)."""
    J = np.zeros((m * n, m * n))
    for r in range(m):
        for c in range(n):
            i = r * n + c
            for j in (r * n + (c + 1) % n, ((r + 1) % m) * n + c):
                J[i, j] += K
                J[j, i] += K
    return Ising(J, np.zeros(m * n))


@pytest.mark.parametrize("L", [2, 3, 4])
@pytest.mark.parametrize("beta", BETAS)
def test_kaufman_matches_enumeration(L, beta):
    enum, err = exact.log_partition(Ising.lattice(L, beta), return_error=True)
    assert err < 1e-10
    assert abs(exact.ising_log_partition_2d(L, beta) - enum) < 1e-10


@pytest.mark.parametrize("L", [2, 4])
@pytest.mark.parametrize("beta", [0.2, BETA_C, 0.8])
def test_antiferromagnet_even_L(L, beta):
    enum = exact.log_partition(Ising.lattice(L, beta, coupling=-1.0))
    assert abs(exact.ising_log_partition_2d(L, beta, J=-1.0) - enum) < 1e-10
    assert exact.ising_log_partition_2d(L, beta, J=-1.0) == exact.ising_log_partition_2d(L, beta, J=1.0)


@pytest.mark.parametrize("coupling", [0.5, 2.0])
def test_coupling_scales_beta(coupling):
    enum = exact.log_partition(Ising.lattice(3, 0.3, coupling=coupling))
    assert abs(exact.ising_log_partition_2d(3, 0.3, J=coupling) - enum) < 1e-10


def test_zero_coupling():
    assert exact.ising_log_partition_2d(4, 0.5, J=0.0) == 16 * math.log(2.0)
    assert abs(exact.log_partition(Ising.lattice(4, 0.5, coupling=0.0)) - 16 * math.log(2.0)) < 1e-12


@pytest.mark.parametrize("m, n", [(3, 4), (4, 3), (2, 3), (4, 5)])
@pytest.mark.parametrize("K", [0.1, BETA_C, 0.9])
def test_rectangular_torus(m, n, K):
    # pins the roles of m and n in the private m x n formula
    enum = exact.log_partition(_torus_model(m, n, K))
    assert abs(_kaufman_log_z(m, n, K) - enum) < 1e-10


def test_five_by_five_enumeration():
    # 2^25 states: the bench-sized lattice, both sides of the critical point
    for beta in (0.3, 0.6):
        enum = exact.log_partition(Ising.lattice(5, beta))
        assert abs(exact.ising_log_partition_2d(5, beta) - enum) < 1e-10


def test_onsager_forms_agree():
    for K in (0.3, 0.6):
        assert abs(_onsager(K) - _onsager_2d(K)) < 1e-11


def test_approach_to_onsager():
    # high temperature (K = 0.3): finite-size corrections decay exponentially in L
    K = 0.3
    f = _onsager(K)
    deltas = [exact.ising_log_partition_2d(L, K) / L**2 - f for L in (8, 16, 32, 64, 128)]
    assert all(abs(b) < abs(a) for a, b in zip(deltas, deltas[1:]) if abs(a) > 1e-14)
    assert abs(deltas[-2]) < 1e-12 and abs(deltas[-1]) < 1e-12
    # low temperature (K = 0.6): Z -> 2 e^{N f} (two ordered states), N*Delta -> ln 2
    K = 0.6
    f = _onsager(K)
    for L in (32, 64):
        N = L * L
        assert abs(N * (exact.ising_log_partition_2d(L, K) / N - f) - math.log(2.0)) < 1e-9
    # critical point: N*Delta converges (corrections ~ 1/N: each difference ~ 4x smaller)
    f = _onsager(BETA_C)
    nd = [L * L * (exact.ising_log_partition_2d(L, BETA_C) / L**2 - f) for L in (16, 32, 64, 128)]
    diffs = np.abs(np.diff(nd))
    assert np.all(diffs[1:] < diffs[:-1] / 3.0)
    assert 0.0 < nd[-1] < math.log(2.0)


def test_large_lattice_finite_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # underflow to 0 is correct rounding; overflow/invalid/divide are not
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            for L in (255, 256):
                for beta in (0.05, BETA_C, 3.0):
                    assert math.isfinite(exact.ising_log_partition_2d(L, beta))


def test_signed_last_gamma_matters():
    # with an unsigned gamma_{2n} (arccosh >= 0) the L = 3 value at K = 0.1 is off
    # by up to log 2; the signed one matches enumeration (checked above), so a
    # sign flip of that term must change the answer at K < K_c
    K, L = 0.1, 3
    signed = _kaufman_log_z(L, L, K)
    e = math.exp(-2 * K)
    k_star = 0.5 * (math.log1p(e) - math.log(-math.expm1(-2 * K)))
    assert 2 * (K - k_star) < 0.0
    enum = exact.log_partition(Ising.lattice(L, K))
    assert abs(signed - enum) < 1e-12


@pytest.mark.parametrize(
    "args, exc, pattern",
    [
        ((1, 0.3), ValueError, r"`L`"),
        ((2.5, 0.3), TypeError, r"`L`"),
        ((3, 0.0), ValueError, r"`beta`"),
        ((3, -0.2), ValueError, r"`beta`"),
        ((3, np.inf), ValueError, r"`beta`"),
        ((3, np.nan), ValueError, r"`beta`"),
        ((3, "a"), TypeError, r"`beta`"),
        ((3, 0.3, np.nan), ValueError, r"`J`"),
        ((3, 0.3, "x"), TypeError, r"`J`"),
        ((3, 0.3, -1.0), ValueError, r"`J`.*odd"),
        ((5, 0.3, -0.5), ValueError, r"`J`.*odd"),
    ],
)
def test_bad_input(args, exc, pattern):
    with pytest.raises(exc, match=pattern):
        exact.ising_log_partition_2d(*args)


# ---------------------------------------------------------------- every finite beta > 0


@pytest.mark.parametrize("L", [2, 3, 4, 5, 6, 16, 64])
@pytest.mark.parametrize("K", [200.0, 400.0, 1e4])
def test_log_z_large_coupling_is_ground_states(L, K):
    # Z = 2 e^{2NK} (1 + N e^{-8K} + ...): the correction is below e^{-1600} here
    N = L * L
    expected = 2.0 * N * K + math.log(2.0)
    got = exact.ising_log_partition_2d(L, K)
    assert abs(got - expected) <= 4.0 * math.ulp(expected)
    # the same through beta and J (K = beta |J|), antiferromagnet included for even L
    assert exact.ising_log_partition_2d(L, K / 2.0, J=2.0) == got
    if L % 2 == 0:
        assert exact.ising_log_partition_2d(L, K, J=-1.0) == got


@pytest.mark.parametrize("L", [2, 3, 4, 5, 16, 64])
@pytest.mark.parametrize("K", [1e-200, 1e-300, 4e-155, 1e-30])
def test_log_z_tiny_coupling_is_high_temperature_form(L, K):
    # Z = 2^N cosh^{2N}K (1 + O(K^3)); below K = 1e-20 the O(K^3) is below rounding
    N = L * L
    expected = N * math.log(2.0) + 2.0 * N * math.log(math.cosh(K))
    assert abs(exact.ising_log_partition_2d(L, K) - expected) <= 2.0 * math.ulp(expected)


def test_every_scale_finite_without_warnings():
    grid = [1e-300, 1e-155, 4e-155, 1e-25, 1e-20, 1e-19, 1e-8, 0.1, BETA_C, 2.499, 2.5, 2.501, 50.0, 177.8, 200.0, 1e4, 1e300]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            for L in (2, 3, 5, 8, 64):
                for beta in grid:
                    assert math.isfinite(exact.ising_log_partition_2d(L, beta))
                    e = exact.ising_energy_2d(L, beta)
                    c = exact.ising_specific_heat_2d(L, beta)
                    assert -2.0 <= e <= 0.0 and math.isfinite(e)
                    assert c >= 0.0 and math.isfinite(c)


@pytest.mark.parametrize("K", [299.0, 301.0, 1e4])
def test_private_formula_beyond_overflow_of_sinh(K):
    # |K - K*| > 300 switches gamma_j to its asymptotic form inside Kaufman's formula
    # (the public functions use the low-temperature branch there); no overflow either side
    for L in (3, 4, 8):
        N = L * L
        lz, d1, d2 = _kaufman._kaufman(L, L, K)
        assert abs(lz - (2 * N * K + math.log(2.0))) <= 4.0 * math.ulp(2 * N * K)
        assert d1 == 2 * N and d2 == 0.0
