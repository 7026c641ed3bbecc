"""Diagnoses: a failing check names the usual suspect that fits the numbers.

Planted bugs in plain NumPy third-party code (float64) must fail and carry
the right code in ``suspects`` (and the factor / constant in ``diagnosis``);
reports must be readable (plain Python numbers, the few worst entries, a
shape error alone). Sampler checks at ``alpha = 1e-4`` with fixed seeds:
the correct samplers below fail with probability at most 1e-4 each.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

from ebm_ref.energies import RBM, Ising
from ebm_ref.testing import check_grad, check_objective_grad, check_sampler, compare_energy, compare_objective
from ebm_ref.testing._diagnose import SUSPECTS

ALPHA = 1e-4
RNG = np.random.default_rng(7)
SQ = RBM(RNG.standard_normal((4, 4)), RNG.standard_normal(4), RNG.standard_normal(4))
RBM8 = RBM(RNG.standard_normal((8, 3)), RNG.standard_normal(8), RNG.standard_normal(3))


def energy(p, x):
    return -x @ p["b_v"] - np.logaddexp(0.0, x @ p["W"] + p["b_h"]).sum(axis=1)


def grad_x(p, x):
    return -p["b_v"] - expit(x @ p["W"] + p["b_h"]) @ p["W"].T


def grad_params(p, x, w):
    s = expit(x @ p["W"] + p["b_h"])
    return {"W": -(x * w[:, None]).T @ s, "b_v": -(w @ x), "b_h": -(w @ s)}


ENERGY_BUGS = {
    "factor": ("energy", lambda p, x: 1.5 * energy(p, x), "factor", "1.5"),
    "offset": ("energy", lambda p, x: energy(p, x) - 2.25, "offset", "-2.25"),
    "offset per model (log Z)": ("energy", lambda p, x: energy(p, x) + np.sum(p["b_v"]), "offset", "depends"),
    "sign of grad_x": ("grad_x", lambda p, x: -grad_x(p, x), "sign", "sign"),
    "transposed W in energy": (
        "energy", lambda p, x: -x @ p["b_v"] - np.logaddexp(0.0, x @ p["W"].T + p["b_h"]).sum(axis=1), "transpose", "transposed",
    ),
    "transposed W gradient": ("grad_params", lambda p, x, w: {**grad_params(p, x, w), "W": grad_params(p, x, w)["W"].T}, "transpose", "transpose"),
    "sign of grad b_h": ("grad_params", lambda p, x, w: {**grad_params(p, x, w), "b_h": -grad_params(p, x, w)["b_h"]}, "sign", "'b_h'"),
    "weights ignored": ("grad_params", lambda p, x, w: grad_params(p, x, np.ones_like(w)), "weights", "unweighted"),
    "plain mean instead of weights": ("grad_params", lambda p, x, w: grad_params(p, x, np.full_like(w, 1.0 / w.size)), "weights", "mean"),
    "unstable softplus": (
        "energy", lambda p, x: -x @ p["b_v"] - np.log(1.0 + np.exp(x @ p["W"] + p["b_h"])).sum(axis=1), "saturation", "largest",
    ),
}
BIG = RBM(50.0 * RNG.standard_normal((4, 4)), RNG.standard_normal(4), RNG.standard_normal(4))  # |W| ~ 50


@pytest.mark.parametrize("case", list(ENERGY_BUGS))
def test_energy_bug_is_named(case):
    prim, fn, code, text = ENERGY_BUGS[case]
    # with |W| ~ 50, pre-activations pass 709 (exp overflows) only at scale 10
    rep = compare_energy(BIG if code == "saturation" else SQ, **{prim: fn})
    r = rep.results[prim]
    assert not rep.passed, str(rep)
    assert code in r.suspects, str(rep)
    assert text in r.diagnosis, r.diagnosis
    assert set(r.suspects) <= set(SUSPECTS)
    assert rep.suspects == r.suspects and prim in rep.diagnosis


def test_correct_code_has_no_suspects():
    rep = compare_energy(SQ, energy=energy, grad_x=grad_x, grad_params=grad_params)
    assert rep.passed and rep.suspects == () and rep.diagnosis is None


def test_no_suspect_fits_says_so():
    def noisy(p, x):
        e = energy(p, x)
        return e + 1e-3 * np.sin(7.0 * np.arange(e.size))

    r = compare_energy(SQ, energy=noisy).results["energy"]
    assert r.suspects == () and "none of the usual suspects" in r.diagnosis


def test_report_is_readable():
    rep = compare_energy(RBM8, grad_params=lambda p, x, w: {**grad_params(p, x, w), "b_h": -grad_params(p, x, w)["b_h"]})
    text = str(rep)
    r = rep.results["grad_params"]
    assert "np." not in text and "np." not in repr(r.where)
    assert all(type(i) is int for i in r.where["index"]) and type(r.where["batch"]) is int
    # the worst entries, not the whole batch of 16 inputs
    assert "input x" not in text and len(r.worst_entries) == 3
    assert len(text.splitlines()) < 12


def test_shape_error_first_and_alone():
    rep = compare_energy(SQ, energy=lambda p, x: 1.5 * energy(p, x)[:-1])
    r = rep.results["energy"]
    assert r.suspects == ("shape",)
    line = r.describe(rep.rtol)
    assert "shape" in line and "\n" not in line


# -------------------------------------------------------------- gradients
def test_check_grad_suspects():
    A = np.array([[2.0, 1.0, 0.0], [0.5, 3.0, -1.0], [0.0, 2.0, 1.0]])
    x = np.array([[0.3, -0.2, 0.5], [1.0, 0.1, -0.4], [0.2, 0.2, 0.9]])

    def f(M):
        return float(np.sum(A * M) + 0.5 * np.sum(M * M))

    def g(M):
        return A + M

    assert check_grad(f, g, x).passed
    cases = {"factor": lambda M: 3.0 * g(M), "sign": lambda M: -g(M), "transpose": lambda M: g(M).T, "offset": lambda M: g(M) + 0.75}
    for code, bad in cases.items():
        res = check_grad(f, bad, x)
        assert not res.passed and code in res.suspects, (code, str(res))


def _ising_nll_like(p, s, seed, scale=1.0, sign_h=1.0):
    # mean_n -(1/2 s J s + h s): linear in the parameters, exact gradient
    n = s.shape[0]
    gJ = -0.5 * s.T @ s / n
    np.fill_diagonal(gJ, 0.0)
    loss = float(np.mean(-0.5 * np.einsum("ni,ij,nj->n", s, p["J"], s) - s @ p["h"]))
    return loss, {"J": scale * gJ, "h": sign_h * scale * -s.mean(axis=0)}


ISING = Ising.random(5, 1.0, seed=3)
S = 2.0 * np.random.default_rng(4).integers(0, 2, size=(12, 5)) - 1.0


def test_check_objective_grad_names_missing_one_over_n_and_sign():
    assert check_objective_grad(_ising_nll_like, ISING, S).passed
    res = check_objective_grad(lambda p, s, seed: _ising_nll_like(p, s, seed, scale=12.0), ISING, S)
    assert not res.passed and {"factor", "weights"} <= set(res.suspects) and "n = 12" in res.diagnosis
    res = check_objective_grad(lambda p, s, seed: _ising_nll_like(p, s, seed, sign_h=-1.0), ISING, S)
    assert not res.passed and "sign" in res.suspects and "'h'" in res.diagnosis


def test_compare_objective_offset_factor_and_weights():
    from ebm_ref import objectives

    x = np.random.default_rng(5).integers(0, 2, size=(10, 8)).astype(float)

    def ours(p, x, seed):
        loss, g = objectives.ExactMLE().value_and_grad(RBM(**p), x, seed=seed)
        return float(loss), {k: np.asarray(v) for k, v in g.items()}

    assert compare_objective("ExactMLE", ours, RBM8, x).passed
    off = compare_objective("ExactMLE", lambda p, x, s: (ours(p, x, s)[0] + 3.0, ours(p, x, s)[1]), RBM8, x)
    assert not off.passed and off.suspects == ("offset",) and "3" in off.diagnosis
    summed = compare_objective(
        "ExactMLE", lambda p, x, s: (10.0 * ours(p, x, s)[0], {k: 10.0 * v for k, v in ours(p, x, s)[1].items()}), RBM8, x
    )
    assert not summed.passed and {"factor", "weights"} <= set(summed.suspects)
    flipped = compare_objective("ExactMLE", lambda p, x, s: (-ours(p, x, s)[0], {k: -v for k, v in ours(p, x, s)[1].items()}), RBM8, x)
    assert not flipped.passed and "sign" in flipped.suspects


# ---------------------------------------------------------------- samplers
def gibbs(p, v, n_steps, rng):
    for _ in range(n_steps):
        h = (rng.random((v.shape[0], p["W"].shape[1])) < expit(v @ p["W"] + p["b_h"])).astype(float)
        v = (rng.random(v.shape) < expit(h @ p["W"].T + p["b_v"])).astype(float)
    return v


def gibbs_stale_hidden(p, v, n_steps, rng):
    # bug: the hidden sample of the first step is reused by every later step
    h = (rng.random((v.shape[0], p["W"].shape[1])) < expit(v @ p["W"] + p["b_h"])).astype(float)
    for _ in range(n_steps):
        v = (rng.random(v.shape) < expit(h @ p["W"].T + p["b_v"])).astype(float)
    return v


def gibbs_biased(p, v, n_steps, rng):
    # bug: b_v dropped from the visible conditional
    for _ in range(n_steps):
        h = (rng.random((v.shape[0], p["W"].shape[1])) < expit(v @ p["W"] + p["b_h"])).astype(float)
        v = (rng.random(v.shape) < expit(h @ p["W"].T)).astype(float)
    return v


def test_stale_hidden_sample_passes_exact_start_but_is_caught_by_default():
    # exact samples stay exact under the stale kernel: the exact start alone cannot see it
    assert check_sampler(gibbs_stale_hidden, RBM8, seed=21, start="exact", alpha=ALPHA).passed
    res = check_sampler(gibbs_stale_hidden, RBM8, seed=21, alpha=ALPHA)
    assert not res.passed and res.caught_by == ("fixed",) and res.suspects == ("no_mixing",)
    assert "fixed start" in str(res) and "marginal" in str(res)


def test_correct_gibbs_passes_both_starts_with_marginals():
    res = check_sampler(gibbs, RBM8, seed=22, alpha=ALPHA)
    assert res.passed, str(res)
    assert set(res.starts) == {"exact", "fixed"} and res.caught_by == ()
    for sub in res.starts.values():
        assert sub.alpha == ALPHA / 2 and len(sub.details["marginals"]) == 8
        assert all(abs(m["z"]) < 5.0 for m in sub.details["marginals"])  # |z| > 5: probability 6e-7 per unit


def test_biased_sampler_caught_from_both_starts_with_the_unit_named():
    res = check_sampler(gibbs_biased, RBM8, seed=23, alpha=ALPHA)
    assert not res.passed and res.caught_by == ("exact", "fixed")
    assert "no_mixing" not in res.suspects and "unit" in res.diagnosis
