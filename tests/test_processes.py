"""Samplers in processes made by fork, and in several Python threads at once.

The parent first runs parallel (``prange``) kernels, which starts Numba's
threading layer; then a child made by ``os.fork`` or by a multiprocessing
'fork' pool samples and sends its arrays back. With a fork-safe layer (TBB,
which ebm_ref selects when the ``tbb`` wheel is installed) they must equal
the parent's bit for bit; with GNU OpenMP, which Numba would let kill the
child, the child must get the documented ``ForkedAfterOpenMPError`` naming
'spawn' (docs/processes.md). A subprocess test forces GNU OpenMP so that
the refusal is checked whatever layer this process runs. Every child runs
under a deadline and is killed past it: a hang fails the test instead of
hanging the suite.
"""

from __future__ import annotations

import importlib.metadata
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numba
import numpy as np
import pytest

from ebm_ref._jit import ForkedAfterOpenMPError, threading_layer_choice
from ebm_ref.energies import RBM, Ising, MLPEnergy
from ebm_ref.samplers import gibbs, langevin

_CHILD_SECONDS = 120  # generous for a loaded 2-core machine; a hang is far longer


def _rbm():
    rng = np.random.default_rng(7)
    return RBM(0.5 * rng.normal(size=(12, 6)), 0.1 * rng.normal(size=12), 0.1 * rng.normal(size=6))


def _samples():
    """RBM block Gibbs, Ising heat bath and MLP Langevin: the arrays compared across processes."""
    rbm = _rbm()
    v0 = (np.random.default_rng(1).random((300, 12)) < 0.5).astype(float)
    ising = Ising.random(10, 0.5, seed=3)
    s0 = np.where(np.random.default_rng(2).random((200, 10)) < 0.5, -1.0, 1.0)
    mlp = MLPEnergy((3, 8, 5), seed=4)
    x0 = np.random.default_rng(5).normal(size=(150, 3))
    return {
        "rbm": gibbs(rbm, v0, 20, seed=11, thin=5).x,
        "ising": gibbs(Ising.random(10, 0.5, seed=3), s0, 15, seed=12).x,
        "ising_trace": gibbs(ising, s0, 6, seed=13, thin=2).trace,
        "mala": langevin(mlp, x0, 25, 0.05, seed=14, adjust=True).x,
    }


def _assert_same(got, expected):
    assert got.keys() == expected.keys()
    for key in expected:
        assert got[key].dtype == expected[key].dtype, key
        assert np.array_equal(got[key], expected[key]), f"{key}: the child's samples differ from the parent's"


def _fork_safe_layer():
    """Whether the running layer is one Numba documents as fork-safe (else: GNU OpenMP on Linux)."""
    layer = numba.threading_layer()  # raises if no parallel kernel ran yet
    return layer in ("tbb", "workqueue") or not sys.platform.startswith("linux")


def _check_child(outcome, expected):
    """Bit-identical samples from a fork-safe layer, the documented refusal otherwise."""
    kind, value = outcome
    if _fork_safe_layer():
        assert kind == "ok", f"the forked child raised {value}"
        _assert_same(value, expected)
    else:
        assert kind == "error" and value.startswith("ForkedAfterOpenMPError") and "'spawn'" in value, value


def _wait_child(pid, seconds):
    """``os.waitpid`` with a deadline; the child is killed (and the test fails) past it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail(f"the forked child did not finish within {seconds} s (killed)")


def _fork_and_run(fn, seconds=_CHILD_SECONDS):
    """Run ``fn()`` in a child made by ``os.fork``; return ``("ok", result)`` or ``("error", text)``."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            os.close(r)
            payload = pickle.dumps(("ok", fn()))
        except BaseException as e:  # report the error to the parent
            payload = pickle.dumps(("error", f"{type(e).__name__}: {e}"))
        try:
            with os.fdopen(w, "wb") as fh:
                fh.write(payload)
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    chunks = []
    with os.fdopen(r, "rb") as fh:
        # read before waiting: a large payload would block the child's write
        reader = threading.Thread(target=lambda: chunks.append(fh.read()), daemon=True)
        reader.start()
        status = _wait_child(pid, seconds)
        reader.join(5)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, (
        f"the forked child died (wait status {status}; signal "
        f"{os.WTERMSIG(status) if os.WIFSIGNALED(status) else None})"
    )
    return pickle.loads(chunks[0])


def test_os_fork_after_parallel_kernels_samples_bit_identically():
    expected = _samples()  # runs the prange kernels: the layer is started
    _check_child(_fork_and_run(_samples), expected)
    # the parent still works after the fork, and still gives the same bits
    _assert_same(_samples(), expected)


def test_fork_pool_after_parallel_kernels_samples_bit_identically():
    expected = _samples()
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        pending = [pool.apply_async(_samples) for _ in range(2)]
        for p in pending:
            try:  # a hang raises TimeoutError
                outcome = ("ok", p.get(timeout=_CHILD_SECONDS))
            except ForkedAfterOpenMPError as e:
                outcome = ("error", f"{type(e).__name__}: {e}")
            _check_child(outcome, expected)


def _long_gibbs(stop_after):
    """RBM block Gibbs large enough to be inside the sampler for a while."""
    rng = np.random.default_rng(0)
    model = RBM(0.05 * rng.normal(size=(200, 100)), np.zeros(200), np.zeros(100))
    v0 = (rng.random((512, 200)) < 0.5).astype(float)
    stop_after.set()
    return gibbs(model, v0, 400, seed=3).x


