"""Valid-looking but extreme input to the new public callables never gives a silent NaN.

Each test either checks a value against its definition (computed here by a
route that cannot overflow) or checks the documented non-number (a NaN that
the docstring promises, a ``False`` in the ``ok`` column). The conventions
for stable log-sum-exp / softplus are in docs/conventions.md.
"""

import math

import numpy as np
import pytest

from ebm_ref import exact, observables, sweep
from ebm_ref.energies import RBM, Ising, MLPEnergy
from ebm_ref.objectives import PseudoLikelihood, SlicedScoreMatching


def _log_conditional_by_definition(model, x):
    """sum_k log p(x_k | x_-k) per sample from two energies per unit (np.logaddexp: stable).

    p(x_k | x_-k) = e^{-E(x)} / (e^{-E(x)} + e^{-E(x^(k))}) with x^(k) the
    state with unit k flipped; E is the (free) energy of the model.
    """
    e0 = model.energy(x)
    total = np.zeros(x.shape[0])
    for k in range(x.shape[1]):
        xk = x.copy()
        xk[:, k] = (1.0 - xk[:, k]) if model.domain == "binary" else -xk[:, k]
        ek = model.energy(xk)
        total += -e0 - np.logaddexp(-e0, -ek)
    return total


@pytest.mark.parametrize("scale", [1.0, 50.0])
def test_pseudo_likelihood_at_large_weights_is_its_definition(scale):
    rng = np.random.default_rng(0)
    rbm = RBM(rng.normal(size=(6, 4)) * scale, rng.normal(size=6) * scale, rng.normal(size=4) * scale)
    x = (rng.random((5, 6)) < 0.5).astype(float)
    ising = Ising.random(6, scale * math.sqrt(6), 1)
    s = np.where(rng.random((5, 6)) < 0.5, -1.0, 1.0)
    for model, xs in ((rbm, x), (ising, s)):
        value, grads = PseudoLikelihood().value_and_grad(model, xs)
        assert np.isfinite(value)
        assert all(np.all(np.isfinite(g)) for g in grads.values())
        # the loss is the mean over samples of -sum_k log p(x_k | x_-k);
        # both sides are sums of d terms of size up to ~scale * d: 1e-12 relative
        want = -np.mean(_log_conditional_by_definition(model, xs))
        assert value == pytest.approx(want, rel=1e-12, abs=1e-12)


def test_sliced_score_matching_at_large_weights_is_finite():
    model = MLPEnergy((3, 8, 1), seed=0)
    model = model.with_params({k: v * 50.0 for k, v in model.params.items()})
    x = np.random.default_rng(1).normal(size=(4, 3))
    value, grads = SlicedScoreMatching(n_projections=2).value_and_grad(model, x, seed=0)
    assert np.isfinite(value)
    assert all(np.all(np.isfinite(g)) for g in grads.values())


@pytest.mark.parametrize("beta", [1e-300, 1e-20, 1e3, 1e300])
@pytest.mark.parametrize("L", [2, 8, 64])
def test_thermodynamics_at_extreme_beta(L, beta):
    log_z = exact.ising_log_partition_2d(L, beta)
    u = exact.ising_energy_2d(L, beta)
    c = exact.ising_specific_heat_2d(L, beta)
    assert np.isfinite(log_z) and np.isfinite(u) and np.isfinite(c)
    n = L * L
    # limits by definition: log Z -> N log 2 (beta -> 0), log Z -> 2 N K + log 2
    # (beta -> inf: the two ground states); u = -2 tanh-like in [-2, 0]; c >= 0
    assert -2.0 <= u <= 0.0 and c >= 0.0
    if beta <= 1e-20:
        assert log_z == pytest.approx(n * math.log(2.0), rel=1e-12)
    else:
        assert log_z == pytest.approx(2.0 * n * beta + math.log(2.0), rel=1e-12)
        assert u == -2.0


def test_observables_on_constant_series():
    tau = observables.integrated_autocorr_time(np.full((20, 3), 4.0))
    assert tau == 1.0
    est = observables.ising_observables(np.full((20, 2), -32.0), np.full((20, 2), 16.0), 0.4, 16)
    for name, e in est.items():
        assert np.isfinite(e.value) and np.isfinite(e.stderr), name
        assert e.stderr == 0.0
    assert est["energy"].value == -2.0 and est["abs_magnetization"].value == 1.0
    assert est["binder"].value == pytest.approx(2.0 / 3.0, rel=1e-15)
    # every M = 0: U4 = 1 - <M^4>/(3 <M^2>^2) is 0/0, documented as NaN; the rest stay finite
    est0 = observables.ising_observables(np.full((20, 2), 0.0), np.zeros((20, 2)), 0.4, 16)
    assert math.isnan(est0["binder"].value)
    assert all(np.isfinite(est0[k].value) for k in ("energy", "abs_magnetization", "susceptibility", "specific_heat"))


def test_table_marks_failed_tasks():
    ok = sweep.Record({"beta": 0.3}, {"energy": -1.5})
    failed = sweep.Record({"beta": 0.4}, {}, error="Traceback: boom")
    t = sweep.table([ok, failed])
    assert list(t["ok"]) == [True, False]
    # the failed task's missing result is a NaN that the ok column explains
    assert t["energy"][0] == -1.5 and math.isnan(t["energy"][1])


def test_tau_and_stderr_of_huge_series():
    # tau is a ratio of autocovariances, invariant under x -> a x: at 1e200 it is
    # the tau of the unit series (the FFT works on an exactly rescaled copy)
    x = np.random.default_rng(5).normal(size=(200, 2))
    tau = observables.integrated_autocorr_time(x)
    for a in (1e200, 1e-200):
        assert observables.integrated_autocorr_time(x * a) == pytest.approx(tau, rel=1e-12)


@pytest.mark.parametrize("J", [1e300, -1e300])
def test_thermodynamics_refuse_an_infinite_coupling(J):
    # beta J = +-inf: the old code returned NaN for -inf; now a clear error
    for f in (exact.ising_log_partition_2d, exact.ising_energy_2d, exact.ising_specific_heat_2d):
        with pytest.raises(ValueError, match="`beta` times `J`"):
            f(4, 1e300, J)
