"""ebm_ref.sweep: reproducibility across executors, durability, faults, errors.

The task functions are top-level here: local worker processes (spawn) get
this process's ``sys.path`` and import them from this module; the Dask
workers get the same path through ``PYTHONPATH``.
"""

import json
import os
import pathlib
import random
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from types import SimpleNamespace
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from ebm_ref import sweep
from ebm_ref.sweep import _executors, _runner

TESTS = pathlib.Path(__file__).resolve().parent
ROOT = TESTS.parent
LOG = "EBM_REF_SWEEP_TEST_DIR"  # where tasks leave one marker file per call


# ------------------------------------------------------------------ tasks
def _mark(settings, what="call"):
    d = os.environ.get(LOG)
    if d:
        name = f"{sweep.task_id(settings)}.{what}.{os.getpid()}.{uuid.uuid4().hex}"
        pathlib.Path(d, name).write_text("")


def _thread_counts():
    import numba

    from ebm_ref._threads import openblas_thread_controls

    controls = openblas_thread_controls()
    return numba.get_num_threads(), (controls[0]() if controls else -1), os.environ.get("OMP_NUM_THREADS", "")


def gibbs_task(settings, seed):
    """A Numba sampler run: results go through the per-chain streams and threads."""
    from ebm_ref.energies import Ising
    from ebm_ref.samplers import gibbs

    _mark(settings)
    _mark(settings, "threads_{}_{}_{}".format(*_thread_counts()))
    if settings.get("plain"):  # NumPy only: no Numba kernels to load (fast worker start)
        g0 = np.random.default_rng(seed)
        x = g0.choice([-1.0, 1.0], size=(settings["chains"], 6))
        res = SimpleNamespace(x=x, energies=x.sum(axis=1))
    else:
        model = Ising.random(6, settings["scale"], seed=3)
        x0 = np.ones((settings["chains"], 6))
        res = gibbs(model, x0, 20, seed)
    if settings.get("sleep"):
        time.sleep(settings["sleep"])
    if settings.get("die"):
        # the first attempt kills its own worker process (a lost worker);
        # settings["die"] is the folder of the flag file that says it did
        flag = pathlib.Path(settings["die"], f"died-{sweep.task_id(settings)}")
        try:
            fd = os.open(flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            pass
        else:
            os.close(fd)
            os.kill(os.getpid(), signal.SIGKILL)
    g = np.random.default_rng(np.random.SeedSequence(seed.entropy, spawn_key=tuple(seed.spawn_key) + (9,)))
    return {
        "energy": float(res.energies.mean()),
        "x": res.x,
        "draw": int(g.integers(2**31)),
        "positive": bool(res.energies.mean() > 0),
        "tag": f"s{settings['scale']}",
    }


def failing_task(settings, seed):
    if settings["i"] == 2:
        raise RuntimeError("planted failure in task 2")
    if settings["i"] == 3:
        return [1, 2]  # not a dict
    if settings["i"] == 4:
        return {"i": 1.0}  # result named like a setting
    return {"value": settings["i"] * 2.0}


def _calls(logdir, settings, what="call"):
    return len(list(pathlib.Path(logdir).glob(f"{sweep.task_id(settings)}.{what}.*")))


GRID = {"scale": [0.5, 1.0, 2.0], "chains": [3, 5]}


def _direct(settings, seed=0):
    """What a task must return: ``fn`` called here with the documented seed."""
    return gibbs_task(dict(settings), sweep.task_seed(seed, settings))


def _same_table(a, b):
    ta = sweep.table(sorted(a, key=lambda r: r.task))
    tb = sweep.table(sorted(b, key=lambda r: r.task))
    assert ta.dtype == tb.dtype
    assert ta.tobytes() == tb.tobytes()


@pytest.fixture
def logdir(tmp_path, monkeypatch):
    d = tmp_path / "calls"
    d.mkdir()
    monkeypatch.setenv(LOG, str(d))
    return d


# ------------------------------------------------------------- seeds, keys
def test_canonical_encoding_and_task_seed():
    # derived by hand from the documented encoding: sorted keys, type tags, float.hex
    assert sweep.canonical({"b": 1, "a": "x"}) == b'{"a":["s","x"],"b":["i","1"]}'
    assert sweep.canonical({"f": 0.5, "t": True, "n": None, "l": (1, 2.0)}) == (
        b'{"f":["f","0x1.0000000000000p-1"],"l":["l",[["i","1"],["f","0x1.0000000000000p+1"]]],'
        b'"n":["n"],"t":["b",true]}'
    )
    s = {"beta": 0.4, "L": 8, "sampler": "wolff"}
    ss = sweep.task_seed(7, s)
    assert ss.entropy == 7 and len(ss.spawn_key) == 4
    # key order and NumPy scalar types do not matter ...
    same = sweep.task_seed(np.random.SeedSequence(7), {"sampler": "wolff", "L": np.int64(8), "beta": np.float64(0.4)})
    assert same.spawn_key == ss.spawn_key
    assert np.array_equal(same.generate_state(4), ss.generate_state(4))
    # ... but the value, its type and the sweep seed do
    assert sweep.task_seed(7, {**s, "L": 8.0}).spawn_key != ss.spawn_key
    assert sweep.task_seed(7, {**s, "beta": 0.40000000000000013}).spawn_key != ss.spawn_key
    assert sweep.task_seed(8, s).generate_state(2).tolist() != ss.generate_state(2).tolist()
    # a SeedSequence with a spawn key keeps it as the prefix
    child = sweep.task_seed(np.random.SeedSequence(7, spawn_key=(5,)), s)
    assert child.spawn_key[0] == 5 and child.spawn_key[1:] == ss.spawn_key


def test_grid_expansion_order():
    tasks = _runner.expand_grid({"a": [1, 2], "b": ["x", "y", "z"]})
    assert [(t["a"], t["b"]) for t in tasks] == [(1, "x"), (1, "y"), (1, "z"), (2, "x"), (2, "y"), (2, "z")]
    assert _runner.expand_grid([{"a": np.int64(3)}]) == [{"a": 3}]
    assert type(_runner.expand_grid({"a": np.array([1.5])})[0]["a"]) is float


# -------------------------------------------- same results on every executor
@pytest.fixture(scope="module")
def local_two():
    """GRID on the local pool with 2 workers (shared by two tests: pools cost seconds)."""
    return sweep.run(gibbs_task, GRID, 0, workers=2)


def _threads_seen(logdir):
    out = set()
    for p in logdir.glob("*.threads_*"):
        numba_n, blas_n, omp = p.name.split(".threads_")[1].split(".")[0].split("_")
        out.add((int(numba_n), int(blas_n), omp))
    return out


def test_local_pool_workers_order_and_threads_bit_identical(local_two, logdir):
    one = sweep.run(gibbs_task, GRID, 0, workers=1)
    # the thread rule: max(1, cores // workers) Numba and OpenBLAS threads per worker
    cores = _runner.available_cores()
    assert _threads_seen(logdir) <= {(cores, cores, str(cores)), (cores, -1, str(cores))}
    assert len(_threads_seen(logdir)) == 1
    # grid order, settings first, then results
    assert [(r["scale"], r["chains"]) for r in one] == [(a, b) for a in GRID["scale"] for b in GRID["chains"]]
    assert list(one[0])[:2] == ["scale", "chains"] and all(r.ok for r in one)
    for r in one:  # each record is fn called with the documented seed
        want = _direct(r.settings)
        assert r.results.keys() == want.keys()
        for k in want:
            assert np.array_equal(r[k], want[k]) and type(r[k]) is type(want[k])
    two = local_two
    shuffled = _runner.expand_grid(GRID)
    random.Random(1).shuffle(shuffled)
    with ThreadPoolExecutor(2) as ex:
        threaded = sweep.run(gibbs_task, shuffled, 0, executor=ex)
    _same_table(one, two)
    _same_table(one, threaded)
    assert [r.task for r in threaded] == [sweep.task_id(s) for s in shuffled]
    other_seed = sweep.run(gibbs_task, GRID, 1, executor=ThreadPoolExecutor(1))
    assert sweep.table(other_seed).tobytes() != sweep.table(one).tobytes()


def test_shuffle_comparison_catches_position_seeding():
    # negative control for the shuffled-order comparison above: a runner that
    # seeded tasks by their position (a planted bug) gives other draws after a shuffle
    tasks = [{**s, "plain": True} for s in _runner.expand_grid(GRID)]
    shuffled = list(tasks)
    random.Random(1).shuffle(shuffled)

    def by_position(order):
        return {sweep.task_id(s): gibbs_task(s, np.random.SeedSequence(0, spawn_key=(i,)))["draw"]
                for i, s in enumerate(order)}

    a, b = by_position(tasks), by_position(shuffled)
    moved = {sweep.task_id(s) for s, t in zip(tasks, shuffled) if s != t}
    assert moved and all(a[k] != b[k] for k in moved)  # every moved task drew other numbers
    # the real runner on the same two orders: identical
    with ThreadPoolExecutor(2) as ex:
        _same_table(sweep.run(gibbs_task, tasks, 0, executor=ex), sweep.run(gibbs_task, shuffled, 0, executor=ex))


@pytest.fixture(scope="module")
def cluster():
    """A real distributed.LocalCluster: a scheduler and 2 worker processes."""
    distributed = pytest.importorskip("distributed")  # CI installs it; a skip fails CI
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(TESTS)] + ([old] if old else []))
    try:
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=None, silence_logs=40) as lc:
            yield lc
    finally:
        if old is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = old


