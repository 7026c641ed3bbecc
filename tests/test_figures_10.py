"""Figure 10 (Ising critical point) at reduced size: its statistics and its key claims.

False-failure rates: the z-tests below are two-sided at ALPHA = 1e-4 in
total (Bonferroni over the values compared). A jackknife standard error over
n chains has n - 1 degrees of freedom, so the bound is Student's t quantile,
not the normal one.
"""

import math
import pathlib

import numpy as np
import pytest
from scipy import stats

from ebm_ref.__main__ import load_script
from ebm_ref.energies import Ising
from ebm_ref.testing._samplercheck import enumerate_distribution

SCRIPT = pathlib.Path(__file__).resolve().parent.parent / "scripts" / "fig_10_ising_critical.py"
ALPHA = 1e-4


@pytest.fixture(scope="module")
def fig():
    return load_script(SCRIPT)


@pytest.mark.parametrize("L", [2, 3, 5])
def test_lattice_energy_is_the_physical_energy(fig, L):
    beta = 0.37
    model = Ising.lattice(L, beta)
    s = 2.0 * np.random.default_rng(L).integers(0, 2, size=(6, L * L)) - 1.0
    # model energy = beta * H (coupling 1, no field), so H / L^2 = E / (beta L^2)
    np.testing.assert_allclose(fig.lattice_energy(s, L), model.energy(s) / (beta * L * L), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("L,beta", [(3, 0.3), (3, 0.44), (4, 0.44), (4, 0.6)])
def test_exact_curves_against_enumeration(fig, L, beta):
    model = Ising.lattice(L, beta)
    xs, p = enumerate_distribution(model)
    H = model.energy(xs) / beta
    e = p @ H / (L * L)
    c = beta**2 * (p @ (H - p @ H) ** 2) / (L * L)
    e_ex, c_ex = fig.exact_curves(L, [beta])
    np.testing.assert_allclose(e_ex, e, rtol=1e-7)
    np.testing.assert_allclose(c_ex, c, rtol=1e-6)


def test_jackknife_and_binder(fig):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(12, 1))
    value, se = fig.jackknife(x, lambda a: a[0])
    # for the mean the jackknife error is exactly the standard error of the mean
    assert value == pytest.approx(x.mean(), rel=1e-14)
    assert se == pytest.approx(x.std(ddof=1) / math.sqrt(12), rel=1e-12)
    # Binder: 0 for a Gaussian magnetisation (<m^4> = 3 <m^2>^2), 2/3 for m = +-m0
    assert fig.binder(np.array([2.0, 12.0])) == 0.0
    assert fig.binder(np.array([0.25, 0.0625])) == pytest.approx(2.0 / 3.0, rel=1e-15)


def test_crossing(fig):
    b = np.linspace(0.40, 0.48, 9)
    assert fig.crossing(b, 1.0 + (b - 0.4321), b, 1.0 + 3.0 * (b - 0.4321)) == pytest.approx(0.4321, abs=1e-12)
    assert math.isnan(fig.crossing(b, b, b, b + 1.0))


@pytest.fixture(scope="module")
def res(fig):
    return fig.compute(Ls=(8, 16), gibbs_Ls=(8, 16), n_chains=16, n_burn=100, n_sweeps=400, seed=5)


def test_energy_and_specific_heat_match_the_exact_torus(res):
    z, dof = [], []
    for (sampler, L), p in res["points"].items():
        z += list((p["e"] - p["e_exact"]) / p["de"]) + list((p["c"] - p["c_exact"]) / p["dc"])
    n = res["n_chains"]
    bound = stats.t.isf(ALPHA / 2 / len(z), n - 1)
    assert np.all(np.abs(z) < bound), (np.round(z, 2), bound)


def test_binder_crossing_and_limits(res):
    for (sampler, L), p in res["points"].items():
        # U rises across the critical window, from the disordered towards the ordered value 2/3
        assert p["U"][0] < 0.45 and p["U"][-1] > 0.6 and np.all(p["U"] < 2.0 / 3.0 + 4 * p["dU"])
    for key, b in res["crossings"].items():
        # L = 8 and 16 cross within 1.5 % of beta_c (finite-size shift ~0.5 %, statistical error ~0.3 %)
        assert abs(b / 0.44068679350977147 - 1.0) < 0.015, (key, b)


def test_main_writes_png_and_caption(fig, tmp_path):
    out = fig.main(tmp_path, seed=1, Ls=(8,), gibbs_Ls=(8,), n_chains=4, n_burn=10, n_sweeps=40)
    png = pathlib.Path(out["files"][0])
    assert png.exists() and png.stat().st_size > 10_000
    assert out["caption"].startswith("## ") and f"]({png.name})" in out["caption"]
    for ref in ("Binder 1981", "Ferdinand & Fisher", "Swendsen & Wang 1987"):
        assert ref in out["caption"]
