"""MLPEnergy: derivative algebra vs finite differences, stability, init, errors."""

import itertools
import warnings

import numpy as np
import pytest

from ebm_ref.energies import MLPEnergy
from ebm_ref.energies.mlp import _hessian_diag_forward
from ebm_ref.testing import check_energy_derivatives

ACTS = ("softplus", "tanh", "swish")
HIDDEN = (4, 5, 3)


def _scaled(model, scale):
    """Multiply every weight matrix and w_out by ``scale`` (biases get a spread too)."""
    rng = np.random.default_rng(7)
    new = {}
    for k, v in model.params.items():
        if k.startswith("W") or k == "w_out":
            new[k] = v * scale
        elif k.startswith("b") and k != "b_out":
            new[k] = rng.uniform(-0.5, 0.5, size=v.shape)
    new["b_out"] = 0.3
    return model.with_params(new)


def _richardson_param_check(model, scalar, grad):
    """Worst relative error of ``grad`` vs a 6th-order central difference of ``scalar``.

    ``scalar(model) -> float`` is differentiated in every parameter entry
    with steps h, h/2, h/4 (h = 1e-3 max(1, |theta|)) and two Richardson
    steps: truncation error O(h^6) (~1e-18 relative) and rounding error
    ~eps |f| / h ~ 1e-13. An independent, more accurate reference than the
    h = 6e-6 second-order difference of ``check_energy_derivatives`` for
    the third-order level. The floor is ``check_grad``'s, ``1e-3 max(1,
    max |grad|)`` (docs/conventions.md).
    """
    theta = model.params
    gmax = max(float(np.max(np.abs(g))) for g in grad.values())
    floor = 1e-3 * max(1.0, gmax)
    worst = 0.0
    for key, arr in theta.items():
        for idx in np.ndindex(arr.shape):
            def f(t):
                a = np.array(arr, dtype=float)
                a[idx] += t
                return scalar(model.with_params({key: a}))

            h = 1e-3 * max(1.0, abs(float(arr[idx])))
            d1, d2, d3 = [(f(s) - f(-s)) / (2 * s) for s in (h, h / 2, h / 4)]
            r1, r2 = (4 * d2 - d1) / 3, (4 * d3 - d2) / 3
            num = (16 * r2 - r1) / 15
            ana = float(grad[key][idx])
            worst = max(worst, abs(ana - num) / max(abs(ana), abs(num), floor))
    return worst


@pytest.mark.parametrize(
    "activation,n_hidden,d", list(itertools.product(ACTS, (1, 2, 3), (1, 2, 5)))
)
@pytest.mark.parametrize("scale", [1.0, 5.0])
def test_derivatives_match_finite_differences(activation, n_hidden, d, scale):
    model = _scaled(MLPEnergy((d,) + HIDDEN[:n_hidden], activation, seed=d + n_hidden), scale)
    rng = np.random.default_rng(100 * d + n_hidden)
    x = rng.standard_normal((3, d))
    c = rng.standard_normal((3, d))
    _assert_derivatives(model, x, c, scale)
    # single state: a full check at x[0] (1-D input, scalar-shaped results)
    _assert_derivatives(model, x[0], c[0], scale)


def _assert_derivatives(model, x, c, scale):
    x2, c2 = np.atleast_2d(x), np.atleast_2d(c)
    v2 = np.cos(np.arange(c2.size)).reshape(c2.shape)
    w = np.linspace(0.5, 1.5, x2.shape[0])
    report = check_energy_derivatives(model, x, v=v2, c=c2, weights=w, seed=1)
    # rtol 1e-6 (docs/conventions.md) for every level, at both weight scales
    assert report.passed, f"scale {scale}:\n{report}"


@pytest.mark.parametrize("activation", ACTS)
def test_grad_params_of_hessian_diag_richardson(activation):
    """The third-order level against a 6th-order difference, weights at scale 5."""
    model = _scaled(MLPEnergy((2, 4, 3), activation, seed=11), 5.0)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 2))
    c = rng.standard_normal((2, 2))
    grad = model.grad_params_of_hessian_diag(x, c)
    # rtol 1e-6 on every entry, floor as in check_grad
    assert _richardson_param_check(model, lambda m: float(np.sum(c * m.hessian_diag(x))), grad) <= 1e-6


@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("n_hidden", [1, 2, 3])
def test_hessian_diag_equals_forward_recursion(activation, n_hidden):
    """Adjoint contraction == propagating J and S forward (the Notes' recursion)."""
    model = _scaled(MLPEnergy((5,) + (6, 7, 4)[:n_hidden], activation, seed=3), 2.0)
    x = np.random.default_rng(0).standard_normal((7, 5))
    ours = model.hessian_diag(x)
    ref = _hessian_diag_forward(model, x)
    # same sum in a different order: rounding only (|H| <~ 1e3 here)
    np.testing.assert_allclose(ours, ref, rtol=1e-11, atol=1e-11 * np.max(np.abs(ref)))


