r"""Figure 5: sampling a Gaussian-Bernoulli RBM (Liao et al. 2022).

After "Gaussian-Bernoulli RBMs without tears" (Liao, Kornblith, Ren, Fleet &
Hinton 2022) and the GRBM slides of Renjie Liao's lecture 9: a GRBM with 2
visible and 6 hidden units is fitted to a 2-D mixture of four Gaussians by
exact maximum likelihood (:class:`ebm_ref.objectives.ExactMLE`, the GRBM's
``log Z`` is a sum over the 64 hidden states), then sampled from noise with

* block Gibbs (:func:`ebm_ref.samplers.gibbs`),
* Langevin on the free energy :math:`F(v)`, unadjusted (ULA) and adjusted
  (MALA) (:func:`ebm_ref.samplers.langevin`),
* Gibbs-Langevin, unadjusted and adjusted
  (:func:`ebm_ref.samplers.gibbs_langevin`).

The exact visible marginal is the mixture :math:`p(v) = \sum_h \pi_h
\mathcal N(v; \mu + W h, \operatorname{diag}\sigma^2)`
(:meth:`GRBM.visible_mixture`). The distance of a set of chains to it is the
total variation between the chains' histogram on a 20 x 20 grid of bins over
:math:`[-3.5, 3.5]^2` (plus one bin for the outside) and the exact bin
probabilities of the mixture (products of normal CDF differences, no
sampling). A finite set of ``n`` exact draws has a TV of its own; the
"floor" is its mean over independent sets of exact draws of the same size.
"""

from __future__ import annotations

import numpy as np
from scipy import special

import _figkit
from ebm_ref.energies import GRBM, GaussianMixture
from ebm_ref.objectives import ExactMLE
from ebm_ref.samplers import gibbs, gibbs_langevin, langevin
from ebm_ref.train import Adam, fit

DATA_MEANS = np.array([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]])
DATA_WEIGHTS = np.array([0.4, 0.1, 0.2, 0.3])
DATA_SD = 0.4
N_HIDDEN = 6
EDGES = np.linspace(-3.5, 3.5, 21)
SAMPLERS = ("Gibbs", "Langevin (ULA)", "Langevin + MH (MALA)", "Gibbs-Langevin", "Gibbs-Langevin + MH")
COLORS = ("k", "tab:red", "tab:blue", "tab:orange", "tab:green")
FIG = 5  # the first key of every random stream of this figure (see _figkit.seed_sequence)


def data_mixture():
    return GaussianMixture(np.log(DATA_WEIGHTS), DATA_MEANS, np.full((4, 2), np.log(DATA_SD)))


def train_grbm(n_data=2000, n_steps=1500, seed=0):
    """Exact-gradient maximum likelihood (Adam, lr 0.05, batches of 500)."""
    gm = data_mixture()
    data = gm.sample(n_data, _figkit.seed_sequence(seed, FIG, 0))
    rng = _figkit.rng(seed, FIG, 1)
    m0 = GRBM(rng.normal(0.0, 1.0, (2, N_HIDDEN)), data.mean(axis=0), np.zeros(N_HIDDEN), np.full(2, np.log(0.5)))
    model, hist = fit(m0, data, ExactMLE(), Adam(0.05), n_steps, min(500, n_data), _figkit.seed_sequence(seed, FIG, 2))
    return model, data, hist


def bin_probs(weights, means, var):
    """Exact mixture mass of each bin of EDGES x EDGES (diagonal covariance: product of 1-D masses)."""
    sd = np.sqrt(var)
    p0 = np.diff(special.ndtr((EDGES[None, :] - means[:, 0:1]) / sd[0]), axis=1)
    p1 = np.diff(special.ndtr((EDGES[None, :] - means[:, 1:2]) / sd[1]), axis=1)
    return np.einsum("k,ki,kj->ij", weights, p0, p1)


def tv_to_exact(x, P):
    """Binned total variation (the outside of the grid is one more bin)."""
    counts, _, _ = np.histogram2d(x[:, 0], x[:, 1], bins=[EDGES, EDGES])
    n = x.shape[0]
    return 0.5 * (np.abs(counts / n - P).sum() + abs((n - counts.sum()) / n - (1.0 - P.sum())))


def exact_samples(weights, means, var, n, seed):
    rng = np.random.default_rng(seed)
    comp = rng.choice(weights.size, size=n, p=weights)
    return means[comp] + np.sqrt(var) * rng.standard_normal((n, 2))


def _run(k, model, x0, n_steps, eta, seed, thin):
    if k == 0:
        return gibbs(model, x0, n_steps, seed, thin=thin)
    if k in (1, 2):
        return langevin(model, x0, n_steps, eta, seed, adjust=(k == 2), thin=thin)
    return gibbs_langevin(model, x0, n_steps, eta, seed, adjust=(k == 4), thin=thin)


