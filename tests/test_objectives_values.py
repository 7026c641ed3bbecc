"""Objective values against their definitions computed by brute force.

* score matching (and diffusion score matching) = Fisher divergence to a
  known data density minus a parameter-independent constant (quadrature);
* ratio matching = Hyvärinen's definition summed over all states of an
  8-unit model, minus a constant;
* exact MLE = minus the average log-likelihood by brute-force enumeration;
* Gaussian energy discrepancy -> t * score matching as t -> 0 (1-D Gaussian).
"""

import itertools
import math

import numpy as np
import pytest
from scipy import integrate, special, stats

from ebm_ref import objectives as O
from ebm_ref.energies import RBM, GaussianMixture, Ising, StudentT

# ------------------------------------------------------------ score matching
NU_P, S_P = 5.0, 0.3  # data density t_5(0, 0.3): the Student-t figure


def _p(x):
    return stats.t.pdf(x, NU_P, scale=S_P)


def _score_t(x, loc, scale, df):
    u = x - loc
    return -(df + 1.0) * u / (df * scale**2 + u * u)


def _student(loc, scale, df):
    return StudentT([loc], [math.log(scale)], [math.log(df)])


def _quad(f):
    # the integrands decay at least like |x|^-4; quad's error bound is checked
    val, err = integrate.quad(f, -np.inf, np.inf, epsabs=1e-11, epsrel=1e-11, limit=400)
    assert err < 1e-8
    return val


PARAMS = [(0.0, 0.3, 5.0), (0.7, 0.3, 5.0), (-1.5, 0.5, 3.0), (2.0, 0.2, 10.0), (0.3, 1.0, 1.5)]


@pytest.mark.parametrize(
    "kind", ["sm", "manual", "gaussian-flow"]
)
def test_score_matching_is_fisher_divergence_minus_constant(kind):
    if kind == "sm":
        obj, m = O.ScoreMatching(), (lambda x: 1.0)
    elif kind == "manual":
        mf = O.ManualFlow(0.0, 0.6)
        obj, m = O.DiffusionScoreMatching(mf), (lambda x: 1.0 + x * x / 0.6)
    else:
        gf = O.GaussianFlow(0.0, S_P, NU_P)
        obj = O.DiffusionScoreMatching(gf)

        def m(x):
            z = stats.norm.ppf(stats.t.cdf(x, NU_P, scale=S_P))
            return stats.norm.pdf(z) / stats.t.pdf(x, NU_P, scale=S_P)

    # C = 1/2 E_p ||m * dlog p/dx||^2, the dropped constant (derived in the docstrings)
    const = _quad(lambda x: 0.5 * _p(x) * (m(x) * _score_t(x, 0.0, S_P, NU_P)) ** 2)
    diffs = []
    for loc, scale, df in PARAMS:
        model = _student(loc, scale, df)
        fisher = _quad(
            lambda x: 0.5 * _p(x) * (m(x) * (_score_t(x, loc, scale, df) - _score_t(x, 0.0, S_P, NU_P))) ** 2
        )
        loss = _quad(lambda x: _p(x) * obj.value(model, np.array([[x]])))
        diffs.append(fisher - loss)
    # quadrature errors are < 1e-8 each (asserted in _quad)
    np.testing.assert_allclose(diffs, const, atol=1e-7, rtol=0)


def test_score_matching_minimum_at_data_parameters():
    """At the data parameters the Fisher divergence is 0: the loss is -C."""
    const = _quad(lambda x: 0.5 * _p(x) * _score_t(x, 0.0, S_P, NU_P) ** 2)
    model = _student(0.0, S_P, NU_P)
    loss = _quad(lambda x: _p(x) * O.ScoreMatching().value(model, np.array([[x]])))
    assert loss == pytest.approx(-const, abs=1e-7)


# ------------------------------------------------------------ ratio matching
def _all_states(d, domain):
    s = np.array(list(itertools.product([0.0, 1.0], repeat=d)))
    return s if domain == "binary" else 2.0 * s - 1.0


def _rbm_free_energy(v, W, b, c):
    return -v @ b - np.logaddexp(0.0, v @ W + c).sum(axis=1)


def _ising_energy(s, J, h):
    return -0.5 * np.einsum("ni,ij,nj->n", s, J, s) - s @ h


def _flip(x, i, domain):
    y = x.copy()
    y[..., i] = 1.0 - y[..., i] if domain == "binary" else -y[..., i]
    return y


