r"""Benchmark: ULA and MALA on ``MLPEnergy`` (float64), ebm_ref against its peers.

Cases: ``d = 2`` with two hidden layers of 64 and 4096 chains;
``d = 100`` with two hidden layers of 256 and 1024 chains; softplus
(``quick``: an eighth of the chains, at least 64, and 5 steps instead of
50). Step sizes 0.05 and 0.01 (MALA acceptance well inside (0, 1)).

Implementations, all timed in one interleaved loop (best of 5 rounds, 3
with ``quick``; each timed call after an idle pause and untimed warm-up
calls, ``_peers.SETTLE``, none with ``quick``), each as an ``n``-step
call minus a 0-step call so that the set-up (input checks, seeding, the
energy and gradient at the initial states, buffers) is left out alike:

* ebm_ref: the public :func:`ebm_ref.samplers.langevin` (Numba kernel);
  ``setup_s`` is its 0-step call, ``compile_s["ebm_ref"]`` its first call
  in the process (compilation or cache load);
* ``numpy_plain``: the batched textbook NumPy step below
  (:func:`numpy_langevin`, fresh arrays every step), the suite's former
  reference, kept as ``numpy_chain_steps_per_s`` / ``ratio_vs_numpy``;
* the peers of :mod:`._peers`: careful NumPy, torch (``no_grad``,
  ``out=`` operations) and JAX (``jit`` of a ``fori_loop``; its compile
  time is ``compile_s["jax"]``), with ``ratio_vs_fastest_peer`` (ebm_ref's
  rate over the fastest peer's) and ``fastest_peer``.

The rate unit is chain-steps per second. The lines at one thread come from
a child process pinned to one core with ``NUMBA_NUM_THREADS=1``,
``OPENBLAS_NUM_THREADS=1``, torch at one thread and ``XLA_FLAGS`` limiting
XLA to one thread; then the lines at the default thread count (2 here)
from this process, with the 1 -> 2 thread speed-up of each implementation.
Every line carries ``cpu`` (model name and vector ISA).

History: the MLP kernel evaluates each layer's activations in one loop
over its units with a polynomial ``exp`` and ``log1p`` (no libm calls, no
branches), so LLVM vectorises it; before that change MALA at d = 2 ran at
~1.6x plain NumPy at one thread, after it (one run on the shared 2-core
machine, one thread) d = 2 ULA 2.98x, MALA 2.86x; d = 100 ULA 1.95x, MALA
1.87x of plain NumPy. Then the products moved to BLAS on padded 32-chain
tiles (``energies._mlp_kernel``); same-run ratios to the fastest peer
(AMD EPYC, AVX-512, careful NumPy as improved at the same time): one
thread d = 2 ULA 2.02, MALA 1.81, d = 100 ULA 1.07, MALA 1.10; two threads
2.68, 2.70, 1.40, 1.56. Then each step's normals came from lock-step lanes
(``_rng.draw_normals``, 4.5 instead of 25 ns a normal): one thread 1.96,
1.67, 1.35, 1.25; two threads 2.93, 2.26, 1.61, 1.67 (same machine; with
"every library capped at AVX2": 1.63, 1.31, 1.10, 1.13 and 2.18, 1.89, 1.48,
1.34, but that cap set ``NUMBA_CPU_NAME`` alone, which leaves Numba emitting
AVX-512 code). Measured with the full cap (``--isa avx2``, docs/cli.md), as
an AVX2-only CPU would run it: 1.05, 0.89, 0.93, 0.89 and 1.33, 1.25, 1.13,
1.08; after ``nb_exp_nonpos`` stopped converting through int64 (which AVX2
does lane by lane): 1.29, 0.93, 0.98, 0.92 and 1.58, 1.33, 1.19, 1.15;
after ``log1p`` used selects and the output layer's sums ran chains in the
inner loop: 1.45, 1.12, 1.00, 0.95 and 1.63, 1.42, 1.16, 1.23 (with
AVX-512: 2.13, 1.61, 1.27, 1.24 and 2.24, 2.30, 1.57, 1.48; d = 100 at
one thread moves between 1.27 and 1.36 and 1.17 and 1.24 from run to
run); after ``exp`` and ``log``'s polynomials went to Estrin's form
(``_numerics``): AVX2 1.68, 1.38, 1.13, 1.10 and 1.52, 2.25, 1.26, 1.16
(the two-thread d = 2 pair inverted by this shared machine's noise);
AVX-512 2.49, 2.07, 1.33, 1.36 and 2.65, 2.62, 1.60, 1.71.
``run(quick=False)`` yields the dicts; the samplers suite includes it.
``python -m ebm_ref.bench._langevin_bench [--quick] [--child]`` prints them.
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np

from ._peers import SETTLE, build_peers, child_main, interleaved_rates, one_thread_child, peer_fields

__all__ = ["run", "numpy_langevin"]

CASES = (
    # (d, hidden widths, n_chains)
    (2, (64, 64), 4096),
    (100, (256, 256), 1024),
)


def _softplus(z):
    return np.logaddexp(0.0, z)


def _sigmoid(z):
    # expit without SciPy's ufunc: the branch-free stable form
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _numpy_energy_grad(layers, w_out, b_out, x):
    """Batched softplus-MLP energy and hand-derived input gradient."""
    zs = []
    a = x
    for W, b in layers:
        z = a @ W.T + b
        zs.append(z)
        a = _softplus(z)
    e = a @ w_out + b_out
    delta = w_out * _sigmoid(zs[-1])
    for l in range(len(layers) - 1, 0, -1):
        delta = (delta @ layers[l][0]) * _sigmoid(zs[l - 1])
    g = delta @ layers[0][0]
    return e, g


def numpy_langevin(layers, w_out, b_out, x, n_steps, eta, adjust, gen):
    """Plain-NumPy ULA/MALA on the whole batch (the benchmark's reference)."""
    n, d = x.shape
    e, g = _numpy_energy_grad(layers, w_out, b_out, x)
    noise = math.sqrt(2.0 * eta)
    accepted = np.zeros(n)
    for _ in range(n_steps):
        xp = x - eta * g + noise * gen.standard_normal((n, d))
        ep, gp = _numpy_energy_grad(layers, w_out, b_out, xp)
        if adjust:
            fwd = np.sum((xp - x + eta * g) ** 2, axis=1)
            bwd = np.sum((x - xp + eta * gp) ** 2, axis=1)
            log_alpha = e - ep + (fwd - bwd) / (4.0 * eta)
            ok = np.log(gen.random(n)) < np.minimum(0.0, log_alpha)
            x = np.where(ok[:, None], xp, x)
            g = np.where(ok[:, None], gp, g)
            e = np.where(ok, ep, e)
            accepted += ok
        else:
            x, g, e = xp, gp, ep
    return x, accepted


def _measure(quick):
    import numba

    from ..energies import MLPEnergy
    from ..samplers import langevin
    from ._mlp import mlp_layers

    threads = numba.get_num_threads()
    out = []
    for d, widths, n_chains in CASES:
        if quick:
            n_chains = max(64, n_chains // 8)
        model = MLPEnergy((d, *widths), activation="softplus", seed=0)
        layers, w_out, b_out = mlp_layers(model)
        x0 = np.random.default_rng(0).normal(size=(n_chains, d))
        n_steps = 5 if quick else 50
        repeat = 3 if quick else 5
        # a step size with a MALA acceptance well inside (0, 1) on this model
        eta = 0.05 if d == 2 else 0.01
        t0 = time.perf_counter()
        langevin(model, x0[:4], 2, eta, seed=0, adjust=True)  # compile / load the cache
        compile_nb = time.perf_counter() - t0
        for adjust in (False, True):
            line = _measure_kernel(model, layers, w_out, b_out, x0, n_steps, eta, adjust, repeat, threads,
                                   None if quick else SETTLE)
            line["model"] = f"MLPEnergy{(d, *widths)} softplus"
            line["compile_s"]["ebm_ref"] = compile_nb
            line["target_ratio"] = 2.0 if d == 2 else 1.3
            out.append(line)
    return out


def _measure_kernel(model, layers, w_out, b_out, x0, n_steps, eta, adjust, repeat, threads, settle=None):
    """One line: ebm_ref's ``langevin``, the plain-NumPy reference and the peers, interleaved."""
    from ..samplers import langevin
    from ._peers_jax import JaxLangevin
    from ._peers_numpy import NumpyLangevin
    from ._peers_torch import TorchLangevin

    n_chains = x0.shape[0]
    gen = np.random.default_rng(1)

    def numpy_peer():
        peer = NumpyLangevin(model, n_chains, seed=2)
        return (lambda: peer.run(x0, n_steps, eta, adjust), lambda: peer.run(x0, 0, eta, adjust))

    def torch_peer(torch):
        peer = TorchLangevin(torch, model, n_chains, threads, seed=3)
        return (lambda: peer.run(x0, n_steps, eta, adjust), lambda: peer.run(x0, 0, eta, adjust))

    def jax_peer(jax):
        peer = JaxLangevin(jax, model, x0, eta, adjust, seed=4)
        compile_s["jax"] = peer.compile_s
        peer.run(1)  # first call of the executable
        return (lambda: peer.run(n_steps), lambda: peer.run(0))

    compile_s = {"ebm_ref": None, "jax": None}
    impls = {
        "ebm_ref": (lambda: langevin(model, x0, n_steps, eta, seed=1, adjust=adjust),
                    lambda: langevin(model, x0, 0, eta, seed=1, adjust=adjust)),
        # the plain reference: its set-up is one energy and gradient, as ebm_ref's
        "numpy_plain": (lambda: numpy_langevin(layers, w_out, b_out, x0, n_steps, eta, adjust, gen),
                        lambda: numpy_langevin(layers, w_out, b_out, x0, 0, eta, adjust, gen)),
        **build_peers({"numpy": numpy_peer, "torch": torch_peer, "jax": jax_peer}),
    }
    for pair in impls.values():
        if not isinstance(pair, str):
            pair[0]()
    rates, setup = interleaved_rates(impls, n_chains * n_steps, repeat, settle)
    rate_nb, rate_np = rates.pop("ebm_ref"), rates.pop("numpy_plain")
    line = {
        "bench": "langevin_mlp",
        "kernel": "mala" if adjust else "ula",
        "n_chains": n_chains,
        "n_steps": n_steps,
        **peer_fields(rate_nb, rates, compile_s, threads, "chain_steps_per_s"),
        "setup_s": setup["ebm_ref"],
        "chain_steps_per_s": rate_nb,
        "numpy_chain_steps_per_s": rate_np,
        "ratio_vs_numpy": rate_nb / rate_np if rate_nb and rate_np else None,
    }
    return line


def _speedup(a, b):
    return a / b if isinstance(a, float) and isinstance(b, float) else None


def run(quick=False):
    """Yield one dict per (case, kernel, thread count); see the module docstring."""
    one = one_thread_child("_langevin_bench", quick)
    two = _measure(quick)
    yield from one
    for line, ref in zip(two, one):
        line = dict(line)
        line["speedup_1_to_2_threads"] = _speedup(line["chain_steps_per_s"], ref["chain_steps_per_s"])
        line["numpy_speedup_1_to_2_threads"] = _speedup(
            line["numpy_chain_steps_per_s"], ref["numpy_chain_steps_per_s"]
        )
        line["peers_speedup_1_to_2_threads"] = {
            k: _speedup(v, ref["peers"].get(k)) for k, v in line["peers"].items()
        }
        yield line


if __name__ == "__main__":
    child_main(sys.argv[1:], _measure, run)
