"""Unit tests of the oracle kit (ebm_ref.testing): compare_energy,
check_sampler, check_objective_grad and compare_objective on correct inputs,
on malformed third-party outputs, and with ebm_ref's own implementations
wrapped as if they were third-party code (a cross-check of both sides)."""

from __future__ import annotations

import numpy as np
import pytest

from ebm_ref import objectives
from ebm_ref.energies import GRBM, RBM, GaussianMixture, Ising, LatentEnergy, MLPEnergy, StudentT
from ebm_ref.testing import (
    EnergyComparison,
    assert_energy_matches,
    assert_sampler_exact,
    check_objective_grad,
    check_sampler,
    compare_energy,
    compare_objective,
    enumerate_distribution,
)
from ebm_ref.testing._samplercheck import _pooled_chisquare

ALPHA = 1e-4
PRIMS = (
    "energy",
    "grad_x",
    "hessian_diag",
    "grad_params",
    "grad_params_of_grad_x",
    "grad_params_of_hessian_diag",
)


def _models():
    rng = np.random.default_rng(0)
    return {
        "rbm": RBM(rng.standard_normal((5, 3)), rng.standard_normal(5), rng.standard_normal(3)),
        "ising-spin": Ising.random(6, 1.0, seed=1),
        "ising-binary": Ising.random(6, 1.0, seed=2, domain="binary"),
        "grbm": GRBM(rng.standard_normal((3, 2)), rng.standard_normal(3), rng.standard_normal(2), 0.2 * rng.standard_normal(3)),
        "student-t": StudentT(rng.standard_normal(3), 0.2 * rng.standard_normal(3), np.log(3.0) + 0.1 * rng.standard_normal(3)),
        "mixture": GaussianMixture(rng.standard_normal(3), 2.0 * rng.standard_normal((3, 2)), 0.2 * rng.standard_normal((3, 2))),
        "mlp": MLPEnergy((2, 4, 3), activation="tanh", seed=3),
        "latent": LatentEnergy(np.array([1.5, 0.8])),
    }


MODELS = _models()


def _wrap(model, name):
    """ebm_ref's own primitive, called the third-party way (params dict first)."""

    def fn(params, *args):
        return getattr(model._with_params_unchecked(params), name)(*args)

    return fn


# ---------------------------------------------------------------- compare_energy
@pytest.mark.parametrize("key", list(MODELS))
def test_compare_energy_self_consistent_on_every_model(key):
    model = MODELS[key]
    # scale 10 on log-parameters (log_df, log_var, ...) is extreme; use the model's own regime and neighbours
    report = compare_energy(model, scales=(0.5, 1.0, 2.0), n_batches=2, **{p: _wrap(model, p) for p in PRIMS})
    assert isinstance(report, EnergyComparison)
    assert list(report.results) == list(PRIMS)
    # identical code on identical inputs: bit-equal except where a perturbed model is rebuilt
    assert report.passed, str(report)
    assert report.worst[1] <= 1e-12


def test_compare_energy_perturbed_ising_keeps_constraints():
    model = MODELS["ising-spin"]
    seen = []

    def energy(params, x):
        J = params["J"]
        seen.append(np.array_equal(J, J.T) and not np.any(np.diag(J)))
        return -0.5 * np.einsum("ni,ij,nj->n", x, J, x) - x @ params["h"]

    assert_energy_matches(model, energy=energy)
    assert seen and all(seen)


def test_compare_energy_reports_where_and_input():
    model = MODELS["rbm"]

    def energy(params, x):
        e = RBM(**params).energy(x)
        e[3] += 1.0  # wrong on sample 3 of every batch
        return e

    report = compare_energy(model, energy=energy, n_batches=2)
    r = report.results["energy"]
    assert not report.passed and report.failed == ["energy"]
    assert r.where["index"] == (3,)
    assert r.got - r.expected == pytest.approx(1.0)
    assert r.x.shape == (model.n_features,)
    assert "energy" in str(report) and "MISMATCH" in str(report)


