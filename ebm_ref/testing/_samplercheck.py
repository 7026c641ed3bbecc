r"""Statistical test of a third-party MCMC sampler against an exact distribution.

Many independent chains start from exact samples of a small model (or from
a fixed state), run ``n_steps`` transitions of the sampler under test, and
their final states -- independent draws when the kernel is correct -- are
tested against the exact distribution (docs/checking.md):

* binary / spin models (``d <= 16``): the distribution is
  :func:`ebm_ref.exact.probabilities` (for latent-variable models the
  visible marginal), and the
  final states are tested with Pearson's chi-square on cells pooled so that
  each expected count is at least 5; the total-variation distance is
  reported as well.
* continuous models with an exact sampler (``StudentT``,
  ``GaussianMixture``, ``GRBM``): Kolmogorov-Smirnov per coordinate and on
  a random unit projection ``u.x``, and z-tests of the first and second
  moments of every coordinate where they are finite. The p-values are
  combined by Bonferroni (the tests are dependent, so Fisher's combination
  would not have its stated level); the false-failure rate is at most
  ``alpha``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import special, stats

from . import _diagnose as _dg
from ._exactref import (
    _continuous_pvalues,
    _Exact,
    _pooled_chisquare,
    _state_index,
    enumerate_distribution,
    exact_continuous,
    most_probable_state,
)

__all__ = ["SamplerCheckResult", "check_sampler", "assert_sampler_exact", "enumerate_distribution"]


@dataclass
class SamplerCheckResult(_dg.Report):
    """Outcome of :func:`check_sampler`.

    Attributes
    ----------
    test : str
        ``"chi-square"`` (discrete) or ``"bonferroni(KS, moments)"``.
    statistic : float
        Chi-square statistic (discrete), or the Bonferroni-adjusted smallest
        p-value ``min(1, k min_j p_j)`` (continuous).
    threshold : float
        The statistic's critical value: ``chi2.isf(alpha, dof)`` (fail when
        above), or ``alpha`` (fail when the adjusted p-value is below).
    p_value : float
        Overall p-value (``chi2.sf``; or the adjusted smallest p-value).
    alpha : float
        False-failure rate of the test when the sampler is exact.
    passed : bool
    details : dict
        ``tv``, ``dof``, ``n_cells`` (discrete); per-test p-values
        (continuous); ``n_chains``, ``n_steps``, ``start``.
    message : str
        A non-empty explanation when the sampler returned invalid output.
    """

    test: str
    statistic: float
    threshold: float
    p_value: float
    alpha: float
    passed: bool
    details: dict = field(default_factory=dict)
    message: str = ""
    starts: dict = field(default_factory=dict, repr=False)
    caught_by: tuple = ()
    dtype: str = "float64"
    suspects: tuple = ()
    diagnosis: str | None = None

    def _lines(self, indent):
        status = "ok" if self.passed else "FAILED"
        head = (
            f"{indent}check_sampler ({self.test}, start {self.details.get('start')}): statistic {self.statistic:.6g}, "
            f"threshold {self.threshold:.6g}, p-value {self.p_value:.3g} at alpha {self.alpha:g} -> {status}"
        )
        extra = [f"{k}={v}" for k, v in self.details.items() if k not in ("p_values", "marginals", "start")]
        lines = [head, indent + "  " + ", ".join(extra)]
        if self.message and not self.starts:
            lines.append(indent + "  " + self.message)
            return lines
        if "p_values" in self.details:
            worst = sorted(self.details["p_values"].items(), key=lambda kv: kv[1])[:5]
            lines.append(indent + "  smallest p-values: " + ", ".join(f"{k}={p:.3g}" for k, p in worst))
        marg = self.details.get("marginals")
        if marg:
            top = sorted(marg, key=lambda r: -abs(r["z"]))[:3]
            lines.append(
                indent + "  largest marginal z-scores: "
                + ", ".join(f"unit {r['unit']}: {r['observed']:.4f} vs {r['expected']:.4f} (z {r['z']:.2f})" for r in top)
            )
        return lines

    def __str__(self):
        if not self.starts:
            return "\n".join(self._lines(""))
        status = "ok" if self.passed else "FAILED"
        lines = [
            f"check_sampler ({self.test}; starts {', '.join(self.starts)}, each at alpha {self.alpha / len(self.starts):g}, "
            f"overall false-failure rate {self.alpha:g}) -> {status}"
            + (f" (caught by the {' and '.join(self.caught_by)} start)" if self.caught_by else "")
        ]
        for sub in self.starts.values():
            lines += sub._lines("  ")
            if sub.message:
                lines.append("    " + sub.message)
        if self.suspects:
            lines.append("  suspects: " + ", ".join(self.suspects))
        if self.diagnosis:
            lines.append("  diagnosis: " + self.diagnosis)
        return "\n".join(lines)



# ----------------------------------------------------------------- the check
def _child(seed, i):
    if isinstance(seed, np.random.SeedSequence):
        ss = seed
    elif isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0:
        ss = np.random.SeedSequence(int(seed))
    else:
        raise TypeError(f"`seed` must be a non-negative int or a numpy.random.SeedSequence; got {seed!r}.")
    return np.random.SeedSequence(ss.entropy, spawn_key=tuple(ss.spawn_key) + (i,))


def check_sampler(
    sample_fn,
    model,
    *,
    n_chains=20000,
    n_steps=None,
    seed=0,
    alpha=1e-4,
    start="both",
    exact_sampler=None,
    n_steps_fixed=None,
):
    r"""Test a sampler's output against the exact distribution of a small model.

    Parameters
    ----------
    sample_fn : callable
        ``sample_fn(params, x0, n_steps, rng) -> states``: ``params`` the
        parameter dict (docs/models.md) of ``model``, ``x0`` an ``(n_chains, d)`` float array of
        start states, ``rng`` a :class:`numpy.random.Generator`; returns the
        final states, shape ``(n_chains, d)``.
    model : EnergyModel
        A binary/spin model with at most 16 units, or a ``StudentT``,
        ``GaussianMixture`` or ``GRBM`` (at most 16 hidden units).
    n_chains : int, default 20000
        Independent chains (each contributes its final state).
    n_steps : int, optional
        Transitions per chain; default 10 (discrete) or 20 (continuous).
    seed : int or numpy.random.SeedSequence, default 0
        Seeds the start states, the sampler's Generator and the random
        projection (three independent children).
    alpha : float, default 1e-4
        False-failure rate of the whole check: the probability that an
        exact sampler fails (split equally between the starts, Bonferroni).
    start : {"both", "exact", "fixed"} or array_like, default "both"
        ``"exact"``: chains start from exact draws, so any ``n_steps``
        tests invariance. ``"fixed"``: every chain starts at one state --
        the most probable state of a binary/spin model, the mean (else the
        coordinate-wise median of exact draws) of a continuous one -- so
        ``n_steps`` must be long enough to mix; this catches kernels that
        keep exact samples exact but do not converge (a stale hidden
        sample, a site never updated). ``"both"`` runs both, each at
        ``alpha / 2``. An array of shape ``(d,)`` or ``(n_chains, d)`` runs
        the exact start and a fixed start at that array.
    n_steps_fixed : int, optional
        Transitions of the chains of the fixed start; default
        ``10 * n_steps`` (they must travel from one state to the whole
        distribution, not just keep it).
    exact_sampler : callable, optional
        ``exact_sampler(rng, n) -> (n, d)`` for a continuous model that
        ebm_ref cannot sample exactly; it is then used for two-sample KS
        tests.

    Returns
    -------
    SamplerCheckResult
        Statistic, threshold and p-value of the start that did worst, the
        false-failure rate, one sub-result per start (``starts``), the
        starts that failed (``caught_by``), per-unit marginals with
        z-scores, the dtype of the returned states, ``suspects`` and
        ``diagnosis``.

    Raises
    ------
    ValueError
        For a model without an exact reference, ``alpha`` outside (0, 1),
        ``n_chains < 2``, ``n_steps < 0``, or a start array of the wrong
        shape or with NaN/inf.

    Notes
    -----
    Discrete: with :math:`N` chains, observed counts :math:`O_c` and
    expected :math:`E_c = N \pi_c` over pooled cells,

    .. math::

        X^2 = \sum_c \frac{(O_c - E_c)^2}{E_c} \sim \chi^2_{C-1},
        \qquad \mathrm{TV} = \tfrac12 \sum_x |\hat p(x) - \pi(x)| ,

    rejected when :math:`X^2 > \chi^2_{C-1, 1-\alpha}`. Continuous: the
    :math:`k` p-values (KS per coordinate and of :math:`u^\top x`, moment
    z-tests) are combined as :math:`p = \min(1, k \min_j p_j)`, rejected
    when :math:`p < \alpha`. Outputs with NaN/inf, of the wrong shape, or
    outside the model's domain fail with a message. At ``N = 20000`` a
    chi-square over 64 cells detects a chi-square divergence of
    :math:`5\cdot10^{-3}` with 99% power (docs/checking.md).

    References
    ----------
    Geweke, J. (2004). Getting it right: joint distribution tests of
    posterior simulators. JASA 99(467).
    Grosse, R. and Duvenaud, D. (2014). Testing MCMC code. NIPS workshop on
    software engineering for machine learning.
    """
    if not callable(sample_fn):
        raise TypeError(f"`sample_fn` must be callable; got {type(sample_fn).__name__}.")
    alpha = _dg.check_alpha(alpha)
    n_chains = _dg.check_count(n_chains, "n_chains", 2)
    discrete = model.domain in ("binary", "spin")
    if n_steps is None:
        n_steps = 10 if discrete else 20
    n_steps = _dg.check_count(n_steps, "n_steps", 0)
    n_steps_fixed = 10 * n_steps if n_steps_fixed is None else _dg.check_count(n_steps_fixed, "n_steps_fixed", 0)
    d = model.n_features
    _child(seed, 0)  # validates seed

    if discrete:
        states, probs = enumerate_distribution(model)
        exact = None
    else:
        exact = _Exact(exact_sampler) if exact_sampler is not None else exact_continuous(model)

    if isinstance(start, str):
        if start not in ("both", "exact", "fixed"):
            raise ValueError(f"`start` must be 'both', 'exact', 'fixed' or an array of states; got {start!r}.")
        kinds = {"both": ("exact", "fixed"), "exact": ("exact",), "fixed": ("fixed",)}[start]
        fixed = None
    else:
        s0 = _dg.check_input_array(start, "start")
        if s0.shape == (d,):
            fixed = np.repeat(s0[None, :], n_chains, axis=0)
        elif s0.shape == (n_chains, d):
            fixed = s0.copy()
        else:
            raise ValueError(f"`start` must have shape ({d},) or ({n_chains}, {d}); got {s0.shape}.")
        kinds = ("exact", "fixed")
    if "fixed" in kinds and fixed is None:
        if discrete:
            point = most_probable_state(states, probs)
        elif exact.m1 is not None:
            point = np.asarray(exact.m1, dtype=np.float64)
        else:
            draws = np.asarray(exact.sample(np.random.default_rng(_child(seed, 6)), 2001), dtype=np.float64)
            point = np.median(draws, axis=0)
        fixed = np.repeat(point[None, :], n_chains, axis=0)

    alpha_each = alpha / len(kinds)
    subs = {}
    for kind in kinds:
        base = 0 if kind == "exact" else 3
        rng_start = np.random.default_rng(_child(seed, base))
        rng_sampler = np.random.default_rng(_child(seed, base + 1))
        rng_test = np.random.default_rng(_child(seed, base + 2))
        if kind == "exact":
            if discrete:
                x0 = states[rng_start.choice(probs.size, size=n_chains, p=probs)].copy()
            else:
                x0 = np.asarray(exact.sample(rng_start, n_chains), dtype=np.float64)
        else:
            x0 = fixed.copy()
        params = {k: v.copy() for k, v in model.params.items()}
        steps = n_steps if kind == "exact" else n_steps_fixed
        raw = sample_fn(params, x0.copy(), steps, rng_sampler)
        # values at the edge of the float range (1e308) overflow in means and
        # variances: the statistic becomes inf and the start fails, silently
        with np.errstate(over="ignore", invalid="ignore"):
            subs[kind] = _one_start(raw, model, discrete, states if discrete else None, probs if discrete else None,
                                    exact, n_chains, steps, kind, alpha_each, rng_test)
    return _combine(subs, alpha, kinds, start)


def _marginals(out, expected_mean, expected_var):
    n = out.shape[0]
    rows = []
    for k in range(out.shape[1]):
        m = float(np.mean(out[:, k]))
        e = float(expected_mean[k])
        v = float(expected_var[k])
        z = (m - e) / np.sqrt(v / n) if v > 0 else (0.0 if m == e else np.inf)
        rows.append({"unit": k, "observed": m, "expected": e, "z": float(z)})
    return rows


def _one_start(raw, model, discrete, states, probs, exact, n_chains, n_steps, kind, alpha, rng_test):
    d = model.n_features
    details = {"n_chains": n_chains, "n_steps": n_steps, "start": kind}
    test = "chi-square" if discrete else "bonferroni(KS, moments)"

    def invalid(code, msg):
        r = SamplerCheckResult(test, np.inf, 0.0, 0.0, float(alpha), False, details, msg)
        r.suspects = (code,)
        return r

    details["dtype"] = _dg.dtype_name(raw)
    try:
        out = _dg.read_array(raw, "sample_fn output", shape=(n_chains, d))
    except _dg.BadResult as bad:
        msg = bad.message.replace("is nan", "is NaN").replace("is inf", "is inf")
        if bad.code == "nonfinite":
            msg = "sample_fn returned NaN or inf: " + bad.message
        elif bad.code == "shape":
            msg = f"sample_fn returned the wrong shape: {bad.message}; expected ({n_chains}, {d})."
        return invalid(bad.code, msg)

    if discrete:
        allowed = (0.0, 1.0) if model.domain == "binary" else (-1.0, 1.0)
        ok = (out == allowed[0]) | (out == allowed[1])
        if not np.all(ok):
            bad = tuple(int(i) for i in np.argwhere(~ok)[0])
            return invalid("domain", f"sample_fn returned {float(out[bad])!r} at {bad}, outside the {model.domain} domain {allowed}.")
        ones = states == 1.0
        p1 = probs @ ones
        lo = allowed[0]
        mean = lo + (1.0 - lo) * p1
        var = (1.0 - lo) ** 2 * p1 * (1.0 - p1)
        details["marginals"] = _marginals(out, mean, var)
        counts = np.bincount(_state_index(out, model.domain), minlength=probs.size).astype(np.float64)
        stat, dof = _pooled_chisquare(counts, n_chains * probs)
        if dof < 1:
            return SamplerCheckResult("chi-square", 0.0, 0.0, 1.0, float(alpha), True, details)
        threshold = float(stats.chi2.isf(alpha, dof))
        p_value = float(stats.chi2.sf(stat, dof))
        details.update(tv=float(0.5 * np.sum(np.abs(counts / n_chains - probs))), dof=dof, n_cells=int(probs.size))
        return SamplerCheckResult("chi-square", stat, threshold, p_value, float(alpha), stat <= threshold, details)

    if exact.m1 is not None and exact.m2 is not None:
        details["marginals"] = _marginals(out, exact.m1, np.asarray(exact.m2) - np.asarray(exact.m1) ** 2)
    u = rng_test.standard_normal(d)
    u /= np.linalg.norm(u)
    pv = _continuous_pvalues(out, exact, rng_test, u)
    k = len(pv)
    adjusted = float(min(1.0, k * min(pv.values())))
    details.update(n_tests=k, p_values=pv)
    return SamplerCheckResult(
        "bonferroni(KS, moments)", adjusted, float(alpha), adjusted, float(alpha), adjusted >= alpha, details
    )


def _combine(subs, alpha, kinds, start):
    """One result over the starts: Bonferroni (each start at alpha / number of starts)."""
    m = len(kinds)
    worst = min(subs.values(), key=lambda r: (r.passed, r.p_value))
    caught = tuple(k for k in kinds if not subs[k].passed)
    details = dict(worst.details)
    details["start"] = "+".join(kinds)
    res = SamplerCheckResult(
        worst.test, worst.statistic, worst.threshold, float(min(1.0, m * worst.p_value)), float(alpha),
        not caught, details, "; ".join(f"[{k} start] {subs[k].message}" for k in kinds if subs[k].message),
    )
    res.starts = subs
    res.caught_by = caught
    res.dtype = subs[kinds[0]].details.get("dtype", "float64")
    codes, said = [], []
    for k in kinds:
        codes += [c for c in subs[k].suspects if c not in codes]
    if codes:
        said.append(res.message)
    elif caught == ("fixed",) and "exact" in subs:
        codes.append("no_mixing")
        said.append(
            f"the chains keep exact samples exact but do not reach the distribution from the fixed start in "
            f"{subs['fixed'].details['n_steps']} steps: the kernel does not converge (a stale variable, a unit never updated, "
            "a reducible kernel) or needs more steps"
        )
    elif caught and "p_values" in details:
        worst_p = sorted(details["p_values"].items(), key=lambda kv: kv[1])[:3]
        said.append(
            "the output is not the exact distribution; the smallest p-values are "
            + ", ".join(f"{name} ({p:.2g})" for name, p in worst_p)
        )
    elif caught:
        marg = details.get("marginals") or []
        worst_units = sorted(marg, key=lambda r: -abs(r["z"]))[:3]
        if worst_units and abs(worst_units[0]["z"]) > float(-special.ndtri(alpha / (4.0 * len(marg)))):
            said.append(
                "the output is not the exact distribution; the largest per-unit marginal deviations are "
                + ", ".join(f"unit {r['unit']} (z = {r['z']:.1f})" for r in worst_units)
            )
        else:
            said.append("the output is not the exact distribution (the per-unit marginals agree: the error is in the joint)")
    if not codes and "exact" in caught:
        # exact samples in, not exact samples out: the transition itself is wrong (docs/checking.md)
        codes.append("biased")
        said.append(
            "it fails from exact starts: its transition does not leave the distribution invariant "
            "(a wrong acceptance ratio, a mean or probability used in place of a sample, a wrong conditional)"
        )
    res.suspects = tuple(codes)
    res.diagnosis = _dg.join(said)
    return res


def assert_sampler_exact(sample_fn, model, **kwargs):
    """:func:`check_sampler`, raising ``AssertionError`` with the report on rejection.

    Parameters
    ----------
    sample_fn : callable
    model : EnergyModel
    **kwargs
        Everything :func:`check_sampler` takes.

    Returns
    -------
    SamplerCheckResult

    Raises
    ------
    AssertionError
        If the test rejects at level ``alpha``.
    """
    return check_sampler(sample_fn, model, **kwargs).assert_ok()