def _rm_definition(states, p_data, energy, domain):
    """Hyvärinen (2007) objective by enumeration: both g terms, g(u) = 1/(1+u)."""
    d = states.shape[1]
    index = {tuple(s): k for k, s in enumerate(states)}
    e = energy(states)
    total = 0.0
    for k, x in enumerate(states):
        if p_data[k] == 0:
            continue
        for i in range(d):
            kf = index[tuple(_flip(x, i, domain))]
            # g(p(x)/p(x^i)) = p(x^i)/(p(x)+p(x^i)), finite even when p(x^i) = 0
            g_data = p_data[kf] / (p_data[k] + p_data[kf])
            g_data_inv = p_data[k] / (p_data[k] + p_data[kf])
            g_model = 1.0 / (1.0 + math.exp(e[kf] - e[k]))  # q(x)/q(x^i) = exp(E(x^i) - E(x))
            g_model_inv = 1.0 / (1.0 + math.exp(e[k] - e[kf]))
            total += p_data[k] * ((g_data - g_model) ** 2 + (g_data_inv - g_model_inv) ** 2)
    return total


@pytest.mark.parametrize("family", ["rbm", "ising-spin", "ising-binary"])
def test_ratio_matching_equals_definition_minus_constant(family):
    d = 8
    domain = "binary" if family in ("rbm", "ising-binary") else "spin"
    states = _all_states(d, domain)
    counts = np.random.default_rng(0).integers(0, 4, size=len(states))
    data = np.repeat(states, counts, axis=0)  # p_data = counts / N exactly
    p_data = counts / counts.sum()
    diffs = []
    for seed in range(4):
        r = np.random.default_rng(100 + seed)
        if family == "rbm":
            W, b, c = r.normal(0, 1, (d, 3)), r.normal(0, 0.5, d), r.normal(0, 0.5, 3)
            model = RBM(W, b, c)

            def energy(s, W=W, b=b, c=c):
                return _rbm_free_energy(s, W, b, c)
        else:
            model = Ising.random(d, 1.5, seed=200 + seed, domain=domain)
            J, h = model.params["J"], model.params["h"]

            def energy(s, J=J, h=h):
                return _ising_energy(s, J, h)

        loss = O.RatioMatching().value(model, data)
        # direct sum over data of sum_i g(q(x)/q(x^i))^2
        e = energy(data)
        direct = np.mean(
            sum(1.0 / (1.0 + np.exp(energy(_flip(data, i, domain)) - e)) ** 2 for i in range(d))
        )
        assert loss == pytest.approx(direct, rel=1e-12)
        diffs.append(_rm_definition(states, p_data, energy, domain) / 2.0 - loss)
    # the same constant for every parameter value (sums of ~2000 terms: 1e-12)
    np.testing.assert_allclose(diffs, diffs[0], atol=1e-12 * len(states) * d, rtol=0)


# ------------------------------------------------------------- exact MLE
def test_exact_mle_is_minus_average_log_likelihood_rbm():
    r = np.random.default_rng(3)
    V, H = 7, 3
    W, b, c = r.normal(0, 1, (V, H)), r.normal(0, 0.5, V), r.normal(0, 0.5, H)
    model = RBM(W, b, c)
    v = _all_states(V, "binary")
    h = _all_states(H, "binary")
    # brute force over (v, h) with the joint energy written out
    joint = -(v @ b)[:, None] - (h @ c)[None, :] - v @ W @ h.T
    log_z = special.logsumexp(-joint)
    data = v[r.integers(0, len(v), 40)]
    log_p = special.logsumexp(-(-(data @ b)[:, None] - (h @ c)[None, :] - data @ W @ h.T), axis=1) - log_z
    assert O.ExactMLE().value(model, data) == pytest.approx(-np.mean(log_p), rel=1e-12)


def test_exact_mle_is_minus_average_log_likelihood_ising():
    model = Ising.random(8, 1.0, seed=4)
    J, h = model.params["J"], model.params["h"]
    s = _all_states(8, "spin")
    log_z = special.logsumexp(-_ising_energy(s, J, h))
    data = s[np.random.default_rng(5).integers(0, 256, 30)]
    expected = -np.mean(-_ising_energy(data, J, h) - log_z)
    loss, grads = O.ExactMLE().value_and_grad(model, data)
    assert loss == pytest.approx(expected, rel=1e-12)
    # gradient: mean_data dE/dtheta - E_model dE/dtheta, with dE/dJ_ij = -1/2 s_i s_j
    p = np.exp(-_ising_energy(s, J, h) - log_z)
    gJ = -0.5 * (data.T @ data) / len(data) + 0.5 * (s.T * p) @ s
    np.fill_diagonal(gJ, 0.0)
    np.testing.assert_allclose(grads["J"], gJ, atol=1e-12)
    np.testing.assert_allclose(grads["h"], -data.mean(0) + p @ s, atol=1e-12)


