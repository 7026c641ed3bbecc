r"""Figure 3: the latent-variable EBM of the ellipse toy example.

Reproduces the figures of the lecture "Inference for latent variable EBMs"
(Canziani & LeCun, NYU Deep Learning): 24 noisy points on the ellipse with
semi-axes :math:`\rho(0) = (2, 1.5)`, the model :math:`E(y, z) = \|y - w
\odot (\cos z, \sin z)\|^2` with the latent angle searched over the grid
:math:`z = [0 : \pi/24 : 2\pi[`, and

* the untrained and the trained model manifolds :math:`\{w\odot\varphi(z)\}`;
* :math:`E(y, z)` against :math:`z` for the lecture's samples
  ``Y[1], Y[10], Y[19], Y[24]`` with the grid minimiser :math:`\check z`;
* the free energies :math:`F_\infty = \min_z E` and :math:`F_\beta =
  -\beta^{-1}\log\operatorname{mean}_z e^{-\beta E}` over the y-plane;
* training of ``w`` with the energy, hinge and log losses
  (:class:`~ebm_ref.objectives.LatentEnergyLoss`,
  :class:`~ebm_ref.objectives.LatentHingeLoss`,
  :class:`~ebm_ref.objectives.LatentLogLoss`, all on :math:`F_\infty`) by
  :func:`ebm_ref.train.fit` with Adam;
* the conditional case: an MLP :math:`f: x \mapsto (w_1, w_2)`, 1 -> 8 -> 8
  -> 2 (tanh, the smooth stand-in for the lecture's ReLU), trained with the
  energy loss :math:`\operatorname{mean}_i F_\infty(y_i \mid x_i)` on pairs
  with :math:`x \sim U(0, 1)`. :class:`ConditionalLatentEnergy` is not an
  ``EnergyModel``, so its loop is written here with
  ``grad_params_free_energy`` and :class:`ebm_ref.train.Adam`.

The energy is invariant under :math:`w \to -w` (and the grid is symmetric
under :math:`z \to z + \pi`), so radii are compared in absolute value.
"""

from __future__ import annotations

import math

import numpy as np

import _figkit
from ebm_ref.energies import ConditionalLatentEnergy, LatentEnergy
from ebm_ref.datasets import conditional_ellipse_data, ellipse_data, ellipse_radii
from ebm_ref.energies.latent import DEFAULT_Z_GRID
from ebm_ref.objectives import LatentEnergyLoss, LatentHingeLoss, LatentLogLoss
from ebm_ref.train import Adam, fit

W_INIT = (1.0, 0.6)
LOSS_NAMES = ("energy", "hinge (m = 1)", "log")
LOSS_COLORS = ("tab:blue", "tab:orange", "tab:green")
FIG = 3  # the first key of every random stream of this figure (see _figkit.seed_sequence)
BETAS = (0.1, 1.0, 10.0)
# the lecture's Y[1], Y[10], Y[19], Y[24] (1-based)
PICKED = (0, 9, 18, 23)


def _losses():
    return (LatentEnergyLoss(), LatentHingeLoss(margin=1.0), LatentLogLoss())