def test_compare_energy_shape_and_key_errors_are_failures():
    model = MODELS["rbm"]

    def gp_transposed(params, x, w):
        g = RBM(**params).grad_params(x, w)
        g["W"] = g["W"].T
        return g

    def gp_missing_key(params, x, w):
        g = RBM(**params).grad_params(x, w)
        del g["b_h"]
        return g

    r1 = compare_energy(model, grad_params=gp_transposed).results["grad_params"]
    assert r1.max_rel_error == np.inf and "shape (3, 5)" in r1.note
    r2 = compare_energy(model, grad_params=gp_missing_key).results["grad_params"]
    assert r2.max_rel_error == np.inf and "keys" in r2.note


def test_compare_energy_nonfinite_output_fails():
    def energy(params, x):
        e = RBM(**params).energy(x)
        e[0] = np.nan
        return e

    r = compare_energy(MODELS["rbm"], energy=energy).results["energy"]
    assert r.max_rel_error == np.inf and "non-finite" in r.note


def test_compare_energy_catches_a_small_relative_error():
    model = MODELS["grbm"]

    def grad_x(params, x):
        return GRBM(**params).grad_x(x) * (1.0 + 1e-6)

    report = compare_energy(model, grad_x=grad_x)
    # a 1e-6 relative error is 100x the default rtol
    assert not report.passed
    assert report.results["grad_x"].max_rel_error == pytest.approx(1e-6, rel=1e-3)


def test_assert_energy_matches_raises_with_the_report():
    with pytest.raises(AssertionError, match="energy.*MISMATCH"):
        assert_energy_matches(MODELS["rbm"], energy=lambda p, x: RBM(**p).energy(x) + 1.0)


def test_compare_energy_input_errors():
    with pytest.raises(ValueError, match="at least one callable"):
        compare_energy(MODELS["rbm"])
    with pytest.raises(TypeError, match="`energy` must be callable"):
        compare_energy(MODELS["rbm"], energy=3.0)
    with pytest.raises(ValueError, match="`scales`"):
        compare_energy(MODELS["rbm"], energy=_wrap(MODELS["rbm"], "energy"), scales=())


def test_compare_energy_user_cannot_mutate_reference_params():
    model = MODELS["rbm"]
    before = model.params

    def energy(params, x):
        e = RBM(**params).energy(x)
        params["W"][:] = 0.0  # hostile third-party code
        return e

    assert compare_energy(model, energy=energy).passed
    for k, v in model.params.items():
        np.testing.assert_array_equal(v, before[k])


# ----------------------------------------------------------------- check_sampler
def test_enumerate_distribution_matches_ebm_ref_exact():
    from ebm_ref.exact import probabilities

    for key in ("rbm", "ising-spin", "ising-binary"):
        s1, p1 = enumerate_distribution(MODELS[key])
        s2, p2 = probabilities(MODELS[key])
        np.testing.assert_array_equal(s1, s2)
        np.testing.assert_allclose(p1, p2, rtol=1e-12, atol=1e-15)
        assert p1.sum() == pytest.approx(1.0, abs=1e-12)


def test_enumerate_distribution_refuses():
    with pytest.raises(ValueError, match="binary or spin"):
        enumerate_distribution(MODELS["student-t"])
    with pytest.raises(ValueError, match="17 features"):
        enumerate_distribution(Ising.random(17, 1.0, seed=0))


def test_pooled_chisquare_pools_small_cells():
    expected = np.array([100.0, 50.0, 2.0, 2.0, 2.0, 0.5])
    counts = np.array([100.0, 50.0, 2.0, 2.0, 2.0, 0.0])
    stat, dof = _pooled_chisquare(counts, expected)
    # cells 2.0+2.0+0.5 -> 4.5 < 5, +2.0 -> 6.5 pooled: three cells, dof 2
    assert dof == 2
    assert stat == pytest.approx((6.0 - 6.5) ** 2 / 6.5)