# ------------------------------------------- energy discrepancy -> score matching
def _gaussian_model():
    """N(0, 1) in 1-D: E(x) = x^2/2 + log sqrt(2 pi) (a one-component mixture)."""
    return GaussianMixture(np.zeros(1), np.zeros((1, 1)), np.zeros((1, 1)))


def _ed_exact(x, t, s2=1.0):
    r"""ED_{q_t} for E = x^2/(2 s^2) + c, with the expectation over y exact.

    E_t(y) = c + y^2/(2(s^2+t)) + 1/2 log((s^2+t)/s^2) and E[y^2|x] = x^2 + t.
    """
    x2 = x[:, 0] ** 2
    return float(np.mean(x2 / (2 * s2) - (x2 + t) / (2 * (s2 + t))) - 0.5 * math.log1p(t / s2))


def test_energy_discrepancy_formula_from_its_negatives():
    model = _gaussian_model()
    x = np.random.default_rng(0).normal(0, 0.7, (50, 1))
    for w in (0.0, 1.0):
        ed = O.EnergyDiscrepancy("gaussian", t=0.1, m=5, w=w)
        y, neg = ed.negatives(model, x, 9)
        # the negatives are y + sqrt(t) xi' around the perturbed point y
        assert neg.shape == (50, 5, 1) and y.shape == x.shape
        a = model.energy(x)[:, None] - model.energy(neg.reshape(-1, 1)).reshape(50, 5)
        expected = np.mean(np.log(w / 5 + np.mean(np.exp(a), axis=1)))
        assert ed.value(model, x, 9) == pytest.approx(expected, rel=1e-13)


def test_gaussian_energy_discrepancy_approaches_scaled_score_matching():
    model = _gaussian_model()
    x = np.random.default_rng(1).normal(0, math.sqrt(0.5), (100_000, 1))
    sm = O.ScoreMatching().value(model, x)  # = mean x^2/2 - 1
    # (1) the exact ED_t / t tends to SM: expanding _ed_exact in t,
    # ED_t = t SM + t^2 (3/4 - mean(x^2)/2) + O(t^3), so |ED_t/t - SM| < 2t here
    for t in (1e-3, 1e-4, 1e-5):
        assert abs(_ed_exact(x, t) / t - sm) < 2.0 * t
    # (2) the estimator (w = 0, m = 64) matches ED_t at t = 0.01 within its
    # Monte-Carlo error: z-test at alpha = 1e-4 (|z| < 3.89) on the per-sample
    # terms, plus the log-of-a-mean bias ~ -t E[y^2] / (2m) (allowance: twice it).
    t, m = 0.01, 64
    ed = O.EnergyDiscrepancy("gaussian", t=t, m=m, w=0.0)
    value = ed.value(model, x, 2)
    # per-sample terms of a 10^4-row call (its own noise): they average to
    # that call's value and give the per-sample sd (to ~1 %) for the z-test
    sub = x[:10_000]
    y, neg = ed.negatives(model, sub, 3)
    a = model.energy(sub)[:, None] - model.energy(neg.reshape(-1, 1)).reshape(len(sub), m)
    per = special.logsumexp(a, axis=1) - math.log(m)
    assert ed.value(model, sub, 3) == pytest.approx(per.mean(), rel=1e-12)
    se = 1.05 * per.std(ddof=1) / math.sqrt(len(x))  # 5 % margin on the estimated sd
    bias = t * (np.mean(x**2) + t) / (2 * m)
    assert abs(value - _ed_exact(x, t)) < 3.89 * se + 2 * bias
    # hence ED/t is SM within (3.89 se + 2 bias)/t + 2t (about 12 % of |SM| here)
    assert abs(value / t - sm) < (3.89 * se + 2 * bias) / t + 2 * t


# ------------------------------------------------- CD-1 / PCD: exact expectations
def _rbm_state_grads(states, W, b, c):
    """dF/dtheta for every state, flattened in the order W, b_v, b_h."""
    s = special.expit(states @ W + c)
    gW = -(states[:, :, None] * s[:, None, :]).reshape(len(states), -1)
    return np.concatenate([gW, -states, -s], axis=1)


def _flat(grads):
    return np.concatenate([grads["W"].ravel(), grads["b_v"], grads["b_h"]])


