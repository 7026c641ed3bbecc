r"""Figure 11: a Boltzmann machine as a variational posterior over binary codes.

Reproduces the "Boltzmann machine as posterior" slides of Zijing Ou's talk
(after Zheng & Su 2020, *Generative semantic hashing enhanced via Boltzmann
machines*): the posterior :math:`b(z) \propto \exp(\tfrac12 z^\top\Sigma z +
\mu^\top z)` on :math:`z \in \{0,1\}^m` with :math:`\Sigma = D + UU^\top`
(:class:`ebm_ref.energies.LowRankBoltzmann`), its Gaussian-integral
representation :math:`b(z) = \int p(z\mid r)p(r)\,dr`, and the asymptotically
exact bound :math:`\tilde L_k`.

Panels:

* (a) :math:`\tilde L_k` (:func:`ebm_ref.estimate.boltzmann_bound` with the
  default ``log_joint = -E``, so that the limit :math:`L` is :math:`\log Z`)
  against :math:`k`, with the exact :math:`\log Z`;
* (b) the gap :math:`\log Z - \tilde L_k` on log-log axes with its fitted
  slope (the :math:`\chi^2` argument of docs/boltzmann-posterior.md gives
  gap :math:`\le C/k`);
* (c) state probabilities of the auxiliary Gibbs sampler
  (:func:`ebm_ref.samplers.boltzmann_auxiliary`) from a fixed start against
  the exact :math:`b(z)`;
* (d) total variation to :math:`b` against the number of steps from
  :math:`z = 0` for the smallest admissible diagonal shift and two larger
  ones (all exact, the larger ones slower).
"""

from __future__ import annotations


import numpy as np
from scipy import stats

import _figkit
from ebm_ref import exact
from ebm_ref.energies import LowRankBoltzmann
from ebm_ref.estimate import boltzmann_bound
from ebm_ref.samplers import boltzmann_auxiliary

KS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
M = 10
RANK = 2
EXTRA_SHIFTS = (0.0, 1.0, 3.0)
FIG = 11  # the first key of every random stream of this figure (see _figkit.seed_sequence)


def make_model(m=M, rank=RANK, seed=0):
    """A 10-bit code posterior: D with negative entries (so the shift is needed), rank-2 U."""
    rng = _figkit.rng(seed, FIG, 0)
    d = rng.uniform(-1.5, 0.5, size=m)
    U = rng.normal(size=(m, rank)) * 0.9
    mu = rng.normal(size=m) * 0.3
    return LowRankBoltzmann(d, U, mu)


def _codes(x):
    return (x @ (2.0 ** np.arange(x.shape[1] - 1, -1, -1))).astype(np.int64)


