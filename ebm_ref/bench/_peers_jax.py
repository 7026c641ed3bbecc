r"""JAX peers of the benchmarked workloads (see :mod:`._peers`).

Every builder takes the ``jax`` module (imported lazily by
:func:`._peers.import_peer`, which enables ``jax_enable_x64``) and returns
an object whose ``compile_s`` is the time of the ahead-of-time
``jax.jit(...).lower(...).compile()`` and whose calls run the compiled
executable and block until the result is ready.

Decisions: the energy is written once, per sample, as the forward pass of
docs/models.md with ``jax.nn.softplus``; its input gradient and Hessian
come from autodiff (``jax.grad``, ``jax.hessian`` = forward-over-reverse,
whose diagonal is the Laplacian term of score matching), batched with
``jax.vmap``. The samplers are one :func:`jax.lax.fori_loop` over steps
with the step count a traced argument, so one compilation serves every
``n_steps`` (the 0-step call measures the set-up). Random numbers:
``jax.random.fold_in(key, step)`` then ``split``. The thread count is
XLA's: all cores in the parent process, one in the one-thread child
(``XLA_FLAGS`` set before JAX is imported).
"""

from __future__ import annotations

import math
import time

import numpy as np

from ._peers_numpy import mlp_arrays

__all__ = ["mlp_params", "energy_fn", "JaxLangevin", "JaxScoreMatching", "JaxRBMGibbs"]


def mlp_params(jax, model):
    """The ``MLPEnergy`` parameters as a dict of float64 JAX arrays (the model's names)."""
    Ws, bs, w_out, b_out = mlp_arrays(model)
    jnp = jax.numpy
    p = {f"W{l + 1}": jnp.asarray(W) for l, W in enumerate(Ws)}
    p.update({f"b{l + 1}": jnp.asarray(b) for l, b in enumerate(bs)})
    p["w_out"], p["b_out"] = jnp.asarray(w_out), jnp.asarray(np.float64(b_out))
    return p


def energy_fn(jax, n_layers):
    """``E(params, x)`` for one sample ``x`` of shape ``(d,)``."""
    softplus = jax.nn.softplus

    def energy(p, x):
        z = x
        for l in range(1, n_layers + 1):
            z = softplus(p[f"W{l}"] @ z + p[f"b{l}"])
        return p["w_out"] @ z + p["b_out"]

    return energy


class _Compiled:
    def __init__(self, jax, fn, *example, static=()):
        t0 = time.perf_counter()
        self.exe = jax.jit(fn, static_argnums=static).lower(*example).compile()
        self.compile_s = time.perf_counter() - t0
        self.jax = jax

    def __call__(self, *args):
        return self.jax.block_until_ready(self.exe(*args))


class JaxLangevin:
    """ULA / MALA on an ``MLPEnergy`` (softplus) in one jitted ``fori_loop``."""

    def __init__(self, jax, model, x0, eta, adjust, seed=0):
        jnp, lax, random = jax.numpy, jax.lax, jax.random
        self.params = mlp_params(jax, model)
        energy = energy_fn(jax, len(model.sizes) - 1)

        def e_sum(x, p):
            e = jax.vmap(energy, in_axes=(None, 0))(p, x)
            return e.sum(), e

        vg = jax.value_and_grad(e_sum, has_aux=True)
        self.energy_grad = jax.jit(lambda p, x: (lambda r: (r[0][1], r[1]))(vg(x, p)))
        scale = math.sqrt(2.0 * eta)

        def run(p, x, key, n_steps):
            (_, e), g = vg(x, p)

            def body(t, carry):
                x, e, g, acc = carry
                k_noise, k_u = random.split(random.fold_in(key, t))
                noise = scale * random.normal(k_noise, x.shape, dtype=jnp.float64)
                xp = x - eta * g + noise
                (_, ep), gp = vg(xp, p)
                if not adjust:
                    return xp, ep, gp, acc
                r = x - xp + eta * gp
                la = e - ep + (jnp.sum(noise * noise, axis=1) - jnp.sum(r * r, axis=1)) / (4.0 * eta)
                ok = jnp.log(random.uniform(k_u, e.shape, dtype=jnp.float64)) < jnp.minimum(0.0, la)
                return (jnp.where(ok[:, None], xp, x), jnp.where(ok, ep, e),
                        jnp.where(ok[:, None], gp, g), acc + ok)

            acc0 = jnp.zeros(x.shape[0], dtype=jnp.float64)
            return lax.fori_loop(0, n_steps, body, (x, e, g, acc0))

        self.key = random.PRNGKey(seed)
        self.x0 = jnp.asarray(np.asarray(x0, dtype=np.float64))
        self.run_c = _Compiled(jax, run, self.params, self.x0, self.key, 1)
        self.compile_s = self.run_c.compile_s

    def run(self, n_steps):
        """``(x, e, g, accepted)`` after ``n_steps`` steps from the ``x0`` given at construction."""
        return self.run_c(self.params, self.x0, self.key, int(n_steps))


