r"""Figure 1: score matching against diffusion score matching on a Student-t location.

Reproduces the "fitting a Student-t with score matching" slide of Zijing Ou's
talk "EBM learning and inference" (after Barp et al. 2019 and Gong & Li
2021): data from :math:`t_5(0, 0.3)`, model :math:`t_5(\theta, 0.3)`, and
three objectives as functions of :math:`\theta \in [-4, 4]`:

* score matching (SM), :class:`ebm_ref.objectives.ScoreMatching`;
* diffusion score matching with the manual diffusion
  :math:`m(x) = 1 + (x - \mu)^2/0.6` (:class:`ManualFlow`);
* diffusion score matching with the Gaussian flow
  :math:`m = 1/T_G'`, :math:`T_G = \Phi^{-1}\circ F` (:class:`GaussianFlow`),

next to the ground truth, the Fisher divergence
:math:`F(\theta) = \tfrac12 \mathbb E_p[(\partial_x\log q_\theta -
\partial_x \log p)^2]` computed by quadrature. :class:`DiffusionScoreMatching`
requires ``m`` not to depend on the parameters, so the diffusion is centred
on the data law (:math:`\mu = 0`, :math:`F` the CDF of :math:`t_5(0, 0.3)`)
and held fixed while :math:`\theta` moves.

Gradient descent runs from several starts with each loss's own step size
:math:`\eta = 1/(2 L''(0))` (half the Newton step at the optimum, the
curvature taken by a central difference of the package gradient), so the
trajectories compare the *shape* of the losses, not their scale.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import integrate, special

import _figkit
from ebm_ref.energies import StudentT
from ebm_ref.objectives import DiffusionScoreMatching, GaussianFlow, ManualFlow, ScoreMatching

DF = 5.0
SCALE = 0.3
C_MANUAL = 0.6
FIG = 1  # the first key of every random stream of this figure (see _figkit.seed_sequence)
NAMES = ("SM", "DSM, manual m(x)", "DSM, Gaussian flow")
COLORS = ("tab:blue", "tab:orange", "tab:green")


def _model(theta):
    return StudentT([theta], [math.log(SCALE)], [math.log(DF)])


def _objectives():
    return (
        ScoreMatching(),
        DiffusionScoreMatching(ManualFlow(0.0, C_MANUAL)),
        DiffusionScoreMatching(GaussianFlow(0.0, SCALE, DF)),
    )


def _score(x, loc):
    """Score of t_5(loc, 0.3): -(nu+1) u / (nu s^2 + u^2), u = x - loc."""
    u = x - loc
    return -(DF + 1.0) * u / (DF * SCALE**2 + u * u)


def _log_pdf(x):
    u = x / SCALE
    return (special.gammaln((DF + 1) / 2) - special.gammaln(DF / 2) - 0.5 * math.log(DF * math.pi)
            - math.log(SCALE) - (DF + 1) / 2 * np.log1p(u * u / DF))


def fisher_divergence(theta):
    r"""Ground truth :math:`\tfrac12\int p(x)(s_\theta(x) - s_0(x))^2 dx` by adaptive quadrature."""
    def f(x):
        return 0.5 * math.exp(_log_pdf(x)) * (_score(x, theta) - _score(x, 0.0)) ** 2

    pts = sorted({0.0, float(theta)})
    lo, hi = min(pts) - 1.0, max(pts) + 1.0
    val = integrate.quad(f, lo, hi, points=pts, limit=200)[0]
    val += integrate.quad(f, -np.inf, lo, limit=200)[0] + integrate.quad(f, hi, np.inf, limit=200)[0]
    return val


def _basin(thetas, grads):
    """The interval around the minimiser (theta = 0) where -grad points towards it."""
    i0 = int(np.argmin(np.abs(thetas)))
    toward = np.sign(grads) == np.sign(thetas - thetas[i0])
    toward[i0] = True
    lo = i0
    while lo > 0 and toward[lo - 1]:
        lo -= 1
    hi = i0
    while hi < len(thetas) - 1 and toward[hi + 1]:
        hi += 1
    return float(thetas[lo]), float(thetas[hi])


def compute(n_data=4000, n_theta=161, starts=(-3.0, -1.2, -0.6, 0.6, 1.2, 3.0), n_steps=100, seed=0):
    """Run the experiment; returns a dict of arrays and numbers (see the module docstring)."""
    x = _model(0.0).sample(n_data, _figkit.seed_sequence(seed, FIG, 0))
    objs = _objectives()
    thetas = np.linspace(-4.0, 4.0, n_theta)
    values = np.empty((3, n_theta))
    grads = np.empty((3, n_theta))
    for j, th in enumerate(thetas):
        m = _model(th)
        for k, obj in enumerate(objs):
            v, g = obj.value_and_grad(m, x)
            values[k, j] = v
            grads[k, j] = g["loc"][0]
    truth = np.array([fisher_divergence(th) for th in thetas])
    # SM = F - 1/2 E_p[s_p^2]; the constant from the same sample checks the estimator
    sm_shift = 0.5 * np.mean(_score(x[:, 0], 0.0) ** 2)

    h = 1e-4
    curv = np.array([
        (obj.value_and_grad(_model(h), x)[1]["loc"][0] - obj.value_and_grad(_model(-h), x)[1]["loc"][0]) / (2 * h)
        for obj in objs
    ])
    lrs = 0.5 / curv
    traj = np.empty((3, len(starts), n_steps + 1))
    for k, obj in enumerate(objs):
        for s, th0 in enumerate(starts):
            th = float(th0)
            traj[k, s, 0] = th
            for t in range(n_steps):
                th -= lrs[k] * obj.value_and_grad(_model(th), x)[1]["loc"][0]
                traj[k, s, t + 1] = th
    argmins = thetas[np.argmin(values, axis=1)]
    basins = [_basin(thetas, grads[k]) for k in range(3)]
    # steps until |theta| < 0.05 (n_steps + 1 if never)
    hit = np.abs(traj) < 0.05
    steps_to = np.where(hit.any(axis=2), hit.argmax(axis=2), n_steps + 1)
    return {
        "x": x, "thetas": thetas, "values": values, "grads": grads, "truth": truth, "sm_shift": sm_shift,
        "curvature": curv, "lrs": lrs, "starts": np.asarray(starts, float), "traj": traj,
        "argmins": argmins, "basins": basins, "steps_to": steps_to,
        "max_grad_in": np.array([np.max(np.abs(grads[k][np.abs(thetas) <= 1.0])) for k in range(3)]),
        "sm_vs_truth": float(np.max(np.abs(values[0] + sm_shift - truth))),
        "seed": seed, "n_data": n_data, "n_steps": n_steps,
    }


def plot(res):
    fig, axes = _figkit.subplots(1, 2, figsize=(13, 5))
    ax = axes[0]
    th = res["thetas"]
    for k in range(3):
        ax.plot(th, res["values"][k], color=COLORS[k], lw=2, label=f"{NAMES[k]} (loss J)")
        lo, hi = res["basins"][k]
        ax.axvspan(lo, hi, ymin=0.02 + 0.03 * k, ymax=0.045 + 0.03 * k, color=COLORS[k], alpha=0.8)
    ax.plot(th, res["truth"], color="k", lw=2, ls="--", label="ground truth: Fisher divergence")
    ax.axvline(0.0, color="grey", lw=0.8, ls=":")
    _figkit.label_axes(ax, xlabel=r"model location $\theta$", ylabel="loss",
                       title=r"Losses vs $\theta$; data $t_5(0,0.3)$, model $t_5(\theta,0.3)$" + "\n(bars at the bottom: basin where gradient descent heads to 0)",
                       legend=dict(fontsize=8, loc="upper right"), grid=dict(alpha=0.3))

    ax = axes[1]
    steps = np.arange(res["traj"].shape[2])
    for k in range(3):
        for s in range(res["traj"].shape[1]):
            ax.plot(steps, res["traj"][k, s], color=COLORS[k], lw=1.5, alpha=0.85,
                    label=f"{NAMES[k]} (lr {res['lrs'][k]:.3g})" if s == 0 else None)
    ax.axhline(0.0, color="k", lw=0.8, ls="--")
    ax.set_ylim(-4.5, 4.5)
    _figkit.label_axes(ax, xlabel="gradient-descent step", ylabel=r"$\theta$",
                       title="Gradient descent from several starts\n(step size 1/(2 L''(0)) per loss)",
                       legend=dict(fontsize=8, loc="upper right"), grid=dict(alpha=0.3))
    return fig


def caption(res, names):
    rows = []
    for k in range(3):
        lo, hi = res["basins"][k]
        st = ", ".join(
            f"{s:+.1f}: {n if n <= res['n_steps'] else 'no'}" for s, n in zip(res["starts"], res["steps_to"][k])
        )
        rows.append(
            f"| {NAMES[k]} | {res['argmins'][k]:+.2f} | [{lo:+.2f}, {hi:+.2f}] | {res['curvature'][k]:.3g} | "
            f"{res['max_grad_in'][k]:.3g} | {st} |"
        )
    table = "\n".join(rows)
    return f"""## 1. Student-t: score matching vs diffusion score matching

