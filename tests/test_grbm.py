"""GRBM: derivatives vs finite differences, conditionals and free energy vs
brute force over h, exact log Z vs numerical integration over v, exact model
expectation vs -d log Z, visible mixture, bad input."""

import itertools
import math
import warnings

import numpy as np
import pytest
from scipy import integrate, special

from ebm_ref.energies import GRBM
from ebm_ref.energies.grbm import MAX_HIDDEN_ENUMERATION, MAX_HIDDEN_MIXTURE
from ebm_ref.testing import check_energy_derivatives


def make(rng, V, H, scale=1.0, lv_scale=0.5):
    return GRBM(
        scale * rng.standard_normal((V, H)) / math.sqrt(V),
        rng.standard_normal(V),
        rng.standard_normal(H),
        lv_scale * rng.standard_normal(V),
    )


def all_hidden(H):
    return np.array(list(itertools.product([0.0, 1.0], repeat=H)))


def joint_by_formula(model, v, h):
    """docs/models.md joint energy written out independently of the class."""
    p = model.params
    s2 = np.exp(p["log_var"])
    return 0.5 * np.sum((v - p["mu"]) ** 2 / s2) - (v / s2) @ p["W"] @ h - p["b_h"] @ h


# ----------------------------------------------------------------- derivatives
@pytest.mark.parametrize("V,H", [(1, 1), (2, 3), (5, 4), (7, 2)])
@pytest.mark.parametrize("scale", [0.5, 3.0, 20.0])
def test_derivatives_match_finite_differences(rng, V, H, scale):
    model = make(rng, V, H, scale=scale)
    x = 2.0 * rng.standard_normal((4, V))
    check_energy_derivatives(model, x, seed=1).assert_ok()


def test_derivatives_single_state_and_saturated_units(rng):
    # |pre-activation| ~ 30-50: saturated hidden units keep their digits
    model = GRBM(np.array([[25.0, -30.0], [20.0, 15.0]]), [0.3, -0.2], [0.5, -1.0], [0.2, -0.3])
    check_energy_derivatives(model, np.array([1.1, -0.7])).assert_ok()
    check_energy_derivatives(model, rng.standard_normal((3, 2))).assert_ok()


def test_derivatives_wide_variances(rng):
    model = make(rng, 3, 2, scale=2.0, lv_scale=2.5)
    check_energy_derivatives(model, rng.standard_normal((3, 3))).assert_ok()


# ------------------------------------------------------ definition / conditionals
def test_free_energy_and_joint_energy_match_brute_force(rng):
    model = make(rng, 4, 3, scale=2.0)
    hs = all_hidden(3)
    v = rng.standard_normal((5, 4))
    for i in range(5):
        e = np.array([joint_by_formula(model, v[i], h) for h in hs])
        assert np.isclose(model.energy(v[i]), -special.logsumexp(-e), rtol=1e-13, atol=1e-13)
        je = model.joint_energy(np.repeat(v[i][None], len(hs), 0), hs)
        np.testing.assert_allclose(je, e, rtol=1e-13, atol=1e-13)
        # p(h_j = 1 | v) from the joint, by enumeration
        p = np.exp(-e - special.logsumexp(-e))
        np.testing.assert_allclose(model.prob_h_given_v(v[i]), p @ hs, rtol=1e-12, atol=1e-14)


def test_mean_v_given_h_is_the_gaussian_centre(rng):
    # E(v,h) - E(m,h) = 1/2 ||(v - m)/sigma||^2 exactly when m = W h + mu (completing the square)
    model = make(rng, 3, 4, scale=2.0)
    h = all_hidden(4)
    m = model.mean_v_given_h(h)
    np.testing.assert_allclose(m, h @ model.params["W"].T + model.params["mu"], rtol=1e-14)
    v = m + rng.standard_normal(m.shape)
    diff = model.joint_energy(v, h) - model.joint_energy(m, h)
    quad = 0.5 * np.sum((v - m) ** 2 / model.variance, axis=1)
    np.testing.assert_allclose(diff, quad, rtol=1e-10, atol=1e-12)
    assert model.mean_v_given_h(h[3]).shape == (3,)


# -------------------------------------------------------------------- log Z
@pytest.mark.parametrize("V,H,scale", [(1, 1, 1.0), (1, 4, 3.0), (2, 3, 2.0)])
def test_log_partition_matches_numerical_integration_over_v(rng, V, H, scale):
    model = make(rng, V, H, scale=scale)
    value, bound = model._exact_log_partition()
    shift = float(np.min(model.energy(model.mean_v_given_h(all_hidden(H)))))
    f = lambda *v: math.exp(-(float(model.energy(np.array(v))) - shift))  # noqa: E731
    if V == 1:
        z, err = integrate.quad(f, -np.inf, np.inf, epsabs=0, epsrel=1e-12, limit=200)
    else:
        # vectorised 2-D Gauss-Kronrod with scipy's own (-inf, inf) transform
        res = integrate.cubature(
            lambda v: np.exp(-(model.energy(v) - shift)), [-np.inf, -np.inf], [np.inf, np.inf], rtol=1e-12
        )
        z, err = float(res.estimate), float(res.error)
    ref = math.log(z) - shift
    # closed form vs quadrature to 1e-9
    assert abs(value - ref) < 1e-9, (value, ref, err)
    assert 0.0 <= bound < 1e-11