def test_cd1_gradient_matches_its_exact_expectation():
    """Data -> h|v -> v'|h enumerated exactly on a tiny RBM."""
    r = np.random.default_rng(8)
    V, H = 4, 2
    W, b, c = r.normal(0, 1, (V, H)), r.normal(0, 0.5, V), r.normal(0, 0.5, H)
    model = RBM(W, b, c)
    v0 = np.array([1.0, 0.0, 1.0, 1.0])
    R = 10_000
    data = np.tile(v0, (R, 1))
    vs = _all_states(V, "binary")
    hs = _all_states(H, "binary")
    ph = np.prod(np.where(hs == 1, special.expit(v0 @ W + c), special.expit(-(v0 @ W + c))), axis=1)
    pv_h = np.prod(
        np.where(vs[None, :, :] == 1, special.expit(hs @ W.T + b)[:, None, :], special.expit(-(hs @ W.T + b))[:, None, :]),
        axis=2,
    )  # (2^H, 2^V)
    q = ph @ pv_h  # law of the CD-1 negative v'
    G = _rbm_state_grads(vs, W, b, c)
    g0 = _rbm_state_grads(v0[None, :], W, b, c)[0]
    exact = g0 - q @ G
    var = q @ (G - q @ G) ** 2  # per-entry variance of one negative's gradient
    _, grads = O.CD(k=1).value_and_grad(model, data, 123)
    z = (_flat(grads) - exact) / np.sqrt(var / R)
    # 14 entries; |z| < 4.6 is a two-sided 4.2e-6 per entry, alpha = 6e-5 in all
    assert np.max(np.abs(z)) < 4.6


def test_pcd_from_exact_samples_matches_the_likelihood_gradient():
    r = np.random.default_rng(9)
    V, H = 4, 2
    W, b, c = r.normal(0, 1, (V, H)), r.normal(0, 0.5, V), r.normal(0, 0.5, H)
    model = RBM(W, b, c)
    vs = _all_states(V, "binary")
    f = -vs @ b - np.logaddexp(0.0, vs @ W + c).sum(1)
    p = np.exp(-f - special.logsumexp(-f))
    R = 10_000
    rng = np.random.default_rng(10)
    data = vs[rng.integers(0, len(vs), 50)]
    pcd = O.PCD(k=1, n_chains=R)
    pcd.chains = vs[rng.choice(len(vs), size=R, p=p)]  # stationary start
    _, grads = pcd.value_and_grad(model, data, 5)
    G = _rbm_state_grads(vs, W, b, c)
    exact = _rbm_state_grads(data, W, b, c).mean(0) - p @ G  # = -mle_grad
    var = p @ (G - p @ G) ** 2
    z = (_flat(grads) - exact) / np.sqrt(var / R)
    # 14 entries; |z| < 4.6 is a two-sided 4.2e-6 per entry, alpha = 6e-5 in all
    assert np.max(np.abs(z)) < 4.6


# ------------------------------------------------ denoising score matching
@pytest.mark.parametrize("mu,s,sigma", [(0.0, 1.0, 0.5), (0.7, 0.6, 0.2), (-1.0, 2.0, 1.0)])
def test_denoising_score_matching_matches_its_gaussian_expectation(mu, s, sigma):
    """1-D Gaussian model E = (x - mu)^2 / (2 s^2) + c and data N(0, v).

    r = g(x + sigma eps) - eps/sigma = (x - mu)/s^2 + eps (sigma/s^2 - 1/sigma)
    is N(-mu/s^2, a^2) with a^2 = v/s^4 + (sigma/s^2 - 1/sigma)^2, so the loss
    mean(r^2/2) has expectation (mu^2/s^4 + a^2)/2 and per-sample variance
    (2 a^4 + 4 m^2 a^2)/4.
    """
    v, n = 0.8, 50_000
    model = GaussianMixture(np.zeros(1), np.full((1, 1), mu), np.full((1, 1), math.log(s)))
    x = np.random.default_rng(4).normal(0.0, math.sqrt(v), (n, 1))
    loss = O.DenoisingScoreMatching(sigma).value(model, x, 17)
    m = -mu / s**2
    a2 = v / s**4 + (sigma / s**2 - 1.0 / sigma) ** 2
    expected = 0.5 * (m * m + a2)
    sd = 0.5 * math.sqrt(2 * a2 * a2 + 4 * m * m * a2) / math.sqrt(n)
    # z-test at alpha = 1e-4 (two-sided): |z| < 3.89
    assert abs(loss - expected) < 3.89 * sd
