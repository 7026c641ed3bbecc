"""Third-party-style PyTorch implementations (correct ones and planted bugs) checked through the adapters.

Each entry is written the way tutorials write it (``nn.Module`` with ``nn.Parameter`` attributes, ``F.linear``,
``F.softplus``, ``torch.bernoulli``), then reached through :func:`ebm_ref.testing.from_torch` with a mapping and
nothing else. ``BUGS`` lists planted bugs: each replaces one line of a correct entry.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ebm_ref.energies import GRBM, RBM, Ising, MLPEnergy
from ebm_ref.testing import check_objective_grad, check_sampler, compare_energy, compare_objective, from_torch

RBM_MAP = {"W": ("W", "T"), "b_v": "v_bias", "b_h": "h_bias"}


# --------------------------------------------------------------------- RBM
class TorchRBM(nn.Module):
    """The classic tutorial RBM: ``W`` is (H, V) as in ``nn.Linear``; free energy with ``F.softplus``."""

    def __init__(self, n_vis, n_hid, softplus=None, bug=None):
        super().__init__()
        self.W = nn.Parameter(torch.randn(n_hid, n_vis) * 1e-2)
        self.v_bias = nn.Parameter(torch.zeros(n_vis))
        self.h_bias = nn.Parameter(torch.zeros(n_hid))
        self.softplus = softplus or F.softplus
        self.bug = bug

    def free_energy(self, v):
        if self.bug == "transpose":  # W used as if it were (V, H): only a square W lets this run
            wx_b = v @ self.W + self.h_bias
        else:
            wx_b = F.linear(v, self.W, self.h_bias)
        vbias_term = v.mv(self.v_bias)
        if self.bug == "sign":
            vbias_term = -vbias_term
        if self.bug == "hidden_bias_sign":
            wx_b = F.linear(v, self.W, -self.h_bias)
        hidden_term = self.softplus(wx_b).sum(1)
        if self.bug == "no_visible_bias":
            return -hidden_term
        return -vbias_term - hidden_term

    def sample_h(self, v, gen):
        p = torch.sigmoid(F.linear(v, self.W, self.h_bias))
        return p, torch.bernoulli(p, generator=gen)

    def sample_v(self, h, gen):
        p = torch.sigmoid(F.linear(h, self.W.t(), self.v_bias))
        return p, torch.bernoulli(p, generator=gen)


def naive_softplus(a):
    """``log(1 + exp(a))`` as first written: overflows (to inf) once exp(a) does."""
    return torch.log(1 + torch.exp(a))


def gibbs_k(rbm, v, k, gen, bug=None):
    """k steps of block Gibbs h ~ p(h|v), v ~ p(v|h), as in the CD-k tutorials."""
    _, h = rbm.sample_h(v, gen)
    for _ in range(k):
        if bug != "stale_hidden":  # the bug samples h once, before the loop
            ph, h = rbm.sample_h(v, gen)
            if bug == "mean_field_hidden":
                h = ph
        _, v = rbm.sample_v(h, gen)
    return v


def gibbs_global_rng(rbm, v, k):
    """Same kernel drawing from torch's global RNG (``torch.bernoulli(p)``), as most notebooks do."""
    for _ in range(k):
        h = torch.bernoulli(torch.sigmoid(F.linear(v, rbm.W, rbm.h_bias)))
        v = torch.bernoulli(torch.sigmoid(F.linear(h, rbm.W.t(), rbm.v_bias)))
    return v


def cd_loss(rbm, v, gen, k=1, bug=None):
    """CD-k surrogate: mean F(data) - mean F(negatives), negatives detached."""
    steps = k - 1 if bug == "cd_off_by_one" else k
    v_neg = gibbs_k(rbm, v, steps, gen).detach()
    if bug == "missing_1_over_n":
        return rbm.free_energy(v).sum() - rbm.free_energy(v_neg).sum()
    return rbm.free_energy(v).mean() - rbm.free_energy(v_neg).mean()


