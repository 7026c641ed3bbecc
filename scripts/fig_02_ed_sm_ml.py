r"""Figure 2: energy discrepancy interpolates between score matching and maximum likelihood.

Reproduces the "connections to score matching and maximum likelihood" slide
of Zijing Ou's talk "Training EBMs with energy discrepancies" (Schröder, Ou
et al. 2023): the family :math:`p_\rho = \rho g_1 + (1-\rho) g_2` with
:math:`g_{1,2} = N(\mp 2, 1)` (the slide does not give the components; this
choice keeps the modes distinct but overlapping), data from
:math:`p_{0.2}`, and as functions of :math:`\rho \in (0, 1)`:

* the energy discrepancy with Gaussian perturbation of variance :math:`t`,
  :math:`\mathrm{ED}_t(\rho) = \mathrm{NLL}(\rho) - \mathrm{NLL}_t(\rho)`
  where :math:`\mathrm{NLL}_t` is the cross-entropy of the two laws after
  adding :math:`N(0, t)` noise (both mixtures stay Gaussian mixtures with
  component variance :math:`1 + t`, so this is exact by quadrature);
* score matching, the Fisher divergence
  :math:`\tfrac12\mathbb E_{p_{0.2}}[(\partial_x\log p_{0.2} - \partial_x\log p_\rho)^2]`;
* the negative log-likelihood :math:`-\mathbb E_{p_{0.2}}\log p_\rho`,

each shifted to minimum 0. Lines are quadrature values; markers are the
package's sample estimators (:class:`EnergyDiscrepancy` with ``w = 0``,
:class:`ScoreMatching`, and the mean energy of
:meth:`GaussianMixture.two_component`, whose :math:`\log Z = 0`).

The two limits (Schröder et al. 2023): :math:`\mathrm{ED}_t/t \to` SM
(up to a constant) as :math:`t \to 0`, and :math:`\mathrm{ED}_t \to`
NLL up to a constant, with error at most :math:`W_2^2/(2t)`, as
:math:`t \to \infty`. The right panel measures both distances over
:math:`t`.
"""

from __future__ import annotations

import math

import numpy as np

import _figkit
from ebm_ref.energies import GaussianMixture
from ebm_ref.objectives import EnergyDiscrepancy, ScoreMatching

RHO_DATA = 0.2
MEAN = 2.0
FIG = 2  # the first key of every random stream of this figure (see _figkit.seed_sequence)
T_SHOWN = (0.05, 0.5, 5.0, 50.0)

_Y = np.linspace(-30.0, 30.0, 12001)
_DY = _Y[1] - _Y[0]


def _log_mix(y, rho, var):
    """log of rho N(-MEAN, var) + (1 - rho) N(MEAN, var)."""
    a = math.log(rho) - 0.5 * (y + MEAN) ** 2 / var
    b = math.log1p(-rho) - 0.5 * (y - MEAN) ** 2 / var
    return np.logaddexp(a, b) - 0.5 * math.log(2.0 * math.pi * var)


def _score(y, rho):
    a = math.log(rho) - 0.5 * (y + MEAN) ** 2
    b = math.log1p(-rho) - 0.5 * (y - MEAN) ** 2
    r = np.exp(a - np.logaddexp(a, b))
    return -(r * (y + MEAN) + (1.0 - r) * (y - MEAN))


def exact_curves(rhos, ts):
    r"""Quadrature values of NLL, SM (grid step 0.005 on [-30, 30]) and ED_t (12001 points over +-12 sd of the perturbed laws)."""
    p = np.exp(_log_mix(_Y, RHO_DATA, 1.0))
    s0 = _score(_Y, RHO_DATA)
    nll = np.array([-(p * _log_mix(_Y, r, 1.0)).sum() * _DY for r in rhos])
    sm = np.array([0.5 * (p * (s0 - _score(_Y, r)) ** 2).sum() * _DY for r in rhos])
    ed = np.empty((len(ts), len(rhos)))
    for i, t in enumerate(ts):
        # the perturbed laws have component sd sqrt(1 + t): cover +-12 sd of them
        yt = np.linspace(-1.0, 1.0, 12001) * (MEAN + 12.0 * math.sqrt(1.0 + t))
        dyt = yt[1] - yt[0]
        pt = np.exp(_log_mix(yt, RHO_DATA, 1.0 + t))
        ed[i] = nll - np.array([-(pt * _log_mix(yt, r, 1.0 + t)).sum() * dyt for r in rhos])
    return nll, sm, ed


def _shift(c):
    return c - c.min(axis=-1, keepdims=True)


