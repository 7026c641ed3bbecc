"""Benchmarks: ``python -m ebm_ref bench [SUITE ...]``.

Each suite is a module ``ebm_ref/bench/<suite>.py`` with a function
``run(quick=False)`` yielding dicts, printed one JSON line each. Every line
names the kernel, its throughput and the ratio to a plain-NumPy
implementation timed *in the same run* (this machine is shared and noisy:
only same-run ratios mean anything).

The ``samplers`` and ``ssm`` suites also time, for ULA / MALA on
``MLPEnergy``, RBM block Gibbs and exact score matching, the
implementations a user would pick instead (careful NumPy, torch, JAX: the
private modules ``_peers*``), and report ``ratio_vs_fastest_peer``, the
compile times, the thread count and the CPU (docs/cli.md).
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
import time

__all__ = ["available_suites", "run_suites", "best_time", "best_interleaved", "avx2_environment"]


def avx2_environment(environ):
    """``environ`` with every library capped at AVX2 (``bench --isa avx2``, docs/cli.md), or ``None``.

    ``None`` when this CPU has no AVX2; ``environ``'s items unchanged on an
    AVX2 CPU (nothing to cap). Returns a new dict.
    """
    from ._peers import avx2_cap, cpu_info

    isa = cpu_info()["isa"]
    return None if isa == "baseline" else avx2_cap(environ, isa)


def available_suites():
    """Names of the benchmark suites present in this package."""
    return sorted(
        m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")
    )


def best_time(fn, repeat=3, number=1):
    """Minimum over ``repeat`` runs of the wall time of ``number`` calls."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t0) / number)
    return best


def best_interleaved(fns, repeat, settle=None):
    """Minimum wall time of each of ``fns`` over ``repeat`` rounds that call each once in turn.

    Interleaving puts the functions under the same machine conditions, so
    their ratios are steadier than those of back-to-back ``best_time``
    calls on a shared host. With ``settle = (pause_s, warm_s)`` each timed
    call is preceded by an idle pause of ``pause_s`` seconds, then untimed
    calls of the same function for at least ``warm_s`` seconds (at least
    one): work one function leaves behind is not charged to the next, and
    each is timed warm, right after itself, as in a loop of its own (see
    ``_peers.SETTLE``).
    """
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            if settle is not None:
                time.sleep(settle[0])
                t1 = time.perf_counter()
                fn()
                while time.perf_counter() - t1 < settle[1]:
                    fn()
            t0 = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t0)
    return best


def run_suites(names=None, quick=False, out=sys.stdout):
    """Run the named suites (all when ``names`` is empty), printing JSON lines."""
    names = list(names) or available_suites()
    unknown = [n for n in names if n not in available_suites()]
    if unknown:
        raise ValueError(f"unknown benchmark suite(s) {unknown}; available: {available_suites()}.")
    for name in names:
        mod = importlib.import_module(f"{__name__}.{name}")
        for line in mod.run(quick=quick):
            line = {"suite": name, **line}
            print(json.dumps(line), file=out, flush=True)