def rbm_model(V=6, H=3, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    return RBM(scale * rng.normal(size=(V, H)), rng.normal(size=V), rng.normal(size=H))


# -------------------------------------------------------------------- GRBM
class TorchGRBM(nn.Module):
    """Gaussian-Bernoulli RBM with a learnable log-variance per visible unit (Liao et al. 2022 form)."""

    def __init__(self, n_vis, n_hid, bug=None):
        super().__init__()
        self.W = nn.Parameter(torch.randn(n_vis, n_hid) * 0.1)
        self.mu = nn.Parameter(torch.zeros(n_vis))
        self.b = nn.Parameter(torch.zeros(n_hid))
        self.log_sigma2 = nn.Parameter(torch.zeros(n_vis))
        self.bug = bug

    def forward(self, v):
        var = self.log_sigma2.exp()
        quad = 0.5 * (((v - self.mu) ** 2) / var).sum(1)
        if self.bug == "variance_factor":  # v / sigma instead of v / sigma^2
            act = (v / var.sqrt()) @ self.W + self.b
        else:
            act = (v / var) @ self.W + self.b
        return quad - F.softplus(act).sum(1)


GRBM_MAP = {"W": "W", "mu": "mu", "b_h": "b", "log_var": "log_sigma2"}


def grbm_model(seed=0):
    rng = np.random.default_rng(seed)
    return GRBM(rng.normal(size=(3, 2)), rng.normal(size=3), rng.normal(size=2), 0.3 * rng.normal(size=3))


# --------------------------------------------------------------------- MLP
class MLPEnergyNet(nn.Module):
    """``E(x) = net(x)`` with ``nn.Sequential(Linear, Softplus, Linear)`` and a squeezed output."""

    def __init__(self, d, h):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d, h), nn.Softplus(), nn.Linear(h, 1))

    def forward(self, x):
        return self.net(x).squeeze(-1)


MLP_MAP = {"W1": "net.0.weight", "b1": "net.0.bias", "w_out": ("net.2.weight", (-1,)), "b_out": ("net.2.bias", ())}


def score_matching_loss(model, x, bug=None):
    """Hyvarinen score matching: mean(1/2 |dE/dx|^2 - tr d2E/dx2), the trace by autograd, one coordinate at a time."""
    x = x.requires_grad_(True)
    e = model(x)
    g = torch.autograd.grad(e.sum(), x, create_graph=True)[0]
    tr = 0.0
    for k in range(x.shape[1]):
        tr = tr + torch.autograd.grad(g[:, k].sum(), x, create_graph=True)[0][:, k]
    if bug == "trace_detached":  # the value is right, its gradient is not
        tr = tr.detach()
    half = 1.0 if bug == "missing_half" else 0.5
    return (half * (g**2).sum(1) - tr).mean()


def mlp_model(d=2, h=4, seed=0):
    return MLPEnergy((d, h), activation="softplus", seed=seed)


# ------------------------------------------------------------------- Ising
class TorchIsing(nn.Module):
    """``E(s) = -1/2 s J s - h s`` on spins, ``J`` a full (symmetric) matrix parameter."""

    def __init__(self, d, bug=None):
        super().__init__()
        self.J = nn.Parameter(torch.zeros(d, d))
        self.h = nn.Parameter(torch.zeros(d))
        self.bug = bug

    def forward(self, s):
        pair = ((s @ self.J) * s).sum(1)
        if self.bug == "missing_half_ising":
            return -pair - s @ self.h
        return -0.5 * pair - s @ self.h


def ising_metropolis_sweep(model, s, gen, bug=None):
    """One sweep of single-spin Metropolis: flip s_i with probability min(1, exp(-dE)), dE = 2 s_i (J s + h)_i."""
    s = s.clone()
    J, h = model.J.detach(), model.h.detach()
    for i in range(s.shape[1]):
        field = s @ J[:, i] + h[i]
        dE = 2.0 * s[:, i] * field
        if bug == "wrong_mh_ratio":
            dE = 0.5 * dE
        u = torch.rand(s.shape[0], generator=gen, dtype=s.dtype)
        flip = u < torch.exp(-dE).clamp(max=1.0)
        s[:, i] = torch.where(flip, -s[:, i], s[:, i])
    return s


