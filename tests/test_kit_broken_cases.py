"""Broken third-party code built from non-finite and degenerate values: every check must reject it.

The companion of ``test_kit_failclosed.py``: there each kind of bad value
meets each check once; here the bad values are *degenerate* as well as
non-finite -- a gradient of zeros, of 1e308 or of subnormals, a loss that
is constant or NaN for one seed only, a sampler that never moves, returns
one state for every chain, or values at the edge of the float range. Each
case is deterministic (seeds fixed) and must fail: ``report.passed`` is
False, or ``ValueError``/``TypeError`` naming the argument where the
documentation says so. A correct implementation is run beside each family
as a positive control, so a check that rejects everything would fail too.

Thresholds: ``check_sampler`` runs at its default ``alpha = 1e-4`` (an exact
sampler fails with probability 1e-4 per case); the broken samplers are
wrong by a total-variation distance of at least 0.3, which 400 chains
detect with probability 1 - O(1e-30). ``check_grad`` and
``check_objective_grad`` are deterministic.
"""

from __future__ import annotations


import numpy as np
import pytest
from scipy.special import expit

from ebm_ref.energies import RBM, Ising, StudentT
from ebm_ref.testing import check_grad, check_objective_grad, check_sampler, compare_energy, compare_objective

RNG = np.random.default_rng(7)
X = np.array([[0.4, -1.1, 0.8, 2.0]])
RBM_M = RBM(0.5 * RNG.standard_normal((4, 2)), 0.3 * RNG.standard_normal(4), 0.3 * RNG.standard_normal(2))
ISING = Ising.random(4, 0.5, seed=3)
T = StudentT(np.zeros(2), np.zeros(2), np.log(np.array([6.0, 8.0])))
S = 2.0 * np.random.default_rng(4).integers(0, 2, size=(12, 4)) - 1.0


def f_cubic(x):
    return float(np.sum(x**3) + np.sum(x[:, :-1] * x[:, 1:]))


def g_cubic(x):
    g = 3.0 * x**2
    g[:, :-1] += x[:, 1:]
    g[:, 1:] += x[:, :-1]
    return g


# ------------------------------------------------------------ broken gradients
def _with(value, i, g):
    def grad(x):
        out = g(x).astype(np.float64)
        out.flat[i] = value
        return out

    return grad


GRAD_CASES = {
    "zero gradient": (f_cubic, lambda x: np.zeros_like(x)),
    "gradient 1e308 everywhere": (f_cubic, lambda x: np.full_like(x, 1e308)),
    "gradient -1e308 at one entry": (f_cubic, _with(-1e308, 2, g_cubic)),
    "subnormal gradient": (f_cubic, lambda x: np.full_like(x, 5e-324)),
    "negative zero for a non-zero entry": (f_cubic, _with(-0.0, 0, g_cubic)),
    "nan at the last entry": (f_cubic, _with(np.nan, 3, g_cubic)),
    "-inf at the first entry": (f_cubic, _with(-np.inf, 0, g_cubic)),
    "f overflows to inf": (lambda x: f_cubic(x) * 1e308, g_cubic),
    "f returns -inf": (lambda x: -np.inf, g_cubic),
    "f constant": (lambda x: 1.0, g_cubic),
    "f nan for negative steps only": (lambda x: float("nan") if np.any(x < X - 1e-12) else f_cubic(x), g_cubic),
    "gradient of an empty array": (f_cubic, lambda x: np.zeros((0,))),
    "gradient with an extra axis": (f_cubic, lambda x: g_cubic(x)[None]),
}


@pytest.mark.parametrize("case", list(GRAD_CASES))
def test_broken_gradient_fails(case):
    f, g = GRAD_CASES[case]
    res = check_grad(f, g, X)
    assert not res.passed, str(res)
    assert res.diagnosis


def test_correct_gradient_passes():
    assert check_grad(f_cubic, g_cubic, X).passed


# ----------------------------------------------------------- broken objectives
def _ising_loss(p, s, seed):
    n = s.shape[0]
    gJ = 0.5 * s.T @ s / n
    np.fill_diagonal(gJ, 0.0)
    loss = float(np.mean(0.5 * np.einsum("ni,ij,nj->n", s, p["J"], s) + s @ p["h"]))
    return loss, {"J": gJ, "h": s.mean(axis=0)}


def _objective(kind):
    def fn(p, s, seed):
        loss, g = _ising_loss(p, s, seed)
        if kind == "loss constant":
            loss = 0.5
        elif kind == "grads all zero":
            g = {k: np.zeros_like(v) for k, v in g.items()}
        elif kind == "grad J 1e308":
            g["J"] = np.full_like(g["J"], 1e308)
        elif kind == "loss +inf":
            loss = float("inf")
        elif kind == "loss -inf when J moves":
            if not np.array_equal(p["J"], ISING.params["J"]):
                loss = -float("inf")
        elif kind == "nan in one gradient entry of J":
            g["J"] = g["J"].copy()
            g["J"][0, 1] = np.nan
        elif kind == "grads empty dict":
            g = {}
        elif kind == "grad h empty":
            g["h"] = np.zeros(0)
        elif kind == "loss None":
            loss = None
        elif kind == "loss an array of two":
            loss = np.array([loss, loss])
        elif kind == "loss 1e308 times the true loss":
            loss = loss * 1e308
        return loss, g

    return fn