![Student-t score matching]({names[0]})

Reproduces the Student-t slide of Zijing Ou's talk "EBM learning and inference: a retrospection and
beyond" (after Barp et al. 2019, *Minimum Stein discrepancy estimators*, and Gong & Li 2021,
*Interpreting diffusion score matching using normalizing flow*). Data: {res['n_data']} draws of
`t_5(0, 0.3)` (seed {res['seed']}); model `StudentT` `t_5(theta, 0.3)`, only the location free.
Left: the objectives as `ebm_ref` computes them (`ScoreMatching`,
`DiffusionScoreMatching(ManualFlow(0, 0.6))` with `m(x) = 1 + x^2/0.6`,
`DiffusionScoreMatching(GaussianFlow(0, 0.3, 5))` with `m = 1/T_G'`, `T_G = Phi^-1 o F`) on a
grid of {len(res['thetas'])} values of theta in [-4, 4], and the ground-truth Fisher divergence by
quadrature. The slide writes `m` around theta; `DiffusionScoreMatching` requires `m` independent of
the parameters, so here `m` is centred on the data law and held fixed. SM plus the data-only constant
`1/2 mean s_p(x)^2` = {res['sm_shift']:.3f} matches the quadrature Fisher divergence to
{res['sm_vs_truth']:.3f} (max over the grid). Right: {res['n_steps']} gradient-descent steps on each
loss with step size `1/(2 L''(0))` (its own curvature at the optimum, so only the loss shapes are compared).

| loss | argmin on grid | basin (GD heads to 0) | L''(0) | max abs gradient, abs(theta) <= 1 | steps to abs(theta) < 0.05 from each start |
|---|---|---|---|---|---|
{table}

All three losses are minimised at theta = 0 on the grid. With heavy-tailed data the Fisher divergence
is not convex in the location: beyond its maxima the score-matching gradient points away from the data
and vanishes as abs(theta) grows (the slow region). The fixed diffusion `m(x)` reweights the data tails
and widens the basin where descent reaches the optimum (bars under the left panel; compare the steps
from the starts at +-1.2); starts far outside (+-3) are outside every basin of this fixed-`m` setting.
"""


def main(out_dir, seed=0, n_data=4000, n_steps=100):
    res = compute(n_data=n_data, n_steps=n_steps, seed=seed)
    return _figkit.write_figures(out_dir, res, {"fig_01_student_t_sm.png": plot}, caption)
