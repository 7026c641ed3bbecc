r"""Figure 10: the 2-D Ising model near its critical point, sampled against the exact torus.

For the periodic ``L x L`` lattice ``Ising.lattice(L, beta)`` (coupling 1, no
field) at inverse temperatures around :math:`\beta_c = \log(1+\sqrt2)/2`
(Onsager 1944), the samplers of the package are run and three statistics of
the states are compared with what is known exactly:

* the Binder cumulant :math:`U_L = 1 - \langle m^4\rangle / (3\langle
  m^2\rangle^2)` (Binder 1981), :math:`m` the magnetisation per site, whose
  curves for different ``L`` cross at :math:`\beta_c` up to corrections
  that vanish as ``L`` grows (the crossing of ``L`` and ``2L`` is reported);
* the energy per site :math:`e = \langle H\rangle / L^2` and the specific
  heat per site :math:`c = \beta^2 L^2 (\langle e^2\rangle -
  \langle e\rangle^2)`, against the exact finite-torus values (Kaufman 1949;
  Ferdinand & Fisher 1969), through the standardised residuals
  :math:`(\hat x - x_{\rm exact}) / \hat\sigma`.

Sampling: Swendsen-Wang cluster updates (Swendsen & Wang 1987) for every
``L``, and checkerboard heat-bath Gibbs sweeps for the small ones (its
autocorrelation time at :math:`\beta_c` grows like :math:`L^{2.17}`). Each
point is ``n_chains`` independent chains started from the ordered state,
``n_burn`` discarded sweeps, then ``n_sweeps`` measured sweeps; error bars
are jackknife standard errors over the chains (leave one chain out), valid
for any statistic (ratios of moments included) as long as the chains are
independent.

The grid of ``beta`` is scaled with ``L``: :math:`\beta = \beta_c (1 +
x/L)` for ``x`` in ``X_GRID``, so every ``L`` is sampled across its own
critical window.
"""

from __future__ import annotations

import math
import pathlib

import numpy as np

from ebm_ref.energies import Ising
from ebm_ref.exact import ising_log_partition_2d
from ebm_ref.samplers import gibbs

BETA_C = 0.5 * math.log(1.0 + math.sqrt(2.0))
X_GRID = np.linspace(-1.5, 1.5, 7)


# --------------------------------------------------------------- statistics


def lattice_energy(states, L):
    r"""Physical energy per site :math:`H/L^2 = -\sum_{\langle ij\rangle} s_i s_j / L^2` of periodic ``L x L`` states.

    ``states`` has shape ``(..., L*L)`` (site ``(r, c)`` is unit
    ``r*L + c``); each of the :math:`2L^2` bonds is counted once (for
    ``L = 2`` the two bonds between a pair are both counted, as in
    ``Ising.lattice``).
    """
    s = states.reshape(states.shape[:-1] + (L, L))
    bonds = s * np.roll(s, 1, axis=-1) + s * np.roll(s, 1, axis=-2)
    return -bonds.sum(axis=(-1, -2)) / (L * L)


def jackknife(per_chain, stat):
    r"""Value and leave-one-chain-out jackknife standard error of a statistic.

    Parameters
    ----------
    per_chain : ndarray of shape (n_chains, k)
        Per-chain means of ``k`` quantities (e.g. ``<m^2>``, ``<m^4>``).
    stat : callable
        Maps the ``(k,)`` means over chains to the statistic (a float).

    Returns
    -------
    value, stderr : float, float
        ``stat`` of the mean over all chains, and
        :math:`\sqrt{\frac{n-1}{n}\sum_i (\theta_{(i)} - \bar\theta)^2}`
        (Quenouille 1956; Tukey 1958; Efron 1982).
    """
    n = per_chain.shape[0]
    total = per_chain.sum(axis=0)
    value = stat(total / n)
    loo = np.array([stat((total - per_chain[i]) / (n - 1)) for i in range(n)])
    return float(value), float(math.sqrt((n - 1) / n * np.sum((loo - loo.mean()) ** 2)))


def binder(means):
    """``1 - <m^4> / (3 <m^2>^2)`` from ``means = (<m^2>, <m^4>)``."""
    return 1.0 - means[1] / (3.0 * means[0] ** 2)


def summarise(e, m, L, beta):
    """Binder cumulant, energy and specific heat per site with jackknife errors.

    ``e``, ``m``: per-sweep energy and magnetisation per site, shape
    ``(n_sweeps, n_chains)``.
    """
    N = L * L
    q = np.stack([e.mean(0), (e**2).mean(0), (m**2).mean(0), (m**4).mean(0)], axis=1)
    out = {}
    out["U"] = jackknife(q[:, 2:], binder)
    out["e"] = jackknife(q[:, :1], lambda a: a[0])
    out["c"] = jackknife(q[:, :2], lambda a: beta**2 * N * (a[1] - a[0] ** 2))
    return out