OBJECTIVE_KINDS = [
    "loss constant",
    "grads all zero",
    "grad J 1e308",
    "loss +inf",
    "loss -inf when J moves",
    "nan in one gradient entry of J",
    "grads empty dict",
    "grad h empty",
    "loss None",
    "loss an array of two",
    "loss 1e308 times the true loss",
]


@pytest.mark.parametrize("kind", OBJECTIVE_KINDS)
def test_broken_objective_fails(kind):
    res = check_objective_grad(_objective(kind), ISING, S)
    assert not res.passed, str(res)


def test_correct_objective_passes():
    assert check_objective_grad(_objective("none"), ISING, S).passed


# ------------------------------------------------------------- broken samplers
def _gibbs(p, v, n_steps, rng):
    for _ in range(n_steps):
        h = (rng.random((v.shape[0], p["W"].shape[1])) < expit(v @ p["W"] + p["b_h"])).astype(float)
        v = (rng.random(v.shape) < expit(h @ p["W"].T + p["b_v"])).astype(float)
    return v


SAMPLER_CASES = {
    # binary (RBM, 4 visible units)
    "never moves": (lambda p, x, n, r: x, RBM_M),
    "every chain at all ones": (lambda p, x, n, r: np.ones_like(x), RBM_M),
    "every chain at all zeros": (lambda p, x, n, r: np.zeros_like(x), RBM_M),
    "one half everywhere": (lambda p, x, n, r: np.full_like(x, 0.5), RBM_M),
    "states 0 and 2": (lambda p, x, n, r: 2.0 * _gibbs(p, x, n, r), RBM_M),
    "inf in one chain": (lambda p, x, n, r: np.where(np.arange(x.shape[0])[:, None] == 7, np.inf, _gibbs(p, x, n, r)), RBM_M),
    "empty output": (lambda p, x, n, r: np.zeros((0, x.shape[1])), RBM_M),
    "transposed output": (lambda p, x, n, r: _gibbs(p, x, n, r).T, RBM_M),
    "uniform states (ignores the model)": (lambda p, x, n, r: (r.random(x.shape) < 0.5).astype(float), RBM_M),
    # continuous (Student-t, 2 coordinates)
    "continuous never moves from the fixed start": (lambda p, x, n, r: x, T),
    "continuous all chains at 0": (lambda p, x, n, r: np.zeros_like(x), T),
    "continuous 1e308": (lambda p, x, n, r: np.full_like(x, 1e308), T),
    "continuous nan in one coordinate": (lambda p, x, n, r: np.where(np.arange(2) == 1, np.nan, x), T),
    "continuous scale doubled": (lambda p, x, n, r: 2.0 * x, T),
}


@pytest.mark.parametrize("case", list(SAMPLER_CASES))
def test_broken_sampler_fails(case):
    fn, model = SAMPLER_CASES[case]
    res = check_sampler(fn, model, n_chains=400, n_steps=2, seed=0)
    assert not res.passed, str(res)
    assert res.message or res.diagnosis


def test_correct_sampler_passes():
    assert check_sampler(_gibbs, RBM_M, n_chains=400, n_steps=2, seed=0).passed


# --------------------------------------------------- complex fails every check
def _rbm_energy(p, x):
    return -x @ p["b_v"] - np.logaddexp(0.0, x @ p["W"] + p["b_h"]).sum(axis=1)


def test_complex_results_fail_every_check():
    """A complex value (even with zero imaginary part) is never accepted as a real result."""
    rep = compare_energy(RBM_M, energy=lambda p, x: _rbm_energy(p, x).astype(np.complex128), n_batches=1)
    assert not rep.passed and "complex" in rep.suspects, str(rep)

    res = check_grad(f_cubic, lambda x: g_cubic(x).astype(np.complex128), X)
    assert not res.passed and "complex" in res.suspects, str(res)

    def complex_grads(p, s, seed):
        loss, g = _ising_loss(p, s, seed)
        return complex(loss, 0.0), g

    res = check_objective_grad(complex_grads, ISING, S)
    assert not res.passed and "complex" in res.suspects, str(res)

    res = check_sampler(lambda p, x, n, r: _gibbs(p, x, n, r).astype(np.complex128), RBM_M, n_chains=400, n_steps=2)
    assert not res.passed and "complex" in res.suspects, str(res)


def test_non_finite_reference_fails_closed(monkeypatch):
    """A reference value that is not finite (ebm_ref's side) fails the comparison; it is never skipped."""
    true_energy = RBM._energy

    def energy_with_nan(self, x):
        e = true_energy(self, x)
        e[0] = np.nan
        return e

    monkeypatch.setattr(RBM, "_energy", energy_with_nan)
    rep = compare_energy(RBM_M, energy=lambda p, x: np.zeros(x.shape[0]), n_batches=1)
    assert not rep.passed and "nonfinite" in rep.suspects, str(rep)
    assert "reference" in rep.results["energy"].note


def test_non_finite_reference_objective_fails_closed(monkeypatch):
    """compare_objective: ebm_ref's own loss not finite -> a failed report saying so, never a pass."""
    from ebm_ref import objectives

    monkeypatch.setattr(objectives.ExactMLE, "_value_and_grad", lambda self, model, x, seed: (float("nan"), {k: np.zeros_like(v) for k, v in model.params.items()}))
    res = compare_objective("ExactMLE", _ising_loss, ISING, S)
    assert not res.passed and res.suspects == ("nonfinite",), str(res)
    assert "reference" in res.note
