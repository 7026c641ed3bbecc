"""Exact energy and specific heat of the periodic 2D Ising lattice (docs/thermodynamics.md)."""

import math

import mpmath as mp
import numpy as np
import pytest
from scipy import special

from ebm_ref import exact
from ebm_ref.energies import Ising
from ebm_ref.exact import _kaufman

BETA_C = 0.5 * math.log1p(math.sqrt(2.0))
# both sides of both branch switches (K = 1e-20, K = 2.5) and the critical point
BETAS = [1e-25, 1e-20, 1e-6, 1e-3, 0.1, 0.3, BETA_C, 0.6, 1.0, 2.0, 2.4, 2.5, 2.6, 4.5, 6.0]


def _brute_force(L, beta, J):
    """<H>/N and beta^2 var(H)/N from every state: the exact K-derivatives of the enumerated log Z."""
    model = Ising.lattice(L, beta, coupling=J)
    states, p = exact.probabilities(model)
    H = model.energy(states) / beta  # physical energy (the model's energy is beta H)
    mean = float(np.sum(p * H))
    var = float(np.sum(p * (H - mean) ** 2))
    N = L * L
    return mean / N, beta * beta * var / N


@pytest.mark.parametrize("L", [2, 3, 4])
@pytest.mark.parametrize("J", [1.0, 0.5, 2.0, -1.0])
def test_against_enumeration(L, J):
    if J < 0 and L % 2 == 1:
        pytest.raises(ValueError, exact.ising_energy_2d, L, 0.3, J)
        return
    for beta in BETAS:
        if beta < 1e-10 or beta * abs(J) > 4.5:
            # below, beta H is lost to rounding in the model's energies; above, the
            # brute-force mean carries an error ~ eps * 2N whose square is no longer
            # negligible next to var(H) ~ 64 N e^{-8K} (measured 1e-9 at K = 6)
            continue
        e_ref, c_ref = _brute_force(L, beta, J)
        e = exact.ising_energy_2d(L, beta, J)
        c = exact.ising_specific_heat_2d(L, beta, J)
        # brute force rounds at ~1e-16 of |H| ~ 2N per state: 1e-13 absolute per site
        assert abs(e - e_ref) < 1e-13 * max(1.0, abs(J)), (L, J, beta, e, e_ref)
        # var(H) is a centred sum of positive terms in both: relative accuracy
        # (measured worst 1.6e-11: Kaufman's branch just below K = 2.5)
        assert abs(c - c_ref) <= 3e-11 * c_ref, (L, J, beta, c, c_ref)


def _mp_log_z(L, K):
    """Kaufman's formula evaluated in mpmath (precision set by the caller), arccosh form."""
    K = mp.mpf(K)
    ks = mp.atanh(mp.exp(-2 * K))
    terms = [mp.mpf(1)] * 4
    for r in range(1, L + 1):
        for idx, j in ((0, 2 * r - 1), (2, 2 * r)):
            if j == 2 * L:
                g = 2 * (K - ks)  # signed
            else:
                g = mp.acosh(mp.cosh(2 * ks) * mp.cosh(2 * K) - mp.sinh(2 * ks) * mp.sinh(2 * K) * mp.cos(mp.pi * j / L))
            terms[idx] *= 2 * mp.cosh(L * g / 2)
            terms[idx + 1] *= 2 * mp.sinh(L * g / 2)
    return -mp.log(2) + mp.mpf(L * L) / 2 * mp.log(2 * mp.sinh(2 * K)) + mp.log(mp.fsum(terms))


