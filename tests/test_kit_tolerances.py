"""Framework-aware tolerances: idiomatic PyTorch code passes with the defaults,
planted bugs still fail in float32, and documented framework behaviour
(torch's softplus, the identity above a pre-activation of 20) is named and
accepted unless ``strict=True``.

The third-party code is written with torch (CPU), the way a user writes it:
energies with ``torch.nn.functional.softplus`` and derivatives by autograd.
Everything is deterministic (fixed seeds); the margins asserted below are
measured on these fixed inputs.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch  # a test dependency (setup.cfg [test])

from ebm_ref.energies import RBM, MLPEnergy
from ebm_ref.testing import check_objective_grad, compare_energy

F = torch.nn.functional
torch.set_num_threads(1)  # tiny tensors: extra threads only fight the other tests for the cores


def _free_energy(q, v):
    return -(v @ q["b_v"]) - F.softplus(v @ q["W"] + q["b_h"]).sum(1)


def rbm_torch(dtype, bug=None):
    """Primitives of the RBM free energy by torch autograd in ``dtype``; ``bug`` plants one mistake."""

    def P(p, grad=False):
        return {k: torch.tensor(v, dtype=dtype, requires_grad=grad) for k, v in p.items()}

    def energy(p, x):
        q = P(p)
        if bug == "transpose":
            q["W"] = q["W"].T
        e = _free_energy(q, torch.tensor(x, dtype=dtype))
        if bug == "factor":
            e = 1.01 * e
        if bug == "offset":
            e = e + 1.0
        return e.numpy()

    def grad_x(p, x):
        v = torch.tensor(x, dtype=dtype, requires_grad=True)
        (g,) = torch.autograd.grad(_free_energy(P(p), v).sum(), v)
        return g.numpy()

    def hessian_diag(p, x):
        v = torch.tensor(x, dtype=dtype, requires_grad=True)
        (g,) = torch.autograd.grad(_free_energy(P(p), v).sum(), v, create_graph=True)
        cols = [torch.autograd.grad(g[:, k].sum(), v, retain_graph=True)[0][:, k] for k in range(v.shape[1])]
        return torch.stack(cols, 1).detach().numpy()

    def grad_params(p, x, w):
        q = P(p, grad=True)
        wt = torch.tensor(w, dtype=dtype)
        if bug == "weights":
            wt = torch.ones_like(wt)
        gs = torch.autograd.grad((wt * _free_energy(q, torch.tensor(x, dtype=dtype))).sum(), list(q.values()))
        out = {k: g.numpy() for k, g in zip(q, gs)}
        if bug == "sign":
            out["b_h"] = -out["b_h"]
        return out

    return {"energy": energy, "grad_x": grad_x, "hessian_diag": hessian_diag, "grad_params": grad_params}


def mlp_torch(model, dtype):
    """``MLPEnergy`` (softplus) energy, gradient and Hessian diagonal by torch autograd."""
    L = model.n_layers

    def forward(p, v):
        z = v
        for l in range(1, L + 1):
            z = F.softplus(z @ torch.tensor(p[f"W{l}"], dtype=dtype).T + torch.tensor(p[f"b{l}"], dtype=dtype))
        return z @ torch.tensor(p["w_out"], dtype=dtype) + torch.tensor(p["b_out"], dtype=dtype)

    def energy(p, x):
        return forward(p, torch.tensor(x, dtype=dtype)).numpy()

    def hessian_diag(p, x):
        v = torch.tensor(x, dtype=dtype, requires_grad=True)
        (g,) = torch.autograd.grad(forward(p, v).sum(), v, create_graph=True)
        cols = [torch.autograd.grad(g[:, k].sum(), v, retain_graph=True)[0][:, k] for k in range(v.shape[1])]
        return torch.stack(cols, 1).detach().numpy()

    return {"energy": energy, "hessian_diag": hessian_diag}


RNG = np.random.default_rng(0)
RBM6 = RBM(RNG.standard_normal((6, 3)), RNG.standard_normal(6), RNG.standard_normal(3))
RBM_SQ = RBM(RNG.standard_normal((4, 4)), RNG.standard_normal(4), RNG.standard_normal(4))
MLP = MLPEnergy((3, 5, 4), activation="softplus", seed=1)


# ------------------------------------------------------------ float64 torch
def test_float64_torch_rbm_passes_defaults_with_softplus_threshold_named():
    rep = compare_energy(RBM6, **rbm_torch(torch.float64))
    assert rep.passed, str(rep)
    assert rep.dtype == "float64"
    # scale 10 drives pre-activations past 20: the linearisation is named and accepted
    assert "softplus_threshold" in rep.suspects
    assert "threshold=20" in str(rep)


def test_float64_torch_rbm_strict_fails_on_the_threshold_only():
    rep = compare_energy(RBM6, strict=True, **rbm_torch(torch.float64))
    assert not rep.passed
    failed = set(rep.failed)
    assert failed and all("softplus_threshold" in rep.results[k].suspects for k in failed)
    # at scales where no pre-activation reaches 20, strict mode passes
    assert compare_energy(RBM6, strict=True, scales=(0.1, 1.0), **rbm_torch(torch.float64)).passed


def test_float64_torch_mlp_hessian_passes_defaults():
    rep = compare_energy(MLP, **mlp_torch(MLP, torch.float64))
    assert rep.passed, str(rep)
    assert "softplus_threshold" in rep.results["hessian_diag"].suspects


def test_float64_rbm_at_large_weights_passes_with_the_threshold_accepted():
    big = RBM(50.0 * RNG.standard_normal((6, 3)), RNG.standard_normal(6), RNG.standard_normal(3))
    rep = compare_energy(big, scales=(0.1, 1.0), **rbm_torch(torch.float64))
    assert rep.passed, str(rep)


# ------------------------------------------------------------ float32 torch
def test_float32_torch_rbm_passes_defaults_and_reports_the_tolerance_model():
    rep = compare_energy(RBM6, **rbm_torch(torch.float32))
    assert rep.passed, str(rep)
    assert rep.dtype == "float32" and "float32" in rep.suspects
    assert "256 * eps(float32)" in str(rep)
    for r in rep.results.values():
        assert r.dtype == "float32" and r.allowance == pytest.approx(256 * np.finfo(np.float32).eps)
        # measured margin: the worst float32 error is at most a tenth of the allowance
        assert r.score < 0.1, r.describe(rep.rtol)


def test_float32_torch_mlp_passes_defaults():
    rep = compare_energy(MLP, **mlp_torch(MLP, torch.float32))
    assert rep.passed, str(rep)


@pytest.mark.parametrize(
    "bug,prim,code",
    [("factor", "energy", "factor"), ("sign", "grad_params", "sign"), ("transpose", "energy", "transpose"),
     ("offset", "energy", "offset"), ("weights", "grad_params", "weights")],
)
def test_float32_planted_bugs_still_fail_and_are_named(bug, prim, code):
    fns = rbm_torch(torch.float32, bug=bug)
    rep = compare_energy(RBM_SQ, **{prim: fns[prim]})
    assert not rep.passed, str(rep)
    assert code in rep.results[prim].suspects, str(rep)


def test_float32_factor_is_given():
    rep = compare_energy(RBM_SQ, energy=rbm_torch(torch.float32, bug="factor")["energy"])
    assert "1.01" in rep.results["energy"].diagnosis


# ------------------------------------------------------- float32 objectives
def cd1_torch(dtype, bug=None):
    """CD-1 loss mean F(x) - mean F(v1) with v1 drawn by torch from ``seed``; autograd gradient."""

    def fn(p, x, seed):
        g = torch.Generator().manual_seed(seed)
        q = {k: torch.tensor(v, dtype=dtype, requires_grad=True) for k, v in p.items()}
        v0 = torch.tensor(x, dtype=dtype)
        with torch.no_grad():
            h = torch.bernoulli(torch.sigmoid(v0 @ q["W"] + q["b_h"]), generator=g)
            v1 = torch.bernoulli(torch.sigmoid(h @ q["W"].T + q["b_v"]), generator=g)
        loss = _free_energy(q, v0).mean() - _free_energy(q, v1).mean()
        grads = {k: gr.numpy() for k, gr in zip(q, torch.autograd.grad(loss, list(q.values())))}
        if bug == "factor":
            grads = {k: 1.01 * v for k, v in grads.items()}
        elif bug == "sign":
            grads["b_v"] = -grads["b_v"]
        elif bug == "missing 1/n":
            grads = {k: x.shape[0] * v for k, v in grads.items()}
        return loss.detach().numpy(), grads

    return fn


X50 = RNG.integers(0, 2, size=(40, 6)).astype(float)


@pytest.mark.parametrize("seed", range(4))
def test_float32_cd_loss_passes(seed):
    res = check_objective_grad(cd1_torch(torch.float32), RBM6, X50, seed=seed)
    assert res.passed, str(res)
    assert res.dtype == "float32"
    # step and tolerance chosen from the dtype: eps32^(1/3), 64 eps32^(2/3)
    assert res.rtol == pytest.approx(64 * np.finfo(np.float32).eps ** (2 / 3))


def test_float64_cd_loss_passes_at_the_float64_tolerance():
    res = check_objective_grad(cd1_torch(torch.float64), RBM6, X50, seed=0)
    assert res.passed and res.rtol == 1e-6 and res.dtype == "float64"


@pytest.mark.parametrize("bug,codes", [("factor", {"factor"}), ("sign", {"sign"}), ("missing 1/n", {"factor", "weights"})])
def test_float32_cd_loss_bugs_fail_and_are_named(bug, codes):
    res = check_objective_grad(cd1_torch(torch.float32, bug=bug), RBM6, X50, seed=0)
    assert not res.passed, str(res)
    assert codes <= set(res.suspects), str(res)


# ------------------------------------------------- other dtypes and frameworks
def _energy_in(framework, dtype):
    if framework == "jax":
        import jax
        import jax.numpy as jnp

        def e(p, x):
            q = {k: jnp.asarray(v, dtype=dtype) for k, v in p.items()}
            v = jnp.asarray(x, dtype=dtype)
            return -(v @ q["b_v"]) - jax.nn.softplus(v @ q["W"] + q["b_h"]).sum(1)

        return e

    def e(p, x):  # a torch tensor returned as is, no conversion
        return _free_energy({k: torch.tensor(v, dtype=dtype) for k, v in p.items()}, torch.tensor(x, dtype=dtype))

    return e


@pytest.mark.parametrize(
    "framework,dtype,name",
    [("jax", "float32", "float32"), ("jax", "bfloat16", "bfloat16"), ("torch", torch.float16, "float16"), ("torch", torch.bfloat16, "bfloat16")],
)
def test_dtype_recorded_correct_code_passes_and_a_sign_flip_fails(framework, dtype, name):
    e = _energy_in(framework, dtype)
    rep = compare_energy(RBM6, energy=e)
    assert rep.passed and rep.dtype == name and rep.results["energy"].dtype == name, str(rep)
    bad = compare_energy(RBM6, energy=lambda p, x: -e(p, x))
    assert not bad.passed and "sign" in bad.suspects, str(bad)
