"""Continuous samplers: rwmh (Gaussian proposal), ULA/MALA, Gibbs-Langevin.

Statistical policy (docs/samplers.md): N = 20 000 independent chains
started from EXACT draws, k steps, then the final states are iid draws of
``pi K^k``; if the kernel keeps ``pi`` they are draws of ``pi``. Every
assertion states its false-failure rate next to it (alpha = 1e-4), and every
check is also run on a deliberately broken kernel that it must reject.
"""

from __future__ import annotations

import os
import textwrap

import numpy as np
import pytest
from scipy import special, stats

from _threads_harness import run_at_thread_counts

from ebm_ref._rng import as_seed_sequence, chain_states, np_normals, np_uniforms
from ebm_ref.energies import GRBM, RBM, EnergyModel, GaussianMixture, LatentEnergy, MLPEnergy, StudentT
from ebm_ref.energies.kernels import continuous_eval_batch
from ebm_ref.samplers import _continuous as K
from ebm_ref.samplers import hmc
from ebm_ref.samplers import gibbs_langevin
from ebm_ref.samplers import langevin
from ebm_ref.samplers.mh import rwmh

ALPHA = 1e-4  # per-assertion false-failure rate
N = 20_000
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ------------------------------------------------------------------ helpers
def mixture_1d_cdf(w, m, s):
    """CDF of sum_k w_k N(m_k, s_k^2)."""
    w, m, s = (np.asarray(a, dtype=float) for a in (w, m, s))
    return lambda x: np.sum(w * special.ndtr((np.asarray(x)[..., None] - m) / s), axis=-1)


def mixture_1d_moments(w, m, s):
    """E[x], Var[x], E[x^2], Var[x^2] of a 1-D Gaussian mixture (exact)."""
    e1 = np.sum(w * m)
    e2 = np.sum(w * (m**2 + s**2))
    e4 = np.sum(w * (m**4 + 6 * m**2 * s**2 + 3 * s**4))
    return e1, e2 - e1**2, e2, e4 - e2**2


def t6_pvalue(x, cdfs, proj_u=None, proj_cdf=None, proj_ref=None):
    """Fisher-combined p-value of per-coordinate KS tests vs the exact CDFs
    plus one KS test of a projection u^T x (exact CDF, or a two-sample KS
    against an independent exact sample ``proj_ref``)."""
    ps = [stats.kstest(x[:, j], cdfs[j]).pvalue for j in range(x.shape[1])]
    if proj_u is not None:
        y = x @ proj_u
        if proj_cdf is not None:
            ps.append(stats.kstest(y, proj_cdf).pvalue)
        else:
            ps.append(stats.ks_2samp(y, proj_ref @ proj_u).pvalue)
    return stats.combine_pvalues(ps, method="fisher").pvalue


def moment_ok(x, moments):
    """z-tests of the sample mean of x_j and x_j^2 against exact values,
    Bonferroni over the 2 d tests at total rate ALPHA; returns the worst |z|
    and the threshold."""
    d = x.shape[1]
    z_crit = stats.norm.isf(ALPHA / (2 * 2 * d))
    zs = []
    for j, (e1, v1, e2, v2) in enumerate(moments):
        zs.append(abs(x[:, j].mean() - e1) / np.sqrt(v1 / x.shape[0]))
        zs.append(abs((x[:, j] ** 2).mean() - e2) / np.sqrt(v2 / x.shape[0]))
    return max(zs), z_crit


def unit_vector(d, seed):
    u = np.random.default_rng(seed).normal(size=d)
    return u / np.linalg.norm(u)


def gaussian_1d(s):
    """N(0, s^2) as a one-component GaussianMixture."""
    return GaussianMixture(np.zeros(1), np.zeros((1, 1)), np.full((1, 1), np.log(s)))


def grbm_exact(model):
    """(weights, means, sd) of the GRBM visible marginal, enumerated here
    independently of the model: integrating v out of e^{-E(v,h)} gives
    p(h) ∝ exp(b_h.h + (mu/sigma^2).Wh + ||Wh/sigma||^2 / 2) and
    p(v|h) = N(mu + W h, diag sigma^2)."""
    p = model.params
    W, mu, b, var = p["W"], p["mu"], p["b_h"], np.exp(p["log_var"])
    H = W.shape[1]
    hs = ((np.arange(2**H)[:, None] >> np.arange(H)[::-1]) & 1).astype(float)
    Wh = hs @ W.T
    score = hs @ b + (Wh * mu / var).sum(1) + 0.5 * (Wh**2 / var).sum(1)
    w = np.exp(score - special.logsumexp(score))
    return w, mu + Wh, np.sqrt(var)


