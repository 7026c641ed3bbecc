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

Sampling: Swendsen-Wang cluster updates (Swendsen & Wang 1987;
:func:`ebm_ref.samplers.swendsen_wang`) for every ``L``, and checkerboard
heat-bath Gibbs sweeps (:func:`ebm_ref.samplers.gibbs`) for the small ones
(its autocorrelation time at :math:`\beta_c` grows like :math:`L^{2.17}`,
Swendsen-Wang's like :math:`L^{0.35}` or slower). Each point is
``n_chains`` independent chains started from the ordered state, ``n_burn``
discarded sweeps, then ``n_sweeps`` measured sweeps. Energies and
magnetisations come from :func:`ebm_ref.observables.lattice_series`,
estimates and error bars from :func:`ebm_ref.observables.ising_observables`
(autocorrelation-aware: Sokal's window for means, blocking + jackknife
over blocks of all chains for the specific heat and the Binder cumulant).
The exact values are :func:`ebm_ref.exact.ising_energy_2d` and
:func:`ebm_ref.exact.ising_specific_heat_2d`.

The grid of ``beta`` is scaled with ``L``: :math:`\beta = \beta_c (1 +
x/L)` for ``x`` in ``X_GRID``, so every ``L`` is sampled across its own
critical window.
"""

from __future__ import annotations

import math

import numpy as np

import _figkit
from ebm_ref.energies import Ising
from ebm_ref.exact import ising_energy_2d, ising_specific_heat_2d
from ebm_ref.observables import ising_observables, lattice_series
from ebm_ref.samplers import gibbs, swendsen_wang

BETA_C = 0.5 * math.log(1.0 + math.sqrt(2.0))
X_GRID = np.linspace(-1.5, 1.5, 7)
FIG = 10  # the first key of every random stream of this figure (see _figkit.seed_sequence)


# --------------------------------------------------------------- statistics


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
    if name == "sw":
        return lambda model, x, n, seed, thin: swendsen_wang(model, x, n, seed, thin=thin)
    if name == "gibbs":
        return lambda model, x, n, seed, thin: gibbs(model, x, n, seed, thin=thin)
    raise ValueError(f"unknown sampler {name!r}")


def sample_point(L, beta, sampler, n_chains, n_burn, n_sweeps, seed, max_bytes=32e6):
    """Physical energy and magnetisation (totals) after every measured sweep, ``(n_sweeps, n_chains)`` each.

    The chains start from the ordered state (all +1), run ``n_burn``
    sweeps, then ``n_sweeps`` more; calls are cut so that one trace holds
    at most ``max_bytes`` of states, each call with its own stream: the
    call's index appended to the key of ``seed`` (an int or a SeedSequence;
    ``_figkit.seed_sequence``), as the library derives per-chain streams.
    """
    model = Ising.lattice(L, beta)
    run = _sampler(sampler)
    x = np.ones((n_chains, L * L))
    per_call = max(1, int(max_bytes // (8 * n_chains * L * L)))
    plan = []
    left = n_burn
    while left > 0:
        plan.append((min(left, 8 * per_call), 0))
        left -= plan[-1][0]
    left = n_sweeps
    while left > 0:
        plan.append((min(left, per_call), 1))
        left -= plan[-1][0]
    H, M = [], []
    for k, (steps, thin) in enumerate(plan):
        res = run(model, x, steps, _figkit.seed_sequence(seed, k), thin)
        x = res.x
        if thin:
            h, m = lattice_series(model, res.trace)
            H.append(h)
            M.append(m)
    return np.concatenate(H), np.concatenate(M)


# L -> (n_chains, n_burn, n_sweeps) of each sampler: sized so that the
# figure takes about a minute on two cores; Swendsen-Wang decorrelates in a
# few sweeps at beta_c, Gibbs needs far more sweeps (cheap at small L).
SW_RUNS = {16: (16, 100, 600), 32: (16, 100, 500), 64: (8, 100, 400), 128: (8, 60, 240), 256: (8, 50, 150)}
GIBBS_RUNS = {16: (16, 500, 4000), 32: (16, 1000, 4000)}


def compute(sw_runs=SW_RUNS, gibbs_runs=GIBBS_RUNS, x_grid=X_GRID, seed=0):
    """Run every (sampler, L, beta) point and the exact values.

    Parameters
    ----------
    sw_runs, gibbs_runs : dict of int to (n_chains, n_burn, n_sweeps)
        The lattice sides to run with each sampler, and how.
    x_grid : array_like
        ``beta = beta_c (1 + x / L)`` for each ``x``.
    seed : int

    Returns
    -------
    dict
        ``points[(sampler, L)]``: dict with ``betas``, the estimates
        ``U``, ``e``, ``c`` (Binder, energy and specific heat per site),
        their standard errors ``dU``, ``de``, ``dc``, the exact ``e_exact``,
        ``c_exact`` and the settings ``runs``; ``curves[L]``: ``(betas,
        e_exact, c_exact)`` on a fine grid; ``crossings[(sampler, L, 2L)]``:
        the Binder crossing of ``L`` and ``2L``; ``x_grid``, ``seed``.
    """
    runs = [("sw", L, cfg) for L, cfg in sorted(sw_runs.items())]
    runs += [("gibbs", L, cfg) for L, cfg in sorted(gibbs_runs.items())]
    points, curves = {}, {}
    for si, (sampler, L, (n_chains, n_burn, n_sweeps)) in enumerate(runs):
        betas = BETA_C * (1.0 + np.asarray(x_grid, dtype=float) / L)
        p = {"betas": betas, "runs": (n_chains, n_burn, n_sweeps)}
        for key in ("U", "dU", "e", "de", "c", "dc"):
            p[key] = np.empty(betas.size)
        for bi, b in enumerate(betas):
            H, M = sample_point(L, float(b), sampler, n_chains, n_burn, n_sweeps, seed=_figkit.seed_sequence(seed, FIG, si, bi))
            obs = ising_observables(H, M, float(b), L * L)
            for key, name in (("U", "binder"), ("e", "energy"), ("c", "specific_heat")):
                p[key][bi] = obs[name].value
                p["d" + key][bi] = obs[name].stderr
        p["e_exact"] = np.array([ising_energy_2d(L, float(b)) for b in betas])
        p["c_exact"] = np.array([ising_specific_heat_2d(L, float(b)) for b in betas])
        points[(sampler, L)] = p
        if L not in curves:
            fine = BETA_C * (1.0 + np.linspace(x_grid[0], x_grid[-1], 61) / L)
            curves[L] = (
                fine,
                np.array([ising_energy_2d(L, float(b)) for b in fine]),
                np.array([ising_specific_heat_2d(L, float(b)) for b in fine]),
            )
    crossings = {}
    for sampler, L, _ in runs:
        if (sampler, 2 * L) in points:
            a, b = points[(sampler, L)], points[(sampler, 2 * L)]
            crossings[(sampler, L, 2 * L)] = crossing(a["betas"], a["U"], b["betas"], b["U"])
    return {"points": points, "curves": curves, "crossings": crossings,
            "x_grid": np.asarray(x_grid, dtype=float), "seed": seed}


# --------------------------------------------------------------------- plot


def plot(res):
    plt = _figkit.pyplot()

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
    _figkit.label_axes(ax, xlabel=r"$\beta$", ylabel=r"$U_L = 1 - \langle m^4\rangle / 3\langle m^2\rangle^2$",
                       title="Binder cumulant", legend=dict(fontsize=7))
    ax = axes[1]
    for L, (fine, _, c_ex) in sorted(res["curves"].items()):
        ax.plot(fine, c_ex, color=colours[L], lw=1)
    for (sampler, L), p in sorted(res["points"].items()):
        ax.errorbar(p["betas"], p["c"], p["dc"], ls="none", marker=marker[sampler], ms=4, capsize=2,
                    color=colours[L], mfc="none" if sampler == "gibbs" else colours[L])
    ax.axvline(BETA_C, color="k", ls=":", lw=1)
    _figkit.label_axes(ax, xlabel=r"$\beta$", ylabel=r"specific heat per site $c$",
                       title="Specific heat: samples vs exact torus (lines)")
    ax = axes[2]
    for (sampler, L), p in sorted(res["points"].items()):
        x = (p["betas"] / BETA_C - 1.0) * L
        off = 0.04 if sampler == "gibbs" else 0.0
        ax.plot(x + off, (p["e"] - p["e_exact"]) / p["de"], marker="o", ls="none", ms=4,
                color=colours[L], mfc="none" if sampler == "gibbs" else colours[L])
        ax.plot(x + off + 0.08, (p["c"] - p["c_exact"]) / p["dc"], marker="^", ls="none", ms=4,
                color=colours[L], mfc="none" if sampler == "gibbs" else colours[L])
    ax.axhspan(-2, 2, color="0.9")
    ax.axhline(0, color="k", lw=0.5)
    _figkit.label_axes(ax, xlabel=r"$L(\beta/\beta_c - 1)$", ylabel="(sampled - exact) / std. error",
                       title=r"Residuals: $e$ (circles), $c$ (triangles)")
    return fig


def _z(p):
    """Standardised residuals of the energy and the specific heat against the exact torus."""
    return np.concatenate([(p["e"] - p["e_exact"]) / p["de"], (p["c"] - p["c_exact"]) / p["dc"]])


def _u_at(p, beta):
    return float(np.interp(beta, p["betas"], p["U"]))


def caption(res, names):
    sampler_names = {"sw": "Swendsen-Wang", "gibbs": "checkerboard Gibbs"}
    lines = [
        "## 10. The 2-D Ising model at its critical point",
        "",
        f"![Ising critical point]({names[0]})",
        "",
        "Periodic L x L `Ising.lattice(L, beta)` (coupling 1, no field) at "
        f"`beta = beta_c (1 + x / L)`, x in [{res['x_grid'][0]:g}, {res['x_grid'][-1]:g}] "
        f"({len(res['x_grid'])} points per L), beta_c = log(1 + sqrt 2) / 2 = {BETA_C:.6f} (Onsager 1944), "
        "sampled with Swendsen-Wang cluster updates (`swendsen_wang`, filled markers; Swendsen & Wang 1987) "
        "and checkerboard heat-bath Gibbs sweeps (`gibbs`, open markers), every chain started from the "
        f"ordered state (seed {res['seed']}). Error bars: one standard error from `observables.ising_observables` "
        "(Sokal's autocorrelation window for the energy; blocking + jackknife over the blocks of all chains for "
        "the specific heat and the Binder cumulant).",
        "",
        "| sampler | L | chains x (discarded + measured) sweeps per point | Binder U at beta_c | "
        "residuals z of e and c: rms / max abs |",
        "|---|---|---|---|---|",
    ]
    for (sampler, L), p in sorted(res["points"].items()):
        n_chains, n_burn, n_sweeps = p["runs"]
        z = _z(p)
        lines.append(
            f"| {sampler_names[sampler]} | {L} | {n_chains} x ({n_burn} + {n_sweeps}) | {_u_at(p, BETA_C):.3f} | "
            f"{np.sqrt(np.mean(z**2)):.2f} / {np.max(np.abs(z)):.2f} |"
        )
    z_all = np.concatenate([_z(p) for p in res["points"].values()])
    lines += [
        "",
        "**Binder cumulant** `U_L = 1 - <m^4> / (3 <m^2>^2)` (Binder 1981): it rises with beta towards its "
        "ordered value 2/3, and the curves of different L cross close to beta_c, at the universal value "
        "U* = 0.6107 of the periodic square lattice (Salas & Sokal 2000) up to corrections that vanish as L "
        "grows. Crossings of L and 2L:",
        "",
    ]
    for (sampler, L, L2), b in sorted(res["crossings"].items()):
        lines.append(
            f"- {sampler_names[sampler]}, L = {L} and {L2}: beta = {b:.5f} ({(b / BETA_C - 1) * 100:+.2f} % from beta_c), "
            f"U = {_u_at(res['points'][(sampler, L)], b):.3f}"
        )
    lines += [
        "",
        "**Energy and specific heat per site** against the exact values of the finite torus "
        "(`exact.ising_energy_2d`, `exact.ising_specific_heat_2d`: Kaufman 1949; Ferdinand & Fisher 1969; "
        "lines in the middle panel): over all "
        f"{z_all.size} sampled values the standardised residuals have mean {z_all.mean():+.2f} and rms "
        f"{np.sqrt(np.mean(z_all**2)):.2f} (1 expected), {np.mean(np.abs(z_all) < 2):.0%} lie within 2 standard "
        f"errors (95 % expected) and the largest is {np.max(np.abs(z_all)):.2f}. On the torus the exact "
        "specific heat peaks above the critical temperature, at a beta below beta_c by O(1/L), and its maximum "
        "grows like log L (Ferdinand & Fisher 1969); on the fine grid of the lines:",
        "",
    ]
    for L, (fine, _, c_ex) in sorted(res["curves"].items()):
        k = int(np.argmax(c_ex))
        lines.append(f"- L = {L}: maximum {c_ex[k]:.3f} at beta = {fine[k]:.4f} ({(fine[k] / BETA_C - 1) * 100:+.2f} %)")
    return "\n".join(lines)


def main(out_dir, seed=0, **kwargs):
    res = compute(seed=seed, **kwargs)
    return _figkit.write_figures(out_dir, res, {"fig_10_ising_critical.png": plot}, caption)