class JaxScoreMatching:
    """Exact score matching value and parameter gradient by JAX autodiff, jitted."""

    def __init__(self, jax, model, x):
        jnp = jax.numpy
        self.params = mlp_params(jax, model)
        energy = energy_fn(jax, len(model.sizes) - 1)
        grad_x = jax.grad(energy, argnums=1)
        hess_x = jax.hessian(energy, argnums=1)

        def loss(p, x):
            g = jax.vmap(grad_x, in_axes=(None, 0))(p, x)
            h = jax.vmap(lambda xi: jnp.diagonal(hess_x(p, xi)))(x)
            return jnp.mean(0.5 * jnp.sum(g * g, axis=1) - jnp.sum(h, axis=1))

        self.x = jnp.asarray(np.asarray(x, dtype=np.float64))
        self.call = _Compiled(jax, jax.value_and_grad(loss), self.params, self.x)
        self.compile_s = self.call.compile_s

    def value_and_grad(self):
        """``(loss, grads)`` on the batch given at construction (JAX arrays)."""
        return self.call(self.params, self.x)


class JaxRBMGibbs:
    """Block Gibbs sweeps of a binary RBM in one jitted ``fori_loop``."""

    def __init__(self, jax, W, b_v, b_h, v0, seed=0):
        jnp, random = jax.numpy, jax.random
        self.W, self.b_v, self.b_h = (jnp.asarray(np.asarray(a, dtype=np.float64)) for a in (W, b_v, b_h))
        self.prob_h_given_v = jax.jit(lambda W, b_h, v: jax.nn.sigmoid(v @ W + b_h))
        self.prob_v_given_h = jax.jit(lambda W, b_v, h: jax.nn.sigmoid(h @ W.T + b_v))

        def run(W, b_v, b_h, v, key, n_sweeps):
            def body(t, v):
                k_h, k_v = random.split(random.fold_in(key, t))
                ph = jax.nn.sigmoid(v @ W + b_h)
                h = (random.uniform(k_h, ph.shape, dtype=jnp.float64) < ph).astype(jnp.float64)
                pv = jax.nn.sigmoid(h @ W.T + b_v)
                return (random.uniform(k_v, pv.shape, dtype=jnp.float64) < pv).astype(jnp.float64)

            return jax.lax.fori_loop(0, n_sweeps, body, v)

        self.key = random.PRNGKey(seed)
        self.v0 = jnp.asarray(np.asarray(v0, dtype=np.float64))
        self.run_c = _Compiled(jax, run, self.W, self.b_v, self.b_h, self.v0, self.key, 1)
        self.compile_s = self.run_c.compile_s

    def run(self, n_sweeps):
        """Visible states after ``n_sweeps`` sweeps from the ``v0`` given at construction."""
        return self.run_c(self.W, self.b_v, self.b_h, self.v0, self.key, int(n_sweeps))
