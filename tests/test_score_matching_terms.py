"""``EnergyModel.score_matching_terms``: the four quantities of score matching from one call.

``MLPEnergy`` computes them from one stacked forward pass per block
(``_mlp_sm.score_matching_terms``); every other
model, and a subclass that overrides a formula hook, gets the default (the
four public methods). Both must agree with the four methods: bit for bit on
the default path, to rounding on the shared pass (its pre-activations come
from the stacked product, another summation order).
"""

from __future__ import annotations

import numpy as np
import pytest

from ebm_ref import energies, objectives
from ebm_ref.energies import MLPEnergy


def _four(model, x, c, v_fn):
    g = model.grad_x(x)
    return g, model.hessian_diag(x), model.grad_params_of_grad_x(x, v_fn(g, slice(None))), \
        model.grad_params_of_hessian_diag(x, c)


def _assert_close(a, b, rtol):
    assert np.isfinite(a).all()
    scale = max(1.0, float(np.max(np.abs(b))))
    np.testing.assert_allclose(a, b, rtol=0, atol=rtol * scale)


def _assert_default_path(model, x):
    """``score_matching_terms`` gives the four methods' results bit for bit (score-matching weights)."""
    n = x.shape[0]
    c = np.full(x.shape, 1.0 / n)
    got = model.score_matching_terms(x, c, lambda g, rows: g / n)
    ref = _four(model, x, c, lambda g, rows: g / n)
    np.testing.assert_array_equal(got[0], ref[0])
    np.testing.assert_array_equal(got[1], ref[1])
    for k in ref[2]:
        np.testing.assert_array_equal(got[2][k], ref[2][k])
        np.testing.assert_array_equal(got[3][k], ref[3][k])


CASES = [((2, 64, 64), "softplus", 1.0), ((3, 7), "tanh", 1.0), ((4, 9, 5, 3), "swish", 1.0),
         ((5, 16, 8), "softplus", 10.0), ((3, 6, 4), "tanh", 50.0)]


def _case(sizes, act, scale):
    """Model with weights scaled by ``scale``, 700 rows (more than one block of
    the stacked pass at d = 2, 256, so blocks are summed), ``c`` and ``v_fn``."""
    model = MLPEnergy(sizes, act, seed=2)
    model = model.with_params({k: scale * v for k, v in model.params.items()})
    rng = np.random.default_rng(3)
    x = rng.normal(size=(700, sizes[0]))
    c = rng.random(x.shape)

    def v_fn(g, rows):
        return 0.3 * g - c[rows]

    return model, x, c, v_fn


@pytest.mark.parametrize("sizes,act,scale", CASES, ids=[f"{s}-{a}-x{k:g}" for s, a, k in CASES])
def test_mlp_shared_pass_matches_the_four_methods(sizes, act, scale):
    model, x, c, v_fn = _case(sizes, act, scale)
    got = model.score_matching_terms(x, c, v_fn)
    ref = _four(model, x, c, v_fn)
    # rounding of a few operations on values of size `scale`: 1e-13 relative
    # to the largest entry (measured <= 1.3e-15 at scale 1)
    _assert_close(got[0], ref[0], 1e-13)
    _assert_close(got[1], ref[1], 1e-13)
    for k in ref[2]:
        _assert_close(got[2][k], ref[2][k], 1e-13)
        _assert_close(got[3][k], ref[3][k], 1e-13)


def test_default_path_is_the_four_methods_bit_for_bit():
    model = energies.StudentT(np.array([0.1, -0.2, 0.3]), np.array([0.5, 0.0, -0.3]), np.log([4.0, 3.0, 6.0]))
    x = np.random.default_rng(4).normal(size=(50, 3))
    _assert_default_path(model, x)


class _ShiftedMLP(MLPEnergy):
    """Overrides a formula hook: E(x) = MLP(x - 1). The shared pass would evaluate MLP(x)."""

    def _energy(self, x):
        return super()._energy(x - 1.0)

    def _grad_x(self, x):
        return super()._grad_x(x - 1.0)

    def _hessian_diag(self, x):
        return super()._hessian_diag(x - 1.0)

    def _grad_params_of_grad_x(self, x, v):
        return super()._grad_params_of_grad_x(x - 1.0, v)

    def _grad_params_of_hessian_diag(self, x, c):
        return super()._grad_params_of_hessian_diag(x - 1.0, c)


