r"""Benchmark suite ``samplers``: discrete samplers against plain NumPy.

Lines (each at 2 threads and at 1 thread; Numba threads through
``numba.set_num_threads``, OpenBLAS threads through its
``openblas_set_num_threads`` when the library exposes it):

* ``rbm_block_gibbs``: 784 x 500 RBM, 1000 chains, float64. Seconds per
  full step (h|v then v|h) of :func:`ebm_ref.samplers.gibbs` (setup and
  final energies excluded: the difference of an ``n``-step and a 0-step
  call, divided by ``n``), against the two matrix products ``v W`` and
  ``h W^T`` alone on the same batch (one call each, OpenBLAS at the
  line's thread count), and against a plain-NumPy step (``expit`` and
  ``Generator.random``). The sampler itself pins OpenBLAS to one thread
  and spreads its 128-chain blocks over the line's thread count of
  Python threads (see ``ebm_ref.samplers.gibbs._block_gibbs``). ``setup_s`` is a whole 0-step
  ``gibbs`` call: input checks, seeding (well under 1 ms) and, for most of
  it, the final free energies (``RBM.energy`` on 128-row blocks: one more
  ``v W`` product plus a softplus over the hidden units, also on one
  OpenBLAS thread).
* ``ising_checkerboard``: periodic L x L ``Ising.lattice`` at beta = 0.44,
  32 chains (two lock-step groups of ``_rng.LANES = 16`` chains, one
  per thread at 2 threads), spin updates per second of the public
  :func:`ebm_ref.samplers.gibbs` (the checkerboard kernel that it runs for
  a lattice with even sides), set-up excluded: the best ``n``-sweep call
  minus the best 0-sweep call, whose time is ``setup_s``. Against a
  vectorised NumPy checkerboard (four sub-lattices of shape (L/2, L/2) per
  chain, neighbour sums by slicing, a 5-entry probability table, all
  uniforms of a sweep drawn in one call, int8 spins). A
  ``thread_scaling`` line gives the 2-thread / 1-thread ratio.
* ``ising_lattice_1024``: ``Ising.lattice(1024, 0.44)``: build time (best
  of 5) and peak memory of the build (``tracemalloc``; the dense ``J`` it
  no longer stores would be 8.8 TB), targets < 50 ms and < 50 MB; then 100
  sweeps of 16 chains through the public ``gibbs`` against the
  checkerboard kernel called directly on the same chains and draws, both
  with their own set-up subtracted as above (``public_over_kernel_rate``,
  target >= 0.8), and whole calls compared
  (``public_over_kernel_whole_call``: the public call also checks and
  copies the states and computes the final energies).
* ``gwg_ising``: 100-spin ``Ising.random(100, 1.0)``, 256 chains: accepted
  flips per second of :func:`ebm_ref.samplers.gwg` against a batched NumPy
  GWG (fields by ``x @ J``).

Each ratio is also given in process CPU time (``*_cpu_time``), which is
less sensitive to other processes on a shared machine.

The other engineers' MALA/ULA lines (``ebm_ref.bench._langevin_bench``)
are appended when that module exists.
"""

from __future__ import annotations

import ctypes
import glob
import importlib.util
import os
import time

import numpy as np
from scipy.special import expit

from . import best_time

__all__ = ["run"]


# ------------------------------------------------------------------ timing


def _best_wall_cpu(fn, repeat=5):
    """Best wall time and best process CPU time over ``repeat`` calls.

    On a shared, oversubscribed machine the wall time of a run includes the
    time the process waited for a core; the CPU time does not (it does
    include the spinning of idle worker threads at 2 threads).
    """
    wall, cpu = float("inf"), float("inf")
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - w0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, cpu


# ------------------------------------------------------------------ threads


def _openblas_setter():
    import numpy

    libdir = os.path.join(os.path.dirname(numpy.__file__), os.pardir, "numpy.libs")
    for path in glob.glob(os.path.join(libdir, "*openblas*.so*")):
        lib = ctypes.CDLL(path)
        for name in ("scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_", "openblas_set_num_threads"):
            fn = getattr(lib, name, None)
            if fn is not None:
                fn.argtypes = [ctypes.c_int]
                return fn
    return None


