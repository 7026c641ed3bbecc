r"""Figure 6: Gibbs, random-walk MH and Gibbs-with-gradients on an Ising model and an RBM.

Reproduces the sampler comparison of Grathwohl et al. (2021), "Oops I took
a gradient" (Gibbs-with-gradients, GWG; Zijing Ou's talk "EBM learning and
inference" presents it), on two models small enough for exact marginals:

* an Ising model on the periodic 4 x 4 lattice (16 spins, coupling
  ``BETA`` on every bond, fields :math:`h_i \sim N(0, \text{FIELD\_SD}^2)`),
  sampled by sequential single-site Gibbs sweeps;
* an RBM with 16 visible and 8 hidden units,
  :math:`W_{ij} \sim N(0, \text{RBM\_SCALE}^2)`, biases
  :math:`N(0, 0.5^2)`, sampled by block Gibbs (all visible units from
  :math:`p(v|h)` after :math:`h \sim p(h|v)`).

Samplers: :func:`ebm_ref.samplers.gibbs`, :func:`ebm_ref.samplers.rwmh`
(one uniformly chosen unit proposed for a flip) and
:func:`ebm_ref.samplers.gwg` (one gradient-informed flip). Fair step
count: a GWG or RW-MH step changes at most one unit, a Gibbs sweep (or an
RBM block step) redraws all :math:`d = 16` units, so the horizontal axis
counts **unit updates per chain** (one sweep = 16) and the flip samplers
are run for 16 steps per sweep-equivalent, saved every 16 steps. Cost per
second is not drawn: a figure carries statistics only, and
``python -m ebm_ref bench samplers`` measures the samplers' speed.

Metrics: the RMSE over units of the running estimate of the marginal
means :math:`\mathbb E[x_i]` (averaged over all chains and all saved
states so far, from uniform random starts, no burn-in) against the exact
marginals from :func:`ebm_ref.exact.probabilities`; and the effective
sample size of a fixed random projection :math:`u^\top x`
(:math:`u \sim N(0, I)`) over the second half of the run, per
sweep-equivalent and chain, by the figures' one ESS estimator
(``_figkit.ess``: Sokal's automatic window on the autocorrelation pooled
over chains).
"""

from __future__ import annotations

import numpy as np

import _figkit
from ebm_ref import exact
from ebm_ref import limit_threads
from ebm_ref.energies import RBM, Ising
from ebm_ref.samplers import gibbs, gwg, rwmh

L = 4
BETA = 0.3
FIELD_SD = 0.2
RBM_HIDDEN = 8
RBM_SCALE = 1.0
SAMPLERS = ("Gibbs", "RW-MH", "GWG")
COLORS = {"Gibbs": "tab:green", "RW-MH": "tab:gray", "GWG": "tab:purple"}
FIG = 6  # the first key of every random stream of this figure (see _figkit.seed_sequence)


def make_models(seed=0):
    """The lattice Ising model (spins) and the random RBM of the figure."""
    rng = _figkit.rng(seed, FIG, 0)
    J = Ising.lattice(L, BETA).params["J"]
    ising = Ising(J, rng.normal(0.0, FIELD_SD, size=L * L), domain="spin")
    d = L * L
    rbm = RBM(
        rng.normal(0.0, RBM_SCALE, size=(d, RBM_HIDDEN)),
        rng.normal(0.0, 0.5, size=d),
        rng.normal(0.0, 0.5, size=RBM_HIDDEN),
    )
    return {"Ising 4x4": ising, "RBM 16-8": rbm}


def _run(name, model, x0, n_sweeps, seed, thin):
    d = model.n_features
    if name == "Gibbs":
        return gibbs(model, x0, n_sweeps, seed, thin=thin)
    if name == "GWG":
        return gwg(model, x0, n_sweeps * d, seed, thin=thin * d if thin else 0)
    return rwmh(model, x0, n_sweeps * d, 1.0, seed, thin=thin * d if thin else 0)