@pytest.mark.parametrize("V,H", [(3, 2), (6, 5)])
def test_log_partition_matches_brute_force_over_h(rng, V, H):
    # sum over h of prod_k of 1-D integrals of the joint, each by quadrature
    model = make(rng, V, H, scale=2.0)
    p = model.params
    s2 = np.exp(p["log_var"])
    logs = []
    for h in all_hidden(H):
        a = p["W"] @ h
        log_zh = float(p["b_h"] @ h)
        for k in range(V):
            c = (p["mu"][k] + a[k]) ** 2 / (2 * s2[k])  # value of -E at the mode, shifts the integrand
            g = lambda t, k=k, a=a, c=c: math.exp(  # noqa: E731
                -(0.5 * (t - p["mu"][k]) ** 2 / s2[k] - t * a[k] / s2[k]) - c + 0.5 * p["mu"][k] ** 2 / s2[k]
            )
            zk, _ = integrate.quad(g, -np.inf, np.inf, epsabs=0, epsrel=1e-13)
            log_zh += math.log(zk) + c - 0.5 * p["mu"][k] ** 2 / s2[k]
        logs.append(log_zh)
    value, _ = model._exact_log_partition()
    assert abs(value - special.logsumexp(logs)) < 1e-9 * max(1.0, abs(value))


def test_log_partition_chunked_enumeration_consistent(rng):
    # H = 15 > the 2^14 chunk: the chunked log-sum-exp equals one-shot enumeration
    model = make(rng, 2, 15, scale=1.0)
    p = model.params
    s = np.exp(-p["log_var"])
    h = all_hidden(15)
    m = h @ p["W"].T
    score = h @ p["b_h"] + m @ (s * p["mu"]) + 0.5 * (m * m) @ s
    ref = math.log(2 * math.pi) + 0.5 * p["log_var"].sum() + special.logsumexp(score)
    value, bound = model._exact_log_partition()
    assert abs(value - ref) < 1e-11 * abs(ref)
    assert bound > 0