def _ebm_sampler(fn, cls, **kw):
    """An ebm_ref sampler called the third-party way (rng -> seed)."""

    def sample(params, x0, n_steps, rng):
        return fn(cls(**params), x0, n_steps, seed=rng, **kw).x

    return sample


def test_ebm_ref_samplers_pass_check_sampler():
    from ebm_ref.samplers import gibbs
    from ebm_ref.samplers import gwg

    rbm = MODELS["rbm"]
    # alpha = 1e-4 each: the false-failure rate of every assertion below
    assert_sampler_exact(_ebm_sampler(gibbs, RBM), rbm, seed=1, alpha=ALPHA)
    assert_sampler_exact(_ebm_sampler(gwg, RBM), rbm, n_steps=20, seed=2, alpha=ALPHA)
    ising = MODELS["ising-spin"]

    def ising_gibbs(params, x0, n_steps, rng):
        return gibbs(Ising(params["J"], params["h"]), x0, n_steps, seed=rng).x

    res = check_sampler(ising_gibbs, ising, seed=3, alpha=ALPHA)
    assert res.passed, str(res)
    assert res.test == "chi-square" and res.threshold > 0 and res.alpha == ALPHA


def test_ebm_ref_continuous_samplers_pass_check_sampler():
    from ebm_ref.samplers import gibbs
    from ebm_ref.samplers import langevin

    # MALA is exact at any step size (alpha = 1e-4 false-failure rate)
    res = check_sampler(_ebm_sampler(langevin, StudentT, step_size=0.3, adjust=True), MODELS["student-t"], seed=4)
    assert res.passed, str(res)
    assert res.details["n_tests"] >= 4
    res = check_sampler(_ebm_sampler(gibbs, GRBM), MODELS["grbm"], seed=5)
    assert res.passed, str(res)


def test_check_sampler_catches_ula_bias():
    from ebm_ref.samplers import langevin

    # ULA at step 0.5 has a visibly wrong stationary law (a negative control, docs/checking.md)
    res = check_sampler(_ebm_sampler(langevin, StudentT, step_size=0.5, adjust=False), MODELS["student-t"], seed=6)
    assert not res.passed, str(res)
    assert res.p_value < 1e-8


def test_check_sampler_exact_sampler_argument():
    # a continuous model without closed forms: two-sample tests against given exact draws
    model = MODELS["student-t"]
    loc, scale, df = model.params["loc"], np.exp(model.params["log_scale"]), np.exp(model.params["log_df"])

    def exact(rng, n):
        return loc + scale * rng.standard_t(df, size=(n, 3))

    def identity(params, x0, n_steps, rng):
        return exact(rng, x0.shape[0])

    res = check_sampler(identity, model, exact_sampler=exact, seed=7)
    assert res.passed, str(res)  # alpha = 1e-4
    assert all(k.startswith("KS2") for k in res.details["p_values"])


def test_check_sampler_fixed_start_and_stuck_sampler():
    model = MODELS["ising-spin"]
    res = check_sampler(lambda p, x, n, r: x, model, start=np.ones(6))
    assert not res.passed and res.details["start"] == "exact+fixed"
    assert res.caught_by == ("fixed",) and res.suspects == ("no_mixing",)
    # identity is invariant: it passes from exact starts alone, and the default (both starts) catches it
    assert check_sampler(lambda p, x, n, r: x, model, start="exact").passed
    res = check_sampler(lambda p, x, n, r: x, model)
    assert not res.passed and "no_mixing" in res.suspects and "fixed start" in res.diagnosis