def exact_curves(L, betas):
    r"""Exact energy and specific heat per site of the ``L x L`` torus.

    From Kaufman's :math:`\log Z` (``ebm_ref.exact.ising_log_partition_2d``)
    by central differences in :math:`\beta` (step ``1e-4``):
    :math:`e = -\partial_\beta \log Z / L^2`,
    :math:`c = \beta^2 \partial^2_\beta \log Z / L^2`.
    """
    h = 1e-4
    e, c = [], []
    for b in np.atleast_1d(betas):
        f = [ising_log_partition_2d(L, float(b + k * h)) for k in (-1, 0, 1)]
        e.append(-(f[2] - f[0]) / (2 * h) / (L * L))
        c.append(b**2 * (f[2] - 2 * f[1] + f[0]) / h**2 / (L * L))
    return np.array(e), np.array(c)


def crossing(betas_a, u_a, betas_b, u_b):
    """``beta`` where the piecewise-linear curves ``U_a`` and ``U_b`` cross (NaN if they do not)."""
    lo = max(betas_a[0], betas_b[0])
    hi = min(betas_a[-1], betas_b[-1])
    grid = np.linspace(lo, hi, 2001)
    d = np.interp(grid, betas_a, u_a) - np.interp(grid, betas_b, u_b)
    k = np.nonzero(np.sign(d[:-1]) != np.sign(d[1:]))[0]
    if k.size == 0:
        return float("nan")
    i = int(k[0])
    return float(grid[i] - d[i] * (grid[i + 1] - grid[i]) / (d[i + 1] - d[i]))


# ----------------------------------------------------------------- sampling


def _sampler(name):
    """``f(model, x, n_steps, seed, thin) -> SampleResult`` of the named sampler."""
    if name == "gibbs":
        return lambda model, x, n, seed, thin: gibbs(model, x, n, seed, thin=thin)
    raise ValueError(f"unknown sampler {name!r}")