def test_subclass_overriding_a_formula_hook_gets_the_default():
    model = _ShiftedMLP((2, 8, 4), seed=5)
    x = np.random.default_rng(6).normal(size=(40, 2))
    _assert_default_path(model, x)
    # and the objective sees the subclass's formula (not the parent's)
    plain = MLPEnergy((2, 8, 4), seed=5)
    sm = objectives.ScoreMatching()
    np.testing.assert_allclose(sm.value_and_grad(model, x)[0], sm.value_and_grad(plain, x - 1.0)[0], rtol=1e-12)


def test_score_matching_loss_and_gradient_unchanged_by_the_shared_pass():
    # the objective through the shared pass vs the loss/gradient assembled from the four methods
    model = MLPEnergy((3, 16, 8), "swish", seed=7)
    x = np.random.default_rng(8).normal(size=(300, 3))
    n = x.shape[0]
    loss, grads = objectives.ScoreMatching().value_and_grad(model, x)
    g = model.grad_x(x)
    h = model.hessian_diag(x)
    ref_loss = np.mean(0.5 * np.sum(g * g, axis=1) - np.sum(h, axis=1))
    g1 = model.grad_params_of_grad_x(x, g / n)
    g2 = model.grad_params_of_hessian_diag(x, np.full(x.shape, 1.0 / n))
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-13)
    for k in grads:
        _assert_close(grads[k], g1[k] - g2[k], 1e-13)


def test_shared_pass_bits_do_not_depend_on_the_thread_count():
    # blocks run on up to numba.get_num_threads() Python threads, summed in block order
    from ebm_ref import limit_threads

    model = MLPEnergy((2, 32, 16), "softplus", seed=9)
    x = np.random.default_rng(10).normal(size=(900, 2))  # 4 blocks of the stacked pass at d = 2
    sm = objectives.ScoreMatching()
    with limit_threads(1):
        one = sm.value_and_grad(model, x)
    with limit_threads(2):
        two = sm.value_and_grad(model, x)
    assert one[0] == two[0]
    for k in one[1]:
        np.testing.assert_array_equal(one[1][k], two[1][k])


@pytest.mark.parametrize("sizes,rows", [((3, 8, 6), "spans"), ((100, 64, 4), "groups")])
def test_shared_pass_over_several_spans_matches_and_ignores_threads(sizes, rows):
    # "spans": more rows than one span of _mlp_sm (2048), the passes run span
    # by span; "groups": more stacked blocks in a span (16 rows each at
    # d = 100, h = 64) than _mlp_sm.GROUP, added group by group
    from ebm_ref import limit_threads
    from ebm_ref.energies import _mlp_sm

    model = MLPEnergy(sizes, "tanh", seed=12)
    rng = np.random.default_rng(13)
    n = 2 * _mlp_sm.SPAN + 300 if rows == "spans" else 16 * _mlp_sm.GROUP + 90
    x = rng.normal(size=(n, sizes[0]))
    c = rng.random(x.shape)

    def v_fn(g, rows):
        return g - 0.5 * c[rows]

    with limit_threads(1):
        one = model.score_matching_terms(x, c, v_fn)
    with limit_threads(2):
        two = model.score_matching_terms(x, c, v_fn)
    ref = _four(model, x, c, v_fn)
    for k in (0, 1):
        np.testing.assert_array_equal(one[k], two[k])
        _assert_close(one[k], ref[k], 1e-13)
    for k in ref[2]:
        for q in (2, 3):
            np.testing.assert_array_equal(one[q][k], two[q][k])
            _assert_close(one[q][k], ref[q][k], 1e-13)
    with limit_threads(2):
        _, _, diff = model.score_matching_grad(x, c, v_fn)
    for k in ref[2]:
        _assert_close(diff[k], ref[2][k] - ref[3][k], 1e-13)