def test_blocked_passes_equal_whole_batch():
    """Large batches are processed in blocks; results must not depend on it."""
    model = MLPEnergy((5, 64, 64), "swish", seed=0)
    rng = np.random.default_rng(1)
    n = 1500  # > 2 blocks of 409 samples at d = 5, h = 64
    x = rng.standard_normal((n, 5))
    c = rng.standard_normal((n, 5))
    H = model.hessian_diag(x)
    np.testing.assert_allclose(H, _hessian_diag_forward(model, x), rtol=1e-11, atol=1e-12)
    whole = model.grad_params_of_hessian_diag(x, c)
    parts = [model.grad_params_of_hessian_diag(x[s], c[s]) for s in (slice(0, 700), slice(700, n))]
    for k in whole:
        np.testing.assert_allclose(whole[k], parts[0][k] + parts[1][k], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("activation", ACTS)
def test_saturated_units_finite_without_warnings(activation):
    """|pre-activation| ~ 1e3 (|W| ~ 50): every primitive finite, no FP warning."""
    model = MLPEnergy((3, 8, 8), activation, seed=0)
    big = {k: np.full(v.shape, 50.0) * np.sign(np.random.default_rng(0).standard_normal(v.shape))
           for k, v in model.params.items() if k.startswith("W")}
    model = model.with_params(big)
    x = np.array([[3.0, -2.0, 4.0], [0.5, 0.1, -0.2], [-7.0, 9.0, 1.0]])
    v = np.ones_like(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            outs = [model.energy(x), model.grad_x(x), model.hessian_diag(x)]
            for g in (model.grad_params(x), model.grad_params_of_grad_x(x, v),
                      model.grad_params_of_hessian_diag(x, v)):
                outs.extend(g.values())
    assert all(np.all(np.isfinite(o)) for o in outs)


def test_activation_values_and_saturation():
    """phi and its derivatives agree with direct formulas where those are safe."""
    from ebm_ref.energies._mlp_core import act_derivs as _act_derivs

    a = np.linspace(-6.0, 6.0, 41)
    s = 1.0 / (1.0 + np.exp(-a))
    sp = _act_derivs("softplus", a, 3)
    np.testing.assert_allclose(sp[0], np.log1p(np.exp(a)), rtol=1e-14)
    np.testing.assert_allclose(sp[1], s, rtol=1e-14)
    np.testing.assert_allclose(sp[2], s * (1 - s), rtol=1e-12)
    np.testing.assert_allclose(sp[3], s * (1 - s) * (1 - 2 * s), rtol=1e-9, atol=1e-15)
    th = _act_derivs("tanh", a, 3)
    t = np.tanh(a)
    np.testing.assert_allclose(th[0], t, rtol=1e-14, atol=1e-16)
    np.testing.assert_allclose(th[1], 1 - t**2, rtol=1e-10)
    sw = _act_derivs("swish", a, 1)
    np.testing.assert_allclose(sw[0], a * s, rtol=1e-14, atol=1e-16)
    # saturated tanh keeps relative digits of sech^2 (1 - tanh^2 would be 0)
    t20 = _act_derivs("tanh", np.array([20.0]), 1)[1][0]
    assert t20 == pytest.approx(4 * np.exp(-40.0), rel=1e-12)


@pytest.mark.parametrize("activation", ACTS)
def test_activation_derivatives_consistent(activation):
    """Each derivative is the central difference of the one below (|a| <= 30),
    and |a| up to 1e3 gives finite values without FP warnings."""
    from ebm_ref.energies._mlp_core import act_derivs as _act_derivs

    a = np.linspace(-30.0, 30.0, 241)
    h = 1e-5
    lo, mid, hi = (_act_derivs(activation, a + s, 3) for s in (-h, 0.0, h))
    for k in range(3):
        num = (hi[k] - lo[k]) / (2 * h)
        scale = np.maximum(np.abs(mid[k + 1]), 1e-3 * np.max(np.abs(mid[k + 1])))
        # central difference: truncation h^2 |phi^(k+3)| / 6 << 1e-6 relative here
        assert np.max(np.abs(num - mid[k + 1]) / scale) < 1e-6
    big = np.array([-1e3, -700.0, -1e-300, 0.0, 1e-300, 700.0, 1e3])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        vals = _act_derivs(activation, big, 3)
    assert all(np.all(np.isfinite(v)) for v in vals)


@pytest.mark.parametrize("activation", ACTS)
def test_in_place_activation_derivatives_equal_act_derivs_bit_for_bit(activation):
    """``act_derivs_into`` (score matching's in-place pass) gives ``act_derivs(order=3)``, bits included."""
    from ebm_ref._numerics import torch_softplus_rule
    from ebm_ref.energies._mlp_core import act_derivs, act_derivs_into

    rng = np.random.default_rng(11)
    a = np.concatenate([rng.normal(0.0, 3.0, 4000), rng.normal(0.0, 40.0, 1000),
                        [0.0, -0.0, 1e-300, -1e-300, 1e-9, -1e-9, 20.0, 25.0, -25.0, 700.0, -700.0, 1e3]])
    a = a.reshape(-1, 4)

    def both():
        out = [np.full_like(a, np.nan) for _ in range(4)]
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            got = act_derivs_into(activation, a, out)
        return got, act_derivs(activation, a, 3)

    for rule in (None, 20.0):
        if rule is None:
            got, ref = both()
        else:
            with torch_softplus_rule(rule):
                got, ref = both()
        for k in range(4):
            np.testing.assert_array_equal(got[k], ref[k])



def _small_argument_refs(a):
    """Long-double tanh and softplus's phi''' = -sigma'(a) tanh(a/2) (x86: 64-bit mantissa)."""
    x = a.astype(np.longdouble)
    e = np.exp(-np.abs(x))
    return np.tanh(x), -(e / (1 + e) ** 2) * np.tanh(x / 2)


def test_activations_keep_relative_precision_at_small_arguments():
    """tanh and softplus's third derivative vanish at 0 like a; their ``1 - e``
    comes from the exp polynomial without cancellation (``nb_exp_one_minus``).

    Bound 8 eps: measured at most 2.2 (tanh) and 3.5 (phi''') eps over
    300k arguments; the control, ``1 - e`` from the rounded ``e``, is off by
    ~eps / |a| (1e4 eps at |a| = 1e-12).
    """
    from ebm_ref.energies._mlp_core import act_derivs

    rng = np.random.default_rng(3)
    a = np.sign(rng.normal(size=4000)) * 10.0 ** rng.uniform(-12, 0.5, 4000)
    ref_t, ref_p3 = _small_argument_refs(a)
    eps = np.finfo(float).eps

    def rel(got, ref):
        return float(np.max(np.abs(got.astype(np.longdouble) - ref) / np.abs(ref))) / eps

    assert rel(act_derivs("tanh", a, 0)[0], ref_t) < 8
    assert rel(act_derivs("tanh", a, 3)[0], ref_t) < 8
    assert rel(act_derivs("softplus", a, 3)[3], ref_p3) < 8
    e2 = np.exp(-2 * np.abs(a))
    naive = np.sign(a) * (1 - e2) / (1 + e2)
    assert rel(naive, ref_t) > 1e3  # control: the bound sees the cancellation


@pytest.mark.parametrize("order", [0, 1, 2, 3])
def test_in_place_activations_into_strided_views(order):
    """Outputs that are not contiguous (views of a wider array) and a strided input get act_derivs' bits."""
    from ebm_ref.energies._mlp_core import act_derivs, act_derivs_into

    rng = np.random.default_rng(4)
    wide = rng.normal(0.0, 3.0, (50, 16))
    a = wide[:, ::2]  # strided input
    store = np.full((order + 1, 50, 16), np.nan)
    out = [store[k][:, 1::2] for k in range(order + 1)]
    act_derivs_into("swish", a, out)
    for got, ref in zip(out, act_derivs("swish", np.ascontiguousarray(a), order)):
        np.testing.assert_array_equal(got, ref)
    assert np.all(np.isnan(store[:, :, ::2]))  # nothing written outside the views


@pytest.mark.parametrize("activation", ACTS)
def test_nan_pre_activation_gives_nan_everywhere(activation):
    """A NaN stays NaN in phi and every derivative (never a saturated 0 or 1)."""
    from ebm_ref.energies._mlp_core import act_derivs

    a = np.array([0.5, np.nan, -3.0])
    for order in (0, 3):
        vals = act_derivs(activation, a, order)
        for v in vals:
            assert np.isnan(v[1]) and np.all(np.isfinite(v[[0, 2]]))

def test_params_layout_and_init():
    model = MLPEnergy((3, 5, 4), "tanh", seed=0)
    p = model.params
    assert list(p) == ["W1", "b1", "W2", "b2", "w_out", "b_out"]
    assert p["W1"].shape == (5, 3) and p["W2"].shape == (4, 5)
    assert p["b1"].shape == (5,) and p["w_out"].shape == (4,) and p["b_out"].shape == ()
    assert np.all(p["b1"] == 0) and np.all(p["b2"] == 0) and p["b_out"] == 0
    assert all(not a.flags.writeable for a in p.values())
    again = MLPEnergy((3, 5, 4), "tanh", seed=0).params
    assert all(np.array_equal(p[k], again[k]) for k in p)
    other = MLPEnergy((3, 5, 4), "tanh", seed=1).params
    assert not np.array_equal(p["W1"], other["W1"])
    assert model.n_features == 3 and model.n_layers == 2
    assert [W.shape for W, _ in model.layers()] == [(5, 3), (4, 5)]
    g = model.grad_params(np.zeros((2, 3)))
    assert g["b_out"].shape == () and float(g["b_out"]) == 1.0  # mean of dE/db_out = 1


def test_init_variance_fan_in():
    """W_l ~ N(0, 1/fan_in): chi-square bounds on the sum of squares."""
    from scipy import stats

    model = MLPEnergy((400, 300, 200), seed=5)
    for key, fan_in in (("W1", 400), ("W2", 300), ("w_out", 200)):
        w = model.params[key].ravel()
        k = w.size
        stat = float(np.sum(w * w) * fan_in)  # ~ chi2(k)
        # two-sided, false-failure rate 1e-4
        lo, hi = stats.chi2.ppf(5e-5, k), stats.chi2.isf(5e-5, k)
        assert lo < stat < hi


def test_with_params_scalar_b_out_and_energy_offset():
    model = MLPEnergy((2, 3), seed=0)
    x = np.array([[0.1, -0.3]])
    m2 = model.with_params({"b_out": 2.5})
    assert m2.params["b_out"].shape == ()
    np.testing.assert_allclose(m2.energy(x) - model.energy(x), 2.5, rtol=1e-14)
    m3 = model.with_params({"b_out": np.float64(-1.0)})
    assert float(m3.params["b_out"]) == -1.0
    assert float(model.params["b_out"]) == 0.0  # original unchanged


def test_energy_matches_explicit_formula():
    model = _scaled(MLPEnergy((2, 3, 4), "softplus", seed=9), 1.5)
    p = model.params
    x = np.random.default_rng(0).standard_normal((5, 2))
    z = np.logaddexp(0, x @ p["W1"].T + p["b1"])
    z = np.logaddexp(0, z @ p["W2"].T + p["b2"])
    np.testing.assert_allclose(model.energy(x), z @ p["w_out"] + p["b_out"], rtol=1e-13)


# --------------------------------------------------------------- bad inputs
@pytest.mark.parametrize(
    "sizes,exc,match",
    [
        ((3,), ValueError, "1 to 3 hidden layers"),
        ((3, 4, 4, 4, 4), ValueError, "1 to 3 hidden layers"),
        ((3, 0), ValueError, "must be >= 1"),
        ((3, -2), ValueError, "must be >= 1"),
        ((3, 4.0), TypeError, r"sizes\[1\]"),
        ("34", TypeError, "sequence of ints"),
        (5, TypeError, "sequence of ints"),
    ],
)
def test_bad_sizes(sizes, exc, match):
    with pytest.raises(exc, match=match):
        MLPEnergy(sizes)


@pytest.mark.parametrize("activation", ["relu", "Tanh", "", None])
def test_unknown_activation(activation):
    with pytest.raises(ValueError, match="activation"):
        MLPEnergy((2, 3), activation=activation)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("key", ["W1", "b1", "w_out", "b_out"])
def test_nonfinite_params_rejected(key, bad):
    model = MLPEnergy((2, 3), seed=0)
    val = np.array(model.params[key], dtype=float)
    val[(0,) * val.ndim] = bad
    with pytest.raises(ValueError, match=key):
        model.with_params({key: val})


def test_bad_param_shapes_and_inputs():
    model = MLPEnergy((2, 3), seed=0)
    with pytest.raises(ValueError, match=r"W1.*shape \(3, 2\)"):
        model.with_params({"W1": np.zeros((2, 3))})
    with pytest.raises(ValueError, match=r"b_out.*shape \(\)"):
        model.with_params({"b_out": np.zeros(1)})
    with pytest.raises(ValueError, match="unknown key"):
        model.with_params({"W3": np.zeros((3, 3))})
    with pytest.raises(ValueError, match=r"x.*\(n, 2\)"):
        model.energy(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="finite"):
        model.grad_x(np.array([[0.0, np.nan]]))
    with pytest.raises(ValueError, match="`v` must have the shape"):
        model.grad_params_of_grad_x(np.zeros((4, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="`c` must have the shape"):
        model.grad_params_of_hessian_diag(np.zeros((4, 2)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="weights"):
        model.grad_params(np.zeros((4, 2)), weights=np.ones(3))
    with pytest.raises(TypeError, match="seed"):
        MLPEnergy((2, 3), seed=1.5)
