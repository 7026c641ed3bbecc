"""The kit fails closed: broken third-party results and broken options are never a pass.

Each case below is a gradient, objective, energy or sampler that returns a
non-finite, complex, empty or mis-shaped value somewhere (or an invalid
option); every one must fail (or raise ``ValueError``/``TypeError`` naming
the argument) and say where. All checks are deterministic.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

from ebm_ref.energies import RBM, Ising, StudentT
from ebm_ref.testing import check_grad, check_objective_grad, check_sampler, compare_energy, compare_objective

RNG = np.random.default_rng(0)
RBM_M = RBM(RNG.standard_normal((4, 3)), RNG.standard_normal(4), RNG.standard_normal(3))
ISING = Ising.random(5, 1.0, seed=1)
T = StudentT(np.zeros(2), np.zeros(2), np.log(np.array([5.0, 6.0])))
X = np.array([[0.3, -1.2, 0.7]])


def f_sq(x):
    return float(np.sum(x * x))


def g_sq(x):
    return 2.0 * x


def _nan_at(value, i=0):
    v = np.array(value, dtype=np.float64)
    v.flat[i] = np.nan
    return v


# ------------------------------------------------------------------ check_grad
GRAD_CASES = {
    "nan in analytic gradient": (f_sq, lambda x: _nan_at(2.0 * x)),
    "inf in analytic gradient": (f_sq, lambda x: np.where(np.arange(3) == 1, np.inf, 2.0 * x)),
    "f nan at x": (lambda x: float("nan"), g_sq),
    "f inf at x": (lambda x: float("inf"), g_sq),
    "f nan for one perturbed entry": (lambda x: float("nan") if x[0, 1] > X[0, 1] else f_sq(x), g_sq),
    "f nan along a direction only": (lambda x: float("nan") if np.count_nonzero(x != X) > 1 else f_sq(x), g_sq),
    "complex f": (lambda x: complex(f_sq(x), 0.0), g_sq),
    "complex f with imaginary part": (lambda x: np.complex128(f_sq(x) + 1j), g_sq),
    "complex gradient": (f_sq, lambda x: (2.0 * x).astype(np.complex128)),
    "gradient of the wrong shape": (f_sq, lambda x: (2.0 * x).ravel()),
    "gradient None": (f_sq, lambda x: None),
    "f returns a vector": (lambda x: x.ravel(), g_sq),
    "f returns a string": (lambda x: "1.0", g_sq),
}


@pytest.mark.parametrize("case", list(GRAD_CASES))
def test_check_grad_broken_results_fail(case):
    f, g = GRAD_CASES[case]
    res = check_grad(f, g, X)
    assert not res.passed, str(res)
    assert res.suspects and set(res.suspects) <= {"nonfinite", "complex", "shape"}
    assert res.diagnosis and str(res)


def test_check_grad_dict_key_errors_fail():
    x = {"a": np.ones(2), "b": np.ones(3)}
    res = check_grad(lambda p: float(p["a"].sum() + p["b"].sum()), lambda p: {"a": np.ones(2)}, x)
    assert not res.passed and res.suspects == ("shape",) and "keys" in res.note


BAD_OPTIONS = [
    ({"rtol": float("nan")}, ValueError, "`rtol`"),
    ({"rtol": 0.0}, ValueError, "`rtol`"),
    ({"rtol": -1e-6}, ValueError, "`rtol`"),
    ({"eps": 0.0}, ValueError, "`eps`"),
    ({"eps": -1e-6}, ValueError, "`eps`"),
    ({"eps": float("inf")}, ValueError, "`eps`"),
    ({"n_directions": -1}, ValueError, "`n_directions`"),
    ({"n_directions": 1.5}, TypeError, "`n_directions`"),
    ({"max_entries": 0}, ValueError, "`max_entries`"),
    ({"rtol": "1e-6"}, TypeError, "`rtol`"),
]


@pytest.mark.parametrize("kw,exc,match", BAD_OPTIONS)
def test_check_grad_bad_options_raise(kw, exc, match):
    with pytest.raises(exc, match=match):
        check_grad(f_sq, g_sq, X, **kw)


@pytest.mark.parametrize(
    "x,match",
    [(np.array([[np.nan, 1.0]]), "finite"), (np.zeros((0, 3)), "at least one"), (np.array([1 + 2j]), "real"), ({}, "at least one")],
)
def test_check_grad_bad_points_raise(x, match):
    with pytest.raises((ValueError, TypeError), match=match):
        check_grad(f_sq, g_sq, x)


# ----------------------------------------------------------- objective checks
def _ising_loss(p, s, seed):
    # a linear loss: mean_n -E(s_n), exact gradient
    n = s.shape[0]
    gJ = 0.5 * s.T @ s / n
    np.fill_diagonal(gJ, 0.0)
    loss = float(np.mean(0.5 * np.einsum("ni,ij,nj->n", s, p["J"], s) + s @ p["h"]))
    return loss, {"J": gJ, "h": s.mean(axis=0)}


S = 2.0 * np.random.default_rng(2).integers(0, 2, size=(10, 5)) - 1.0


def _broken(kind):
    def fn(p, s, seed):
        loss, g = _ising_loss(p, s, seed)
        if kind == "nan loss":
            loss = float("nan")
        elif kind == "inf grad":
            g["h"] = g["h"].copy()
            g["h"][2] = np.inf
        elif kind == "complex loss":
            loss = complex(loss, 0.0)
        elif kind == "complex grad":
            g["J"] = g["J"].astype(np.complex128)
        elif kind == "missing key":
            del g["h"]
        elif kind == "wrong shape":
            g["J"] = g["J"][:, :4]
        elif kind == "nan loss when h moves":
            if p["h"][0] != ISING.params["h"][0]:
                loss = float("nan")
        elif kind == "three outputs":
            return loss, g, None
        return loss, g

    return fn


OBJ_KINDS = ["nan loss", "inf grad", "complex loss", "complex grad", "missing key", "wrong shape", "nan loss when h moves", "three outputs"]


@pytest.mark.parametrize("kind", OBJ_KINDS)
def test_check_objective_grad_broken_results_fail(kind):
    res = check_objective_grad(_broken(kind), ISING, S)
    assert not res.passed, str(res)
    assert set(res.suspects) & {"nonfinite", "complex", "shape"}


@pytest.mark.parametrize("kind", OBJ_KINDS[:6])
def test_compare_objective_broken_results_fail(kind):
    res = compare_objective("ExactMLE", _broken(kind), ISING, S)
    assert not res.passed, str(res)
    assert set(res.suspects) & {"nonfinite", "complex", "shape"}
    assert res.note


def test_objective_checks_refuse_bad_options_and_data():
    with pytest.raises(ValueError, match="`x`"):
        check_objective_grad(_ising_loss, ISING, np.full((2, 5), np.nan))
    with pytest.raises(ValueError, match="`x`"):
        check_objective_grad(_ising_loss, ISING, np.zeros((0, 5)))
    with pytest.raises(ValueError, match="`eps`"):
        check_objective_grad(_ising_loss, ISING, S, eps=0.0)
    with pytest.raises(ValueError, match="`rtol`"):
        check_objective_grad(_ising_loss, ISING, S, rtol=float("nan"))
    with pytest.raises(ValueError, match="`n_directions`"):
        check_objective_grad(_ising_loss, ISING, S, n_directions=-1)
    with pytest.raises(ValueError, match="`alpha`"):
        compare_objective("ExactMLE", _ising_loss, ISING, S, alpha=1.0)
    with pytest.raises(ValueError, match="`rtol`"):
        compare_objective("ExactMLE", _ising_loss, ISING, S, rtol=-1.0)
    with pytest.raises(ValueError, match="`n_seeds`"):
        compare_objective("ExactMLE", _ising_loss, ISING, S, n_seeds=1)


# -------------------------------------------------------------- compare_energy
def _rbm_energy(p, x):
    return -x @ p["b_v"] - np.logaddexp(0.0, x @ p["W"] + p["b_h"]).sum(axis=1)


ENERGY_CASES = {
    "nan in one batch": (lambda p, x: _nan_at(_rbm_energy(p, x), 3), "nonfinite"),
    "complex energy": (lambda p, x: _rbm_energy(p, x).astype(np.complex128), "complex"),
    "energy of shape (n, 1)": (lambda p, x: _rbm_energy(p, x)[:, None], "shape"),
    "energy None": (lambda p, x: None, "shape"),
    "energy empty": (lambda p, x: np.zeros(0), "shape"),
}


@pytest.mark.parametrize("case", list(ENERGY_CASES))
def test_compare_energy_broken_results_fail(case):
    fn, code = ENERGY_CASES[case]
    rep = compare_energy(RBM_M, energy=fn, n_batches=1)
    assert not rep.passed and code in rep.suspects, str(rep)


def test_compare_energy_complex_grad_params_and_shape_first():
    def gp(p, x, w):
        s = expit(x @ p["W"] + p["b_h"])
        return {"W": (-(x * w[:, None]).T @ s).astype(np.complex64), "b_v": -(w @ x), "b_h": -(w @ s)[:2]}

    rep = compare_energy(RBM_M, grad_params=gp, n_batches=1)
    r = rep.results["grad_params"]
    # the shape error of b_h is reported first and alone, before the complex W
    assert not rep.passed and r.suspects == ("shape",) and "b_h" in r.note
    assert str(rep).count("\n") <= 4


@pytest.mark.parametrize(
    "kw,exc",
    [
        ({"rtol": float("nan")}, ValueError),
        ({"rtol": 0}, ValueError),
        ({"atol": -1.0}, ValueError),
        ({"n_batches": 0}, ValueError),
        ({"batch_size": 0}, ValueError),
        ({"scales": (1.0, float("nan"))}, ValueError),
        ({"scales": (0.0,)}, ValueError),
        ({"jitter": float("inf")}, ValueError),
        ({"n_batches": 2.0}, TypeError),
    ],
)
def test_compare_energy_bad_options_raise(kw, exc):
    with pytest.raises(exc, match="`" + next(iter(kw)) + "`"):
        compare_energy(RBM_M, energy=_rbm_energy, **kw)


# -------------------------------------------------------------- check_sampler
def _gibbs(p, v, n_steps, rng):
    for _ in range(n_steps):
        h = (rng.random((v.shape[0], p["W"].shape[1])) < expit(v @ p["W"] + p["b_h"])).astype(float)
        v = (rng.random(v.shape) < expit(h @ p["W"].T + p["b_v"])).astype(float)
    return v


SAMPLER_CASES = {
    "nan state": (lambda p, x, n, r: _nan_at(_gibbs(p, x, n, r), 5), RBM_M, "nonfinite"),
    "complex states": (lambda p, x, n, r: _gibbs(p, x, n, r).astype(np.complex128), RBM_M, "complex"),
    "spins for a binary model": (lambda p, x, n, r: 2.0 * _gibbs(p, x, n, r) - 1.0, RBM_M, "domain"),
    "one chain missing": (lambda p, x, n, r: _gibbs(p, x, n, r)[1:], RBM_M, "shape"),
    "None": (lambda p, x, n, r: None, RBM_M, "shape"),
    "inf continuous": (lambda p, x, n, r: np.full(x.shape, np.inf), T, "nonfinite"),
}


@pytest.mark.parametrize("case", list(SAMPLER_CASES))
def test_check_sampler_broken_outputs_fail(case):
    fn, model, code = SAMPLER_CASES[case]
    res = check_sampler(fn, model, n_chains=500, n_steps=2, seed=0)
    assert not res.passed and code in res.suspects, str(res)
    assert res.message


@pytest.mark.parametrize(
    "kw,exc,match",
    [
        ({"alpha": float("nan")}, ValueError, "`alpha`"),
        ({"alpha": 1.0}, ValueError, "`alpha`"),
        ({"n_chains": 1}, ValueError, "`n_chains`"),
        ({"n_steps": -1}, ValueError, "`n_steps`"),
        ({"n_steps_fixed": -1}, ValueError, "`n_steps_fixed`"),
        ({"start": np.array([0.0, np.nan, 1.0, 0.0])}, ValueError, "`start`"),
        ({"start": "random"}, ValueError, "`start`"),
    ],
)
def test_check_sampler_bad_options_raise(kw, exc, match):
    with pytest.raises(exc, match=match):
        check_sampler(_gibbs, RBM_M, **{"n_chains": 100, **kw})
