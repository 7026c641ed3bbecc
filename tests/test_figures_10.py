"""Figure 10 (Ising critical point) at reduced size: its key claims.

The statistics themselves (``observables.ising_observables``, the exact
``exact.ising_energy_2d`` / ``ising_specific_heat_2d``) and the samplers are
tested where they are defined; here the script's own pieces (the crossing,
the sampling loop) and the claims of the caption on small lattices.

False-failure rate: the z-test below is two-sided at ALPHA = 1e-4 in total
(Bonferroni over the values compared). The standard errors are estimated
from blocks of 16 chains (at least 16 blocks), so the bound is Student's t
quantile with 15 degrees of freedom, not the normal one.
"""

import math
import pathlib

import numpy as np
import pytest
from scipy import stats

from ebm_ref.__main__ import load_script

SCRIPT = pathlib.Path(__file__).resolve().parent.parent / "scripts" / "fig_10_ising_critical.py"
ALPHA = 1e-4


@pytest.fixture(scope="module")
def fig():
    return load_script(SCRIPT)


def test_crossing(fig):
    b = np.linspace(0.40, 0.48, 9)
    assert fig.crossing(b, 1.0 + (b - 0.4321), b, 1.0 + 3.0 * (b - 0.4321)) == pytest.approx(0.4321, abs=1e-12)
    assert math.isnan(fig.crossing(b, b, b, b + 1.0))


@pytest.fixture(scope="module")
def res(fig):
    return fig.compute(sw_runs={8: (16, 100, 300), 16: (16, 100, 300)},
                       gibbs_runs={8: (16, 200, 1500), 16: (16, 300, 1500)}, seed=5)


def test_sample_point_memory_bound_keeps_the_chains(fig):
    # a trace budget of one state per call: one measured sweep per call, yet every sweep is measured
    H, M = fig.sample_point(4, 0.4, "sw", 3, 5, 7, seed=1, max_bytes=8 * 3 * 16)
    assert H.shape == M.shape == (7, 3)
    assert np.all(np.abs(M) <= 16) and np.all(H >= -32) and np.all(H <= 32)
    H2, M2 = fig.sample_point(4, 0.4, "sw", 3, 5, 7, seed=1, max_bytes=8 * 3 * 16)
    np.testing.assert_array_equal(H, H2)


def test_energy_and_specific_heat_match_the_exact_torus(res):
    z = np.concatenate([np.concatenate([(p["e"] - p["e_exact"]) / p["de"], (p["c"] - p["c_exact"]) / p["dc"]])
                        for p in res["points"].values()])
    assert np.all(np.isfinite(z))
    bound = stats.t.isf(ALPHA / 2 / z.size, 15)
    assert np.all(np.abs(z) < bound), (np.round(z, 2), bound)


def test_binder_crossing_and_limits(res):
    for (sampler, L), p in res["points"].items():
        # U rises across the critical window towards the ordered value 2/3
        assert p["U"][0] < 0.45 and p["U"][-1] > 0.6 and np.all(p["U"] < 2.0 / 3.0 + 4 * p["dU"])
    assert set(res["crossings"]) == {("sw", 8, 16), ("gibbs", 8, 16)}
    for key, b in res["crossings"].items():
        # L = 8 and 16 cross within 2 % of beta_c (finite-size shift and statistical error ~0.5 % each)
        assert abs(b / 0.44068679350977147 - 1.0) < 0.02, (key, b)


def test_main_writes_png_and_caption(fig, tmp_path):
    out = fig.main(tmp_path, seed=1, sw_runs={4: (4, 10, 40), 8: (4, 10, 40)}, gibbs_runs={4: (4, 10, 40)})
    png = pathlib.Path(out["files"][0])
    assert png.exists() and png.stat().st_size > 10_000
    assert out["caption"].startswith("## ") and f"]({png.name})" in out["caption"]
    for ref in ("Binder 1981", "Ferdinand & Fisher 1969", "Swendsen & Wang 1987", "Kaufman 1949"):
        assert ref in out["caption"]
    assert " s)" not in out["caption"] and "seconds" not in out["caption"]  # statistics only, no timings
