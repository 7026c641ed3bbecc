"""Third-party-style JAX implementations (correct ones and planted bugs) checked through :func:`from_jax`.

Written as JAX tutorials write them: parameters in a list of per-layer dicts with ``W`` of shape (in, out) used as
``x @ W``, ``jax.nn.softplus``, ``jax.random.bernoulli`` with explicit keys.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ebm_ref.energies import RBM, MLPEnergy
from ebm_ref.testing import check_sampler, compare_energy, from_jax


# --------------------------------------------------------------------- MLP
def init_mlp(key, sizes):
    """``[{"W": (in, out), "b": (out,)}, ...]`` with a last layer of width 1."""
    params = []
    for din, dout in zip(sizes[:-1], list(sizes[1:])):
        key, sub = jax.random.split(key)
        params.append({"W": jax.random.normal(sub, (din, dout)) / jnp.sqrt(din), "b": jnp.zeros(dout)})
    return params


def mlp_energy(params, x):
    h = x
    for layer in params[:-1]:
        h = jax.nn.softplus(h @ layer["W"] + layer["b"])
    return (h @ params[-1]["W"] + params[-1]["b"])[:, 0]


def mlp_energy_transposed(params, x):
    """Planted bug: the first layer's W applied transposed (runs only because that layer is square)."""
    h = jax.nn.softplus(x @ params[0]["W"].T + params[0]["b"])
    return (h @ params[-1]["W"] + params[-1]["b"])[:, 0]


MLP_MAP = {"W1": ("0.W", "T"), "b1": "0.b", "w_out": ("1.W", (-1,)), "b_out": ("1.b", ())}


def run_mlp_energy(fn=mlp_energy, d=2, h=4, jit=False):
    ref = MLPEnergy((d, h), activation="softplus", seed=0)
    template = init_mlp(jax.random.PRNGKey(0), (d, h, 1))
    f = jax.jit(fn) if jit else fn
    return compare_energy(ref, **from_jax(f, MLP_MAP, params=template, reference=ref))


# --------------------------------------------------------------------- RBM
def rbm_free_energy(params, v):
    return -v @ params["b"] - jax.nn.softplus(v @ params["W"] + params["c"]).sum(axis=1)


def rbm_free_energy_bias_sign(params, v):
    """Planted bug: the hidden bias enters with the wrong sign."""
    return -v @ params["b"] - jax.nn.softplus(v @ params["W"] - params["c"]).sum(axis=1)


def rbm_gibbs(params, v, n_steps, key, mean_field=False):
    for _ in range(n_steps):
        key, k1, k2 = jax.random.split(key, 3)
        ph = jax.nn.sigmoid(v @ params["W"] + params["c"])
        h = ph if mean_field else jax.random.bernoulli(k1, ph).astype(v.dtype)
        pv = jax.nn.sigmoid(h @ params["W"].T + params["b"])
        v = jax.random.bernoulli(k2, pv).astype(v.dtype)
    return v


RBM_MAP = {"W": "W", "b_v": "b", "b_h": "c"}


def rbm_model(V=7, H=3, scale=1.5, seed=2):
    rng = np.random.default_rng(seed)
    return RBM(scale * rng.normal(size=(V, H)), rng.normal(size=V), rng.normal(size=H))


def run_rbm_energy(fn=rbm_free_energy):
    ref = rbm_model(6, 3, scale=1.0, seed=0)
    return compare_energy(ref, **from_jax(fn, RBM_MAP, reference=ref))


def run_rbm_sampler(mean_field=False):
    ref = rbm_model()
    ad = from_jax(rbm_free_energy, RBM_MAP, reference=ref)
    fn = ad.sampler(lambda p, v, n, key: rbm_gibbs(p, v, n, key, mean_field=mean_field))
    return check_sampler(fn, ref, n_steps=5, seed=0)


# ----------------------------------------------------------- score matching
def score_matching_loss(params, x):
    """Hyvarinen score matching with the Hessian trace from jax.jacfwd of the per-sample gradient."""

    def e1(xi):
        return mlp_energy(params, xi[None, :])[0]

    g = jax.vmap(jax.grad(e1))(x)
    tr = jax.vmap(lambda xi: jnp.trace(jax.jacfwd(jax.grad(e1))(xi)))(x)
    return jnp.mean(0.5 * jnp.sum(g**2, axis=1) - tr)


def sm_setup():
    ref = MLPEnergy((2, 4), activation="softplus", seed=0)
    template = init_mlp(jax.random.PRNGKey(0), (2, 4, 1))
    ad = from_jax(mlp_energy, MLP_MAP, params=template, reference=ref)
    x = np.random.default_rng(4).normal(size=(30, 2))
    return ref, ad.objective(score_matching_loss), x