@pytest.mark.parametrize("K", [0.1, 0.3, BETA_C, 0.6, 1.0, 2.0, 2.4, 2.5, 3.5, 5.0])
def test_against_high_precision_finite_differences_L64(K):
    # 80 digits, h = 1e-15: truncation h^2 f''' ~ 1e-30 relative, rounding 1e-80 / h^2 = 1e-50
    # of log Z ~ 1e4, far below the 1e-29 of log Z that c ~ 1e-15 (K = 5) needs
    L, N = 64, 64 * 64
    with mp.workdps(80):
        h = mp.mpf("1e-15")
        f0, fp, fm = _mp_log_z(L, K), _mp_log_z(L, mp.mpf(K) + h), _mp_log_z(L, mp.mpf(K) - h)
        d1 = float((fp - fm) / (2 * h))
        d2 = float((fp - 2 * f0 + fm) / (h * h))
        assert abs(float(f0) - exact.ising_log_partition_2d(L, K)) < 1e-15 * float(f0)
    e_ref, c_ref = -d1 / N, K * K * d2 / N
    assert abs(exact.ising_energy_2d(L, K) - e_ref) < 1e-14
    # measured worst 2e-13 below K = 2.5 (Kaufman branch), 7e-12 at K = 2.5 (cluster series)
    tol = 1e-12 if K < _kaufman.K_LARGE else 2e-11
    assert abs(exact.ising_specific_heat_2d(L, K) - c_ref) < tol * c_ref


def test_onsager_energy_at_large_L():
    # infinite lattice (Onsager 1944): u = -coth 2K [1 + (2/pi)(2 tanh^2 2K - 1) K(k^2)],
    # k = 2 sinh 2K / cosh^2 2K; at K = 0.3 finite-size corrections are e^{-O(L)}
    K = 0.3
    k = 2.0 * math.sinh(2 * K) / math.cosh(2 * K) ** 2
    u = -(1.0 / math.tanh(2 * K)) * (1.0 + 2.0 / math.pi * (2.0 * math.tanh(2 * K) ** 2 - 1.0) * special.ellipk(k * k))
    assert abs(exact.ising_energy_2d(128, K) - u) < 1e-13


@pytest.mark.parametrize("L", [2, 3, 4, 5, 6, 7, 8, 16, 64, 128])
def test_continuity_at_branch_switches(L):
    # each branch against Kaufman's formula at the switch (the branches are chosen
    # where both hold; the second derivative at K = 3 is the remainder of e^{-2K}
    # terms in Kaufman's formula, measured 1e-11 relative there)
    for K, branch, tol2 in ((_kaufman.K_SMALL, _kaufman._small_k, 1e-14), (_kaufman.K_LARGE, _kaufman._large_k, 1e-9)):
        kf = _kaufman._kaufman(L, L, K)
        br = branch(L, K)
        assert abs(kf[0] - br[0]) <= 1e-15 * abs(br[0])
        assert abs(kf[1] - br[1]) <= 1e-14 * abs(br[1])
        assert abs(kf[2] - br[2]) <= tol2 * abs(br[2])
    # and the public functions just below and at the switch
    for K in (_kaufman.K_SMALL, _kaufman.K_LARGE):
        below = math.nextafter(K, 0.0)
        for f, tol in ((exact.ising_energy_2d, 1e-14), (exact.ising_specific_heat_2d, 1e-9)):
            assert abs(f(L, below) - f(L, K)) <= tol * abs(f(L, K))


@pytest.mark.parametrize("L", [2, 3, 5, 8])
def test_low_temperature_density_of_states(L):
    # the counts used for L <= 5: 2^N states in all, two ground states, N single flips
    N = L * L
    if L <= 5:
        g = _kaufman._broken_bond_counts(L)
        assert g.sum() == 2**N and g[0] == 2 and g[1] == 0
        assert g[4] == (2 * N if L > 2 else 2 * N + 4)  # L = 2: a flipped row of 2 also breaks 4 bonds
        assert np.all(g == g[::-1]) if L % 2 == 0 else True  # bipartite: b <-> 2N - b
    # high-temperature side of the DoS: at K -> 0, log Z -> N log 2 (checked against Kaufman)
    assert abs(_kaufman._large_k(L, 1e-3)[0] - _kaufman._kaufman(L, L, 1e-3)[0]) < 1e-12 if L <= 5 else True