def test_dask_local_cluster_bit_identical(cluster, local_two, tmp_path):
    import distributed

    local = local_two
    by_address = sweep.run(gibbs_task, GRID, 0, executor=cluster.scheduler_address, out=tmp_path / "o")
    with distributed.Client(cluster, set_as_default=False) as client:
        by_client = sweep.run(gibbs_task, GRID, 0, executor=client, workers=3)
        by_executor = sweep.run(gibbs_task, GRID, 0, executor=client.get_executor())
        pids = set(client.run(os.getpid).values())
    assert {r.task for r in by_address} == {r.task for r in local}
    _same_table(local, by_address)
    _same_table(local, by_client)
    _same_table(local, by_executor)
    _same_table(local, sweep.load(tmp_path / "o"))
    assert os.getpid() not in pids  # the workers really are other processes


@pytest.mark.slow
def test_dask_worker_killed_mid_sweep(cluster, tmp_path):
    logdir = tmp_path
    grid = [{"scale": 1.0, "chains": 2, "die": str(logdir) if i == 1 else "", "k": i} for i in range(4)]
    recs = sweep.run(gibbs_task, grid, 0, executor=cluster.scheduler_address, retries=1)
    assert [r["k"] for r in recs] == [0, 1, 2, 3] and all(r.ok for r in recs)
    assert (logdir / f"died-{sweep.task_id(grid[1])}").exists()  # the worker did die
    for s, r in zip(grid, recs):
        want = _direct(s)
        assert r["draw"] == want["draw"] and np.array_equal(r["x"], want["x"])