def test_log_partition_large_weights_finite(rng):
    model = make(rng, 3, 6, scale=50.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, bound = model._exact_log_partition()
    assert np.isfinite(value) and np.isfinite(bound) and bound >= 0


def test_log_partition_refuses_too_many_hidden_units():
    model = GRBM(np.zeros((1, MAX_HIDDEN_ENUMERATION + 1)), [0.0], np.zeros(MAX_HIDDEN_ENUMERATION + 1), [0.0])
    with pytest.raises(ValueError, match="H > 25"):
        model._exact_log_partition()
    with pytest.raises(ValueError, match="H > 25"):
        model._exact_mean_grad_params()
    with pytest.raises(ValueError, match=f"H > {MAX_HIDDEN_MIXTURE}"):
        model.visible_mixture()


def test_exact_log_partition_through_exact_module(rng):
    from ebm_ref.exact import log_partition

    model = make(rng, 2, 3)
    value, bound = log_partition(model, return_error=True)
    assert (value, bound) == model._exact_log_partition()


# -------------------------------------------------- model expectation, mixture
def _fd_log_z(model, h=1e-5):
    out = {}
    for name, arr in model.params.items():
        g = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            up, dn = arr.copy(), arr.copy()
            up[idx] += h
            dn[idx] -= h
            zu = model.with_params({name: up})._exact_log_partition()[0]
            zd = model.with_params({name: dn})._exact_log_partition()[0]
            g[idx] = (zu - zd) / (2 * h)
        out[name] = g
    return out


@pytest.mark.parametrize("V,H,scale", [(1, 2, 1.0), (3, 4, 3.0)])
def test_exact_mean_grad_is_minus_grad_log_z(rng, V, H, scale):
    # E_p[dF/dtheta] = -d log Z / dtheta (differentiate Z = int sum_h exp(-E))
    model = make(rng, V, H, scale=scale)
    mean = model._exact_mean_grad_params()
    fd = _fd_log_z(model)
    for name in model.params:
        assert mean[name].shape == model.params[name].shape
        # central difference of log Z with h = 1e-5: error ~ 1e-9 relative
        np.testing.assert_allclose(mean[name], -fd[name], rtol=1e-6, atol=1e-7 * max(1.0, np.abs(fd[name]).max()))


def test_exact_mean_grad_matches_quadrature_of_grad_params(rng):
    # V = 1: E_p[dF/dtheta] = int p(v) grad_params(v) dv, by scipy quad_vec
    model = make(rng, 1, 3, scale=2.0)
    log_z, _ = model._exact_log_partition()
    names = list(model.params)

    def f(v):
        x = np.array([[v]])
        g = model.grad_params(x)
        p = math.exp(-float(model.energy(x[0])) - log_z)
        return np.concatenate([p * g[k].ravel() for k in names])

    res, _ = integrate.quad_vec(f, -np.inf, np.inf, epsabs=1e-13, epsrel=1e-11)
    mean = model._exact_mean_grad_params()
    flat = np.concatenate([mean[k].ravel() for k in names])
    np.testing.assert_allclose(flat, res, rtol=1e-8, atol=1e-10)


def test_visible_mixture_is_the_marginal(rng):
    model = make(rng, 3, 3, scale=2.0)
    w, means, var = model.visible_mixture()
    assert w.shape == (8,) and means.shape == (8, 3) and var.shape == (3,)
    assert abs(w.sum() - 1.0) < 1e-14
    np.testing.assert_allclose(means, model.mean_v_given_h(all_hidden(3)), rtol=1e-14)
    np.testing.assert_allclose(var, np.exp(model.params["log_var"]), rtol=1e-15)
    log_z, _ = model._exact_log_partition()
    v = rng.standard_normal((6, 3))
    comp = -0.5 * np.sum((v[:, None, :] - means[None]) ** 2 / var, axis=2) - 0.5 * np.sum(np.log(2 * np.pi * var))
    log_mix = special.logsumexp(comp + np.log(w), axis=1)
    np.testing.assert_allclose(log_mix, -model.energy(v) - log_z, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(W=np.zeros(3)), "`W` of GRBM must be a 2-D"),
        (dict(W=np.zeros((0, 2))), "at least one visible"),
        (dict(mu=np.zeros(4)), r"`mu` of GRBM must have shape \(3,\)"),
        (dict(b_h=np.zeros(3)), r"`b_h` of GRBM must have shape \(2,\)"),
        (dict(log_var=np.zeros((3, 1))), r"`log_var` of GRBM must have shape \(3,\)"),
        (dict(W=np.full((3, 2), np.nan)), "`W` must contain only finite values"),
        (dict(log_var=np.array([0.0, np.inf, 0.0])), "`log_var` must contain only finite values"),
        (dict(mu=np.array([0.0, -np.inf, 0.0])), "`mu` must contain only finite values"),
        (dict(log_var=np.array([0.0, 800.0, 0.0])), r"`log_var` of GRBM must lie in \[-700, 700\]"),
    ],
)
def test_bad_parameters_raise(kwargs, match):
    base = dict(W=np.zeros((3, 2)), mu=np.zeros(3), b_h=np.zeros(2), log_var=np.zeros(3))
    base.update(kwargs)
    with pytest.raises(ValueError, match=match):
        GRBM(**base)


def test_bad_inputs_raise(rng):
    model = make(rng, 3, 2)
    with pytest.raises(ValueError, match=r"`x` must have shape \(n, 3\)"):
        model.energy(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="`x` must contain only finite values"):
        model.grad_x(np.array([0.0, np.nan, 1.0]))
    with pytest.raises(ValueError, match=r"`h` must have shape \(n, 2\)"):
        model.joint_energy(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="same number of samples"):
        model.joint_energy(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"`h` must have shape"):
        model.mean_v_given_h(np.zeros(3))
    with pytest.raises(ValueError, match=r"`v` must have the shape of `x`"):
        model.grad_params_of_grad_x(np.zeros((2, 3)), np.zeros((2, 2)))
    with pytest.raises(TypeError, match="`x` must be a real numeric array"):
        model.energy("abc")
    with pytest.raises(ValueError, match="unknown key"):
        model.with_params({"b_v": np.zeros(3)})
    with pytest.raises(ValueError, match="`log_var` must contain only finite values"):
        model.with_params({"log_var": np.array([np.nan, 0.0, 0.0])})


def test_large_parameters_no_overflow(rng):
    model = make(rng, 4, 3, scale=50.0 * 2.0)
    x = 30.0 * rng.standard_normal((5, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            out = [model.energy(x), model.grad_x(x), model.hessian_diag(x)]
            gp = model.grad_params(x)
            gv = model.grad_params_of_grad_x(x, x)
            gc = model.grad_params_of_hessian_diag(x, x)
            q = model.prob_h_given_v(x)
    for a in out + list(gp.values()) + list(gv.values()) + list(gc.values()) + [q]:
        assert np.all(np.isfinite(a))