def _set_threads(n):
    """Set Numba (and, when possible, OpenBLAS) threads; returns whether BLAS was pinned."""
    import numba

    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    setter = _openblas_setter()
    if setter is not None:
        setter(n)
    return setter is not None


# -------------------------------------------------------------- RBM Gibbs


def _numpy_rbm_step(v, W, b_v, b_h, rng):
    ph = expit(v @ W + b_h)
    h = (rng.random(ph.shape) < ph).astype(np.float64)
    pv = expit(h @ W.T + b_v)
    return (rng.random(pv.shape) < pv).astype(np.float64)


def _bench_rbm(quick, threads):
    from ..energies import RBM
    from ..samplers._common import prepare
    from ..samplers import gibbs
    from ..samplers._block_gibbs import rbm_block_gibbs as _rbm_block_gibbs

    V, H, n = (64, 32, 100) if quick else (784, 500, 1000)
    steps = 3 if quick else 5
    r = np.random.default_rng(0)
    model = RBM(r.normal(0, 0.05, (V, H)), r.normal(0, 0.1, V), r.normal(0, 0.1, H))
    p = model.params
    W, b_v, b_h = p["W"], p["b_v"], p["b_h"]
    v0 = (r.random((n, V)) < 0.5).astype(np.float64)
    h0 = (r.random((n, H)) < 0.5).astype(np.float64)
    gibbs(model, v0, 1, seed=0)  # compile / warm up
    t_setup = best_time(lambda: gibbs(model, v0, 0, seed=0))
    prep = prepare(model, v0, steps, 0)
    # the step loop alone (no seeding of the 1000 rows, no final energies)
    t_step, c_step = _best_wall_cpu(lambda: _rbm_block_gibbs(model, prep))
    t_step, c_step = t_step / steps, c_step / steps
    t_mm, c_mm = _best_wall_cpu(lambda: (v0 @ W, h0 @ W.T))
    gen = np.random.default_rng(1)
    t_np, c_np = _best_wall_cpu(lambda: _numpy_rbm_step(v0, W, b_v, b_h, gen), repeat=3)
    return {
        "bench": "rbm_block_gibbs",
        "threads": threads,
        "shape": [V, H],
        "n_chains": n,
        "step_s": t_step,
        "setup_s": t_setup,
        "matmuls_s": t_mm,
        "step_over_matmuls": t_step / t_mm,
        "target_step_over_matmuls": 1.3,
        "numpy_step_s": t_np,
        "speedup_vs_numpy": t_np / t_step if t_step > 0 else None,
        "chain_steps_per_s": n / t_step if t_step > 0 else None,
        "step_over_matmuls_cpu_time": c_step / c_mm if c_mm > 0 else None,
        "speedup_vs_numpy_cpu_time": c_np / c_step if c_step > 0 else None,
    }


# --------------------------------------------------------- Ising lattice