def grbm_exact_sample(model, n, seed):
    w, means, sd = grbm_exact(model)
    gen = np.random.default_rng(seed)
    k = gen.choice(len(w), size=n, p=w)
    return means[k] + sd * gen.standard_normal((n, means.shape[1]))


def mixture_exact_sample(model, n, seed):
    gen = np.random.default_rng(seed)
    k = gen.choice(model.n_components, size=n, p=model.weights)
    return model.means[k] + np.exp(model.log_scales[k]) * gen.standard_normal((n, model.n_features))


def mixture_marginals(w, means, sd):
    """Per-coordinate CDFs and moments of a diagonal Gaussian mixture."""
    sd = np.broadcast_to(sd, means.shape)
    cdfs = [mixture_1d_cdf(w, means[:, j], sd[:, j]) for j in range(means.shape[1])]
    mom = [mixture_1d_moments(w, means[:, j], sd[:, j]) for j in range(means.shape[1])]
    return cdfs, mom


def mixture_projection_cdf(w, means, sd, u):
    sd = np.broadcast_to(sd, means.shape)
    return mixture_1d_cdf(w, means @ u, np.sqrt((sd**2) @ (u**2)))


@pytest.fixture(scope="module")
def grbm():
    # strong enough couplings for a multimodal visible marginal
    W = np.array([[1.5, -1.0, 0.5], [0.8, 1.2, -1.4]])
    return GRBM(W, np.array([0.2, -0.3]), np.array([-0.5, 0.3, 0.1]), np.log([0.6, 0.9]))


@pytest.fixture(scope="module")
def mixture():
    return GaussianMixture(
        np.array([0.0, 0.5, -0.3]),
        np.array([[-2.0, 0.0], [1.5, 1.0], [0.5, -2.0]]),
        np.log(np.array([[0.6, 0.8], [0.7, 0.5], [1.0, 0.6]])),
    )


@pytest.fixture(scope="module")
def student():
    return StudentT(np.array([0.5, -1.0]), np.log([1.0, 0.7]), np.log([3.0, 6.0]))


def student_cdfs(m):
    loc, scale, df = m.params["loc"], np.exp(m.params["log_scale"]), np.exp(m.params["log_df"])
    return [lambda x, j=j: stats.t.cdf((x - loc[j]) / scale[j], df[j]) for j in range(m.n_features)]


def student_exact(m, n, seed):
    loc, scale, df = m.params["loc"], np.exp(m.params["log_scale"]), np.exp(m.params["log_df"])
    gen = np.random.default_rng(seed)
    return loc + scale * stats.t.rvs(df, size=(n, m.n_features), random_state=gen)


def mlp_model(sizes, act="softplus", seed=3):
    m = MLPEnergy(sizes, activation=act, seed=seed)
    gen = np.random.default_rng(seed)
    # non-zero biases and output so every term of the kernel is exercised
    return m.with_params({k: v + 0.2 * gen.normal(size=v.shape) for k, v in m.params.items()})