def test_fork_while_another_thread_is_in_gibbs_then_child_samples():
    expected = _samples()
    started = threading.Event()
    t = threading.Thread(target=_long_gibbs, args=(started,), daemon=True)
    t.start()
    assert started.wait(60)
    time.sleep(0.3)  # let the other thread get inside the sampler
    assert t.is_alive(), "the other thread finished before the fork: make its run longer"
    try:
        outcome = _fork_and_run(_samples, seconds=30)  # a hang is a failure, never a stuck suite
    finally:
        t.join(_CHILD_SECONDS)
    _check_child(outcome, expected)


def test_four_threads_run_large_block_gibbs_bit_identically():
    rng = np.random.default_rng(21)
    V, H = 784, 500
    model = RBM(0.02 * rng.normal(size=(V, H)), 0.1 * rng.normal(size=V), 0.1 * rng.normal(size=H))
    v0 = (rng.random((300, V)) < 0.5).astype(float)
    seeds = [0, 1, 0, 2]  # two threads share a seed: their results must be equal too
    expected = {s: gibbs(model, v0, 3, seed=s, thin=1) for s in set(seeds)}
    got = [None] * len(seeds)
    barrier = threading.Barrier(len(seeds))

    def work(i):
        barrier.wait()  # start together, so the calls overlap
        got[i] = gibbs(model, v0, 3, seed=seeds[i], thin=1)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(seeds))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(_CHILD_SECONDS)
        assert not t.is_alive(), "a gibbs thread did not finish"
    for i, s in enumerate(seeds):
        assert np.array_equal(got[i].x, expected[s].x), f"thread {i}"
        assert np.array_equal(got[i].trace, expected[s].trace), f"thread {i}"
        assert np.array_equal(got[i].energies, expected[s].energies), f"thread {i}"
    assert not np.array_equal(expected[0].x, expected[1].x)  # different seeds: different chains


def test_four_threads_run_parallel_kernels_at_once():
    """Python threads each launching prange kernels: a thread-safe layer runs them side by side."""
    expected = _samples()
    got = [None] * 4
    barrier = threading.Barrier(4)

    def work(i):
        barrier.wait()
        got[i] = _samples()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(_CHILD_SECONDS)
        assert not t.is_alive(), "a sampler thread did not finish"
    for g in got:
        _assert_same(g, expected)


def test_spawn_child_gives_the_same_bits():
    """'spawn' (a fresh interpreter) works with any layer and must give the parent's bits."""
    expected = _samples()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        got = pool.apply_async(_samples).get(timeout=_CHILD_SECONDS * 2)
    _assert_same(got, expected)


def _tbb_installed():
    try:
        importlib.metadata.distribution("tbb")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def test_tbb_is_selected_when_installed():
    """The dependency is picked up: TBB runs unless the user named a layer or none is installed."""
    _samples()
    choice = threading_layer_choice()
    if "NUMBA_THREADING_LAYER" in os.environ:
        assert choice == "user"
    elif _tbb_installed():
        assert choice == "tbb" and numba.threading_layer() == "tbb"
    else:
        assert choice == "unavailable"


_OMP_CHILD = """
    import multiprocessing, os, sys
    import numba, numpy as np
    from ebm_ref._jit import ForkedAfterOpenMPError, threading_layer_choice
    from ebm_ref.energies import Ising
    from ebm_ref.samplers import gibbs

    model = Ising.random(8, 0.5, seed=1)
    x0 = np.ones((40, 8))
    expected = gibbs(model, x0, 5, seed=2).x
    assert numba.threading_layer() == "omp" and threading_layer_choice() == "user"

    def child():
        try:
            gibbs(model, x0, 5, seed=2)
        except ForkedAfterOpenMPError as e:
            return str(e)
        return "no error"

    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        message = pool.apply_async(child).get(timeout=60)
    assert "'spawn'" in message and "fork()" in message, message
    pid = os.fork()
    if pid == 0:
        os._exit(0 if "'spawn'" in child() else 3)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    # the parent is unaffected
    assert np.array_equal(gibbs(model, x0, 5, seed=2).x, expected)
    print("REFUSED-CLEANLY")
"""


def test_gnu_openmp_child_gets_the_documented_error():
    """Forced onto GNU OpenMP, a forked child raises the error naming 'spawn' instead of dying."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, NUMBA_THREADING_LAYER="omp", PYTHONPATH=os.pathsep.join([root] + sys.path))
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_OMP_CHILD)],
        capture_output=True, text=True, env=env, timeout=_CHILD_SECONDS * 2,
    )
    assert out.returncode == 0 and "REFUSED-CLEANLY" in out.stdout, out.stdout + out.stderr


_STARTED_CHILD = """
    import numba, numpy as np

    @numba.njit(parallel=True)
    def fill(x):
        for i in numba.prange(x.shape[0]):
            x[i] = i

    fill(np.empty(8))  # the user's own parallel code starts a layer first
    layer = numba.threading_layer()
    from ebm_ref._jit import threading_layer_choice
    from ebm_ref.energies import Ising
    from ebm_ref.samplers import gibbs

    gibbs(Ising.random(6, 0.5, seed=1), np.ones((20, 6)), 3, seed=2)
    assert threading_layer_choice() == "started", threading_layer_choice()
    assert numba.threading_layer() == layer  # left as it was
    print("LEFT-ALONE")
"""


def test_a_running_layer_is_left_alone():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    env["PYTHONPATH"] = os.pathsep.join([root] + sys.path)
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_STARTED_CHILD)],
        capture_output=True, text=True, env=env, timeout=_CHILD_SECONDS * 2,
    )
    assert out.returncode == 0 and "LEFT-ALONE" in out.stdout, out.stdout + out.stderr