def test_check_sampler_invalid_outputs_fail_with_message():
    model = MODELS["rbm"]
    bad_domain = check_sampler(lambda p, x, n, r: 2.0 * x - 1.0, model)
    assert not bad_domain.passed and "outside the binary domain" in bad_domain.message
    bad_shape = check_sampler(lambda p, x, n, r: x[:10], model)
    assert not bad_shape.passed and "shape" in bad_shape.message
    nan = check_sampler(lambda p, x, n, r: np.full(x.shape, np.nan), MODELS["student-t"])
    assert not nan.passed and "NaN" in nan.message and nan.suspects == ("nonfinite",)
    with pytest.raises(AssertionError, match="FAILED"):
        assert_sampler_exact(lambda p, x, n, r: x[:10], model)


def test_check_sampler_argument_errors():
    model = MODELS["rbm"]
    ident = lambda p, x, n, r: x  # noqa: E731
    with pytest.raises(ValueError, match="`alpha`"):
        check_sampler(ident, model, alpha=0.0)
    with pytest.raises(ValueError, match="`start`"):
        check_sampler(ident, model, start=np.zeros(3))
    with pytest.raises(ValueError, match="no exact sampler"):
        check_sampler(ident, MODELS["mlp"])
    with pytest.raises(TypeError, match="`sample_fn`"):
        check_sampler(None, model)
    with pytest.raises(TypeError, match="`seed`"):
        check_sampler(ident, model, seed=np.random.default_rng(0))


def test_check_sampler_is_deterministic():
    from ebm_ref.samplers import gibbs

    f = _ebm_sampler(gibbs, RBM)
    a = check_sampler(f, MODELS["rbm"], n_chains=2000, seed=9)
    b = check_sampler(f, MODELS["rbm"], n_chains=2000, seed=9)
    assert a.statistic == b.statistic and a.details["tv"] == b.details["tv"]


# ------------------------------------------------------------- objective checks
def _ebm_objective(obj, cls):
    def vg(params, x, seed):
        return obj.value_and_grad(cls(**params) if cls is not Ising else Ising(params["J"], params["h"]), x, seed)

    return vg


def test_check_objective_grad_on_ebm_ref_objectives():
    t = MODELS["student-t"]
    x = np.random.default_rng(0).standard_normal((20, 3))
    check_objective_grad(_ebm_objective(objectives.ScoreMatching(), StudentT), t, x).assert_ok()
    rbm = MODELS["rbm"]
    xb = np.random.default_rng(1).integers(0, 2, size=(20, 5)).astype(float)
    ed = objectives.EnergyDiscrepancy("bernoulli", t=0.2, m=4)
    check_objective_grad(_ebm_objective(ed, RBM), rbm, xb, seed=3).assert_ok()


def test_check_objective_grad_flags_irreproducible_loss():
    state = np.random.default_rng(0)

    def noisy(params, x, seed):
        # ignores the seed: a global generator
        return float(np.sum(params["h"]) + state.random()), {"J": np.zeros((6, 6)), "h": np.ones(6)}

    model = MODELS["ising-spin"]
    res = check_objective_grad(noisy, model, np.ones((3, 6)))
    assert not res.passed and res.where[0] == "seed"
    with pytest.raises(TypeError, match="Generator"):
        check_objective_grad(noisy, model, np.ones((3, 6)), seed=np.random.default_rng(0))


def test_check_objective_grad_structural_zero():
    model = MODELS["ising-spin"]

    def loss(params, x, seed):
        J = params["J"]
        grads = {"J": -0.5 * np.ones_like(J), "h": -np.ones(6)}  # diagonal not zeroed
        return float(-0.5 * J.sum() - params["h"].sum()), grads

    res = check_objective_grad(loss, model, np.ones((2, 6)))
    assert not res.passed and res.where[0] == "J" and res.where[1][0] == res.where[1][1]


def test_compare_objective_exact_mode_with_gradients():
    t = MODELS["student-t"]
    x = np.random.default_rng(2).standard_normal((15, 3))
    ours = _ebm_objective(objectives.ScoreMatching(), StudentT)
    rep = compare_objective("ScoreMatching", ours, t, x)
    assert rep.mode == "exact" and rep.passed and rep.grads["error"] <= 1e-12

    def off(params, x, seed):
        loss, g = ours(params, x, seed)
        g = dict(g)
        g["log_df"] = g["log_df"] * 1.01
        return loss, g

    rep = compare_objective("ScoreMatching", off, t, x)
    assert not rep.passed and rep.grads["key"] == "log_df"
    assert "MISMATCH" in str(rep)


