r"""Peers of the ebm_ref kernels: what a user would write instead.

This module holds what the peer comparison shares (the CPU description,
the lazy import of torch / JAX, the interleaved timing, the one-thread
child process and the keys of a line); :mod:`._peers_numpy`,
:mod:`._peers_torch` and :mod:`._peers_jax` hold, for each benchmarked
workload, three independent implementations of the same maths on the same
float64 inputs:

``numpy``
    *Careful* NumPy: every buffer allocated once when the workload is set
    up, every elementwise step an in-place ufunc with ``out=``, every
    matrix product one BLAS call on the whole batch, random numbers drawn
    into preallocated arrays (``Generator.standard_normal(out=...)``).
``torch``
    float64 tensors, :func:`torch.no_grad` for the samplers (hand-derived
    gradient, as here), autograd for the score-matching objective;
    ``torch.set_num_threads`` set to the line's thread count.
``jax``
    ``jax_enable_x64``, :func:`jax.jit`, samplers as one
    :func:`jax.lax.fori_loop`; the compile time is measured on its own
    (ahead-of-time ``lower(...).compile()``) and reported as ``compile_s``.

torch and JAX are imported lazily by :func:`import_peer`; when one is not
importable its entry in a line is the string ``"not installed"``.

Workloads (``MLPEnergy`` layout of docs/models.md: ``W_l`` of shape
``(h_l, h_{l-1})``, softplus, ``E = w_out . z_L + b_out``):

* Langevin (ULA / MALA) steps on the whole batch of chains;
* exact score matching value and parameter gradient
  (:class:`ebm_ref.objectives.ScoreMatching`);
* RBM block Gibbs sweeps (``h | v`` then ``v | h``, binary units).

Decisions: the random streams differ between implementations (each uses
its own generator; the work per step is the same); a sampler's rate is
computed from an ``n``-step call minus a 0-step call for every
implementation, so the set-up (initial energy and gradient, buffers) is
excluded alike.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import subprocess
import sys

from . import best_interleaved

__all__ = [
    "NOT_INSTALLED",
    "avx2_cap",
    "cpu_info",
    "import_peer",
    "fastest_peer",
    "one_thread_child",
    "build_peers",
    "interleaved_rates",
    "peer_fields",
    "child_main",
]

NOT_INSTALLED = "not installed"
PEERS = ("numpy", "torch", "jax")

# (pause_s, warm_s) before each timed call of a peer comparison (full
# runs; none with --quick): an idle pause, then untimed calls of the same
# function for at least warm_s. A JAX call leaves work behind that the
# kernel charges to whatever runs next on the core: on one pinned core,
# exact score matching at d = 100 took 111 ms right after the jax peer's
# call (28 ms of it system time, no page faults) against 78 ms after a
# 0.2 s pause (95 ms after 0.05 s), and the careful-NumPy peer 227 against
# 169 ms; without the pause the implementation timed first in each round
# paid it. The warm-up because on this VM a pause alone slows what follows
# for a while: at two threads, score matching at d = 20 took 12-15 ms back
# to back, 21-25 ms after 0.25 s idle and one warm-up call, 12-15 ms again
# after 0.1 s or more of warm-up calls.
SETTLE = (0.25, 0.15)


# ------------------------------------------------------------ environment


#: Environment variables that cap the vector ISA each library generates or
#: dispatches to (docs/cli.md, "An AVX2 machine on an AVX-512 one"): a line
#: lists those that are set, so a figure measured with AVX-512 masked says so.
ISA_LIMITS = ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES", "OPENBLAS_CORETYPE", "NPY_DISABLE_CPU_FEATURES",
              "ATEN_CPU_CAPABILITY", "XLA_FLAGS")

# LLVM's feature list of a Haswell CPU (AVX2 and FMA, no AVX-512). Numba
# takes the host's features whenever NUMBA_CPU_FEATURES is unset, even with
# NUMBA_CPU_NAME=haswell: that alone still emits AVX-512 code on an AVX-512
# host (checked in the generated assembly), so the cap needs both.
_HASWELL_FEATURES = ",".join(
    "+" + f for f in ("64bit", "avx", "avx2", "bmi", "bmi2", "cmov", "cx16", "cx8", "f16c", "fma", "fsgsbase",
                      "fxsr", "lzcnt", "mmx", "movbe", "pclmul", "popcnt", "rdrnd", "sahf", "sse", "sse2", "sse3",
                      "sse4.1", "sse4.2", "ssse3", "x87", "xsave", "xsaveopt"))
_NPY_AVX512 = "AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL AVX512_SPR"


def avx2_cap(environ, isa):
    """The variables that make every library of a run generate or pick AVX2 code, merged into ``environ``.

    ``isa`` is :func:`cpu_info`'s hardware ISA. On an AVX-512 CPU: Numba
    compiles for Haswell (its name *and* feature list; cached apart from
    the host's code), OpenBLAS uses its Haswell kernels, NumPy's AVX-512
    dispatch is disabled, torch and XLA are capped at AVX2 (``--xla_cpu_max_isa``
    is added to any ``XLA_FLAGS`` already set). On an AVX2 CPU nothing is
    needed and ``environ`` comes back unchanged. Returns a new dict.
    """
    env = dict(environ)
    if isa != "AVX-512":
        return env
    env.update(NUMBA_CPU_NAME="haswell", NUMBA_CPU_FEATURES=_HASWELL_FEATURES, OPENBLAS_CORETYPE="Haswell",
               ATEN_CPU_CAPABILITY="avx2", NPY_DISABLE_CPU_FEATURES=_NPY_AVX512)
    xla = env.get("XLA_FLAGS", "")
    if "--xla_cpu_max_isa=AVX2" not in xla.split():
        env["XLA_FLAGS"] = (xla + " --xla_cpu_max_isa=AVX2").strip()
    return env


def cpu_info():
    """``{"model_name": str, "isa": str, "isa_limits": dict}`` of this machine's CPU.

    ``isa`` is ``"AVX-512"`` when ``avx512f`` is among the flags of
    ``/proc/cpuinfo``, else ``"AVX2"`` when ``avx2`` is, else
    ``"baseline"`` (also when ``/proc/cpuinfo`` cannot be read): the
    hardware's. ``isa_limits`` holds the variables of ``ISA_LIMITS`` that
    are set in the environment (empty: nothing masked).
    """
    model, flags = None, set()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model is None:
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "baseline"
    limits = {k: os.environ[k] for k in ISA_LIMITS if os.environ.get(k)}
    if "XLA_FLAGS" in limits:
        # XLA_FLAGS also carries the one-thread child's thread settings: keep the ISA cap only
        isa_flags = [f for f in limits["XLA_FLAGS"].split() if "max_isa" in f]
        if isa_flags:
            limits["XLA_FLAGS"] = " ".join(isa_flags)
        else:
            del limits["XLA_FLAGS"]
    return {"model_name": model or platform.processor() or "unknown", "isa": isa, "isa_limits": limits}


def import_peer(name):
    """The module ``name`` (``"torch"`` or ``"jax"``), or ``None`` when it is not importable.

    JAX is configured for float64 (``jax_enable_x64``) on import. Tests
    monkeypatch this function to simulate a missing peer.
    """
    try:
        mod = importlib.import_module(name)
    except Exception:  # ImportError, or a broken install failing on import
        return None
    if name == "jax":
        mod.config.update("jax_enable_x64", True)
    return mod


def fastest_peer(ebm_rate, rates):
    """``(name, ratio)``: the fastest peer and ebm_ref's rate over its rate.

    ``rates`` maps peer names to rates (larger is faster) or to a string
    (``"not installed"``, ``"failed: ..."``), which is skipped. Returns
    ``(None, None)`` when no peer has a rate.
    """
    numeric = {k: v for k, v in rates.items() if isinstance(v, (int, float)) and v > 0}
    if not numeric or ebm_rate is None:
        return None, None
    name = max(numeric, key=numeric.get)
    return name, ebm_rate / numeric[name]


def one_thread_child(module, quick):
    """Lines printed by ``python -m ebm_ref.bench.<module> --child`` pinned to one thread.

    The child environment sets ``NUMBA_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``,
    ``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS`` to 1 and
    ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false
    intra_op_parallelism_threads=1`` (after the caller's own XLA flags, such
    as an ISA cap); :func:`child_main` pins it to one core and torch to
    one thread.
    """
    xla = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    env = dict(os.environ, NUMBA_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1", XLA_FLAGS=xla.strip())
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", f"ebm_ref.bench.{module}", "--child"] + (["--quick"] if quick else [])
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600, check=True)
    return [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]


def child_main(argv, measure, run):
    """Command line of a bench module with a one-thread child: ``[--quick] [--child]``."""
    quick = "--quick" in argv
    if "--child" in argv:
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
        lines = measure(quick)
    else:
        lines = run(quick)
    for line in lines:
        print(json.dumps(line), flush=True)


def build_peers(builders):
    """Set up each peer; ``{name: impl or reason}``.

    ``builders`` maps ``"numpy"`` to a function of no argument and
    ``"torch"`` / ``"jax"`` to functions of the imported module. A peer
    whose module is missing gets ``"not installed"``; one whose set-up
    raises gets ``"failed: <error>"`` (the line is still printed).
    """
    out = {}
    for name, builder in builders.items():
        if name == "numpy":
            out[name] = builder()
            continue
        mod = import_peer(name)
        if mod is None:
            out[name] = NOT_INSTALLED
            continue
        try:
            out[name] = builder(mod)
        except Exception as exc:  # report, do not abort the suite
            out[name] = f"failed: {type(exc).__name__}: {exc}"[:300]
    return out


def interleaved_rates(impls, work, repeat, settle=None):
    """Rates ``work / (t_n - t_0)`` of each implementation, all timed in one interleaved loop.

    ``impls`` maps names to ``(call_n, call_0)`` pairs (an ``n``-step and a
    0-step call) or to a string (a peer not set up, passed through).
    Returns ``(rates, setup)``: per name the rate (None when noise makes
    ``t_n - t_0`` non-positive) and the best 0-step time ``t_0``. ``settle``:
    the pause and warm-up before each timed call (:func:`.best_interleaved`).
    """
    live = {k: v for k, v in impls.items() if not isinstance(v, str)}
    fns = [f for pair in live.values() for f in pair]
    times = best_interleaved(fns, repeat, settle)
    rates, setup = {}, {}
    for i, name in enumerate(live):
        t_n, t_0 = times[2 * i], times[2 * i + 1]
        rates[name] = work / (t_n - t_0) if t_n > t_0 else None
        setup[name] = t_0
    for name, v in impls.items():
        if isinstance(v, str):
            rates[name] = v
    return rates, setup


def peer_fields(ebm_rate, rates, compile_s, threads, unit, higher_is_better=True):
    """The comparison keys every peer line carries (see docs/cli.md).

    ``ebm_rate`` and ``rates`` are in ``unit``; with
    ``higher_is_better=False`` they are times, and the fastest peer is the
    one with the least time (``ratio_vs_fastest_peer`` is still ebm_ref's
    speed over that peer's: its time over ebm_ref's).
    """
    peers = {k: rates.get(k, NOT_INSTALLED) for k in PEERS}
    if higher_is_better:
        name, ratio = fastest_peer(ebm_rate, peers)
    else:
        inv = {k: 1.0 / v if isinstance(v, float) and v > 0 else v for k, v in peers.items()}
        name, ratio = fastest_peer(1.0 / ebm_rate if ebm_rate else None, inv)
    return {
        "unit": unit,
        "ebm_ref": ebm_rate,
        "peers": peers,
        "fastest_peer": name,
        "ratio_vs_fastest_peer": ratio,
        "compile_s": compile_s,
        "threads": threads,
        "cpu": cpu_info(),
    }
