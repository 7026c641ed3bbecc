"""Suspects added for planted bugs that no single factor explains (docs/checking.md, "One parameter transformed").

Each code is tested on a planted case, where it must be named with the right parameter, and on correct code and on
bugs of another kind, where it must not be. compare_energy is deterministic (seeded), so these tests have no false
failures; the sampler tests run check_sampler at alpha = 1e-4 (its false-failure rate, split between the two starts).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

from ebm_ref.energies import RBM, Ising
from ebm_ref.testing import check_sampler, compare_energy
from ebm_ref.testing._diagnose import SUSPECTS

ALPHA = 1e-4
RNG = np.random.default_rng(11)
RBM6 = RBM(RNG.standard_normal((6, 3)), RNG.standard_normal(6), RNG.standard_normal(3))
RBM8 = RBM(RNG.standard_normal((8, 3)), RNG.standard_normal(8), RNG.standard_normal(3))
_J = RNG.standard_normal((5, 5))
ISING5 = Ising(0.5 * (_J + _J.T) * (1.0 - np.eye(5)), RNG.standard_normal(5))


# third-party style RBM free energy F(v) = -b_v.v - sum softplus(b_h + v W), with switches for planted bugs
def rbm_energy(p, x, sb=1.0, kv=1.0):
    return -kv * (x @ p["b_v"]) - np.logaddexp(0.0, x @ p["W"] + sb * p["b_h"]).sum(axis=1)


def rbm_grad_x(p, x, sb=1.0, kv=1.0):
    return -kv * p["b_v"] - expit(x @ p["W"] + sb * p["b_h"]) @ p["W"].T


def rbm_grad_params(p, x, w, sb=1.0, kv=1.0):
    s = expit(x @ p["W"] + sb * p["b_h"])  # autograd through the buggy formula: chain rule on b_h and b_v
    return {"W": -(x * w[:, None]).T @ s, "b_v": -kv * (w @ x), "b_h": -sb * (w @ s)}


def rbm_fns(**bug):
    return {
        "energy": lambda p, x: rbm_energy(p, x, **bug),
        "grad_x": lambda p, x: rbm_grad_x(p, x, **bug),
        "grad_params": lambda p, x, w: rbm_grad_params(p, x, w, **bug),
    }


# Ising E(s) = -1/2 s J s - h s; `half` = 1 is the missing 1/2
def ising_fns(half=0.5):
    return {
        "energy": lambda p, s: -half * np.einsum("ni,ij,nj->n", s, p["J"], s) - s @ p["h"],
        "grad_x": lambda p, s: -2.0 * half * s @ p["J"] - p["h"],
    }


PLANTED = {
    "hidden bias sign": (RBM6, rbm_fns(sb=-1.0), "param_sign", "'b_h' negated"),
    "visible bias dropped": (RBM6, rbm_fns(kv=0.0), "param_dropped", "'b_v' set to zero"),
    "visible bias doubled": (RBM6, rbm_fns(kv=2.0), "param_scale", "'b_v' doubled"),
    "Ising missing 1/2": (ISING5, ising_fns(half=1.0), "param_scale", "'J' doubled"),
}


@pytest.mark.parametrize("case", list(PLANTED))
def test_one_parameter_bug_is_named_with_its_parameter(case):
    model, fns, code, text = PLANTED[case]
    rep = compare_energy(model, **fns)
    assert not rep.passed, str(rep)
    assert set(rep.failed) == set(fns)
    for k in fns:
        r = rep.results[k]
        assert code in r.suspects and text in r.diagnosis, f"{k}: {r.suspects}: {r.diagnosis}"
        # never another transformation of the same parameter, never softplus_threshold (not torch code)
        assert not ({"param_sign", "param_dropped", "param_scale"} - {code}) & set(r.suspects), r.suspects
    assert "softplus_threshold" not in rep.suspects and set(rep.suspects) <= set(SUSPECTS)


@pytest.mark.parametrize("model, fns", [(RBM6, rbm_fns()), (ISING5, ising_fns())], ids=["rbm", "ising"])
def test_correct_code_names_no_parameter(model, fns):
    rep = compare_energy(model, **fns)
    assert rep.passed and rep.suspects == (), str(rep)


def test_other_bugs_name_no_parameter():
    # a constant factor on the whole energy, an additive constant and noise: no one-parameter change fits
    for fn in (
        lambda p, x: 1.5 * rbm_energy(p, x),
        lambda p, x: rbm_energy(p, x) - 2.25,
        lambda p, x: rbm_energy(p, x) + 1e-3 * np.sin(7.0 * np.arange(x.shape[0])),
    ):
        r = compare_energy(RBM6, energy=fn).results["energy"]
        assert not r.passed(), str(r)
        assert not {"param_sign", "param_dropped", "param_scale"} & set(r.suspects), r.suspects


def test_near_miss_is_not_named():
    # b_h times -1.001 is not b_h negated at rtol 1e-8: the code needs the numbers to fit to the tolerance
    r = compare_energy(RBM6, energy=lambda p, x: rbm_energy(p, x, sb=-1.001)).results["energy"]
    assert not r.passed() and "param_sign" not in r.suspects, r.suspects


# ---------------------------------------------------------- softplus_threshold only where it explains


def _torch_rbm(sign_bv=1.0):
    import torch as t
    import torch.nn.functional as F

    def energy(p, x):
        W, bv, bh = (t.tensor(p[k], dtype=t.float64) for k in ("W", "b_v", "b_h"))
        v = t.tensor(x, dtype=t.float64)
        return (-sign_bv * (v @ bv) - F.softplus(v @ W + bh).sum(dim=1)).numpy()

    def hessian_diag(p, x):
        W, bh = (t.tensor(p[k], dtype=t.float64) for k in ("W", "b_h"))
        a = t.tensor(x, dtype=t.float64) @ W + bh
        s = t.sigmoid(a)
        d = t.where(a > 20.0, t.zeros_like(s), s * (1.0 - s))  # torch's softplus'' is 0 above its threshold
        return (-(d @ (W * W).T)).numpy()

    return {"energy": energy, "hessian_diag": hessian_diag}


def test_softplus_threshold_not_named_for_a_bug_elsewhere():
    # +b_v.v: the energy fails at every scale; hessian_diag (free of b_v) passes only thanks to the threshold
    rep = compare_energy(RBM6, **_torch_rbm(sign_bv=-1.0))
    assert rep.failed == ["energy"], str(rep)
    assert "softplus_threshold" in rep.results["hessian_diag"].accepted
    assert "softplus_threshold" not in rep.results["energy"].suspects
    assert "softplus_threshold" not in rep.suspects and "param_sign" in rep.suspects, rep.suspects


def test_softplus_threshold_still_named_where_it_explains():
    rep = compare_energy(RBM6, **_torch_rbm())
    assert rep.passed and "softplus_threshold" in rep.suspects, str(rep)
    strict = compare_energy(RBM6, strict=True, **_torch_rbm())
    assert not strict.passed and all("softplus_threshold" in strict.results[k].suspects for k in strict.failed)


# ------------------------------------------------------------------ biased samplers
def gibbs(p, v, n_steps, rng, mean_field=False):
    for _ in range(n_steps):
        q = expit(v @ p["W"] + p["b_h"])
        h = q if mean_field else (rng.random(q.shape) < q).astype(float)
        v = (rng.random(v.shape) < expit(h @ p["W"].T + p["b_v"])).astype(float)
    return v


def test_mean_field_hidden_is_named_biased():
    res = check_sampler(lambda p, v, n, rng: gibbs(p, v, n, rng, mean_field=True), RBM8, seed=31, alpha=ALPHA)
    assert not res.passed and "exact" in res.caught_by
    assert res.suspects == ("biased",) and "invariant" in res.diagnosis, str(res)


def test_correct_and_non_mixing_samplers_are_not_named_biased():
    assert check_sampler(gibbs, RBM8, seed=32, alpha=ALPHA).suspects == ()

    def stale(p, v, n_steps, rng):  # exact samples stay exact: a mixing failure, not a biased kernel
        h = (rng.random((v.shape[0], p["W"].shape[1])) < expit(v @ p["W"] + p["b_h"])).astype(float)
        for _ in range(n_steps):
            v = (rng.random(v.shape) < expit(h @ p["W"].T + p["b_v"])).astype(float)
        return v

    res = check_sampler(stale, RBM8, seed=33, alpha=ALPHA)
    assert res.caught_by == ("fixed",) and res.suspects == ("no_mixing",)


# ------------------------------------------------------------- score matching with one term scaled
MLP = None


def _mlp():
    global MLP
    if MLP is None:
        from ebm_ref.energies import MLPEnergy

        MLP = MLPEnergy((3, 5, 4), activation="softplus", seed=3)
    return MLP


def sm_loss(c1=0.5, c2=1.0, factor=1.0):
    # a third-party score-matching loss written from the primitives: factor * mean(c1 |g|^2 - c2 tr H), with its gradient
    def fn(p, x, seed):
        m = _mlp().with_params(p)
        n = x.shape[0]
        g, h = m.grad_x(x), m.hessian_diag(x)
        loss = factor * float(np.mean(c1 * np.sum(g * g, axis=1) - c2 * np.sum(h, axis=1)))
        ga = m.grad_params_of_grad_x(x, 2.0 * c1 * g / n)
        gb = m.grad_params_of_hessian_diag(x, np.full(x.shape, c2 / n))
        return loss, {k: factor * (ga[k] - gb[k]) for k in ga}

    return fn


X_SM = np.random.default_rng(5).standard_normal((12, 3))


@pytest.mark.parametrize(
    "c1, c2, text", [(1.0, 1.0, "1/2 missing"), (0.5, 0.0, "Hessian-trace term dropped"), (0.5, 2.0, "Hessian-trace term doubled")]
)
def test_score_matching_term_scaled_is_named(c1, c2, text):
    from ebm_ref.testing import compare_objective

    rep = compare_objective("ScoreMatching", sm_loss(c1, c2), _mlp(), X_SM)
    assert not rep.passed and "term_scale" in rep.suspects and text in rep.diagnosis, f"{rep.suspects}: {rep.diagnosis}"


def test_score_matching_correct_or_whole_factor_is_not_term_scale():
    from ebm_ref.testing import compare_objective

    assert compare_objective("ScoreMatching", sm_loss(), _mlp(), X_SM).suspects == ()
    rep = compare_objective("ScoreMatching", sm_loss(factor=3.0), _mlp(), X_SM)
    assert not rep.passed and "factor" in rep.suspects and "term_scale" not in rep.suspects, rep.suspects
    # the 1/2 missing from the loss only, the gradient right: no single term scaling fits both
    bad = sm_loss(1.0, 1.0)
    rep = compare_objective("ScoreMatching", lambda p, x, s: (bad(p, x, s)[0], sm_loss()(p, x, s)[1]), _mlp(), X_SM)
    assert not rep.passed and "term_scale" not in rep.suspects, rep.suspects