def compute(n_sweeps=2000, n_chains=128, seed=0):
    r"""Run the three samplers on both models.

    Returns
    -------
    dict
        ``models[model]`` with ``marginals`` (exact), and per sampler
        ``rmse`` (per sweep-equivalent), ``ess`` (second half),
        ``ess_per_sweep`` (per sweep-equivalent and chain), ``acceptance``;
        plus the settings.
    """
    out = {"models": {}, "n_sweeps": n_sweeps, "n_chains": n_chains, "seed": seed}
    # one Numba and one OpenBLAS thread: the exact marginals (a matrix product) then have the
    # same bits whatever the number of cores, and so has the PNG
    with limit_threads(1):
        for mi, (mname, model) in enumerate(make_models(seed).items()):
            d = model.n_features
            states, probs = exact.probabilities(model)
            marg = probs @ states
            rng = _figkit.rng(seed, FIG, 1, mi)
            x0 = (rng.random((n_chains, d)) < 0.5).astype(np.float64)
            if model.domain == "spin":
                x0 = 2.0 * x0 - 1.0
            u = rng.normal(size=d)
            entry = {"marginals": marg, "samplers": {}}
            for si, sname in enumerate(SAMPLERS):
                res = _run(sname, model, x0, n_sweeps, _figkit.seed_sequence(seed, FIG, 2, mi, si), 1)
                tr = res.trace  # (n_sweeps, n_chains, d)
                running = np.cumsum(tr.mean(axis=1), axis=0) / np.arange(1, n_sweeps + 1)[:, None]
                rmse = np.sqrt(np.mean((running - marg) ** 2, axis=1))
                ess = _figkit.ess(tr[n_sweeps // 2 :] @ u)
                half = n_sweeps - n_sweeps // 2
                entry["samplers"][sname] = {
                    "rmse": rmse,
                    "ess": ess,
                    "ess_per_sweep": ess / (half * n_chains),
                    "acceptance": None if res.acceptance_rate is None else float(np.mean(res.acceptance_rate)),
                }
            out["models"][mname] = entry
    return out


def plot(res):
    names = list(res["models"])
    fig, axes = _figkit.subplots(len(names), 2, figsize=(11, 4.2 * len(names)))
    for r, mname in enumerate(names):
        ent = res["models"][mname]["samplers"]
        ax1, ax2 = axes[r]
        for s in SAMPLERS:
            e = ent[s]
            updates = 16 * np.arange(1, len(e["rmse"]) + 1)
            ax1.loglog(updates, e["rmse"], color=COLORS[s], label=s)
        _figkit.label_axes(ax1, xlabel="unit updates per chain (Gibbs sweep = 16)", ylabel="RMSE of marginal means",
                           grid=dict(alpha=0.3, which="both"), legend=dict(fontsize=9),
                           title=f"{mname}: marginal error vs updates")
        vals = [ent[s]["ess_per_sweep"] for s in SAMPLERS]
        bars = ax2.bar(SAMPLERS, vals, color=[COLORS[s] for s in SAMPLERS])
        for b, s in zip(bars, SAMPLERS):
            acc = ent[s]["acceptance"]
            label = f"{ent[s]['ess_per_sweep']:.3f}" + ("" if acc is None else f" (acc. {acc:.2f})")
            ax2.annotate(label, (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom", fontsize=8)
        ax2.set_yscale("log")
        ax2.set_ylabel("ESS of $u^T x$ per sweep-equivalent per chain")
        ax2.set_title(f"{mname}: effective samples per 16 unit updates")
    return fig


def caption(res, names):
    lines = [
        "## Sampling discrete EBMs: Gibbs, random-walk MH and Gibbs-with-gradients",
        "",
        f"![discrete samplers]({names[0]})",
        "",
        "Reproduces the sampler comparison of Grathwohl et al. 2021 (Gibbs-with-gradients; in Zijing Ou's "
        "talk \"EBM learning and inference\") on models with exact marginals (`ebm_ref.exact.probabilities`): "
        f"a periodic 4x4 Ising model (coupling {BETA} on every bond, fields N(0, {FIELD_SD}^2)) and an RBM with 16 "
        f"visible and {RBM_HIDDEN} hidden units (W ~ N(0, {RBM_SCALE}^2), biases N(0, 0.5^2)). "
        f"{res['n_chains']} chains from uniform random states, {res['n_sweeps']} sweep-equivalents, seed "
        f"{res['seed']}. Step accounting: GWG and random-walk MH change at most one unit per step, a Gibbs sweep "
        "(Ising: sequential single-site; RBM: one block step) redraws all 16 units, so one sweep is compared "
        "with 16 flip steps. Error: RMSE over units of the running mean of all saved states against the exact "
        "marginal means. ESS: of a fixed random projection u.x over the second half of the run; "
        f"{_figkit.ESS_METHOD}.",
        "",
        _figkit.markdown_table(
            ("model", "sampler", "acceptance", "final RMSE", "ESS per sweep-eq. per chain"),
            [
                (mname, s, "-" if e["acceptance"] is None else f"{e['acceptance']:.3f}", f"{e['rmse'][-1]:.4f}",
                 f"{e['ess_per_sweep']:.3f}")
                for mname, ent in res["models"].items()
                for s, e in ((s, ent["samplers"][s]) for s in SAMPLERS)
            ],
        ),
        "",
    ]
    for mname, ent in res["models"].items():
        e = ent["samplers"]
        g, r = e["GWG"], e["RW-MH"]
        lines.append(
            f"- {mname}: per unit update GWG has {g['ess_per_sweep'] / r['ess_per_sweep']:.1f}x the ESS of "
            f"random-walk MH (acceptance {g['acceptance']:.2f} vs {r['acceptance']:.2f}: it proposes the flips the "
            f"model favours); a Gibbs sweep gives {e['Gibbs']['ess_per_sweep'] / g['ess_per_sweep']:.1f}x the ESS "
            "of 16 GWG steps."
        )
    lines += [
        "",
        "On these 16-unit models a Gibbs sweep is hard to beat (the conditionals are exact and local); GWG's "
        "advantage, as in Grathwohl et al., is over uninformed single-flip Metropolis-Hastings at equal numbers "
        "of flips: a uniform proposal spends many of its flips on units that the model does not want changed, "
        "and they are rejected.",
    ]
    return "\n".join(lines) + "\n"


def main(out_dir, seed=0, n_sweeps=2000, n_chains=128):
    res = compute(n_sweeps=n_sweeps, n_chains=n_chains, seed=seed)
    return _figkit.write_figures(out_dir, res, {"fig_06_discrete_sampling.png": plot}, caption)