def test_shared_pass_follows_the_torch_softplus_rule_on_every_thread():
    # the rule is per thread: with two threads, blocks taken by a pool worker
    # must still be evaluated under it (the pass then runs on the caller only)
    from ebm_ref import limit_threads
    from ebm_ref._numerics import torch_softplus_rule

    model = MLPEnergy((2, 16, 8), "softplus", seed=14)
    model = model.with_params({k: 10.0 * v for k, v in model.params.items()})
    x = np.random.default_rng(15).normal(size=(900, 2))  # 4 blocks of the stacked pass at d = 2
    c = np.full(x.shape, 1.0 / 900)

    def v_fn(g, rows):
        return g / 900

    with torch_softplus_rule(20.0):
        ref = _four(model, x, c, v_fn)
        with limit_threads(2):
            got = model.score_matching_terms(x, c, v_fn)
    plain = _four(model, x, c, v_fn)
    # the rule moves H by >= 1000x the tolerance below (pre-activations above 20
    # are common at this scale; measured 5.8e-5 against max |H| = 1.2e4)
    assert np.max(np.abs(ref[1] - plain[1])) > 1e-10 * np.max(np.abs(plain[1]))
    _assert_close(got[0], ref[0], 1e-13)
    _assert_close(got[1], ref[1], 1e-13)
    for k in ref[2]:
        _assert_close(got[2][k], ref[2][k], 1e-13)
        _assert_close(got[3][k], ref[3][k], 1e-13)


# ------------------------------------------- score_matching_grad (one reverse pass)
@pytest.mark.parametrize("sizes,act,scale", CASES, ids=[f"{s}-{a}-x{k:g}" for s, a, k in CASES])
def test_mlp_combined_pass_is_the_difference_of_the_four_methods(sizes, act, scale):
    model, x, c, v_fn = _case(sizes, act, scale)
    g, h, grads = model.score_matching_grad(x, c, v_fn)
    ref = _four(model, x, c, v_fn)
    # the same tolerance as the shared pass's (measured <= 3.8e-15 on these cases)
    _assert_close(g, ref[0], 1e-13)
    _assert_close(h, ref[1], 1e-13)
    assert sorted(grads) == sorted(model.params)
    for k in grads:
        _assert_close(grads[k], ref[2][k] - ref[3][k], 1e-13)


def test_combined_pass_bits_do_not_depend_on_the_thread_count():
    from ebm_ref import limit_threads
    from ebm_ref.energies import _mlp_sm

    model = MLPEnergy((2, 32, 16, 8), "swish", seed=16)
    rng = np.random.default_rng(17)
    x = rng.normal(size=(_mlp_sm.SPAN + 900, 2))  # two spans, several blocks each
    c = rng.random(x.shape)

    def v_fn(g, rows):
        return g * c[rows]

    with limit_threads(1):
        one = model.score_matching_grad(x, c, v_fn)
    with limit_threads(2):
        two = model.score_matching_grad(x, c, v_fn)
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])
    for k in one[2]:
        np.testing.assert_array_equal(one[2][k], two[2][k])


def test_default_combined_pass_subtracts_the_terms_bit_for_bit():
    model = energies.StudentT(np.array([0.1, -0.2, 0.3]), np.array([0.5, 0.0, -0.3]), np.log([4.0, 3.0, 6.0]))
    x = np.random.default_rng(4).normal(size=(50, 3))
    c = np.full(x.shape, 1.0 / 50)
    g, h, grads = model.score_matching_grad(x, c, lambda gr, rows: gr / 50)
    ref = _four(model, x, c, lambda gr, rows: gr / 50)
    np.testing.assert_array_equal(g, ref[0])
    np.testing.assert_array_equal(h, ref[1])
    for k in grads:
        np.testing.assert_array_equal(grads[k], ref[2][k] - ref[3][k])
    # a subclass overriding a formula hook gets the default (its own formulas)
    shifted = _ShiftedMLP((2, 8, 4), seed=5)
    xs = np.random.default_rng(6).normal(size=(40, 2))
    cs = np.full(xs.shape, 1.0 / 40)
    g, h, grads = shifted.score_matching_grad(xs, cs, lambda gr, rows: gr / 40)
    ref = _four(shifted, xs, cs, lambda gr, rows: gr / 40)
    for k in grads:
        np.testing.assert_array_equal(grads[k], ref[2][k] - ref[3][k])


def test_combined_pass_rejects_v_of_the_wrong_shape():
    model = MLPEnergy((3, 8, 4), seed=18)
    x = np.random.default_rng(19).normal(size=(20, 3))
    with pytest.raises(ValueError, match="v_fn"):
        model.score_matching_grad(x, np.ones_like(x), lambda g, rows: g[:, :2])