# ------------------------------------------- kernels agree with the models
@pytest.mark.parametrize(
    "make",
    [
        lambda: StudentT(np.array([0.3, -1.0, 2.0]), np.array([0.1, -0.4, 0.5]), np.log([1.5, 4.0, 40.0])),
        lambda: GaussianMixture(np.array([0.2, -0.1]), np.arange(6.0).reshape(2, 3) - 2, np.full((2, 3), -0.2)),
        lambda: GRBM(np.arange(12.0).reshape(3, 4) / 10 - 0.5, np.ones(3), np.zeros(4) - 0.1, np.array([0.1, -0.2, 0.3])),
        lambda: mlp_model((3, 7)),
        lambda: mlp_model((3, 6, 5), "tanh"),
        lambda: mlp_model((3, 6, 5, 4), "swish"),
    ],
    ids=["student_t", "mixture", "grbm", "mlp1", "mlp2-tanh", "mlp3-swish"],
)
def test_kernel_energy_and_gradient_match_model(make):
    model = make()
    x = np.random.default_rng(0).normal(size=(9, 3)) * 2.0
    kind, ip, fp, n_work = K.pack_model(model)
    e, g = continuous_eval_batch(kind, ip, fp, x, n_work, True)
    # different summation orders of the same formula: a few ulp of the scale
    np.testing.assert_allclose(e, model.energy(x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(g, model.grad_x(x), rtol=1e-11, atol=1e-12)


def mala_mutant(evaluate, x0, n_steps, eta, seed, proposal_ratio):
    """MALA in NumPy on the production per-chain streams; ``proposal_ratio=False``
    is the planted bug (the Metropolis-Hastings ratio without q(x|x')/q(x'|x)).
    ``evaluate(x) -> (E, grad E)`` is the public kernel dispatch or the model."""
    x = np.array(x0, dtype=np.float64)
    n, d = x.shape
    rng = chain_states(as_seed_sequence(seed), n)
    e, g = evaluate(x)
    eps = np.empty((n, d))
    for _ in range(n_steps):
        for j in range(d):
            eps[:, j] = np_normals(rng)
        xp = x - eta * g + np.sqrt(2.0 * eta) * eps
        ep, gp = evaluate(xp)
        log_alpha = e - ep
        if proposal_ratio:
            fwd = np.sum((xp - x + eta * g) ** 2, axis=1)
            bwd = np.sum((x - xp + eta * gp) ** 2, axis=1)
            log_alpha = log_alpha + (fwd - bwd) / (4.0 * eta)
        ok = np.log(np_uniforms(rng)) < log_alpha
        x[ok], g[ok], e[ok] = xp[ok], gp[ok], ep[ok]
    return x


def kernel_evaluate(model):
    """``x -> (E, grad E)`` through the public dispatch of the model's Numba form."""
    kind, ip, fp, n_work = model.numba_form()
    return lambda x: continuous_eval_batch(kind, ip, fp, np.ascontiguousarray(x), n_work, True)


# --------------------------------------------- exactness from exact starts
def test_mala_and_rwmh_keep_student_t(student):
    x0 = student_exact(student, N, 11)
    ref = student_exact(student, N, 12)
    u = unit_vector(2, 0)
    cdfs = student_cdfs(student)
    for name, res in [
        ("mala", langevin(student, x0, 20, 0.6, seed=1, adjust=True)),
        ("rwmh", rwmh(student, x0, 20, 1.5, seed=2)),
    ]:
        assert 0.2 < res.acceptance_rate.mean() < 0.98, name  # the chains do move
        p = t6_pvalue(res.x, cdfs, u, proj_ref=ref)
        assert p > ALPHA, (name, p)  # false-failure rate ALPHA = 1e-4
        # means only: df = 3 has a sample variance of infinite variance
        mean = student.params["loc"]
        sd = np.exp(student.params["log_scale"]) * np.sqrt(np.array([3.0, 6.0]) / np.array([1.0, 4.0]))
        z = np.abs(res.x.mean(0) - mean) / (sd / np.sqrt(N))
        assert z.max() < stats.norm.isf(ALPHA / 4), (name, z)  # Bonferroni over 2 two-sided tests, total 1e-4


def test_mala_and_rwmh_keep_gaussian_mixture(mixture):
    x0 = mixture_exact_sample(mixture, N, 21)
    w, means, sd = mixture.weights, mixture.means, np.exp(mixture.log_scales)
    cdfs, mom = mixture_marginals(w, means, sd)
    u = unit_vector(2, 1)
    pcdf = mixture_projection_cdf(w, means, sd, u)
    for name, res in [
        ("mala", langevin(mixture, x0, 20, 0.4, seed=3, adjust=True)),
        ("rwmh", rwmh(mixture, x0, 20, 1.2, seed=4)),
    ]:
        assert 0.2 < res.acceptance_rate.mean() < 0.98, name
        p = t6_pvalue(res.x, cdfs, u, proj_cdf=pcdf)
        assert p > ALPHA, (name, p)  # false-failure rate 1e-4
        zmax, zcrit = moment_ok(res.x, mom)
        assert zmax < zcrit, (name, zmax)  # total false-failure rate 1e-4 (Bonferroni)


def test_samplers_keep_grbm_visible_marginal(grbm):
    x0 = grbm_exact_sample(grbm, N, 31)
    w, means, sd = grbm_exact(grbm)
    # the model's own mixture agrees with the independent enumeration
    w2, m2, var2 = grbm.visible_mixture()
    np.testing.assert_allclose(np.sort(w2), np.sort(w), rtol=1e-12)
    cdfs, mom = mixture_marginals(w, means, sd)
    u = unit_vector(2, 2)
    pcdf = mixture_projection_cdf(w, means, sd, u)
    for name, res in [
        ("gibbs-langevin adjusted", gibbs_langevin(grbm, x0, 20, 0.4, seed=5, adjust=True)),
        ("mala on F(v)", langevin(grbm, x0, 20, 0.3, seed=6, adjust=True)),
        ("rwmh on F(v)", rwmh(grbm, x0, 20, 1.0, seed=7)),
    ]:
        assert 0.2 < res.acceptance_rate.mean() < 0.99, name
        p = t6_pvalue(res.x, cdfs, u, proj_cdf=pcdf)
        assert p > ALPHA, (name, p)  # false-failure rate 1e-4
        zmax, zcrit = moment_ok(res.x, mom)
        assert zmax < zcrit, (name, zmax)  # total false-failure rate 1e-4 (Bonferroni)
        np.testing.assert_allclose(res.energies, grbm.energy(res.x), rtol=1e-12, atol=1e-12)


# ------------------------------- negative controls: same tests must reject
def test_mala_without_proposal_ratio_is_rejected():
    """On N(0, 1) with eta = 1 the proposal is N(0, 2) whatever x; dropping
    q(x|x')/q(x'|x) turns MALA into a Metropolis independence sampler that
    keeps p q ∝ N(0, 2/3) instead of p."""
    model = gaussian_1d(1.0)
    x0 = np.random.default_rng(41).standard_normal((N, 1))
    cdf = [special.ndtr]
    mom = [mixture_1d_moments(np.ones(1), np.zeros(1), np.ones(1))]
    good = langevin(model, x0, 20, 1.0, 8, adjust=True)
    # the mutant with the ratio is the production sampler (up to NumPy's vs
    # the kernel's normals, a few ulp), so it differs from it by the bug only
    same = mala_mutant(kernel_evaluate(model), x0, 20, 1.0, 8, proposal_ratio=True)
    np.testing.assert_allclose(same, good.x, rtol=1e-9, atol=1e-12)
    bad = mala_mutant(kernel_evaluate(model), x0, 20, 1.0, 8, proposal_ratio=False)
    assert t6_pvalue(good.x, cdf) > ALPHA  # false-failure rate 1e-4
    assert moment_ok(good.x, mom)[0] < moment_ok(good.x, mom)[1]  # 1e-4
    assert t6_pvalue(bad, cdf) < 1e-6  # negative control
    zmax, zcrit = moment_ok(bad, mom)
    assert zmax > zcrit
    # its variance is the predicted 2/3, not 1: sd of s^2 is sqrt(2/N) (2/3)
    assert abs(bad.var() - 2.0 / 3.0) < stats.norm.isf(ALPHA / 2) * (2.0 / 3.0) * np.sqrt(2.0 / N)


def test_ula_large_step_is_rejected_by_t6():
    model = gaussian_1d(1.0)
    x0 = np.random.default_rng(42).standard_normal((N, 1))
    res = langevin(model, x0, 20, 0.5, seed=9)
    assert res.acceptance_rate is None
    # stationary sd^2 4/3: sup-CDF gap ~0.035, twice the critical 0.0157
    assert t6_pvalue(res.x, [special.ndtr]) < 1e-6


# ----------------------------------------------- ULA bias and its shrinkage
def ula_variance(s2, eta, k, v0):
    """Exact variance after k ULA steps on N(0, s2) from N(0, v0):
    x' = (1 - eta/s2) x + sqrt(2 eta) eps is linear-Gaussian."""
    r = (1.0 - eta / s2) ** 2
    v_inf = s2 / (1.0 - eta / (2.0 * s2))
    return v_inf + (v0 - v_inf) * r**k


@pytest.mark.parametrize("s", [1.0, 2.0])
def test_ula_variance_matches_its_exact_bias_and_mala_does_not(s):
    model = gaussian_1d(s)
    s2 = s * s
    x0 = s * np.random.default_rng(43).standard_normal((N, 1))
    z = stats.norm.isf(ALPHA / 2)  # two-sided, false-failure rate 1e-4 per assertion
    gaps = []
    for eta in (0.5 * s2, 0.2 * s2, 0.05 * s2):
        ula = langevin(model, x0, 60, eta, seed=10)
        v = ula_variance(s2, eta, 60, s2)
        # the final states are exactly N(0, v): Var(sample var) = 2 v^2 / (N - 1)
        assert abs(ula.x.var(ddof=1) - v) < z * v * np.sqrt(2.0 / (N - 1)), eta
        gaps.append(v - s2)
        mala = langevin(model, x0, 60, eta, seed=10, adjust=True)
        assert abs(mala.x.var(ddof=1) - s2) < z * s2 * np.sqrt(2.0 / (N - 1)), eta
    # the bias shrinks with the step (and is resolved by the test at the largest)
    assert gaps[0] > gaps[1] > gaps[2] > 0
    assert gaps[0] > 2 * z * (s2 + gaps[0]) * np.sqrt(2.0 / (N - 1))


def test_unadjusted_gibbs_langevin_has_the_predicted_bias():
    """With W = 0 the hidden units decouple and the v-move is ULA on
    N(mu, sigma^2): variance exactly as in ula_variance, per coordinate."""
    var = np.array([0.5, 2.0])
    model = GRBM(np.zeros((2, 3)), np.array([1.0, -1.0]), np.array([0.3, -0.2, 0.0]), np.log(var))
    x0 = model.params["mu"] + np.sqrt(var) * np.random.default_rng(44).standard_normal((N, 2))
    eta = 0.45  # bias 82 % and 13 % of the two variances
    res = gibbs_langevin(model, x0, 40, eta, seed=12)
    assert res.acceptance_rate is None
    z = stats.norm.isf(ALPHA / 4)  # Bonferroni over 2 coordinates, total 1e-4
    for j in range(2):
        v = ula_variance(var[j], eta, 40, var[j])
        assert abs(res.x[:, j].var(ddof=1) - v) < z * v * np.sqrt(2.0 / (N - 1))
        assert abs(v - var[j]) > 2 * z * v * np.sqrt(2.0 / (N - 1))  # the bias is visible
    adj = gibbs_langevin(model, x0, 40, eta, seed=12, adjust=True)
    for j in range(2):
        assert abs(adj.x[:, j].var(ddof=1) - var[j]) < z * var[j] * np.sqrt(2.0 / (N - 1))


# -------------------------------------------------------- generic NumPy path
class _PlainT(StudentT):
    """A subclass that redefines a formula hook without redefining the Numba
    form, so ``numba_form()`` is None and it takes the generic path."""

    def _energy(self, x):
        return super()._energy(x)


def test_generic_path_draws_the_same_streams_as_the_kernels(student):
    p = student.params
    plain = _PlainT(p["loc"], p["log_scale"], p["log_df"])
    assert K.pack_model(plain) is None
    x0 = student_exact(student, 50, 51)
    for adjust in (False, True):
        a = langevin(student, x0, 15, 0.3, seed=13, adjust=adjust, thin=5)
        b = langevin(plain, x0, 15, 0.3, seed=13, adjust=adjust, thin=5)
        # normals differ by a few ulp (NumPy's log/cos vs the kernels' polynomials)
        np.testing.assert_allclose(b.x, a.x, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(b.trace, a.trace, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(b.energies, a.energies, rtol=1e-9)
        if adjust:
            np.testing.assert_array_equal(b.acceptance_rate, a.acceptance_rate)
    a = rwmh(student, x0, 15, 1.0, seed=14)
    b = rwmh(plain, x0, 15, 1.0, seed=14)
    np.testing.assert_allclose(b.x, a.x, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(b.acceptance_rate, a.acceptance_rate)


class _Quartic(EnergyModel):
    """E(x) = sum x^4 / 4, a model the package has no kernel for."""

    def __init__(self, d):
        self._d = d
        self._set_params({}, {})

    @property
    def n_features(self):
        return self._d

    def _energy(self, x):
        return 0.25 * (x**4).sum(1)

    def _grad_x(self, x):
        return x**3

    def _hessian_diag(self, x):
        return 3 * x**2

    def _grad_params(self, x, w):
        return {}

    def _grad_params_of_grad_x(self, x, v):
        return {}

    def _grad_params_of_hessian_diag(self, x, c):
        return {}


def test_generic_path_mala_keeps_a_quartic():
    """p(x) ∝ exp(-x^4/4): x^4/4 ~ Gamma(1/4, 1), so P(|X| <= t) is the
    regularised incomplete gamma P(1/4, t^4/4), symmetric about 0."""
    model = _Quartic(1)
    gen = np.random.default_rng(52)
    g = gen.gamma(0.25, 1.0, size=N)
    x0 = (np.sign(gen.uniform(-1, 1, size=N)) * (4 * g) ** 0.25)[:, None]

    def cdf(x):
        return 0.5 + 0.5 * np.sign(x) * special.gammainc(0.25, x**4 / 4)

    res = langevin(model, x0, 10, 0.5, seed=15, adjust=True)
    assert 0.2 < res.acceptance_rate.mean() < 0.98
    assert t6_pvalue(res.x, [cdf]) > ALPHA  # false-failure rate 1e-4
    # and the broken variant fails the same test on the same path
    def evaluate(x):
        return model.energy(x), model.grad_x(x)

    np.testing.assert_allclose(mala_mutant(evaluate, x0, 10, 0.5, 15, True), res.x, rtol=1e-12, atol=1e-14)
    xb = mala_mutant(evaluate, x0, 10, 0.5, 15, proposal_ratio=False)
    # a quartic has light tails: ignoring q's asymmetry moves mass outwards
    assert t6_pvalue(xb, [cdf]) < 1e-6


# ------------------------------------------------------------ reproducibility
def _run_all(n_chains, seed):
    gen = np.random.default_rng(99)
    out = {}
    models = {
        "t": StudentT(np.zeros(2), np.zeros(2), np.log([3.0, 5.0])),
        "mlp": mlp_model((2, 16, 16)),
        "grbm": GRBM(gen.normal(size=(3, 4)), np.zeros(3), np.zeros(4), np.zeros(3)),
    }
    for name, m in models.items():
        x0 = np.random.default_rng(7).normal(size=(n_chains, m.n_features))
        out[f"{name}-mala"] = langevin(m, x0, 12, 0.2, seed=seed, adjust=True, thin=4)
        out[f"{name}-ula"] = langevin(m, x0, 12, 0.2, seed=seed, thin=3)
        out[f"{name}-rwmh"] = rwmh(m, x0, 12, 0.7, seed=seed, thin=6)
    x0 = np.random.default_rng(7).normal(size=(n_chains, 3))
    out["gl"] = gibbs_langevin(models["grbm"], x0, 12, 0.2, seed=seed, adjust=True, thin=4)
    out["gl-u"] = gibbs_langevin(models["grbm"], x0, 12, 0.2, seed=seed, thin=4)
    return out


def _flatten(results, n=None):
    arrs = {}
    for k, r in results.items():
        sl = slice(None) if n is None else slice(0, n)
        arrs[k + ".x"] = r.x[sl]
        arrs[k + ".e"] = r.energies[sl]
        if r.acceptance_rate is not None:
            arrs[k + ".a"] = r.acceptance_rate[sl]
        if r.trace is not None:
            arrs[k + ".t"] = r.trace[:, sl]
    return arrs


def test_same_seed_twice_and_chain_prefix_invariance():
    a = _flatten(_run_all(100, 5))
    b = _flatten(_run_all(100, 5))
    small = _flatten(_run_all(10, 5))
    big_prefix = _flatten(_run_all(100, 5), n=10)
    other = _flatten(_run_all(100, 6))
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
        np.testing.assert_array_equal(small[k], big_prefix[k], err_msg=k)
    assert not np.array_equal(a["t-mala.x"], other["t-mala.x"])


PREFIX_MODELS = {
    "student_t": lambda: StudentT(np.zeros(2), np.zeros(2), np.log([3.0, 5.0])),
    "mixture": lambda: GaussianMixture(np.array([0.2, -0.1]), np.array([[-1.0, 0.5], [1.0, 0.0]]),
                                       np.full((2, 2), -0.2)),
    "grbm": lambda: GRBM(np.arange(6.0).reshape(2, 3) / 5 - 0.5, np.ones(2), np.zeros(3), np.zeros(2)),
    "mlp": lambda: mlp_model((2, 9, 5)),
    # no Numba form: the generic NumPy path, whose batch energy goes through BLAS
    "latent": lambda: LatentEnergy(np.array([1.3, 0.7])),
}


@pytest.mark.parametrize("name", sorted(PREFIX_MODELS))
def test_chain_c_does_not_depend_on_the_number_of_chains(name):
    """1 vs 7 vs 301 chains: the first chains of every run are bit-identical,
    for every continuous sampler and every model (on the generic path too,
    whose evaluations run on fixed-shape blocks)."""
    model = PREFIX_MODELS[name]()
    x0 = np.random.default_rng(17).normal(size=(301, model.n_features))
    runs = {
        "mala": lambda x: langevin(model, x, 4, 0.05, seed=3, adjust=True, thin=2),
        "ula": lambda x: langevin(model, x, 4, 0.05, seed=3, thin=2),
        "rwmh": lambda x: rwmh(model, x, 4, 0.5, seed=3, thin=2),
        "hmc": lambda x: hmc(model, x, 3, 0.1, 3, seed=3, thin=1),
    }
    for kernel, run in runs.items():
        full = _flatten({kernel: run(x0)})
        for n in (1, 7):
            part = _flatten({kernel: run(x0[:n])})
            for k in part:
                np.testing.assert_array_equal(part[k], full[k][:, :n] if k.endswith(".t") else full[k][:n],
                                              err_msg=f"{name} {k} n={n}")


@pytest.mark.parametrize("name", ["mlp", "latent"])
def test_a_run_split_into_chunks_gives_the_same_bits(name):
    """Steps [0, 4) then [4, 10) through the driver (Numba or generic) are
    one run of 10 steps: the state lives in x and the RNG rows, the step
    offset places the trace, accepted counts add up."""
    from ebm_ref.samplers._common import prepare

    model = PREFIX_MODELS[name]()
    x0 = np.random.default_rng(2).normal(size=(9, model.n_features))
    for move, adjust in ((K.MOVE_RWMH, True), (K.MOVE_LANGEVIN, False), (K.MOVE_LANGEVIN, True), (K.MOVE_HMC, True)):
        whole = prepare(model, x0, 10, 5, thin=2)
        acc_w, e_w = K.run(model, move, whole, 2.0, adjust=adjust, n_leap=3)
        split = prepare(model, x0, 10, 5, thin=2)
        acc = np.zeros(9, dtype=np.int64)
        e = np.empty(9)
        g = np.empty((9, model.n_features))  # the carried gradients (Numba driver)
        for t0, n in ((0, 4), (4, 6)):
            args = (move, split.x, t0, n, 2.0, adjust, 3, np.ones(model.n_features), split.rng, 2, split.trace, acc)
            form = K.pack_model(model)
            if form is None:
                e = K.generic_run(model, *args)
            else:
                K.metropolis_run(*form, *args, e, g, t0 + n == 10, 1)
        for a, b in ((split.x, whole.x), (split.trace, whole.trace), (acc, acc_w), (e, e_w)):
            np.testing.assert_array_equal(a, b, err_msg=f"{name} move {move} adjust {adjust}")
        assert not adjust or 0 < acc.sum() < 90


def test_tile_size_does_not_change_results():
    """The drivers group chains in tiles for the MLP kernel; chain c's
    arithmetic must not depend on the tile it sits in."""
    model = mlp_model((3, 9, 6))
    kind, ip, fp, n_work = K.pack_model(model)
    x0 = np.random.default_rng(8).normal(size=(23, 3))
    outs = []
    for tile in (1, 4, 7, 23):
        x = x0.copy()
        rng = chain_states(as_seed_sequence(4), 23)
        trace = np.empty((2, 23, 3))
        acc = np.zeros(23, dtype=np.int64)
        e = np.empty(23)
        K.metropolis_run(kind, ip, fp, n_work, K.MOVE_LANGEVIN, x, 0, 10, 0.1, True, 1, np.ones(3), rng, 5,
                         trace, acc, e, np.empty((23, 3)), True, tile)
        outs.append((x, trace, acc, e))
    for other in outs[1:]:
        for a, b in zip(outs[0], other):
            np.testing.assert_array_equal(a, b)
    assert 0 < outs[0][2].sum() < 230  # some, not all, proposals accepted


def test_bit_identical_with_one_and_two_threads(tmp_path):
    script = textwrap.dedent(
        f"""
        import sys, numpy as np
        sys.path.insert(0, {ROOT!r}); sys.path.insert(0, {os.path.dirname(__file__)!r})
        import test_samplers_continuous as T
        np.savez(sys.argv[1], **T._flatten(T._run_all(64, 3)))
        """
    )
    path = tmp_path / "run.py"
    path.write_text(script)
    outs = run_at_thread_counts(path, tmp_path)
    assert set(outs[0]) == set(outs[1]) and len(outs[0]) > 20
    for k in outs[0]:
        np.testing.assert_array_equal(outs[0][k], outs[1][k], err_msg=k)


def test_seed_kinds_and_numpy_global_state_untouched(student):
    x0 = np.zeros((5, 2))
    state = np.random.get_state()[1].copy()
    a = langevin(student, x0, 5, 0.1, seed=np.random.SeedSequence(17), adjust=True)
    b = langevin(student, x0, 5, 0.1, seed=17, adjust=True)
    np.testing.assert_array_equal(a.x, b.x)
    gen = np.random.default_rng(1)
    c = langevin(student, x0, 5, 0.1, seed=gen)
    d = langevin(student, x0, 5, 0.1, seed=gen)  # the Generator advanced
    assert not np.array_equal(c.x, d.x)
    np.testing.assert_array_equal(np.random.get_state()[1], state)


# ------------------------------------------------------------- result shapes
def test_result_shapes_trace_and_zero_steps(student, grbm):
    x0 = np.random.default_rng(0).normal(size=(6, 2))
    x0_copy = x0.copy()
    r = langevin(student, x0, 10, 0.2, seed=0, adjust=True, thin=3)
    assert r.x.shape == (6, 2) and r.trace.shape == (3, 6, 2) and r.energies.shape == (6,)
    np.testing.assert_array_equal(x0, x0_copy)  # input untouched
    r10 = langevin(student, x0, 9, 0.2, seed=0, adjust=True, thin=9)
    np.testing.assert_array_equal(r10.trace[-1], r10.x)
    np.testing.assert_allclose(r.energies, student.energy(r.x), rtol=1e-12)
    assert np.all((r.acceptance_rate >= 0) & (r.acceptance_rate <= 1))
    for res in (
        langevin(student, x0, 0, 0.2, seed=0, adjust=True),
        rwmh(student, x0, 0, 0.2, seed=0),
        gibbs_langevin(grbm, x0, 0, 0.2, seed=0, adjust=True),
    ):
        np.testing.assert_array_equal(res.x, x0)
        assert res.trace is None
        assert np.all(np.isnan(res.acceptance_rate))  # nothing proposed (documented)
    single = rwmh(student, np.zeros(2), 5, 0.5, seed=0)
    assert single.x.shape == (2,)
    assert langevin(student, x0, 5, 0.2, seed=0).acceptance_rate is None
    assert gibbs_langevin(grbm, x0, 5, 0.2, seed=0).acceptance_rate is None


def test_infinite_energy_proposals_are_rejected():
    """A component with a tiny scale far away: proposals landing where every
    component underflows have E = +inf and must be rejected, never NaN."""
    m = GaussianMixture(np.zeros(1), np.zeros((1, 1)), np.full((1, 1), np.log(1e-3)))
    res = rwmh(m, np.zeros((50, 1)), 20, 1e3, seed=0)
    assert np.all(np.isfinite(res.x)) and np.all(np.isfinite(res.energies))
    assert np.all(res.acceptance_rate == 0.0)


# --------------------------------------------------------------- bad inputs
@pytest.mark.parametrize(
    "call, exc, pattern",
    [
        (lambda m, g: langevin(m, np.zeros((3, 2)), 5, 0.0, seed=0), ValueError, "`step_size`"),
        (lambda m, g: langevin(m, np.zeros((3, 2)), 5, -0.1, seed=0, adjust=True), ValueError, "`step_size`"),
        (lambda m, g: langevin(m, np.zeros((3, 2)), 5, np.nan, seed=0), ValueError, "`step_size`"),
        (lambda m, g: langevin(m, np.zeros((3, 2)), 5, "0.1", seed=0), TypeError, "`step_size`"),
        (lambda m, g: langevin(m, np.zeros((3, 2)), -1, 0.1, seed=0), ValueError, "`n_steps`"),
        (lambda m, g: langevin(m, np.zeros((3, 2)), 2.5, 0.1, seed=0), TypeError, "`n_steps`"),
        (lambda m, g: langevin(m, np.zeros((3, 2)), 5, 0.1, seed=0, thin=-1), ValueError, "`thin`"),
        (lambda m, g: langevin(m, np.zeros((3, 3)), 5, 0.1, seed=0), ValueError, "`x0`.*shape"),
        (lambda m, g: langevin(m, np.zeros((2, 3, 2)), 5, 0.1, seed=0), ValueError, "`x0`.*shape"),
        (lambda m, g: langevin(m, np.full((3, 2), np.nan), 5, 0.1, seed=0), ValueError, "`x0`.*finite"),
        (lambda m, g: langevin(m, np.zeros((3, 2)), 5, 0.1, seed=None), TypeError, "`seed`"),
        (lambda m, g: langevin(m, np.zeros((3, 2)), 5, 0.1, seed=0, adjust="yes"), TypeError, "`adjust`"),
        (lambda m, g: rwmh(m, np.zeros((3, 2)), 5, 0.0, seed=0), ValueError, "`scale`"),
        (lambda m, g: rwmh(m, np.zeros((3, 2)), 5, -1.0, seed=0), ValueError, "`scale`"),
        (lambda m, g: rwmh(m, np.zeros((3, 2)), -2, 1.0, seed=0), ValueError, "`n_steps`"),
        (lambda m, g: rwmh(m, np.zeros((3, 4)), 5, 1.0, seed=0), ValueError, "`x0`.*shape"),
        (lambda m, g: gibbs_langevin(g, np.zeros((3, 2)), 5, 0.0, seed=0), ValueError, "`step_size`"),
        (lambda m, g: gibbs_langevin(g, np.zeros((3, 2)), -1, 0.1, seed=0), ValueError, "`n_steps`"),
        (lambda m, g: gibbs_langevin(g, np.zeros((3, 5)), 5, 0.1, seed=0), ValueError, "`x0`.*shape"),
        (lambda m, g: gibbs_langevin(m, np.zeros((3, 2)), 5, 0.1, seed=0), TypeError, "supports: GRBM"),
    ],
)
def test_bad_inputs(call, exc, pattern, student, grbm):
    with pytest.raises(exc, match=pattern):
        call(student, grbm)


def test_unsupported_models_name_the_supported_ones():
    rbm = RBM(np.zeros((3, 2)), np.zeros(3), np.zeros(2))
    with pytest.raises(TypeError, match=r"`langevin` does not support RBM.*StudentT.*MLPEnergy"):
        langevin(rbm, np.zeros((2, 3)), 5, 0.1, seed=0)
    with pytest.raises(TypeError, match=r"`rwmh` does not support str.*GaussianMixture"):
        rwmh("model", np.zeros((2, 3)), 5, 0.1, seed=0)
    with pytest.raises(TypeError, match=r"`gibbs_langevin` does not support RBM.*GRBM"):
        gibbs_langevin(rbm, np.zeros((2, 3)), 5, 0.1, seed=0)


def test_rwmh_delegates_binary_models_and_ignores_scale():
    rbm = RBM(np.full((3, 2), 0.5), np.zeros(3), np.zeros(2))
    x0 = np.zeros((4, 3))
    a = rwmh(rbm, x0, 10, -5.0, seed=3)  # scale unused for binary models
    b = rwmh(rbm, x0, 10, 1.0, seed=3)
    np.testing.assert_array_equal(a.x, b.x)
    assert set(np.unique(a.x)) <= {0.0, 1.0}
    assert a.acceptance_rate.shape == (4,)