def distances(rhos, nll, sm, ed, ts):
    r"""Sup distances after subtracting each curve's value at the true weight 0.2.

    ``d_sm[i] = max |ED_t/t - SM| / range(SM)``, ``d_nll[i] = max |ED_t - NLL| / range(NLL)``.
    All exact curves are minimised at 0.2 (each is a divergence from the data law), so this is
    the shift to minimum 0 without the grid-argmin jumps of a shift by the sampled minimum.
    """
    ts = np.asarray(ts, float)
    i0 = int(np.argmin(np.abs(rhos - RHO_DATA)))
    s_sm, s_nll = sm - sm[i0], nll - nll[i0]
    s_ed = ed - ed[:, i0:i0 + 1]
    d_sm = np.max(np.abs(s_ed / ts[:, None] - s_sm), axis=1) / s_sm.max()
    d_nll = np.max(np.abs(s_ed - s_nll), axis=1) / s_nll.max()
    return d_sm, d_nll


def compute(n_data=3000, n_neg=32, n_rho=49, n_rho_est=25, ts=T_SHOWN, n_sweep=41, n_big=20000, seed=0):
    """Run the experiment; returns a dict of arrays and numbers."""
    rhos = np.linspace(0.02, 0.98, n_rho)
    nll, sm, ed = exact_curves(rhos, ts)
    t_sweep = np.logspace(-2, 2.5, n_sweep)
    nll_s, sm_s, ed_s = exact_curves(rhos, t_sweep)
    d_sm, d_nll = distances(rhos, nll_s, sm_s, ed_s, t_sweep)
    d_sm_shown, d_nll_shown = distances(rhos, nll, sm, ed, ts)

    data_model = GaussianMixture.two_component(RHO_DATA, -MEAN, MEAN)
    s_data, s_big = _figkit.seed_sequence(seed, FIG, 0), _figkit.seed_sequence(seed, FIG, 1)
    x = data_model.sample(n_data, s_data)
    x_big = data_model.sample(n_big, s_big)
    rho_est = np.linspace(0.02, 0.98, n_rho_est)
    sm_obj = ScoreMatching()
    est_sm = np.array([sm_obj.value(GaussianMixture.two_component(r, -MEAN, MEAN), x_big) for r in rho_est])
    est_nll = np.array([GaussianMixture.two_component(r, -MEAN, MEAN).energy(x_big).mean() for r in rho_est])
    est_ed = np.empty((len(ts), n_rho_est))
    for i, t in enumerate(ts):
        obj = EnergyDiscrepancy("gaussian", t=t, m=n_neg, w=0.0)
        # one noise draw for every rho (common random numbers), so the curve is smooth in rho
        seed_t = _figkit.seed_sequence(seed, FIG, 2, i)
        est_ed[i] = [obj.value(GaussianMixture.two_component(r, -MEAN, MEAN), x, seed=seed_t) for r in rho_est]
    # exact values at the estimator's rho grid (for the estimator-vs-quadrature check)
    nll_e, sm_e, ed_e = exact_curves(rho_est, ts)
    return {
        "rhos": rhos, "nll": nll, "sm": sm, "ed": ed, "ts": np.asarray(ts, float),
        "t_sweep": t_sweep, "d_sm": d_sm, "d_nll": d_nll, "d_sm_shown": d_sm_shown, "d_nll_shown": d_nll_shown,
        "rho_est": rho_est, "est_sm": est_sm, "est_nll": est_nll, "est_ed": est_ed,
        "exact_at_est": {"nll": nll_e, "sm": sm_e, "ed": ed_e},
        "argmin_exact": {"sm": rhos[np.argmin(sm)], "nll": rhos[np.argmin(nll)],
                         "ed": rhos[np.argmin(ed, axis=1)]},
        "argmin_est": {"sm": rho_est[np.argmin(est_sm)], "nll": rho_est[np.argmin(est_nll)],
                       "ed": rho_est[np.argmin(est_ed, axis=1)]},
        "est_err": {
            "sm": float(np.max(np.abs(_shift(est_sm) - _shift(sm_e)))),
            "nll": float(np.max(np.abs(_shift(est_nll) - _shift(nll_e)))),
            "ed": np.max(np.abs(_shift(est_ed) - _shift(ed_e)), axis=1),
        },
        "n_data": n_data, "n_neg": n_neg, "n_big": n_big, "seed": seed,
    }