class _NumpyCheckerboard:
    """Vectorised NumPy heat-bath checkerboard on four (n, L/2, L/2) sub-lattices.

    ``A = s[0::2, 0::2]``, ``B = s[0::2, 1::2]``, ``C = s[1::2, 0::2]``,
    ``D = s[1::2, 1::2]``; A and D form one colour, B and C the other. The
    neighbour sum of a site is two same-index entries plus two shifted ones
    (wrap-around by one slice each), looked up in a 5-entry table.
    """

    def __init__(self, spins, beta, rng):
        L = spins.shape[1]
        self.s = [spins[:, a::2, b::2].astype(np.int8).copy() for a, b in ((0, 0), (0, 1), (1, 0), (1, 1))]
        self.table = expit(2.0 * beta * np.arange(-4.0, 5.0, 2.0))
        self.nsum = np.empty(self.s[0].shape, dtype=np.int8)
        self.idx = np.empty(self.s[0].shape, dtype=np.intp)
        self.u = np.empty((4,) + self.s[0].shape)
        self.up = np.empty(self.s[0].shape, dtype=bool)
        self.rng = rng
        self.L = L

    def _sum(self, vert, vshift, horiz, hshift):
        out = self.nsum
        np.add(vert, horiz, out=out)
        if vshift < 0:  # the row above: index i-1 (wrapping)
            out[:, 1:] += vert[:, :-1]
            out[:, 0] += vert[:, -1]
        else:
            out[:, :-1] += vert[:, 1:]
            out[:, -1] += vert[:, 0]
        if hshift < 0:
            out[:, :, 1:] += horiz[:, :, :-1]
            out[:, :, 0] += horiz[:, :, -1]
        else:
            out[:, :, :-1] += horiz[:, :, 1:]
            out[:, :, -1] += horiz[:, :, 0]
        return out

    def _update(self, target, nsum, u):
        np.right_shift(nsum, 1, out=nsum)  # (S + 4) / 2 = S/2 + 2 for even S
        np.add(nsum, 2, out=self.idx, casting="unsafe")
        np.less(u, self.table.take(self.idx), out=self.up)
        np.subtract(np.multiply(self.up, 2, dtype=np.int8), 1, out=target)

    def sweep(self):
        A, B, C, D = self.s
        self.rng.random(out=self.u)
        self._update(A, self._sum(C, -1, B, -1), self.u[0])
        self._update(D, self._sum(B, +1, C, +1), self.u[1])
        self._update(B, self._sum(D, -1, A, +1), self.u[2])
        self._update(C, self._sum(A, +1, D, -1), self.u[3])

    def magnetisation(self):
        return float(np.abs(sum(a.sum(axis=(1, 2), dtype=np.int64) for a in self.s)).mean() / self.L**2)


def _public_gibbs_rate(model, x0, sweeps, seed):
    """``(wall, cpu, setup)``: seconds of ``sweeps`` sweeps of the public ``gibbs``, set-up excluded.

    The set-up (input checks, copying ``x0``, seeding, final energies) is
    measured as a whole 0-step call; ``wall`` and ``cpu`` are the best
    ``sweeps``-step call minus the best 0-step call (all ``sweeps`` sweeps
    together), ``setup`` the best 0-step wall time.
    """
    from ..samplers import gibbs

    gibbs(model, x0[:1], 1, seed=seed)  # compile / load the cache
    t0, c0 = _best_wall_cpu(lambda: gibbs(model, x0, 0, seed=seed))
    tn, cn = _best_wall_cpu(lambda: gibbs(model, x0, sweeps, seed=seed), repeat=3)
    return _positive(tn - t0), _positive(cn - c0), t0, tn


def _positive(t):
    """``t``, or None when noise made a difference of timings non-positive."""
    return t if t > 0 else None


def _ratio(a, b):
    return a / b if a is not None and b is not None else None


def _bench_lattice(L, n_chains, quick, threads):
    from ..energies import Ising

    beta = 0.44
    # enough sweeps (about 0.1-0.3 s a call) that they, not the subtracted
    # set-up nor the start-up of the threads on a loaded machine (measured
    # up to 50 ms), dominate the time
    sweeps = 2000 if quick else (1000 if L <= 64 else 50)
    d = L * L
    model = Ising.lattice(L, beta)
    r = np.random.default_rng(2)
    x = np.where(r.random((n_chains, d)) < 0.5, 1.0, -1.0)
    t_nb, c_nb, t_setup, _ = _public_gibbs_rate(model, x, sweeps, 3)
    ref = _NumpyCheckerboard(x.reshape(n_chains, L, L), beta, np.random.default_rng(4))
    ref.sweep()

    def np_sweeps():
        for _ in range(sweeps):
            ref.sweep()

    t_np, c_np = _best_wall_cpu(np_sweeps)
    updates = n_chains * d * sweeps
    from ..samplers import gibbs

    out = gibbs(model, x, sweeps, seed=3).x
    return {
        "bench": "ising_checkerboard",
        "threads": threads,
        "L": L,
        "beta": beta,
        "n_chains": n_chains,
        "spin_updates_per_s": _ratio(updates, t_nb),
        "setup_s": t_setup,
        "numpy_spin_updates_per_s": updates / t_np,
        "speedup_vs_numpy": _ratio(t_np, t_nb),
        "speedup_vs_numpy_cpu_time": _ratio(c_np, c_nb),
        "target_speedup": 8.0 if L <= 64 else 3.0,
        "abs_magnetisation": float(np.abs(out.mean(axis=1)).mean()),
        "numpy_abs_magnetisation": ref.magnetisation(),
    }