def compute(ks=KS, n_samples=10_000, n_chains=100_000, n_steps=40, n_mix=30, mix_chains=20_000, seed=0):
    model = make_model(seed=seed)
    ising = model.to_ising()
    log_z = float(exact.log_partition(ising))
    _, probs = exact.probabilities(ising)
    res = {"ks": list(ks), "log_z": log_z, "m": model.n_features, "rank": model.rank, "seed": seed,
           "n_samples": n_samples, "min_shift": model.min_shift()}
    vals, ses = [], []
    for k in ks:
        r = boltzmann_bound(model, k, n_samples, seed=_figkit.seed_sequence(seed, FIG, 1))
        vals.append(r.value)
        ses.append(r.stderr)
    res["bound"] = np.array(vals)
    res["stderr"] = np.array(ses)
    gap = log_z - res["bound"]
    res["gap"] = gap
    use = np.array(ks) >= 4
    res["slope"] = (
        float(np.polyfit(np.log(np.array(ks)[use]), np.log(np.maximum(gap[use], 1e-12)), 1)[0]) if use.sum() >= 2 else float("nan")
    )
    # sampler from a fixed start
    x0 = np.zeros((n_chains, model.n_features))
    out = boltzmann_auxiliary(model, x0, n_steps, seed=_figkit.seed_sequence(seed, FIG, 2))
    counts = np.bincount(_codes(out.x), minlength=probs.size)
    emp = counts / n_chains
    res.update(n_chains=n_chains, n_steps=n_steps, probs=probs, emp=emp, tv=0.5 * float(np.abs(emp - probs).sum()))
    expected = n_chains * probs
    small = expected < 5.0
    obs = np.append(counts[~small], counts[small].sum())
    ex = np.append(expected[~small], expected[small].sum())
    res["chi2_p"] = float(stats.chi2.sf(np.sum((obs - ex) ** 2 / ex), obs.size - 1))
    res["chi2_bins"] = int(obs.size)
    # null TV level: E TV of an exact sample of the same size, by simulation
    rng = _figkit.rng(seed, FIG, 3)
    null = [0.5 * np.abs(rng.multinomial(mix_chains, probs) / mix_chains - probs).sum() for _ in range(20)]
    res["tv_null"] = float(np.mean(null))
    # mixing from z = 0 for three shifts
    res["mix"] = {}
    for extra in EXTRA_SHIFTS:
        c = model.min_shift() + extra
        tr = boltzmann_auxiliary(model, np.zeros((mix_chains, model.n_features)), n_mix, seed=_figkit.seed_sequence(seed, FIG, 4), thin=1, shift=c).trace
        tv = [0.5 * np.abs(np.bincount(_codes(t), minlength=probs.size) / mix_chains - probs).sum() for t in tr]
        res["mix"][extra] = np.array(tv)
    res.update(n_mix=n_mix, mix_chains=mix_chains)
    # first step at which each curve reaches 1.5 x the null level
    res["steps_to_null"] = {
        e: (int(np.argmax(tv < 1.5 * res["tv_null"])) + 1 if np.any(tv < 1.5 * res["tv_null"]) else None)
        for e, tv in res["mix"].items()
    }
    return res