def compute_unconditional(n_steps=300, lr=0.05, seed=0, plane_points=(121, 101)):
    """Train ``w`` with the three losses and evaluate the free energies on a plane."""
    Y = ellipse_data(24, _figkit.seed_sequence(seed, FIG, 0))
    true_w = ellipse_radii(0.0)
    m0 = LatentEnergy(W_INIT, beta=np.inf)
    trained, losses, w_traj = [], [], []
    for k, obj in enumerate(_losses()):
        traj = [np.array(W_INIT)]
        m, hist = fit(m0, Y, obj, Adam(lr), n_steps, 24, _figkit.seed_sequence(seed, FIG, 1),
                      callback=lambda s, mod, l, traj=traj: traj.append(np.abs(mod.params["w"])))
        trained.append(m)
        losses.append(hist.loss)
        w_traj.append(np.array(traj))
    w_final = np.array([np.abs(m.params["w"]) for m in trained])

    # E(y, z) for the picked samples under the energy-loss model, fine z and grid z
    model = trained[0]
    z_fine = np.linspace(0.0, 2 * np.pi, 361)
    e_curves = np.array([model.joint_energy(np.repeat(Y[i : i + 1], z_fine.size, 0), z_fine) for i in PICKED])
    e_grid = np.array([model.joint_energy(np.repeat(Y[i : i + 1], DEFAULT_Z_GRID.size, 0), DEFAULT_Z_GRID)
                       for i in PICKED])
    z_check = model.argmin_z(Y[list(PICKED)])

    nx, ny = plane_points
    g1 = np.linspace(-3.0, 3.0, nx)
    g2 = np.linspace(-2.5, 2.5, ny)
    G = np.stack(np.meshgrid(g1, g2, indexing="xy"), axis=-1).reshape(-1, 2)
    F_inf = model.free_energy(G, np.inf)
    F_beta = np.array([model.free_energy(G, b) for b in BETAS])
    m_grid = DEFAULT_Z_GRID.size
    gap = F_beta - F_inf[None, :]
    # beta -> 0: F_beta -> <E>_Z (the lecture's limit); the mean over the grid by brute force
    E_all = np.array([model.joint_energy(G, z) for z in DEFAULT_Z_GRID])
    mean_E = E_all.mean(axis=0)
    return {
        "Y": Y, "true_w": true_w, "w_init": np.array(W_INIT), "w_final": w_final, "losses": losses,
        "w_traj": w_traj, "w_err": np.max(np.abs(w_final - true_w[None, :]), axis=1),
        "F_data": np.array([m.free_energy(Y, np.inf).mean() for m in trained]),
        "F_data_init": float(m0.free_energy(Y, np.inf).mean()),
        "z_fine": z_fine, "e_curves": e_curves, "e_grid": e_grid, "z_check": z_check,
        "g1": g1, "g2": g2, "F_inf": F_inf.reshape(ny, nx), "F_beta": F_beta.reshape(len(BETAS), ny, nx),
        "gap_min": gap.min(axis=1), "gap_max": gap.max(axis=1), "log_m": math.log(m_grid),
        "small_beta_dev": float(np.mean(np.abs(F_beta[0] - mean_E))),
        "argmin_small_beta": G[np.argmin(F_beta[0])], "argmin_mean_E": G[np.argmin(mean_E)],
        "mean_E_range": float(np.ptp(mean_E)),
        "n_steps": n_steps, "lr": lr, "seed": seed,
    }


def compute_conditional(n_data=512, n_steps=3000, batch_size=64, lr=0.01, seed=0):
    """Train the 1 -> 8 -> 8 -> 2 conditional model with the energy loss on F_inf."""
    x, y = conditional_ellipse_data(n_data, _figkit.seed_sequence(seed, FIG, 2))
    x_test, y_test = conditional_ellipse_data(n_data, _figkit.seed_sequence(seed, FIG, 3))
    model0 = ConditionalLatentEnergy((1, 8, 8, 2), activation="tanh", beta=np.inf, seed=_figkit.seed_sequence(seed, FIG, 4))
    opt = Adam(lr)
    rng = _figkit.rng(seed, FIG, 5)
    xs = np.linspace(0.0, 1.0, 51)[:, None]  # the lecture's x = [0 : 1/50 : 1]
    rho = ellipse_radii(xs[:, 0])

    def radii_rmse(m):
        return float(np.sqrt(np.mean((np.abs(m.decoder_weights(xs)) - rho) ** 2)))

    model = model0
    loss = np.empty(n_steps)
    perm, pos = rng.permutation(n_data), 0
    for step in range(n_steps):
        if pos + batch_size > n_data:
            perm, pos = rng.permutation(n_data), 0
        idx = perm[pos : pos + batch_size]
        pos += batch_size
        loss[step] = float(np.mean(model.free_energy(x[idx], y[idx])))
        g = model.grad_params_free_energy(x[idx], y[idx])
        model = model.with_params(opt.step(model.params, g))
    return {
        "x": x[:, 0], "y": y, "xs": xs[:, 0], "rho": rho,
        "f_init": np.abs(model0.decoder_weights(xs)), "f_final": np.abs(model.decoder_weights(xs)),
        "rmse_init": radii_rmse(model0), "rmse_final": radii_rmse(model), "loss": loss,
        "F_test_init": float(np.mean(model0.free_energy(x_test, y_test))),
        "F_test_final": float(np.mean(model.free_energy(x_test, y_test))),
        "n_data": n_data, "n_steps": n_steps, "batch_size": batch_size, "lr": lr, "seed": seed,
    }