def plot(res):
    plt = _figkit.pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    ax = axes[0]
    rhos, re = res["rhos"], res["rho_est"]
    ax.plot(rhos, _shift(res["sm"]), color="k", lw=2.5, label="score matching (Fisher div.)")
    ax.plot(re, _shift(res["est_sm"]), "k^", ms=4)
    ax.plot(rhos, _shift(res["nll"]), color="tab:red", lw=2.5, label="negative log-likelihood")
    ax.plot(re, _shift(res["est_nll"]), "v", color="tab:red", ms=4)
    cmap = plt.get_cmap("viridis")
    for i, t in enumerate(res["ts"]):
        c = cmap(i / max(1, len(res["ts"]) - 1) * 0.9)
        ax.plot(rhos, _shift(res["ed"][i]), color=c, lw=1.8, ls="--", label=f"ED, t = {t:g}")
        ax.plot(re, _shift(res["est_ed"][i]), "o", color=c, ms=3.5)
    ax.axvline(RHO_DATA, color="grey", lw=0.8, ls=":")
    _figkit.label_axes(ax, xlabel=r"mixture weight $\rho$", ylabel="loss, shifted to minimum 0",
                       title=r"Data $p_{0.2}$, model $p_\rho=\rho N(-2,1)+(1-\rho)N(2,1)$" + "\n(lines: quadrature; markers: ebm_ref estimators)",
                       legend=dict(fontsize=8, loc="upper center"), grid=dict(alpha=0.3))

    ax = axes[1]
    ts = res["t_sweep"]
    ax.loglog(ts, res["d_sm"], color="k", lw=2, label=r"$\max_\rho|\mathrm{ED}_t/t-\mathrm{SM}|$ / range(SM)")
    ax.loglog(ts, res["d_nll"], color="tab:red", lw=2, label=r"$\max_\rho|\mathrm{ED}_t-\mathrm{NLL}|$ / range(NLL)")
    ax.loglog(res["ts"], res["d_sm_shown"], "ko", ms=5)
    ax.loglog(res["ts"], res["d_nll_shown"], "o", color="tab:red", ms=5)
    _figkit.label_axes(ax, xlabel="perturbation variance t",
                       ylabel="relative sup distance (curves shifted to 0 at rho = 0.2)",
                       title="ED/t tends to SM as t -> 0, ED tends to NLL as t -> infinity", legend=dict(fontsize=9),
                       grid=dict(alpha=0.3, which="both"))
    return fig


def caption(res, names):
    rows = "\n".join(
        f"| {t:g} | {res['argmin_exact']['ed'][i]:.2f} | {res['argmin_est']['ed'][i]:.2f} | "
        f"{_shift(res['ed'][i]).max():.3f} | {res['est_err']['ed'][i]:.3f} | {res['d_sm_shown'][i]:.3f} | "
        f"{res['d_nll_shown'][i]:.3f} |"
        for i, t in enumerate(res["ts"])
    )
    return f"""## 2. Energy discrepancy between score matching and maximum likelihood

![ED between SM and ML]({names[0]})

Reproduces the "connections to score matching and maximum likelihood" slide of Zijing Ou's talk
"Training EBMs with energy discrepancies" (Schröder, Ou, Lim, Li, Vollmer & Duncan 2023, *Energy
discrepancies: a score-independent loss for energy-based models*). Model family
`GaussianMixture.two_component(rho, -2, 2)` (`p_rho = rho N(-2,1) + (1-rho) N(2,1)`; the slide does
not give the components), data from `p_0.2`. Lines: quadrature on a fine grid (ED with Gaussian noise of
variance t is exact there, the perturbed mixtures staying Gaussian). Markers: the package's estimators on
samples (seed {res['seed']}): `EnergyDiscrepancy("gaussian", t, m={res['n_neg']}, w=0)` on
{res['n_data']} data points with one noise draw shared by all rho, `ScoreMatching` and the mean energy
(NLL, `log Z = 0`) on {res['n_big']} points. Every curve is shifted to minimum 0.

Minimisers on the grid: SM {res['argmin_exact']['sm']:.2f}, NLL {res['argmin_exact']['nll']:.2f}
(estimators {res['argmin_est']['sm']:.2f} and {res['argmin_est']['nll']:.2f}); the estimators deviate from
quadrature by at most {res['est_err']['sm']:.3f} (SM) and {res['est_err']['nll']:.3f} (NLL) after the shift.
SM is much flatter than NLL in rho (range {_shift(res['sm']).max():.3f} against {_shift(res['nll']).max():.3f}):
the score barely sees the weights of well-separated modes.

| t | ED argmin (quadrature) | ED argmin (estimator) | ED range | estimator max error | sup dist. of ED/t to SM (rel.) | sup dist. of ED to NLL (rel.) |
|---|---|---|---|---|---|---|
{rows}

For small t the ED curve is t times the SM curve (relative distance {res['d_sm'][0]:.4f} at t =
{res['t_sweep'][0]:g}); for large t it approaches the NLL curve (relative distance {res['d_nll'][-1]:.4f} at
t = {res['t_sweep'][-1]:.3g}, decaying like 1/t as the W2^2/(2t) bound says).
"""


def main(out_dir, seed=0, n_data=3000, n_neg=32):
    res = compute(n_data=n_data, n_neg=n_neg, seed=seed)
    return _figkit.write_figures(out_dir, res, {"fig_02_ed_sm_ml.png": plot}, caption)
