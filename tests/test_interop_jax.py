"""from_jax: pytree paths, layouts, exact jax.grad/jvp primitives, dtype and x64 handling, keys, objective, errors.

The tutorial-style corpus and its planted bugs run in test_interop_catalog.py; here the adapter itself is checked
against ebm_ref's hand-derived primitives with strict=True (jax.nn.softplus is exact, nothing needs accepting).
"""

from __future__ import annotations

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ebm_ref.energies import MLPEnergy
from ebm_ref.testing import check_objective_grad, check_sampler, compare_energy, compare_objective, from_jax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _interop_jax_corpus as jc  # noqa: E402


def tanh_energy(params, x):
    h = jnp.tanh(params["l1"]["W"] @ x.T + params["l1"]["b"][:, None])  # (h, n): the (out, in) layout
    return params["out"]["w"] @ h + params["out"]["b"]


def test_nested_dicts_from_dotted_paths_strict():
    # no example params: the pytree is built from the mapping's dotted paths; identity layouts only
    ref = MLPEnergy((3, 4), activation="tanh", seed=1)
    mapping = {"W1": "l1.W", "b1": "l1.b", "w_out": "out.w", "b_out": "out.b"}
    ad = from_jax(tanh_energy, mapping, reference=ref)
    compare_energy(ref, strict=True, **ad).assert_ok()


def test_list_pytree_template_strict_and_eager():
    ref = MLPEnergy((2, 4), activation="softplus", seed=0)
    template = jc.init_mlp(jax.random.PRNGKey(0), (2, 4, 1))
    ad = from_jax(jc.mlp_energy, jc.MLP_MAP, params=template, reference=ref, jit=False)
    compare_energy(ref, strict=True, n_batches=1, scales=(10.0,), **ad).assert_ok()  # eager dispatch is slow: one batch
    assert ad.mapping.user_names == ["0.W", "0.b", "1.W", "1.b"]


def test_dtype_and_x64_flag():
    ref = jc.rbm_model(6, 3, scale=1.0, seed=0)
    x = np.random.default_rng(0).integers(0, 2, size=(4, 6)).astype(float)
    before = jax.config.jax_enable_x64
    ad64 = from_jax(jc.rbm_free_energy, jc.RBM_MAP, reference=ref)
    ad32 = from_jax(jc.rbm_free_energy, jc.RBM_MAP, reference=ref, dtype=jnp.float32)
    e64, e32 = ad64.energy(ref.params, x), ad32.energy(ref.params, x)
    assert jax.config.jax_enable_x64 == before  # the caller's setting is untouched
    assert e64.dtype == np.float64 and e32.dtype == np.float32 and "float32" in repr(ad32)
    np.testing.assert_allclose(e64, ref.energy(x), rtol=1e-13)
    np.testing.assert_allclose(e32, ref.energy(x), rtol=1e-5)
    assert ad32.grad_params(ref.params, x, np.ones(4))["W"].dtype == np.float32
    rep = compare_energy(ref, **ad32)
    assert rep.passed and rep.dtype == "float32"


@pytest.mark.slow  # 20,000 chains from two starts
def test_sampler_keys_reproducible_and_step_form():
    ref = jc.rbm_model()
    ad = from_jax(jc.rbm_free_energy, jc.RBM_MAP, reference=ref)
    s = ad.sampler(jc.rbm_gibbs)
    x0 = np.random.default_rng(0).integers(0, 2, size=(30, 7)).astype(float)
    a = s(ref.params, x0, 2, np.random.default_rng(1))
    b = s(ref.params, x0, 2, np.random.default_rng(1))
    c = s(ref.params, x0, 2, np.random.default_rng(2))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    step = ad.sampler(lambda p, v, key: jc.rbm_gibbs(p, v, 1, key), step=True)
    check_sampler(step, ref, n_steps=5).assert_ok()


def test_score_matching_objective():
    ref, fn, x = jc.sm_setup()
    compare_objective("ScoreMatching", fn, ref, x).assert_ok()
    check_objective_grad(fn, ref, x).assert_ok()
    loss, grads = fn(ref.params, x, 0)
    assert set(grads) == set(ref.params) and grads["w_out"].shape == (4,) and grads["b_out"].shape == ()


def test_errors_name_the_argument():
    ref = MLPEnergy((2, 4), seed=0)
    template = jc.init_mlp(jax.random.PRNGKey(0), (2, 4, 1))
    with pytest.raises(ValueError, match=r"mapping\['W1'\]. names the user parameter '0.w'.*does not exist"):
        from_jax(jc.mlp_energy, dict(jc.MLP_MAP, W1=("0.w", "T")), params=template)
    with pytest.raises(ValueError, match=r"mapping\['W1'\].*becomes \(2, 4\)"):
        from_jax(jc.mlp_energy, dict(jc.MLP_MAP, W1="0.W"), params=template, reference=ref)
    with pytest.raises(ValueError, match=r"mapping\['w_out'\]. uses a reshape"):
        from_jax(jc.mlp_energy, jc.MLP_MAP)
    for bad in (np.int32, "banana"):
        with pytest.raises(TypeError, match="`dtype` must be a floating dtype"):
            from_jax(jc.mlp_energy, jc.MLP_MAP, params=template, dtype=bad)
    with pytest.raises(TypeError, match="fn"):
        from_jax("energy")


def test_no_mapping_is_the_identity():
    def free_energy(p, v):  # written with ebm_ref's own names and layouts
        return -v @ p["b_v"] - jax.nn.softplus(v @ p["W"] + p["b_h"]).sum(axis=1)

    ref = jc.rbm_model(5, 2, scale=1.0, seed=3)
    compare_energy(ref, strict=True, scales=(1.0,), **from_jax(free_energy)).assert_ok()