def _bench_lattice_large(quick, threads):
    """``Ising.lattice(1024, 0.44)``: build cost, and public ``gibbs`` against its kernel."""
    import tracemalloc

    from .._rng import as_seed_sequence, chain_states
    from ..energies import Ising
    from ..samplers import _lattice

    L, beta, n_chains = 1024, 0.44, 16
    sweeps = 10 if quick else 100
    Ising.lattice(8, beta)  # imports done before timing
    build = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        Ising.lattice(L, beta)
        build = min(build, time.perf_counter() - t0)
    tracemalloc.start()
    model = Ising.lattice(L, beta)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    d = L * L
    r = np.random.default_rng(5)
    x0 = np.where(r.random((n_chains, d)) < 0.5, 1.0, -1.0)
    t_pub, c_pub, t_setup, t_pub_total = _public_gibbs_rate(model, x0, sweeps, 6)
    # the kernel alone, on the same chains and draws; its own set-up
    # (copying the states, seeding, packing to int8 and back) is likewise a
    # 0-sweep call
    thr = _lattice.uniform_thresholds(_lattice.lattice_table(beta, 0.0, True))
    trace = np.empty((0, n_chains, d))
    states = {}

    def kernel(n_sweeps):
        x = x0.copy()
        rng = chain_states(as_seed_sequence(6), n_chains)
        states["x"] = x
        _lattice.lattice_checkerboard_run(L, thr, True, x, n_sweeps, 0, rng, trace)

    t_k0, c_k0 = _best_wall_cpu(lambda: kernel(0))
    t_kn, c_kn = _best_wall_cpu(lambda: kernel(sweeps), repeat=3)
    t_k, c_k = _positive(t_kn - t_k0), _positive(c_kn - c_k0)
    updates = n_chains * d * sweeps
    return {
        "bench": "ising_lattice_1024",
        "threads": threads,
        "L": L,
        "beta": beta,
        "n_chains": n_chains,
        "sweeps": sweeps,
        "build_s": build,
        "target_build_s": 0.05,
        "build_peak_bytes": peak,
        "target_build_peak_bytes": 50e6,
        "dense_J_bytes_avoided": d * d * 8,
        "setup_s": t_setup,
        "kernel_setup_s": t_k0,
        "spin_updates_per_s": _ratio(updates, t_pub),
        "kernel_spin_updates_per_s": _ratio(updates, t_k),
        "public_over_kernel_rate": _ratio(t_k, t_pub),
        "public_over_kernel_rate_cpu_time": _ratio(c_k, c_pub),
        "public_over_kernel_whole_call": t_kn / t_pub_total,
        "target_public_over_kernel_rate": 0.8,
        "same_chains_as_kernel": bool(np.array_equal(states["x"], _gibbs_x(model, x0, sweeps, 6))),
    }


def _gibbs_x(model, x0, sweeps, seed):
    from ..samplers import gibbs

    return gibbs(model, x0, sweeps, seed=seed).x


# --------------------------------------------------------------------- GWG


def _numpy_gwg(J, h, x, n_steps, rng):
    """Batched plain-NumPy GWG on spins; returns (x, accepted flips)."""
    n, d = x.shape
    rows = np.arange(n)
    accepted = 0

    def logq(f, z):
        lg = -z * f  # -dE~/2 with dE~ = 2 x f
        m = lg.max(axis=1, keepdims=True)
        w = np.exp(lg - m)
        tot = w.sum(axis=1, keepdims=True)
        return lg - m - np.log(tot), w, tot

    f = x @ J + h
    for _ in range(n_steps):
        lq, w, tot = logq(f, x)
        cum = np.cumsum(w, axis=1)
        i = np.minimum((cum < rng.random((n, 1)) * tot).sum(axis=1), d - 1)
        delta = -2.0 * x[rows, i]
        d_energy = -delta * f[rows, i]
        y = x.copy()
        y[rows, i] += delta
        fy = f + delta[:, None] * J[i]
        lqy, _, _ = logq(fy, y)
        log_alpha = -d_energy + lqy[rows, i] - lq[rows, i]
        acc = np.log(rng.random(n)) < np.minimum(0.0, log_alpha)
        x = np.where(acc[:, None], y, x)
        f = np.where(acc[:, None], fy, f)
        accepted += int(acc.sum())
    return x, accepted