def compute(n_steps=300, cond_steps=3000, cond_data=512, plane_points=(121, 101), seed=0):
    return {"unc": compute_unconditional(n_steps=n_steps, seed=seed, plane_points=plane_points),
            "cond": compute_conditional(n_data=cond_data, n_steps=cond_steps, seed=seed)}


def _ellipse(w, n=200):
    t = np.linspace(0.0, 2 * np.pi, n)
    return w[0] * np.cos(t), w[1] * np.sin(t)


def plot_unconditional(res):
    r = res["unc"]
    fig, axes = _figkit.subplots(2, 2, figsize=(12, 10))
    phi = np.stack([np.cos(DEFAULT_Z_GRID), np.sin(DEFAULT_Z_GRID)], axis=1)
    Y = r["Y"]
    ax = axes[0, 0]
    ax.plot(*_ellipse(r["true_w"]), color="k", lw=1, ls="--", label="generating curve rho(0) = (2, 1.5)")
    ax.scatter(Y[:, 0], Y[:, 1], s=25, color="tab:red", zorder=3, label="24 training samples Y")
    for j, i in enumerate(PICKED):
        ax.annotate(f"Y[{i + 1}]", Y[i], textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.scatter(*(r["w_init"] * phi).T, s=12, color="grey", label=f"untrained manifold, w = ({r['w_init'][0]:g}, {r['w_init'][1]:g})")
    ax.set_title("Training data and untrained model manifold\n(48 grid points z = [0 : pi/24 : 2 pi[)")
    ax.set_aspect("equal")
    _figkit.label_axes(ax, legend=dict(fontsize=8, loc="lower right"), xlabel="y1", ylabel="y2")

    ax = axes[0, 1]
    ax.scatter(Y[:, 0], Y[:, 1], s=25, color="tab:red", zorder=3, label="Y")
    for k in range(3):
        w = r["w_final"][k]
        ax.scatter(*(w * phi).T, s=10, color=LOSS_COLORS[k],
                   label=f"trained, {LOSS_NAMES[k]} loss: |w| = ({w[0]:.3f}, {w[1]:.3f})")
    ax.plot(*_ellipse(r["true_w"]), color="k", lw=1, ls="--")
    ax.set_title("Trained model manifolds (F_inf, Adam)")
    ax.set_aspect("equal")
    _figkit.label_axes(ax, legend=dict(fontsize=8, loc="lower right"), xlabel="y1", ylabel="y2")

    ax = axes[1, 0]
    for j, i in enumerate(PICKED):
        c = f"C{j}"
        ax.plot(r["z_fine"], r["e_curves"][j], color=c, lw=1.2, label=f"y = Y[{i + 1}]")
        ax.scatter(DEFAULT_Z_GRID, r["e_grid"][j], s=8, color=c)
        zc = r["z_check"][j]
        ax.axvline(zc, color=c, ls=":", lw=1)
    ax.set_xlabel("z")
    ax.set_ylabel("E(y, z)")
    ax.set_xlim(0, 2 * np.pi)
    ax.set_title("E(y, z) against z (energy-loss model); dots: grid, dotted: grid argmin z-check")
    ax.legend(fontsize=8)

    ax = axes[1, 1]
    steps = np.arange(r["w_traj"][0].shape[0])
    for k in range(3):
        ax.plot(steps, r["w_traj"][k][:, 0], color=LOSS_COLORS[k], lw=1.5, label=f"|w1|, {LOSS_NAMES[k]}")
        ax.plot(steps, r["w_traj"][k][:, 1], color=LOSS_COLORS[k], lw=1.5, ls="--", label=f"|w2|, {LOSS_NAMES[k]}")
    for v in r["true_w"]:
        ax.axhline(v, color="k", lw=0.8, ls=":")
    _figkit.label_axes(ax, xlabel="Adam step", ylabel="decoder weight",
                       title="Training w with energy / hinge / log losses\n(dotted: generating radii 2 and 1.5)",
                       legend=dict(fontsize=7, ncol=2))
    return fig


def plot_free_energy(res):
    r = res["unc"]
    fig, axes = _figkit.subplots(1, 4, figsize=(18, 4.6))
    fields = [("F_inf", r["F_inf"])] + [(f"F_beta, beta = {b:g}", r["F_beta"][k]) for k, b in enumerate(BETAS)]
    for ax, (title, F) in zip(axes, fields):
        cs = ax.contourf(r["g1"], r["g2"], F, levels=20, cmap="viridis")
        fig.colorbar(cs, ax=ax, shrink=0.85)
        ax.scatter(r["Y"][:, 0], r["Y"][:, 1], s=8, color="tab:red")
        ax.set_aspect("equal")
        ax.set_title(title)
        ax.set_xlabel("y1")
    axes[0].set_ylabel("y2")
    fig.suptitle("Free energies of the trained model over the y-plane (red: training samples)")
    return fig


def plot_conditional(res):
    c = res["cond"]
    plt = _figkit.pyplot()
    from matplotlib import cm

    fig, axes = plt.subplots(1, 4, figsize=(20, 5))
    cmap = cm.viridis
    ax = axes[0]
    sc = ax.scatter(c["y"][:, 0], c["y"][:, 1], c=c["x"], s=5, cmap=cmap)
    fig.colorbar(sc, ax=ax, label="x")
    ax.set_title(f"Training pairs (x, y), n = {c['n_data']}")
    for ax, key, title in ((axes[1], "f_init", "Untrained"), (axes[2], "f_final", "Trained")):
        for k, xv in enumerate(c["xs"]):
            ax.plot(*_ellipse(c[key][k], 100), color=cmap(xv), lw=0.8)
        ax.set_title(f"{title} model manifold, x = [0 : 1/50 : 1]")
    for ax in axes[:3]:
        ax.set_aspect("equal")
        ax.set_xlabel("y1")
        ax.set_ylabel("y2")
    lim = max(np.abs(c["y"]).max(), 1.0) * 1.1
    for ax in axes[:3]:
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
    ax = axes[3]
    for k, col in ((0, "tab:blue"), (1, "tab:orange")):
        ax.plot(c["xs"], c["rho"][:, k], color=col, lw=2, ls="--", label=f"rho_{k + 1}(x) (truth)")
        ax.plot(c["xs"], c["f_final"][:, k], color=col, lw=1.5, label=f"|f_{k + 1}(x)| trained")
        ax.plot(c["xs"], c["f_init"][:, k], color=col, lw=1, alpha=0.5, ls=":", label=f"|f_{k + 1}(x)| untrained")
    _figkit.label_axes(ax, xlabel="x", ylabel="radius", title="Decoder radii f(x), 1 -> 8 -> 8 -> 2 (tanh)",
                       legend=dict(fontsize=8))
    fig.suptitle("Conditional case: E(x, y, z) = ||y - f(x) * (cos z, sin z)||^2, energy loss on F_inf")
    return fig


def caption(res, names):
    r, c = res["unc"], res["cond"]
    rows = "\n".join(
        f"| {LOSS_NAMES[k]} | ({r['w_final'][k][0]:.3f}, {r['w_final'][k][1]:.3f}) | {r['w_err'][k]:.3f} | "
        f"{r['F_data'][k]:.4f} | {r['losses'][k][0]:.3f} -> {r['losses'][k][-1]:.3f} |"
        for k in range(3)
    )
    gaps = ", ".join(
        f"beta = {b:g}: [{r['gap_min'][k]:.3g}, {r['gap_max'][k]:.3g}] (bound {r['log_m'] / b:.3g})"
        for k, b in enumerate(BETAS)
    )
    return f"""## 3. Latent-variable EBM: the ellipse

![ellipse: data, manifolds, E(y, z), training]({names[0]})

![ellipse: free energies]({names[1]})

![ellipse: conditional case]({names[2]})

Reproduces the toy example of the lecture "Inference for latent variable EBMs" (Canziani & LeCun, NYU
Deep Learning; energy/hinge/log losses after LeCun et al. 2006, *A tutorial on energy-based learning*).
Data: 24 points `ellipse_data(24, seed={r['seed']})` on the ellipse with radii rho(0) = (2, 1.5) and
noise sd 1/20. Model `LatentEnergy(w)`, `E(y, z) = ||y - w * (cos z, sin z)||^2`, 48 grid angles, started
at w = ({r['w_init'][0]:g}, {r['w_init'][1]:g}) (mean F_inf on the data {r['F_data_init']:.3f}) and trained on F_inf with
`ebm_ref.train.fit` ({r['n_steps']} Adam steps, lr {r['lr']}, full batch). Hinge and log losses take the
most offending incorrect answer on the default 24 x 24 candidate grid.

| loss | trained abs(w) | max abs error vs (2, 1.5) | mean F_inf on data | loss first -> last step |
|---|---|---|---|---|
{rows}

All three losses recover the generating radii (a two-parameter decoder cannot collapse). The hinge loss
stays near its margin: the most offending answer lies on the trained ellipse itself, away from y, where
F is about as low as at y. Second image: on the y-plane, F_beta - F_inf lies in {gaps}, inside the
lecture's `0 <= F_beta - F_inf <= log|Z| / beta`. At beta = 0.1 F_beta approaches the grid average of E
(the beta -> 0 limit; mean abs difference {r['small_beta_dev']:.3g} against a range of
{r['mean_E_range']:.3g} of that average): its minimum moves from the ellipse to
({r['argmin_small_beta'][0]:.2f}, {r['argmin_small_beta'][1]:.2f}), next to the minimum of the average at
({r['argmin_mean_E'][0]:.2f}, {r['argmin_mean_E'][1]:.2f}).

Conditional case: `ConditionalLatentEnergy((1, 8, 8, 2), activation="tanh")` trained with the energy
loss on F_inf over {c['n_data']} pairs (x ~ U(0, 1), `conditional_ellipse_data`, seed {c['seed']}),
{c['n_steps']} Adam steps (batch {c['batch_size']}, lr {c['lr']}). RMSE of abs(f(x)) against rho(x) on
x = [0 : 1/50 : 1]: {c['rmse_init']:.3f} untrained -> {c['rmse_final']:.3f} trained (radii range 1.5
to {c['rho'].max():.1f}); held-out mean F_inf {c['F_test_init']:.2f} -> {c['F_test_final']:.4f}.
"""


def main(out_dir, seed=0, n_steps=300, cond_steps=3000):
    res = compute(n_steps=n_steps, cond_steps=cond_steps, seed=seed)
    plots = {
        "fig_03_latent_ellipse.png": plot_unconditional,
        "fig_03_latent_ellipse_free_energy.png": plot_free_energy,
        "fig_03_latent_ellipse_conditional.png": plot_conditional,
    }
    return _figkit.write_figures(out_dir, res, plots, caption)