@pytest.mark.parametrize("L", [2, 3, 4, 16])
def test_antiferromagnet_even_L_and_limits(L):
    for beta in (0.1, BETA_C, 1.0):
        if L % 2 == 0:
            assert exact.ising_energy_2d(L, beta, J=-1.0) == exact.ising_energy_2d(L, beta, J=1.0)
            assert exact.ising_specific_heat_2d(L, beta, J=-1.5) == exact.ising_specific_heat_2d(L, 1.5 * beta)
        else:
            with pytest.raises(ValueError, match=r"`J`.*odd"):
                exact.ising_specific_heat_2d(L, beta, J=-1.0)
        assert exact.ising_energy_2d(L, beta, J=0.0) == 0.0
        assert exact.ising_specific_heat_2d(L, beta, J=0.0) == 0.0
    # beta -> 0: energy -> 0 like -2 J K (L >= 3) and c -> 2 K^2; beta -> inf: energy -> -2|J|, c -> 0
    K = 1e-12
    factor = 2.0 if L == 2 else 1.0  # L = 2: doubled bonds
    # (relative corrections O(K): winding loops of length 3 for L = 3)
    assert abs(exact.ising_energy_2d(L, K) + 2.0 * factor * K) < 1e-10 * K
    assert abs(exact.ising_specific_heat_2d(L, K) - 2.0 * factor * K * K) < 1e-10 * K * K
    assert exact.ising_energy_2d(L, 1e4) == -2.0
    assert exact.ising_energy_2d(L, 1e4, J=2.5) == -5.0
    assert exact.ising_specific_heat_2d(L, 1e4) == 0.0
    assert 0.0 < exact.ising_specific_heat_2d(L, 20.0) < 1e-60


@pytest.mark.parametrize("L", [2, 3, 8, 64])
@pytest.mark.parametrize("J", [1.0, 2.0, -1.0])
def test_energy_is_derivative_of_log_z(L, J):
    # central differences of log Z in beta (double precision, h = 1e-5 * max(1, beta)):
    # d log Z / d beta = -<H>; rounding eps |log Z| / h and truncation h^2 ~ 1e-9 relative
    if J < 0 and L % 2:
        return
    N = L * L
    for beta in (0.05, 0.3, BETA_C, 0.6, 1.0, 2.4, 2.6, 8.0):
        h = 1e-5 * max(1.0, beta)
        fd = (exact.ising_log_partition_2d(L, beta + h, J) - exact.ising_log_partition_2d(L, beta - h, J)) / (2 * h)
        e = exact.ising_energy_2d(L, beta, J)
        assert abs(-fd / N - e) < 1e-7 * max(1.0, abs(J) * beta), (L, J, beta, -fd / N, e)


@pytest.mark.parametrize("L", [3, 16])
def test_energy_decreases_with_beta(L):
    # d<H>/dbeta = -var(H) <= 0, and c = beta^2 var / N = -beta^2 d(e)/dbeta: check the
    # derivative relation by central differences of the exact energy (a consistency check)
    betas = np.linspace(0.05, 2.5, 50)
    e = np.array([exact.ising_energy_2d(L, b) for b in betas])
    assert np.all(np.diff(e) < 0.0)
    for b in (0.2, BETA_C, 0.7):
        h = 1e-5
        de = (exact.ising_energy_2d(L, b + h) - exact.ising_energy_2d(L, b - h)) / (2 * h)
        # FD truncation h^2 e'''/6 and rounding eps/h: ~1e-8 at L = 16, beta_c
        c = exact.ising_specific_heat_2d(L, b)
        assert abs(-b * b * de - c) < 1e-6 * c


@pytest.mark.parametrize("func", [exact.ising_energy_2d, exact.ising_specific_heat_2d])
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
    ],
)
def test_bad_input(func, args, exc, pattern):
    with pytest.raises(exc, match=pattern):
        func(*args)