# ------------------------------------------------------------ fault tolerance
def test_local_worker_killed_mid_sweep(logdir, tmp_path):
    grid = [{"scale": 1.0, "chains": 2, "die": str(logdir) if i == 2 else "", "k": i, "plain": True}
            for i in range(5)]
    recs = sweep.run(gibbs_task, grid, 0, workers=2, retries=1, out=tmp_path / "o")
    assert [r["k"] for r in recs] == list(range(5)) and all(r.ok for r in recs)
    assert (logdir / f"died-{sweep.task_id(grid[2])}").exists()
    assert recs[2].attempts >= 2
    want = max(1, _runner.available_cores() // 2)  # the thread rule with 2 workers
    assert _threads_seen(logdir) <= {(want, want, str(want)), (want, -1, str(want))}  # -1: no OpenBLAS
    assert len(_threads_seen(logdir)) == 1
    files = sorted(p.name for p in (tmp_path / "o" / "tasks").glob("*.json"))
    assert files == sorted(f"{sweep.task_id(s)}.json" for s in grid)  # one record each
    _same_table(recs, sweep.load(tmp_path / "o"))
    for s, r in zip(grid, recs):
        assert r["draw"] == _direct(s)["draw"]


def test_lost_task_without_retries_is_recorded(logdir):
    grid = [{"scale": 1.0, "chains": 2, "die": str(logdir) if i == 0 else "", "k": i, "plain": True}
            for i in range(3)]
    recs = sweep.run(gibbs_task, grid, 0, workers=1, retries=0)
    assert not recs[0].ok and "lost with its worker" in recs[0].error
    assert recs[1].ok and recs[2].ok  # the pool was rebuilt for the others


_DRIVER = """
import sys
from ebm_ref import sweep
import test_sweep
grid = [{"scale": 1.0, "chains": 2, "sleep": 0.25, "k": i, "plain": True} for i in range(8)]
sweep.run(test_sweep.gibbs_task, grid, 0, workers=2, out=sys.argv[1])
"""


@pytest.mark.slow
def test_driver_killed_then_resume(logdir, tmp_path):
    out = tmp_path / "o"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(TESTS)]))
    proc = subprocess.Popen([sys.executable, "-c", _DRIVER, str(out)], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 90
    while len(list((out / "tasks").glob("*.json"))) < 2:
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its workers, at once
    proc.wait()
    proc.stderr.close()
    grid = [{"scale": 1.0, "chains": 2, "sleep": 0.25, "k": i, "plain": True} for i in range(8)]
    finished = {p.stem: p.read_bytes() for p in (out / "tasks").glob("*.json")}
    assert 2 <= len(finished) < 8
    recs = sweep.run(gibbs_task, grid, 0, workers=2, out=out, resume=True)
    assert all(r.ok for r in recs) and [r["k"] for r in recs] == list(range(8))
    for s in grid:
        tid = sweep.task_id(s)
        if tid in finished:  # not recomputed: one call in all, record untouched
            assert _calls(logdir, s) == 1
            assert (out / "tasks" / f"{tid}.json").read_bytes() == finished[tid]
        else:
            assert _calls(logdir, s) >= 1
    fresh = sweep.run(gibbs_task, grid, 0, executor=ThreadPoolExecutor(2))
    _same_table(recs, fresh)


def test_task_errors_are_recorded_and_rerun_on_resume(tmp_path):
    out = tmp_path / "o"
    recs = sweep.run(failing_task, {"i": [0, 1, 2, 3, 4]}, 0, executor=ThreadPoolExecutor(2), out=out)
    assert [r.ok for r in recs] == [True, True, False, False, False]
    assert "RuntimeError: planted failure in task 2" in recs[2].error
    assert "must return a dict" in recs[3].error and "name of a setting" in recs[4].error
    assert recs[2] == {"i": 2} and recs[2].results == {}
    meta = json.loads((out / "tasks" / f"{recs[2].task}.json").read_text())
    assert meta["status"] == "error" and meta["settings"] == {"i": 2} and "planted failure" in meta["error"]
    t = sweep.table(recs)
    assert t["ok"].tolist() == [True, True, False, False, False]
    assert t["value"][:2].tolist() == [0.0, 2.0] and np.isnan(t["value"][2:]).all()
    # resume keeps the finished ones and runs the failed ones again
    again = sweep.run(failing_task, {"i": [0, 1, 2, 3, 4]}, 0, executor=ThreadPoolExecutor(1), out=out,
                      resume=True)
    assert [r.ok for r in again] == [True, True, False, False, False]
    assert [r.seconds for r in again[:2]] == [r.seconds for r in recs[:2]]  # read back, not rerun


# ---------------------------------------------------------------- durability
def _tree(path):
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_out_folder_contents_and_foreign_folders(tmp_path):
    out = tmp_path / "o"
    recs = sweep.run(gibbs_task, {"scale": [1.0], "chains": [2, 3]}, 5, executor=ThreadPoolExecutor(1), out=out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == "ebm_ref.sweep/1" and manifest["fn"] == "test_sweep:gibbs_task"
    assert manifest["seed"] == {"entropy": 5, "spawn_key": []}
    assert set(manifest["tasks"]) == {r.task for r in recs}
    assert manifest["ebm_ref_version"] and manifest["runs"][0]["environment"]["numpy"] == np.__version__
    for r in recs:  # arrays in .npz (no pickles), scalars in JSON
        with np.load(out / "tasks" / f"{r.task}.npz", allow_pickle=False) as z:
            assert np.array_equal(z["x"], r["x"])
    assert not list(out.rglob("*.tmp"))
    before = _tree(out)
    cases = [
        (dict(seed=6), "different sweep"),  # another seed
        (dict(seed=5, fn=failing_task), "different sweep"),  # another function
        (dict(seed=5), "already holds 2 finished"),  # same sweep without resume
    ]
    for kw, msg in cases:
        fn = kw.pop("fn", gibbs_task)
        with pytest.raises(ValueError, match=msg) as err:
            sweep.run(fn, {"scale": [1.0], "chains": [2, 3]}, kw["seed"], executor=ThreadPoolExecutor(1), out=out)
        assert "\n" not in str(err.value)
        assert _tree(out) == before  # nothing written over
    other = tmp_path / "other"
    other.mkdir()
    (other / "data.txt").write_text("mine")
    with pytest.raises(ValueError, match="non-empty folder without a sweep manifest"):
        sweep.run(gibbs_task, GRID, 0, out=other)
    assert _tree(other) == {"data.txt": b"mine"}
    (other / "manifest.json").write_text("{}")
    with pytest.raises(ValueError, match="not an ebm_ref sweep"):
        sweep.run(gibbs_task, GRID, 0, out=other, resume=True)
    # a larger grid resumes into the same folder: only the new task runs
    more = sweep.run(gibbs_task, {"scale": [1.0], "chains": [2, 3, 4]}, 5, executor=ThreadPoolExecutor(1),
                     out=out, resume=True)
    assert [r.seconds for r in more[:2]] == [r.seconds for r in recs]
    assert len(json.loads((out / "manifest.json").read_text())["runs"]) == 2


def test_nonfinite_scalars_round_trip(tmp_path):
    recs = sweep.run(nonfinite_task, {"i": [0]}, 0, executor=ThreadPoolExecutor(1), out=tmp_path / "o")
    back = sweep.load(tmp_path / "o")
    text = (tmp_path / "o" / "tasks" / f"{recs[0].task}.json").read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    for k in ("nan", "inf", "minf", "tiny", "n", "flag"):
        got, want = back[0][k], recs[0][k]
        assert type(got) is type(want) and (got == want or (np.isnan(got) and np.isnan(want)))


def nonfinite_task(settings, seed):
    return {"nan": float("nan"), "inf": np.inf, "minf": -np.inf, "tiny": 5e-324, "n": 2**62, "flag": np.True_}


# ------------------------------------------------------------------ the table
def test_table_types_and_missing_values():
    recs = [
        _runner.Record({"a": 1, "s": "xy"}, {"v": 1, "w": np.arange(3.0), "z": np.arange(2), "b": True}),
        _runner.Record({"a": 2, "s": "x"}, {"v": 2.5, "w": np.ones(3), "z": np.arange(3), "b": False}),
        _runner.Record({"a": 3, "s": "x"}, {}, error="Traceback"),
    ]
    t = sweep.table(recs)
    assert t.dtype.names == ("a", "s", "v", "w", "b", "ok")  # z: shapes differ, left out
    assert t["a"].dtype == np.int64 and t["s"].dtype == np.dtype("U2")
    assert t["v"].dtype == np.float64 and t["v"][:2].tolist() == [1.0, 2.5] and np.isnan(t["v"][2])
    assert t["w"].shape == (3, 3) and np.isnan(t["w"][2]).all()
    assert t["b"].dtype == np.float64  # bool with a missing entry
    assert t["ok"].tolist() == [True, True, False]
    assert sweep.table([{"a": True}])["a"].dtype == np.bool_
    with pytest.raises(ValueError, match="'ok'"):
        sweep.table([{"ok": 1}])
    with pytest.raises(ValueError, match="'m'"):
        sweep.table([{"m": 1}, {"m": "x"}])
    with pytest.raises(TypeError, match="`records`"):
        sweep.table("abc")


# ------------------------------------------------------------- progress bar
def test_progress_forced_on_and_off(capfd):
    sweep.run(failing_task, {"i": [0, 1]}, 0, executor=ThreadPoolExecutor(1), progress=True)
    err = capfd.readouterr().err
    assert "sweep [" in err and "2/2" in err
    sweep.run(failing_task, {"i": [0, 1]}, 0, executor=ThreadPoolExecutor(1), progress=False)
    assert capfd.readouterr().err == ""
    sweep.run(failing_task, {"i": [0, 1]}, 0, executor=ThreadPoolExecutor(1))  # stderr is not a terminal
    assert capfd.readouterr().err == ""


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(fn=lambda s, seed: {}), TypeError, "`fn` must be a top-level function"),
        (dict(fn=3), TypeError, "`fn` must be a callable"),
        (dict(grid=[]), ValueError, "`grid` has no tasks"),
        (dict(grid={"a": []}), ValueError, r"`grid\['a'\]` is empty"),
        (dict(grid={"a": 3}), TypeError, r"`grid\['a'\]` must be a list"),
        (dict(grid={"a": "abc"}), TypeError, r"`grid\['a'\]` must be a list"),
        (dict(grid={"a": np.float64(3.0)}), TypeError, r"`grid\['a'\]` must be a list"),
        (dict(grid={"a": np.zeros((2, 2))}), TypeError, r"`grid\['a'\]` must be a list"),
        (dict(grid="a"), TypeError, "`grid` must be a dict"),
        (dict(grid=[{"a": 1}, {"a": np.int64(1)}]), ValueError, "same settings"),
        (dict(grid={"a": [float("nan")]}), ValueError, "NaN"),
        (dict(grid={"a": [{"x": 1}]}), TypeError, "must be a bool, int, float, str"),
        (dict(grid=[{1: 2}]), TypeError, "setting names must be str"),
        (dict(seed=-1), ValueError, "`seed`"),
        (dict(seed="0"), TypeError, "`seed`"),
        (dict(workers=0), ValueError, "`workers`"),
        (dict(retries=-1), ValueError, "`retries`"),
        (dict(resume=True), ValueError, "needs `out`"),
        (dict(resume=1, out="x"), TypeError, "`resume`"),
        (dict(progress="yes"), TypeError, "`progress`"),
        (dict(executor=42), TypeError, "`executor` must be"),
        (dict(out=3), TypeError, "`out` must be a folder"),
    ],
)
def test_bad_arguments(kwargs, exc, match, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = {"fn": failing_task, "grid": {"i": [0]}, "seed": 0}
    args.update(kwargs)
    fn, grid, seed = args.pop("fn"), args.pop("grid"), args.pop("seed")
    with pytest.raises(exc, match=match) as err:
        sweep.run(fn, grid, seed, **args)
    assert "\n" not in str(err.value)
    assert not any(tmp_path.iterdir())  # nothing written


def test_unreachable_scheduler(monkeypatch, tmp_path):
    monkeypatch.setattr(_executors, "CONNECT_TIMEOUT", "1s")
    with pytest.raises(ConnectionError, match="cannot reach the Dask scheduler") as err:
        sweep.run(failing_task, {"i": [0]}, 0, executor="tcp://127.0.0.1:9", out=tmp_path / "o")
    assert "\n" not in str(err.value)


def threads_task(settings, seed):
    import numba

    from ebm_ref._threads import openblas_thread_controls

    controls = openblas_thread_controls()
    return {"numba": numba.get_num_threads(), "blas": controls[0]() if controls else -1,
            "omp_env": os.environ.get("OMP_NUM_THREADS", "")}


def test_other_executors_run_tasks_single_threaded():
    # the local pool's rule is checked with workers=1 in the reproducibility
    # test and workers=2 in the worker-death test (pool starts cost seconds)
    with ThreadPoolExecutor(1) as ex:  # any other executor: one thread, restored afterwards
        import numba

        before = numba.get_num_threads()
        recs = sweep.run(threads_task, {"k": [0]}, 0, executor=ex)
        assert recs[0]["numba"] == 1
        assert ex.submit(numba.get_num_threads).result() == before