def test_compare_objective_expectation_mode():
    rbm = MODELS["rbm"]
    xb = np.random.default_rng(3).integers(0, 2, size=(30, 5)).astype(float)
    kw = {"perturbation": "bernoulli", "t": 0.2, "m": 4}
    ed = objectives.EnergyDiscrepancy(**kw)
    # ebm_ref against itself with independent seeds: passes at alpha = 1e-4 (Bonferroni)
    rep = compare_objective("EnergyDiscrepancy", _ebm_objective(ed, RBM), rbm, xb, n_seeds=100, objective_kwargs=kw)
    assert rep.mode == "expectation" and rep.alpha == ALPHA
    assert rep.passed, str(rep)
    assert rep.grads and rep.threshold > 3.89


def test_compare_objective_errors():
    model = MODELS["student-t"]
    x = np.zeros((3, 3))
    with pytest.raises(ValueError, match="not an objective"):
        compare_objective("NoSuchLoss", lambda p, x, s: 0.0, model, x)
    with pytest.raises(TypeError, match="`value_fn`"):
        compare_objective("ScoreMatching", None, model, x)
    with pytest.raises(TypeError, match="`seed`"):
        compare_objective("ScoreMatching", lambda p, x, s: 0.0, model, x, seed=1.5)
    bad = compare_objective("ScoreMatching", lambda p, x, s: (0.0, {"loc": np.zeros(3)}), model, x)
    assert not bad.passed and "keys" in bad.note


def test_check_sampler_chisquare_is_calibrated():
    from scipy import stats
    from scipy.special import expit

    # an exact sampler (exact draws, then block Gibbs) over 200 seeds: p-values ~ U(0, 1)
    def gibbs(p, v, n_steps, rng):
        for _ in range(n_steps):
            h = (rng.random((v.shape[0], p["W"].shape[1])) < expit(v @ p["W"] + p["b_h"])).astype(float)
            v = (rng.random(v.shape) < expit(h @ p["W"].T + p["b_v"])).astype(float)
        return v

    model = MODELS["rbm"]
    p = np.array([check_sampler(gibbs, model, n_chains=3000, n_steps=2, seed=s, start="exact").p_value for s in range(200)])
    # KS of 200 p-values against U(0, 1): a calibrated test fails with probability 1e-4
    assert stats.kstest(p, "uniform").pvalue > 1e-4
    assert np.mean(p < 0.05) < 0.05 + 3.89 * np.sqrt(0.05 * 0.95 / 200)


@pytest.mark.slow
def test_check_sampler_two_starts_keep_the_false_failure_rate():
    # an exact sampler from any start (it ignores x0 and draws exactly): each start is tested at
    # alpha / 2 and the combined p-value min(1, 2 min_s p_s) is conservative, P(p <= t) <= t
    states, probs = enumerate_distribution(MODELS["rbm"])

    def exact_draws(p, x, n, rng):
        return states[rng.choice(probs.size, size=x.shape[0], p=probs)]

    n = 400
    res = [check_sampler(exact_draws, MODELS["rbm"], n_chains=2000, seed=s) for s in range(n)]
    assert all(set(r.starts) == {"exact", "fixed"} for r in res)
    p = np.array([r.p_value for r in res])
    # P(p <= 0.1) <= 0.1; binomial bound with false-failure rate 1e-4 (z = 3.72, one-sided)
    assert np.mean(p <= 0.1) <= 0.1 + 3.72 * np.sqrt(0.1 * 0.9 / n)
    # each check fails with probability <= 1e-4: two or more failures in 400 has probability < 1e-3
    assert sum(not r.passed for r in res) <= 1