def plot(res):
    fig, axes = _figkit.subplots(2, 2, figsize=(11, 8.5))
    ks = np.array(res["ks"])
    ax = axes[0, 0]
    ax.errorbar(ks, res["bound"], yerr=2 * res["stderr"], marker="o", capsize=3, label=r"$\tilde L_k$ (+-2 s.e.)")
    ax.axhline(res["log_z"], color="k", ls="--", lw=1, label=r"exact $\log Z$ (= $L$)")
    ax.set_xscale("log", base=2)
    _figkit.label_axes(ax, xlabel="k (auxiliary draws in $h_k$)", ylabel="nats",
                       title=r"(a) $\tilde L_k$ increases to $L = \log Z$", legend={}, grid=dict(alpha=0.3))

    ax = axes[0, 1]
    gap = np.maximum(res["gap"], 1e-6)
    ax.loglog(ks, gap, marker="o", label=f"log Z - L~_k (fitted slope {res['slope']:.2f}, k >= 4)")
    ax.loglog(ks, gap[0] / ks, color="grey", ls=":", label="1/k guide")
    ax.set_xscale("log", base=2)
    _figkit.label_axes(ax, xlabel="k", ylabel="gap (nats)", title="(b) the gap E KL(h_k || b) against k",
                       legend=dict(fontsize=8), grid=dict(alpha=0.3, which="both"))

    ax = axes[1, 0]
    p, e = res["probs"], res["emp"]
    keep = res["n_chains"] * p >= 20.0  # codes expected at least 20 times
    order = np.argsort(p[keep])
    pk = p[keep][order]
    band = 3.89 * np.sqrt(pk * (1.0 - pk) / res["n_chains"])
    ax.fill_between(pk, np.maximum(pk - band, pk * 0.05), pk + band, color="grey", alpha=0.3,
                    label="exact +- 3.89 sd of a frequency")
    ax.loglog(pk, e[keep][order], ".", ms=4, label="sampler frequency")
    ax.loglog(pk, pk, "k--", lw=1)
    ax.set_xlabel("exact b(z)")
    ax.set_ylabel("frequency after the auxiliary Gibbs sampler")
    ax.set_title(f"(c) {int(keep.sum())} of {2 ** res['m']} codes: {res['n_chains']} chains, {res['n_steps']} steps from z = 0",
                 fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")

    ax = axes[1, 1]
    steps = np.arange(1, res["n_mix"] + 1)
    for extra, tv in res["mix"].items():
        ax.semilogy(steps, tv, marker=".", label=f"shift = min + {extra:g}")
    ax.axhline(res["tv_null"], color="k", ls=":", lw=1, label="TV of an exact sample of the same size")
    _figkit.label_axes(ax, xlabel="steps from z = 0", ylabel="total variation to b",
                       title=f"(d) mixing ({res['mix_chains']} chains)", legend=dict(fontsize=8),
                       grid=dict(alpha=0.3, which="both"))
    return fig


def caption(res, names):
    ks = res["ks"]
    rows = " | ".join(f"{v:.4f}" for v in res["bound"])
    ses = " | ".join(f"{s:.4f}" for s in res["stderr"])
    head = " | ".join(f"k={k}" for k in ks)
    sep = "|".join(["---"] * (1 + len(ks)))
    stn = res["steps_to_null"]
    mix = ", ".join(
        f"min + {e:g}: {('%d' % stn[e]) if stn[e] is not None else 'not within %d' % res['n_mix']}" for e in EXTRA_SHIFTS
    )
    return f"""## 11. A Boltzmann machine as a variational posterior

![Boltzmann posterior]({names[0]})

Reproduces the "Boltzmann machine as posterior" slides of Zijing Ou's talk "EBM learning and inference: a
retrospection and beyond" (after Zheng & Su 2020, *Generative semantic hashing enhanced via Boltzmann
machines*, ACL). Posterior `b(z) ∝ exp(z^T Sigma z / 2 + mu^T z)` on m = {res['m']} bits with
`Sigma = D + U U^T`, rank {res['rank']} (`LowRankBoltzmann`; D uniform in [-1.5, 0.5], so the diagonal shift
`c = {res['min_shift']:.3f}` is needed for the Gaussian-integral representation; seed {res['seed']}); exact
`log Z` = {res['log_z']:.4f} by enumeration. (a, b) The bound `L~_k = E_b[log p(x,z)] - E_r E_(h_k)[log h_k]`
with `log p(x, z) = -E(z)`, so that its limit `L` is `log Z`: `boltzmann_bound`, {res['n_samples']} samples per k.

| | {head} |
|{sep}|
| L~_k | {rows} |
| s.e. | {ses} |

The estimates increase with k towards log Z; the gap `log Z - L~_k = E KL(h_k || b)` falls with a fitted
log-log slope of {res['slope']:.2f} for k >= 4 (the chi-square argument gives gap <= C/k, and the delta method
C/(2k) as k grows; at these k the approach to that rate is still incomplete). (c) `boltzmann_auxiliary` (r | z then z | r, both exact) with {res['n_chains']} chains
from z = 0, {res['n_steps']} steps (panel c shows the codes expected at least 20 times): total variation {res['tv']:.4f} to the exact b over {2 ** res['m']} codes,
pooled chi-square p = {res['chi2_p']:.3f} ({res['chi2_bins']} bins). (d) Total variation to b against steps
from z = 0 ({res['mix_chains']} chains) for three shifts; the dotted line is the mean TV of an exact sample of the
same size ({res['tv_null']:.4f}). Steps to reach 1.5 times that level: {mix}. Every shift gives an exact
sampler; a larger one adds noise to r (sd ~ sqrt(c)) but also a larger pull towards the current z (~ c), so the
chain moves less per step.
"""


def main(out_dir, seed=0, **kw):
    res = compute(seed=seed, **kw)
    return _figkit.write_figures(out_dir, res, {"fig_11_boltzmann_posterior.png": plot}, caption)


if __name__ == "__main__":  # pragma: no cover
    import sys

    out = main(sys.argv[1] if len(sys.argv) > 1 else "figures")
    print(out["caption"])