def _bench_gwg(quick, threads):
    from .._rng import as_seed_sequence, chain_states
    from ..energies import Ising
    from ..samplers import _flip, gwg

    d, n = (20, 64) if quick else (100, 256)
    steps, np_steps = (50, 20) if quick else (400, 100)
    model = Ising.random(d, 1.0, seed=5)
    r = np.random.default_rng(6)
    x0 = np.where(r.random((n, d)) < 0.5, 1.0, -1.0)
    gwg(model, x0, 1, seed=0)  # compile
    form = model.numba_form()
    cache = np.empty((n, form.n_work))
    rng = chain_states(as_seed_sequence(0), n)
    accepted = np.zeros(n, dtype=np.int64)
    trace = np.empty((0, n, d))
    total = []

    def nb_run():
        x = x0.copy()
        accepted[:] = 0
        _flip.flip_mh_run(form.kind, form.ip, form.fp, True, _flip.PROPOSE_GWG, x, cache, 0, steps, 0, rng, trace, accepted)
        total.append(int(accepted.sum()))

    t_nb, c_nb = _best_wall_cpu(nb_run)
    acc = float(np.mean(total))
    J, h = model.params["J"], model.params["h"]
    gen = np.random.default_rng(7)
    counts = []

    def np_run():
        counts.append(_numpy_gwg(J, h, x0.copy(), np_steps, gen)[1])

    t_np, c_np = _best_wall_cpu(np_run, repeat=3)
    acc_np = float(np.mean(counts))
    return {
        "bench": "gwg_ising",
        "threads": threads,
        "d": d,
        "n_chains": n,
        "accepted_flips_per_s": acc / t_nb,
        "acceptance_rate": acc / (n * steps),
        "numpy_accepted_flips_per_s": acc_np / t_np,
        "numpy_acceptance_rate": acc_np / (n * np_steps),
        "speedup_vs_numpy": (acc / t_nb) / (acc_np / t_np),
        "speedup_vs_numpy_cpu_time": (acc / c_nb) / (acc_np / c_np),
    }


# --------------------------------------------------------------------- run


def run(quick=False):
    """Yield the JSON-able result lines of the suite (see the module docstring)."""
    lattice_sizes = (16,) if quick else (64, 256)
    # whole lock-step groups, at least one per thread (see the module docstring)
    n_lat = 32
    rates = {}
    # the kernels without BLAS first: idle OpenBLAS workers keep spinning
    # after a call and would steal the cores from the Numba threads
    for threads in (2, 1):
        _set_threads(threads)
        setter = _openblas_setter()
        if setter is not None:
            setter(1)
        for L in lattice_sizes:
            line = _bench_lattice(L, n_lat, quick, threads)
            rates[(L, threads)] = line["spin_updates_per_s"]
            yield line
        yield _bench_lattice_large(quick, threads)
        yield _bench_gwg(quick, threads)
    for threads in (2, 1):
        pinned = _set_threads(threads)
        line = _bench_rbm(quick, threads)
        line["blas_threads_pinned"] = pinned
        yield line
    for L in lattice_sizes:
        yield {
            "bench": "ising_checkerboard_thread_scaling",
            "L": L,
            "n_chains": n_lat,
            "speedup_2_over_1_threads": rates[(L, 2)] / rates[(L, 1)],
            "target": 1.8,
        }
    _set_threads(2)
    if importlib.util.find_spec("ebm_ref.bench._langevin_bench"):
        from ._langevin_bench import run as _run_lang

        yield from _run_lang(quick)