def compute(n_chains=5000, n_steps=300, thin=3, eta=0.05, sweep=(0.02, 0.1), n_floor=5,
            train_steps=1500, seed=0):
    """Train the GRBM, run the five samplers from N(0, I), and measure TV to the exact marginal."""
    model, data, hist = train_grbm(n_steps=train_steps, seed=seed)
    weights, means, var = model.visible_mixture()
    P = bin_probs(weights, means, var)
    floors = np.array([tv_to_exact(exact_samples(weights, means, var, n_chains, _figkit.seed_sequence(seed, FIG, 3, i)), P)
                       for i in range(n_floor)])
    x0 = _figkit.rng(seed, FIG, 4).standard_normal((n_chains, 2))
    # one stream for every sampler and step size (common random numbers: the curves differ by the sampler)
    s_run = _figkit.seed_sequence(seed, FIG, 5)
    steps = thin * np.arange(1, n_steps // thin + 1)
    tv_curve = np.empty((len(SAMPLERS), steps.size))
    final_x, acc = [], []
    for k in range(len(SAMPLERS)):
        r = _run(k, model, x0, n_steps, eta, s_run, thin)
        tv_curve[k] = [tv_to_exact(r.trace[i], P) for i in range(steps.size)]
        final_x.append(r.x)
        acc.append(np.nan if r.acceptance_rate is None else float(np.mean(r.acceptance_rate)))
    # final TV against the step size, for the four Langevin-type samplers
    etas = np.array(sorted(set(sweep) | {eta}))
    tv_eta = np.empty((4, etas.size))
    acc_eta = np.full((4, etas.size), np.nan)
    for j, e in enumerate(etas):
        for k in range(1, 5):
            if e == eta:
                tv_eta[k - 1, j] = tv_curve[k, -1]
                acc_eta[k - 1, j] = acc[k]
                continue
            r = _run(k, model, x0, n_steps, e, s_run, 0)
            tv_eta[k - 1, j] = tv_to_exact(r.x, P)
            if r.acceptance_rate is not None:
                acc_eta[k - 1, j] = float(np.mean(r.acceptance_rate))
    gm = data_mixture()
    from ebm_ref import exact

    return {
        "model": model, "data": data, "mixture": (weights, means, var), "P": P,
        "ll_model": float(np.mean(exact.log_likelihood(model, data))),
        "ll_true": float(np.mean(-gm.energy(data))), "train_loss": hist.loss,
        "exact_x": exact_samples(weights, means, var, n_chains, _figkit.seed_sequence(seed, FIG, 6)),
        "floors": floors, "floor": float(floors.mean()), "floor_sd": float(floors.std(ddof=1)),
        "steps": steps, "tv_curve": tv_curve, "final_x": final_x, "acc": np.array(acc),
        "etas": etas, "tv_eta": tv_eta, "acc_eta": acc_eta,
        "n_chains": n_chains, "n_steps": n_steps, "eta": eta, "seed": seed, "train_steps": train_steps,
    }


def _log_density_grid(model, lo=-3.0, hi=3.0, n=150):
    from ebm_ref import exact

    g = np.linspace(lo, hi, n)
    X, Y = np.meshgrid(g, g, indexing="xy")
    logp = -model.energy(np.stack([X.ravel(), Y.ravel()], axis=1)) - exact.log_partition(model)
    return g, logp.reshape(n, n)


def plot_samples(res, n_show=2000):
    g, logp = _log_density_grid(res["model"])
    fig, axes = _figkit.subplots(2, 3, figsize=(14, 9.5))
    panels = [("exact samples (mixture)", res["exact_x"], tv_to_exact(res["exact_x"], res["P"]), np.nan)]
    for k in range(len(SAMPLERS)):
        panels.append((SAMPLERS[k], res["final_x"][k], res["tv_curve"][k, -1], res["acc"][k]))
    for ax, (name, x, tv, acc) in zip(axes.ravel(), panels):
        ax.contour(g, g, np.exp(logp), levels=8, colors="grey", linewidths=0.8)
        ax.scatter(x[:n_show, 0], x[:n_show, 1], s=2, alpha=0.5, color="tab:purple")
        extra = "" if np.isnan(acc) else f", acceptance {acc:.2f}"
        ax.set_title(f"{name}\nTV to exact {tv:.3f}{extra}", fontsize=10)
        ax.set_xlim(-3, 3)
        ax.set_ylim(-3, 3)
        ax.set_aspect("equal")
    fig.suptitle(f"GRBM (2 visible, {N_HIDDEN} hidden) samples after {res['n_steps']} steps from N(0, I), "
                 f"step size {res['eta']:g}; contours: exact marginal density")
    return fig


def plot_tv(res):
    fig, axes = _figkit.subplots(1, 2, figsize=(13, 4.8))
    ax = axes[0]
    for k in range(len(SAMPLERS)):
        ax.plot(res["steps"], res["tv_curve"][k], color=COLORS[k], lw=1.6, label=SAMPLERS[k])
    ax.axhspan(res["floor"] - 2 * res["floor_sd"], res["floor"] + 2 * res["floor_sd"], color="grey", alpha=0.3,
               label="exact draws of the same size (mean +- 2 sd)")
    ax.set_xscale("log")
    _figkit.label_axes(ax, xlabel="sampler step", ylabel="binned TV to the exact marginal",
                       title=f"Convergence from N(0, I), {res['n_chains']} chains, step size {res['eta']:g}",
                       legend=dict(fontsize=8), grid=dict(alpha=0.3))
    ax = axes[1]
    for k in range(1, 5):
        ax.plot(res["etas"], res["tv_eta"][k - 1], "o-", color=COLORS[k], label=SAMPLERS[k])
    ax.axhline(res["tv_curve"][0, -1], color="k", ls="--", lw=1, label="Gibbs (no step size)")
    ax.axhspan(res["floor"] - 2 * res["floor_sd"], res["floor"] + 2 * res["floor_sd"], color="grey", alpha=0.3)
    ax.set_xscale("log")
    _figkit.label_axes(ax, xlabel="step size eta", ylabel=f"TV after {res['n_steps']} steps",
                       title="Step-size bias: the MH correction removes it", legend=dict(fontsize=8),
                       grid=dict(alpha=0.3))
    return fig


def caption(res, names):
    steps = res["steps"]

    def at(k, s):
        return res["tv_curve"][k, int(np.argmin(np.abs(steps - s)))]

    marks = [s for s in (10, 50) if s < res["n_steps"]]
    head = " | ".join(f"TV at step {s}" for s in marks)
    rows = []
    for k in range(len(SAMPLERS)):
        acc = "-" if np.isnan(res["acc"][k]) else f"{res['acc'][k]:.2f}"
        eta_tv = "" if k == 0 else ", ".join(
            f"{e:g}: {res['tv_eta'][k - 1, j]:.3f}" for j, e in enumerate(res["etas"]))
        early = " | ".join(f"{at(k, s):.3f}" for s in marks)
        rows.append(f"| {SAMPLERS[k]} | {acc} | {early} | {res['tv_curve'][k, -1]:.3f} | {eta_tv or '-'} |")
    table = "\n".join(rows)
    w, _, var = res["mixture"]
    return f"""## 5. Sampling a Gaussian-Bernoulli RBM: Gibbs, Langevin and Gibbs-Langevin

![GRBM samples]({names[0]})

![GRBM sampler distances]({names[1]})

Reproduces the sampler comparison of Liao et al. 2022, *Gaussian-Bernoulli RBMs without tears* (the
samplers of Table 1 on MNIST in Renjie Liao's lecture 9), on a 2-D toy problem where the exact marginal
is known. A GRBM with 2 visible and {N_HIDDEN} hidden units is fitted by exact maximum likelihood
(`ExactMLE`, Adam lr 0.05, {res['train_steps']} steps of batches of 500) to 2000 draws of a mixture of
four Gaussians (means (+-1, +-1), sd {DATA_SD}, weights {', '.join(f'{v:g}' for v in DATA_WEIGHTS)});
average log-likelihood {res['ll_model']:.3f} against {res['ll_true']:.3f} for the generating mixture;
learned sigma^2 = ({var[0]:.3f}, {var[1]:.3f}). Its exact visible marginal is the 64-component mixture
of `GRBM.visible_mixture()`. {res['n_chains']} chains start from N(0, I) (seed {res['seed']}) and run
{res['n_steps']} steps of each sampler (one step: h|v then v|h for Gibbs; one proposal for Langevin;
h|v then one Langevin proposal for Gibbs-Langevin), step size {res['eta']:g} unless stated.

Distance: total variation between the chains' histogram on 20 x 20 bins over [-3.5, 3.5]^2 (+1 outside
bin) and the exact bin masses of the mixture (normal CDFs). Exact draws of the same size give TV
{res['floor']:.3f} +- {res['floor_sd']:.3f} (mean +- sd over {len(res['floors'])} sets): the floor
that any correct sampler reaches.

| sampler | acceptance | {head} | TV at step {res['n_steps']} | TV at step {res['n_steps']} by step size |
|---|---|{'---|' * len(marks)}---|---|
{table}

The adjusted samplers (MALA, Gibbs-Langevin + MH) and Gibbs reach the floor at every step size; the
unadjusted ones stay above it by an amount that grows with the step size (their stationary law is
the O(eta)-biased one). With the same step size Gibbs-Langevin, whose Langevin move targets the
Gaussian p(v | h), behaves like Langevin on F(v) here; in 2-D, block Gibbs (exact conditionals) mixes
fastest.
"""


def main(out_dir, seed=0, n_chains=5000, n_steps=300):
    res = compute(n_chains=n_chains, n_steps=n_steps, seed=seed)
    plots = {"fig_05_grbm_sampling.png": plot_samples, "fig_05_grbm_sampling_tv.png": plot_tv}
    return _figkit.write_figures(out_dir, res, plots, caption)
