"""The vectorised loops stay vectorised on a CPU without AVX-512.

Numba compiles for the host, so on this project's AVX-512 machine nothing
shows what an AVX2-only CPU gets. A child process compiles the hot loops
for Haswell (``bench._peers.avx2_cap``: Numba's CPU name *and* feature
list, a fresh cache) and the test reads the assembly. Nothing compiled
there is run, so the test is safe on any x86-64 CPU.

What is checked, per loop: no ``zmm`` register (the cap took effect), packed
``ymm`` arithmetic (the loop vectorised), and no scalar conversion between
double and int64 (``vcvttsd2si`` / ``vcvtsi2sd``). AVX2 has no vector
instruction for that conversion, so LLVM splits the vector and converts
lane by lane: ``nb_exp_nonpos`` with ``math.floor`` (an int) did this, which
made every loop calling it 1.5x slower on AVX2 (docs/cli.md). The
negative control is that very loop: its assembly must show the conversions,
or the check could not see them.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from ebm_ref.bench._peers import avx2_cap

CHILD = r"""
import json, math, re
import numba
import numpy as np
from numba import types as t
from ebm_ref._numerics import nb_exp_nonpos, nb_log1p_unit, nb_log_unit, _EXP_FLOOR, _LOG2E
from ebm_ref._rng import box_muller, lane_uniform, lane_words, LANES
from ebm_ref.energies import _mlp_core, _mlp_kernel
from ebm_ref.samplers import _block_gibbs

@numba.njit
def exp_loop(x, out):
    for i in range(x.shape[0]):
        out[i] = nb_exp_nonpos(-abs(x[i]))

@numba.njit
def logs_loop(x, y, out):
    for i in range(x.shape[0]):
        out[i] = nb_log1p_unit(x[i]) + nb_log_unit(y[i]) + box_muller(x[i], y[i])

@numba.njit
def lanes_loop(out):
    S0, S1, S2, S3 = lane_words()
    for j in range(out.shape[0] // LANES):
        for g in range(LANES):
            out[j * LANES + g] = lane_uniform(S0, S1, S2, S3, g)

@numba.njit
def floor_to_int_loop(x, out):  # negative control: math.floor returns an int
    for i in range(x.shape[0]):
        n = math.floor(x[i] * _LOG2E + 0.5)
        out[i] = x[i] - n

vec = t.float64[::1]
arr3 = t.Array(t.float64, 3, "C")
targets = {
    "exp_loop": (exp_loop, (vec, vec)),
    "logs_loop": (logs_loop, (vec, vec, vec)),
    "lanes_loop": (lanes_loop, (vec,)),
    "floor_to_int_loop": (floor_to_int_loop, (vec, vec)),
    "_mlp_kernel._act_layer": (_mlp_kernel._act_layer, (t.int64, vec, vec, t.boolean, t.boolean)),
    "_mlp_core._act_chunk": (_mlp_core._act_chunk, (t.int64, vec, vec, vec, vec, vec)),
    "_block_gibbs._bernoulli_rows": (
        _block_gibbs._bernoulli_rows, (arr3, vec, arr3, t.Array(t.uint64, 2, "C"), t.int64, t.int64)),
}
conv = re.compile(r"\bv?(cvttsd2si|cvtsi2sd[lq]?)\b")
packed = re.compile(r"\bv(mul|add|fmadd\d+)pd\s+[^\n]*%ymm")
report = {}
for name, (fn, sig) in targets.items():
    fn.compile(sig)
    asm = fn.inspect_asm(sig)
    report[name] = {"zmm": asm.count("%zmm"), "packed_ymm": len(packed.findall(asm)),
                    "conversions": len(conv.findall(asm))}
print(json.dumps(report))
"""

LOOPS = ["exp_loop", "logs_loop", "lanes_loop", "_mlp_kernel._act_layer", "_mlp_core._act_chunk",
         "_block_gibbs._bernoulli_rows"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.fail(f"this check reads x86-64 assembly; machine is {platform.machine()}")
    env = avx2_cap(os.environ, "AVX-512")  # the cap, whatever this CPU has
    env["NUMBA_CACHE_DIR"] = str(tmp_path_factory.mktemp("numba_cache_avx2"))
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", LOOPS)
def test_loop_vectorises_on_avx2_without_scalar_conversions(report, name):
    r = report[name]
    assert r["zmm"] == 0, f"{name}: AVX-512 registers in Haswell code, the cap did not apply: {r}"
    assert r["packed_ymm"] > 0, f"{name}: no packed AVX2 arithmetic, the loop did not vectorise: {r}"
    assert r["conversions"] == 0, f"{name}: scalar double<->int64 conversions in AVX2 code: {r}"


def test_negative_control_conversions_are_seen(report):
    r = report["floor_to_int_loop"]
    assert r["zmm"] == 0 and r["conversions"] > 0, r


def test_avx2_cap_leaves_an_avx2_cpu_alone_and_appends_to_xla_flags():
    base = {"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false", "PATH": "/bin"}
    assert avx2_cap(base, "AVX2") == base
    env = avx2_cap(base, "AVX-512")
    assert env["XLA_FLAGS"] == "--xla_cpu_multi_thread_eigen=false --xla_cpu_max_isa=AVX2"
    assert env["NUMBA_CPU_NAME"] == "haswell" and "+avx2" in env["NUMBA_CPU_FEATURES"].split(",")
    assert not any("avx512" in f for f in env["NUMBA_CPU_FEATURES"].split(","))
    assert avx2_cap(env, "AVX-512") == env  # idempotent: the re-executed bench sees itself capped
    assert base == {"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false", "PATH": "/bin"}  # not modified
