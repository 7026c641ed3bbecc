r"""Benchmark suite ``samplers``: discrete samplers against plain NumPy.

Only the public samplers are timed. Lines (each at 2 threads and at 1
thread, set with :func:`ebm_ref.limit_threads` or, for the lines with
peers, in a child process; OpenBLAS is held at one thread for the lines
without matrix products):

* ``rbm_block_gibbs``: 784 x 500 RBM, 1000 chains, float64: chain-sweeps
  per second of :func:`ebm_ref.samplers.gibbs` (set-up excluded) against
  the two matrix products alone (the ceiling), the plain-NumPy sweep and
  the peers (careful NumPy, torch, JAX; ``ratio_vs_fastest_peer``), at 1
  thread (a pinned child process) and 2 threads; see
  :mod:`ebm_ref.bench._rbm_bench`.
* ``ising_checkerboard``: periodic L x L ``Ising.lattice`` at beta = 0.44,
  32 chains (two lock-step groups of 16 chains, one per thread at 2
  threads), spin updates per second of the public
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
  sweeps of 16 chains through the public ``gibbs``, set-up subtracted as
  above (``setup_s``; ``whole_call_s`` is the whole call).
* ``gwg_ising``: 100-spin ``Ising.random(100, 1.0)``, 256 chains: accepted
  flips per second of :func:`ebm_ref.samplers.gwg` (set-up subtracted as
  above) against a batched NumPy GWG (fields by ``x @ J``).

Each ratio of the Ising and GWG lines is also given in process CPU time
(``*_cpu_time``), which is less sensitive to other processes on a shared
machine. Every line of the suite carries ``cpu`` (model name and vector
ISA).

Then the MALA/ULA lines of :mod:`ebm_ref.bench._langevin_bench`, with
their peers. Every line with peers (``rbm_block_gibbs``, ``langevin_mlp``)
carries the keys of docs/cli.md: ``ebm_ref``, ``peers``, ``fastest_peer``,
``ratio_vs_fastest_peer``, ``compile_s``, ``threads`` and ``cpu`` (model
name and vector ISA, see :func:`ebm_ref.bench._peers.cpu_info`).
"""

from __future__ import annotations

import time

import numpy as np
from scipy.special import expit

from .._threads import blas_threads, limit_threads
from ._peers import cpu_info
from ._rbm_bench import run as _run_rbm

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


def _gibbs(model, x0, n_steps, seed):
    from ..samplers import gibbs

    return gibbs(model, x0, n_steps, seed=seed)


def _gwg(model, x0, n_steps, seed):
    from ..samplers import gwg

    return gwg(model, x0, n_steps, seed=seed)


def _public_rate(sampler, model, x0, n_steps, seed):
    """``(wall, cpu, setup, whole)``: seconds of ``n_steps`` steps of a public sampler, set-up excluded.

    ``sampler(model, x0, n_steps, seed)`` is one public call. The set-up
    (input checks, copying ``x0``, seeding, final energies) is measured as
    a whole 0-step call; ``wall`` and ``cpu`` are the best ``n_steps``-step
    call minus the best 0-step call (all steps together, None when noise
    makes the difference non-positive), ``setup`` the best 0-step wall
    time and ``whole`` the best ``n_steps``-step wall time.
    """
    sampler(model, x0[:1], 1, seed)  # compile / load the cache
    t0, c0 = _best_wall_cpu(lambda: sampler(model, x0, 0, seed))
    tn, cn = _best_wall_cpu(lambda: sampler(model, x0, n_steps, seed), repeat=3)
    return _positive(tn - t0), _positive(cn - c0), t0, tn


def _positive(t):
    """``t``, or None when noise made a difference of timings non-positive."""
    return t if t > 0 else None


def _ratio(a, b):
    return a / b if a is not None and b else None


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
    t_nb, c_nb, t_setup, _ = _public_rate(_gibbs, model, x, sweeps, 3)
    ref = _NumpyCheckerboard(x.reshape(n_chains, L, L), beta, np.random.default_rng(4))
    ref.sweep()

    def np_sweeps():
        for _ in range(sweeps):
            ref.sweep()

    t_np, c_np = _best_wall_cpu(np_sweeps)
    updates = n_chains * d * sweeps
    out = _gibbs(model, x, sweeps, 3).x
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
    """``Ising.lattice(1024, 0.44)``: build cost, and the public ``gibbs`` on it."""
    import tracemalloc

    from ..energies import Ising

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
    t_pub, c_pub, t_setup, t_whole = _public_rate(_gibbs, model, x0, sweeps, 6)
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
        "whole_call_s": t_whole,
        "spin_updates_per_s": _ratio(updates, t_pub),
        "spin_updates_per_cpu_s": _ratio(updates, c_pub),
    }


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
    from ..energies import Ising

    d, n = (20, 64) if quick else (100, 256)
    steps, np_steps = (50, 20) if quick else (400, 100)
    model = Ising.random(d, 1.0, seed=5)
    r = np.random.default_rng(6)
    x0 = np.where(r.random((n, d)) < 0.5, 1.0, -1.0)
    t_nb, c_nb, t_setup, _ = _public_rate(_gwg, model, x0, steps, 0)
    acc = float(np.sum(_gwg(model, x0, steps, 0).acceptance_rate)) * steps
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
        "accepted_flips_per_s": _ratio(acc, t_nb),
        "setup_s": t_setup,
        "acceptance_rate": acc / (n * steps),
        "numpy_accepted_flips_per_s": acc_np / t_np,
        "numpy_acceptance_rate": acc_np / (n * np_steps),
        "speedup_vs_numpy": _ratio(_ratio(acc, t_nb), acc_np / t_np),
        "speedup_vs_numpy_cpu_time": _ratio(_ratio(acc, c_nb), acc_np / c_np),
    }


# --------------------------------------------------------------------- run


def run(quick=False):
    """Yield the JSON-able result lines of the suite (see the module docstring), each with ``cpu``."""
    cpu = cpu_info()
    for line in _lines(quick):
        line.setdefault("cpu", cpu)
        yield line


def _lines(quick):
    lattice_sizes = (16,) if quick else (64, 256)
    # whole lock-step groups, at least one per thread (see the module docstring)
    n_lat = 32
    rates = {}
    # the kernels without BLAS first: idle OpenBLAS workers keep spinning
    # after a call and would steal the cores from the Numba threads
    for threads in (2, 1):
        with limit_threads(threads), blas_threads(1):
            for L in lattice_sizes:
                line = _bench_lattice(L, n_lat, quick, threads)
                rates[(L, threads)] = line["spin_updates_per_s"]
                yield line
            yield _bench_lattice_large(quick, threads)
            yield _bench_gwg(quick, threads)
    # 1 thread in a pinned child process, then 2 threads here (see _rbm_bench)
    yield from _run_rbm(quick)
    for L in lattice_sizes:
        yield {
            "bench": "ising_checkerboard_thread_scaling",
            "L": L,
            "n_chains": n_lat,
            "speedup_2_over_1_threads": _ratio(rates[(L, 2)], rates[(L, 1)]),
            "target": 1.8,
        }
    from ._langevin_bench import run as _run_lang

    yield from _run_lang(quick)