def ising_heat_bath_sweep(model, s, gen, bug=None):
    """One heat-bath sweep on spins: p(s_i = +1 | rest) = sigmoid(2 (J s + h)_i)."""
    s = s.clone()
    J, h = model.J.detach(), model.h.detach()
    for i in range(s.shape[1]):
        field = s @ J[:, i] + h[i]
        logit = field if bug == "spin_as_binary" else 2.0 * field  # the {0,1} formula used on spins
        up = torch.rand(s.shape[0], generator=gen, dtype=s.dtype) < torch.sigmoid(logit)
        s[:, i] = torch.where(up, torch.ones_like(s[:, i]), -torch.ones_like(s[:, i]))
    return s


def ising_model(d=5, seed=0):
    return Ising.random(d, 1.0, seed=seed)


# --------------------------------------------------------------- the corpus
def _rbm_adapter(ref, dtype=None, softplus=None, bug=None, V=6, H=3):
    return from_torch(
        TorchRBM(V, H, softplus=softplus, bug=bug), RBM_MAP, energy="free_energy", dtype=dtype, reference=ref
    )


def run_rbm_energy(dtype=None, softplus=None, bug=None, V=6, H=3, scale=1.0):
    ref = rbm_model(V, H, scale)
    return compare_energy(ref, **_rbm_adapter(ref, dtype, softplus, bug, V, H))


def run_rbm_sampler(bug=None, global_rng=False, **kwargs):
    ref = rbm_model(7, 3, scale=1.5, seed=2)
    ad = _rbm_adapter(ref, V=7, H=3)
    if global_rng:
        fn = ad.sampler(gibbs_global_rng)
    else:
        fn = ad.sampler(lambda m, v, k, g: gibbs_k(m, v, k, g, bug=bug))
    return check_sampler(fn, ref, n_steps=5, seed=0, **kwargs)


def run_cd_grad(bug=None, dtype=None):
    ref = rbm_model(6, 3)
    ad = _rbm_adapter(ref, dtype)
    x = np.random.default_rng(3).integers(0, 2, size=(20, 6)).astype(float)
    return check_objective_grad(ad.objective(lambda m, v, g: cd_loss(m, v, g, bug=bug)), ref, x)


def run_cd_compare(bug=None):
    ref = rbm_model(6, 3)
    ad = _rbm_adapter(ref)
    x = np.random.default_rng(3).integers(0, 2, size=(20, 6)).astype(float)
    fn = ad.objective(lambda m, v, g: cd_loss(m, v, g, bug=bug))
    return compare_objective("CD", fn, ref, x, objective_kwargs={"k": 1})


def run_grbm_energy(bug=None):
    ref = grbm_model()
    return compare_energy(ref, **from_torch(TorchGRBM(3, 2, bug=bug), GRBM_MAP, reference=ref))


def run_mlp_energy():
    ref = mlp_model()
    return compare_energy(ref, **from_torch(MLPEnergyNet(2, 4), MLP_MAP, reference=ref))


def _sm_setup(bug):
    ref = mlp_model()
    ad = from_torch(MLPEnergyNet(2, 4), MLP_MAP, reference=ref)
    x = np.random.default_rng(4).normal(size=(30, 2))
    return ref, ad.objective(lambda m, xx: score_matching_loss(m, xx, bug=bug)), x


def run_sm_compare(bug=None):
    ref, fn, x = _sm_setup(bug)
    return compare_objective("ScoreMatching", fn, ref, x)


def run_sm_grad(bug=None):
    ref, fn, x = _sm_setup(bug)
    return check_objective_grad(fn, ref, x)


def run_ising_energy(bug=None):
    ref = ising_model()
    return compare_energy(ref, **from_torch(TorchIsing(5, bug=bug), reference=ref))


def run_ising_sampler(kind="metropolis", bug=None, **kwargs):
    ref = ising_model()
    ad = from_torch(TorchIsing(5), reference=ref)
    step = ising_metropolis_sweep if kind == "metropolis" else ising_heat_bath_sweep
    fn = ad.sampler(lambda m, s, g: step(m, s, g, bug=bug), step=True)
    return check_sampler(fn, ref, n_steps=5, seed=0, **kwargs)