def sample_point(L, beta, sampler, n_chains, n_burn, n_sweeps, seed, every=1, max_bytes=32e6):
    """Energy and magnetisation per site every ``every`` sweeps, ``(n_sweeps // every, n_chains)`` each.

    The chains start from the ordered state (all +1), run ``n_burn`` sweeps,
    then ``n_sweeps`` more; calls are cut so that one trace holds at most
    ``max_bytes`` of states, each call with its own seed derived from
    ``seed`` and the call's index.
    """
    model = Ising.lattice(L, beta)
    run = _sampler(sampler)
    x = np.ones((n_chains, L * L))
    ss = np.random.SeedSequence(seed)
    per_call = every * max(1, int(max_bytes // (8 * n_chains * L * L)))
    plan = []
    left = n_burn
    while left > 0:
        plan.append((min(left, 4 * per_call), 0))
        left -= plan[-1][0]
    left = (n_sweeps // every) * every
    while left > 0:
        plan.append((min(left, per_call), every))
        left -= plan[-1][0]
    e, m = [], []
    for k, (steps, thin) in enumerate(plan):
        res = run(model, x, steps, np.random.SeedSequence(ss.entropy, spawn_key=(k,)), thin)
        x = res.x
        if thin:
            e.append(lattice_energy(res.trace, L))
            m.append(res.trace.mean(axis=-1))
    return np.concatenate(e), np.concatenate(m)


def compute(Ls=(16, 32, 64), gibbs_Ls=(16, 32), x_grid=X_GRID, n_chains=8, n_burn=200, n_sweeps=1000,
            seed=0):
    """Run every (sampler, L, beta) point and the exact curves.

    Returns
    -------
    dict
        ``points[(sampler, L)]``: dict with ``betas`` and arrays ``U``,
        ``dU``, ``e``, ``de``, ``c``, ``dc``, ``e_exact``, ``c_exact``;
        ``curves[L]``: ``(betas, e_exact, c_exact)`` on a fine grid;
        ``crossings[(sampler, L, 2L)]``: the Binder crossing of ``L`` and
        ``2L``; and the settings.
    """
    runs = [("sw", L) for L in Ls if "sw" in _available()] + [("gibbs", L) for L in gibbs_Ls]
    points, curves = {}, {}
    for si, (sampler, L) in enumerate(runs):
        betas = BETA_C * (1.0 + np.asarray(x_grid) / L)
        rows = []
        for bi, b in enumerate(betas):
            e, m = sample_point(L, float(b), sampler, n_chains, n_burn, n_sweeps, seed=[seed, si, bi])
            rows.append(summarise(e, m, L, float(b)))
        e_ex, c_ex = exact_curves(L, betas)
        p = {"betas": betas, "e_exact": e_ex, "c_exact": c_ex}
        for key in ("U", "e", "c"):
            p[key] = np.array([r[key][0] for r in rows])
            p["d" + key] = np.array([r[key][1] for r in rows])
        points[(sampler, L)] = p
        if L not in curves:
            fine = BETA_C * (1.0 + np.linspace(x_grid[0], x_grid[-1], 41) / L)
            curves[L] = (fine,) + exact_curves(L, fine)
    crossings = {}
    for sampler, L in runs:
        if (sampler, 2 * L) in points:
            a, b = points[(sampler, L)], points[(sampler, 2 * L)]
            crossings[(sampler, L, 2 * L)] = crossing(a["betas"], a["U"], b["betas"], b["U"])
    return {"points": points, "curves": curves, "crossings": crossings, "n_chains": n_chains,
            "n_burn": n_burn, "n_sweeps": n_sweeps, "x_grid": np.asarray(x_grid), "seed": seed}


def _available():
    return ("gibbs",)


# --------------------------------------------------------------------- plot


def plot(res, path):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    Ls = sorted({L for _, L in res["points"]})
    colours = {L: plt.cm.viridis(i / max(1, len(Ls) - 1) * 0.85) for i, L in enumerate(Ls)}
    marker = {"sw": "o", "gibbs": "s"}
    ax = axes[0]
    for (sampler, L), p in sorted(res["points"].items()):
        ax.errorbar(p["betas"], p["U"], p["dU"], marker=marker[sampler], ms=4, lw=1, capsize=2,
                    color=colours[L], mfc="none" if sampler == "gibbs" else colours[L],
                    label=f"L={L} ({sampler})")
    ax.axvline(BETA_C, color="k", ls=":", lw=1)
    ax.set_xlabel(r"$\beta$")
    ax.set_ylabel(r"$U_L = 1 - \langle m^4\rangle / 3\langle m^2\rangle^2$")
    ax.set_title("Binder cumulant")
    ax.legend(fontsize=7)
    ax = axes[1]
    for L, (fine, _, c_ex) in sorted(res["curves"].items()):
        ax.plot(fine, c_ex, color=colours[L], lw=1)
    for (sampler, L), p in sorted(res["points"].items()):
        ax.errorbar(p["betas"], p["c"], p["dc"], ls="none", marker=marker[sampler], ms=4, capsize=2,
                    color=colours[L], mfc="none" if sampler == "gibbs" else colours[L])
    ax.axvline(BETA_C, color="k", ls=":", lw=1)
    ax.set_xlabel(r"$\beta$")
    ax.set_ylabel(r"specific heat per site $c$")
    ax.set_title("Specific heat: samples vs exact torus (lines)")
    ax = axes[2]
    for (sampler, L), p in sorted(res["points"].items()):
        x = (p["betas"] / BETA_C - 1.0) * L
        off = 0.04 if sampler == "gibbs" else 0.0
        ax.plot(x + off, (p["e"] - p["e_exact"]) / p["de"], marker=marker[sampler], ls="none", ms=4,
                color=colours[L], mfc="none" if sampler == "gibbs" else colours[L])
        ax.plot(x + off + 0.08, (p["c"] - p["c_exact"]) / p["dc"], marker="^", ls="none", ms=4,
                color=colours[L])
    ax.axhspan(-2, 2, color="0.9")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel(r"$L(\beta/\beta_c - 1)$")
    ax.set_ylabel("(sampled - exact) / std. error")
    ax.set_title(r"Residuals: $e$ (circles/squares), $c$ (triangles)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _z_all(res):
    z = []
    for p in res["points"].values():
        z += list((p["e"] - p["e_exact"]) / p["de"]) + list((p["c"] - p["c_exact"]) / p["dc"])
    return np.array(z)


def caption(res, name):
    z = _z_all(res)
    lines = [
        "## 10. The 2-D Ising model at its critical point",
        "",
        f"![Ising critical point]({name})",
        "",
        "Periodic L x L `Ising.lattice(L, beta)` (coupling 1, no field) at "
        f"`beta = beta_c (1 + x / L)`, x in [{res['x_grid'][0]:g}, {res['x_grid'][-1]:g}] "
        f"({len(res['x_grid'])} points), beta_c = log(1 + sqrt 2) / 2 = {BETA_C:.6f}. "
        f"Each point: {res['n_chains']} chains from the ordered state, {res['n_burn']} sweeps discarded, "
        f"{res['n_sweeps']} measured (seed {res['seed']}); error bars are jackknife standard errors over "
        "chains. Filled markers: Swendsen-Wang (Swendsen & Wang 1987); open: checkerboard heat-bath Gibbs.",
        "",
        "**Binder cumulant** (Binder 1981): the curves of different L cross near beta_c; crossing of L and 2L:",
        "",
    ]
    for (sampler, L, L2), b in sorted(res["crossings"].items()):
        lines.append(f"- {sampler}, L = {L} and {L2}: beta = {b:.5f} ({(b / BETA_C - 1) * 100:+.2f} % from beta_c)")
    lines += [
        "",
        "**Energy and specific heat** against the exact finite-torus values (Kaufman 1949; Ferdinand & Fisher "
        f"1969): over all {z.size} sampled values, mean standardised residual {z.mean():+.2f}, "
        f"rms {np.sqrt(np.mean(z**2)):.2f}, max |z| = {np.max(np.abs(z)):.2f} "
        f"({np.mean(np.abs(z) < 2):.0%} within 2 standard errors).",
    ]
    return "\n".join(lines)


def main(out_dir, seed=0, **kwargs):
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    res = compute(seed=seed, **kwargs)
    name = "fig_10_ising_critical.png"
    plot(res, out_dir / name)
    return {"files": [str(out_dir / name)], "caption": caption(res, name)}
