"""Mutation test of the oracle kit.

Each entry of ``MUTANTS`` is a plain-NumPy "third-party" implementation,
written here the way a user would write it, in a correct and a deliberately
wrong version, together with the ebm_ref.testing check that should tell them
apart. The correct version must pass its check and the wrong one must fail
it; ``test_catch_rate`` reports the fraction of mutants caught (13/13).

Statistical checks use fixed seeds and ``alpha = 1e-4`` (the probability
that a correct implementation fails), so each of them is deterministic; the
wrong versions fail with p-values many orders of magnitude below alpha (the
margin is asserted in ``test_wrong_version_is_caught``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pytest
from scipy.special import expit, logsumexp

from ebm_ref.energies import Ising, StudentT
from ebm_ref.testing import check_objective_grad, check_sampler, compare_energy, compare_objective
from zoo import random_rbm

ALPHA = 1e-4


# =========================================================== third-party code
# --- RBM free energy F(v) = -b_v.v - sum_j softplus(b_h + v W)_j ----------
def rbm_energy(p, x):
    return -x @ p["b_v"] - np.logaddexp(0.0, x @ p["W"] + p["b_h"]).sum(axis=1)


def rbm_energy_unstable_softplus(p, x):
    # log(1 + exp(a)) overflows for a > 709
    return -x @ p["b_v"] - np.log(1.0 + np.exp(x @ p["W"] + p["b_h"])).sum(axis=1)


def rbm_energy_transposed_W(p, x):
    # W used as (H, V): same shape when V == H, wrong numbers
    return -x @ p["b_v"] - np.logaddexp(0.0, x @ p["W"].T + p["b_h"]).sum(axis=1)


def rbm_grad_x(p, x):
    return -p["b_v"] - expit(x @ p["W"] + p["b_h"]) @ p["W"].T


def rbm_grad_params(p, x, w):
    s = expit(x @ p["W"] + p["b_h"])
    return {"W": -(x * w[:, None]).T @ s, "b_v": -(w @ x), "b_h": -(w @ s)}


def rbm_grad_params_sign_flip(p, x, w):
    s = expit(x @ p["W"] + p["b_h"])
    return {"W": -(x * w[:, None]).T @ s, "b_v": -(w @ x), "b_h": +(w @ s)}


# --- Ising E(s) = -1/2 s.J.s - h.s ------------------------------------------
def ising_energy(p, s):
    return -0.5 * np.einsum("ni,ij,nj->n", s, p["J"], s) - s @ p["h"]


def ising_energy_missing_half(p, s):
    return -np.einsum("ni,ij,nj->n", s, p["J"], s) - s @ p["h"]


# --- samplers ----------------------------------------------------------------
def _uniform(rng, shape):
    return rng.random(shape)


def _biased_uniform(rng, shape):
    # a broken generator: u**1.1 is not uniform (P(u' < p) = p**(1/1.1))
    return rng.random(shape) ** 1.1


def rbm_gibbs(p, v, n_steps, rng, uniform=_uniform):
    """Block Gibbs for a binary RBM: h | v, then v | h."""
    W, b_v, b_h = p["W"], p["b_v"], p["b_h"]
    for _ in range(n_steps):
        h = (uniform(rng, (v.shape[0], W.shape[1])) < expit(v @ W + b_h)).astype(float)
        v = (uniform(rng, v.shape) < expit(h @ W.T + b_v)).astype(float)
    return v


def rbm_gibbs_biased_rng(p, v, n_steps, rng):
    return rbm_gibbs(p, v, n_steps, rng, uniform=_biased_uniform)


def ising_sweep(p, s, n_steps, rng, last=None):
    """Sequential heat-bath sweeps for spins: p(s_i = +1 | rest) = sigmoid(2 (J_i.s + h_i))."""
    J, h = p["J"], p["h"]
    d = s.shape[1]
    stop = d if last is None else last
    s = s.copy()
    for _ in range(n_steps):
        for i in range(stop):
            field = s @ J[i] + h[i]
            s[:, i] = np.where(rng.random(s.shape[0]) < expit(2.0 * field), 1.0, -1.0)
    return s


def ising_sweep_off_by_one(p, s, n_steps, rng):
    # off by one: range(d - 1) never updates the last site
    return ising_sweep(p, s, n_steps, rng, last=s.shape[1] - 1)


def lattice_sweep(p, s, n_steps, rng, periodic=True):
    """Heat-bath sweeps on an L x L nearest-neighbour lattice (site (r, c) = r*L + c)."""
    n, d = s.shape
    L = int(round(np.sqrt(d)))
    K = p["J"][0, 1]  # beta * coupling of a bond
    field_h = p["h"][0]
    grid = s.reshape(n, L, L).copy()

    def spin(r, c):
        if periodic:
            return grid[:, r % L, c % L]
        if 0 <= r < L and 0 <= c < L:
            return grid[:, r, c]
        return np.zeros(n)

    for _ in range(n_steps):
        for r in range(L):
            for c in range(L):
                nb = spin(r - 1, c) + spin(r + 1, c) + spin(r, c - 1) + spin(r, c + 1)
                field = K * nb + field_h
                grid[:, r, c] = np.where(rng.random(n) < expit(2.0 * field), 1.0, -1.0)
    return grid.reshape(n, d)


def lattice_sweep_open(p, s, n_steps, rng):
    return lattice_sweep(p, s, n_steps, rng, periodic=False)


def rbm_gwg(p, v, n_steps, rng, correct_reverse=True):
    """Gibbs-with-gradients on the RBM free energy (Grathwohl et al. 2021)."""
    n, d = v.shape
    rows = np.arange(n)

    def log_q(x):
        dtilde = -(2.0 * x - 1.0) * rbm_grad_x(p, x)  # first-order flip energy change
        logits = -0.5 * dtilde
        return logits - logsumexp(logits, axis=1, keepdims=True)

    v = v.copy()
    for _ in range(n_steps):
        lq = log_q(v)
        g = rng.gumbel(size=(n, d))
        i = np.argmax(lq + g, axis=1)
        v_new = v.copy()
        v_new[rows, i] = 1.0 - v_new[rows, i]
        lq_new = log_q(v_new)
        reverse = lq_new[rows, i] if correct_reverse else lq[rows, i]  # bug: q(i|x) for q(i|x')
        log_acc = rbm_energy(p, v) - rbm_energy(p, v_new) + reverse - lq[rows, i]
        accept = np.log(rng.random(n)) < log_acc
        v[accept] = v_new[accept]
    return v


def rbm_gwg_wrong_reverse(p, v, n_steps, rng):
    return rbm_gwg(p, v, n_steps, rng, correct_reverse=False)


# --- Student-t: E(x) = sum_k (df+1)/2 log(1 + z^2/df), z = (x - loc)/scale --
def _t_parts(p):
    return p["loc"], np.exp(p["log_scale"]), np.exp(p["log_df"])


def t_energy(p, x):
    loc, s, nu = _t_parts(p)
    z = (x - loc) / s
    return np.sum(0.5 * (nu + 1.0) * np.log1p(z * z / nu), axis=1)


def t_grad_x(p, x):
    loc, s, nu = _t_parts(p)
    z = (x - loc) / s
    return (nu + 1.0) * z / (nu + z * z) / s


def t_hessian_diag(p, x):
    loc, s, nu = _t_parts(p)
    z = (x - loc) / s
    return (nu + 1.0) * (nu - z * z) / (nu + z * z) ** 2 / s**2


def t_mala(p, x, n_steps, rng, eta=0.8, correct=True):
    """Metropolis-adjusted Langevin on the Student-t energy."""
    x = x.copy()
    e, g = t_energy(p, x), t_grad_x(p, x)
    for _ in range(n_steps):
        y = x - eta * g + np.sqrt(2.0 * eta) * rng.standard_normal(x.shape)
        ey, gy = t_energy(p, y), t_grad_x(p, y)
        log_acc = e - ey
        if correct:
            fwd = -np.sum((y - x + eta * g) ** 2, axis=1) / (4.0 * eta)
            bwd = -np.sum((x - y + eta * gy) ** 2, axis=1) / (4.0 * eta)
            log_acc = log_acc + bwd - fwd
        acc = np.log(rng.random(x.shape[0])) < log_acc
        x[acc], e[acc], g[acc] = y[acc], ey[acc], gy[acc]
    return x


def t_mala_no_correction(p, x, n_steps, rng):
    return t_mala(p, x, n_steps, rng, correct=False)


# --- objectives --------------------------------------------------------------
def t_score_matching(p, x, seed):
    g, h = t_grad_x(p, x), t_hessian_diag(p, x)
    return float(np.mean(0.5 * np.sum(g * g, axis=1) - np.sum(h, axis=1)))


def t_score_matching_no_hessian(p, x, seed):
    g = t_grad_x(p, x)
    return float(np.mean(0.5 * np.sum(g * g, axis=1)))


def rbm_cd1(p, x, seed, reuse_positive_hidden=False):
    """CD-1 for an RBM: loss mean F(x) - mean F(x~), gradient with x~ fixed."""
    rng = np.random.default_rng(seed)
    W, b_v, b_h = p["W"], p["b_v"], p["b_h"]
    n = x.shape[0]
    h0 = (rng.random((n, W.shape[1])) < expit(x @ W + b_h)).astype(float)
    v1 = (rng.random(x.shape) < expit(h0 @ W.T + b_v)).astype(float)
    ph0 = expit(x @ W + b_h)
    ph1 = h0 if reuse_positive_hidden else expit(v1 @ W + b_h)  # bug: positive hidden states
    loss = float(np.mean(rbm_energy(p, x)) - np.mean(rbm_energy(p, v1)))
    grads = {
        "W": -(x.T @ ph0) / n + (v1.T @ ph1) / n,
        "b_v": -x.mean(axis=0) + v1.mean(axis=0),
        "b_h": -ph0.mean(axis=0) + ph1.mean(axis=0),
    }
    return loss, grads


def rbm_cd1_reuse_hidden(p, x, seed):
    return rbm_cd1(p, x, seed, reuse_positive_hidden=True)


ED_T, ED_M, ED_W = 0.1, 4, 1.0


def rbm_ed_bernoulli(p, x, seed, flip=ED_T):
    """Bernoulli energy discrepancy (Schröder et al. 2023), binary states."""
    rng = np.random.default_rng(seed)
    n, d = x.shape
    y = np.where(rng.random((n, d)) < flip, 1.0 - x, x)
    xn = np.where(rng.random((n, ED_M, d)) < flip, 1.0 - y[:, None, :], y[:, None, :])
    a = rbm_energy(p, x)[:, None] - rbm_energy(p, xn.reshape(n * ED_M, d)).reshape(n, ED_M)
    cols = np.concatenate([np.full((n, 1), np.log(ED_W)), a], axis=1)
    return float(np.mean(logsumexp(cols, axis=1) - np.log(ED_M)))


def rbm_ed_bernoulli_wrong_flip(p, x, seed):
    # wrong flip probability: t/2 instead of t
    return rbm_ed_bernoulli(p, x, seed, flip=ED_T / 2)


def ising_ratio_matching(p, s, seed, factor=2.0):
    """Ratio matching for spins: J = mean_n sum_i sigmoid(-delta_i)^2, delta_i = E(s^(i)) - E(s)."""
    n, d = s.shape
    J, h = p["J"], p["h"]
    loss = 0.0
    gJ = np.zeros_like(J)
    gh = np.zeros_like(h)
    e0 = ising_energy(p, s)
    for i in range(d):
        sf = s.copy()
        sf[:, i] = -sf[:, i]
        delta = ising_energy(p, sf) - e0
        sig = expit(-delta)
        loss += float(np.sum(sig**2)) / n
        # d sig^2 / d delta = -2 sig * sig(delta) sig(-delta)... written via sigma'(-delta)
        coef = -factor * sig * expit(delta) * expit(-delta) / n  # bug when factor != 2
        # d delta / dJ = -1/2 (sf sf^T - s s^T), d delta / dh = -(sf - s)
        gJ += -0.5 * (np.einsum("n,ni,nj->ij", coef, sf, sf) - np.einsum("n,ni,nj->ij", coef, s, s))
        gh += -(coef @ (sf - s))
    np.fill_diagonal(gJ, 0.0)
    return loss, {"J": gJ, "h": gh}


def ising_ratio_matching_missing_2(p, s, seed):
    return ising_ratio_matching(p, s, seed, factor=1.0)


# ===================================================================== models
def _rbm(V, H, w_scale, seed):
    return random_rbm(V, H, w_scale, bias_scale=0.5, seed=seed)


def _binary_data(model, n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 2, size=(n, model.n_features)).astype(float)


# ===================================================================== checks
@dataclass
class Mutant:
    name: str
    correct: object
    wrong: object
    check: object  # callable(impl) -> report with .passed


def _energy_check(model, key, **kw):
    return lambda impl: compare_energy(model, **{key: impl}, **kw)


RBM6 = _rbm(6, 3, 1.0, 1)
RBM_SQ = _rbm(4, 4, 1.0, 2)
RBM_BIG = _rbm(6, 3, 50.0, 3)  # |W| ~ 50; at scale 10 pre-activations pass 709
ISING8 = Ising.random(8, 1.0, seed=4)
LATTICE = Ising.lattice(3, 0.4)
RBM8 = _rbm(8, 3, 1.0, 5)
TDIST = StudentT(np.array([0.5, -1.0]), np.log(np.array([1.0, 2.0])), np.log(np.array([5.0, 6.0])))


def _t_data(n, seed):
    rng = np.random.default_rng(seed)
    return np.array([0.0, -0.5]) + 1.5 * rng.standard_normal((n, 2))


MUTANTS = [
    Mutant("sign flip in grad b_h", rbm_grad_params, rbm_grad_params_sign_flip, _energy_check(RBM6, "grad_params")),
    Mutant("transposed W", rbm_energy, rbm_energy_transposed_W, _energy_check(RBM_SQ, "energy")),
    Mutant("missing 1/2 (Ising)", ising_energy, ising_energy_missing_half, _energy_check(ISING8, "energy")),
    Mutant("unstable softplus", rbm_energy, rbm_energy_unstable_softplus, _energy_check(RBM_BIG, "energy")),
    Mutant(
        "off-by-one Gibbs sweep",
        ising_sweep,
        ising_sweep_off_by_one,
        # invariant but not ergodic: only a fixed start reveals it
        lambda impl: check_sampler(impl, ISING8, start=-np.ones(8), n_steps=30, seed=11, alpha=ALPHA),
    ),
    Mutant(
        "MALA without proposal correction",
        t_mala,
        t_mala_no_correction,
        lambda impl: check_sampler(impl, TDIST, n_steps=20, seed=12, alpha=ALPHA),
    ),
    Mutant(
        "GWG with wrong reverse proposal",
        rbm_gwg,
        rbm_gwg_wrong_reverse,
        lambda impl: check_sampler(impl, RBM8, n_steps=20, seed=13, alpha=ALPHA),
    ),
    Mutant(
        "Ising lattice without periodic boundaries",
        lattice_sweep,
        lattice_sweep_open,
        lambda impl: check_sampler(impl, LATTICE, n_steps=10, seed=14, alpha=ALPHA),
    ),
    Mutant(
        "biased RNG",
        rbm_gibbs,
        rbm_gibbs_biased_rng,
        lambda impl: check_sampler(impl, RBM8, n_steps=10, seed=15, alpha=ALPHA),
    ),
    Mutant(
        "CD reusing positive hidden states",
        rbm_cd1,
        rbm_cd1_reuse_hidden,
        lambda impl: compare_objective(
            "CD", impl, RBM6, _binary_data(RBM6, 50, 16), seed=16, n_seeds=100, alpha=ALPHA, objective_kwargs={"k": 1}
        ),
    ),
    Mutant(
        "score matching without the Hessian term",
        t_score_matching,
        t_score_matching_no_hessian,
        lambda impl: compare_objective("ScoreMatching", impl, TDIST, _t_data(40, 17)),
    ),
    Mutant(
        "Bernoulli ED with wrong flip probability",
        rbm_ed_bernoulli,
        rbm_ed_bernoulli_wrong_flip,
        lambda impl: compare_objective(
            "EnergyDiscrepancy",
            impl,
            RBM6,
            _binary_data(RBM6, 400, 18),
            seed=18,
            n_seeds=200,
            alpha=ALPHA,
            objective_kwargs={"perturbation": "bernoulli", "t": ED_T, "m": ED_M, "w": ED_W},
        ),
    ),
    Mutant(
        "ratio-matching gradient missing a factor 2",
        ising_ratio_matching,
        ising_ratio_matching_missing_2,
        lambda impl: check_objective_grad(impl, ISING8, 2.0 * _binary_data(ISING8, 30, 19) - 1.0, seed=19),
    ),
]
IDS = [m.name for m in MUTANTS]


@functools.lru_cache(maxsize=None)
def _report(index, version):
    # each check is deterministic (fixed seeds): run it once per session
    m = MUTANTS[index]
    return m.check(m.correct if version == "correct" else m.wrong)


@pytest.mark.parametrize("index", range(len(MUTANTS)), ids=IDS)
def test_correct_version_passes(index):
    report = _report(index, "correct")
    assert report.passed, str(report)


@pytest.mark.parametrize("index", range(len(MUTANTS)), ids=IDS)
def test_wrong_version_is_caught(index):
    report = _report(index, "wrong")
    assert not report.passed, f"mutant not caught: {MUTANTS[index].name}\n{report}"


def test_catch_rate(capsys):
    caught = [not _report(i, "wrong").passed for i in range(len(MUTANTS))]
    rate = f"{sum(caught)}/{len(MUTANTS)}"
    with capsys.disabled():
        print(f"\noracle mutation catch rate: {rate}")
        for m, c in zip(MUTANTS, caught):
            print(f"  {'caught' if c else 'MISSED'}: {m.name}")
    assert len(MUTANTS) >= 12
    assert all(caught), rate


NAMED = {
    "sign flip in grad b_h": {"sign"},
    "transposed W": {"transpose"},
    "unstable softplus": {"nonfinite", "saturation"},
    "off-by-one Gibbs sweep": {"no_mixing"},
    "ratio-matching gradient missing a factor 2": {"factor"},
}


@pytest.mark.parametrize("name", list(NAMED))
def test_mutant_is_named(name):
    # the check names the bug (docs/checking.md): the suspects that fit the numbers
    index = IDS.index(name)
    report = _report(index, "wrong")
    assert NAMED[name] <= set(report.suspects), f"{name}: {report.suspects}\n{report}"
    assert report.diagnosis
    assert _report(index, "correct").suspects in ((), ("softplus_threshold",))


def test_ratio_matching_reference_agrees_with_ebm_ref():
    # the correct third-party loss is the same formula as ebm_ref's RatioMatching
    x = 2.0 * _binary_data(ISING8, 30, 19) - 1.0
    compare_objective("RatioMatching", ising_ratio_matching, ISING8, x).assert_ok()
