"""``python -m ebm_ref sweep SPEC``: spec files, built-in tasks, one-line errors, resume."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from ebm_ref import exact, sweep
from ebm_ref.__main__ import main
from ebm_ref.energies import RBM, Ising
from ebm_ref.reference import save
from ebm_ref.sweep import _executors
from ebm_ref.sweep._cli import read_spec
from ebm_ref.sweep.tasks import TASKS, ais_log_z, complete_settings

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture
def models(tmp_path):
    """Two small reference files: an RBM 4 x 3 and a 5-unit binary Ising model."""
    rng = np.random.default_rng(0)
    rbm = RBM(rng.normal(size=(4, 3)), rng.normal(size=4), rng.normal(size=3))
    ising = Ising.random(5, 1.0, seed=1, domain="binary")
    save(tmp_path / "rbm.npz", rbm, rng.integers(0, 2, (2, 4)).astype(float))
    save(tmp_path / "ising.npz", ising, rng.integers(0, 2, (2, 5)).astype(float))
    return {"rbm": (str(tmp_path / "rbm.npz"), rbm), "ising": (str(tmp_path / "ising.npz"), ising)}


def _write(path, text):
    path.write_text(text)
    return str(path)


def _cli(args, capsys):
    rc = main(["sweep", *args])
    return rc, capsys.readouterr()


def test_toml_spec_runs_and_matches_the_task(models, tmp_path, capsys):
    spec = _write(tmp_path / "s.toml", f"""
task = "ais_log_z"
seed = 4
[grid]
model = ["{models['rbm'][0]}", "{models['ising'][0]}"]
method = ["ais", "reverse"]
n_chains = 20
n_betas = 50
""")
    rc, cap = _cli([spec, "--workers", "2", "--out", str(tmp_path / "o")], capsys)
    assert rc == 0, cap.err
    lines = cap.out.strip().splitlines()
    assert lines[0].split()[:3] == ["model", "method", "n_chains"] and len(lines) == 5
    recs = sweep.load(tmp_path / "o")
    assert len(recs) == 4 and all(r.ok for r in recs)
    for r in recs:
        settings = complete_settings("ais_log_z", {"model": r["model"], "method": r["method"],
                                                   "n_chains": 20, "n_betas": 50})
        assert r.settings == settings  # defaults filled in, in the task's order
        want = ais_log_z(settings, sweep.task_seed(4, settings))  # the definition
        assert {k: r[k] for k in want} == want
        model = models["rbm" if r["model"].endswith("rbm.npz") else "ising"][1]
        assert r["log_z_exact"] == exact.log_partition(model)
        assert r["start"] == ("base" if r["method"] == "ais" else "exact")
    # the same spec as JSON with an explicit task list names the same tasks
    jspec = _write(tmp_path / "s.json", json.dumps({"task": "ais_log_z", "seed": 4, "grid": [
        {"model": r["model"], "method": r["method"], "n_betas": 50, "n_chains": 20} for r in recs]}))
    assert read_spec(jspec) == ("ais_log_z", 4, [r.settings for r in recs])
    assert read_spec(spec)[2] == [r.settings for r in recs]  # load() keeps the grid order


def _one_line_error(rc, cap, match):
    assert rc == 2
    assert cap.out == ""
    err = cap.err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith("ebm-ref sweep: error: ")
    assert match in err, err


@pytest.mark.parametrize(
    "text, match",
    [
        ('task = "nope"\n[grid]\nmodel = "m.npz"\n', "unknown task 'nope'; built-in tasks: "),
        ('task = "ais_log_z"\n[grid]\nmodel = "{rbm}"\nn_chain = 3\n', "no setting 'n_chain'"),
        ('task = "ais_log_z"\n[grid]\nmodel = "{rbm}"\nn_chains = "3"\n', "'n_chains' must be int"),
        ('task = "ais_log_z"\n[grid]\nmodel = "{rbm}"\nmethod = "forward"\n', "'method' must be one of"),
        ('task = "ais_log_z"\n[grid]\nn_chains = 3\n', "needs the setting 'model'"),
        ('task = "ais_log_z"\n[grid]\nmodel = "missing.npz"\n', "model file 'missing.npz' not found"),
        ('task = "ais_log_z"\n[grid]\nmodel = "{notref}"\n', "is not a reference file"),
        ('task = "ais_log_z"\nseeds = 1\n[grid]\nmodel = "{rbm}"\n', "unknown key 'seeds'"),
        ('task = "ais_log_z"\nseed = -1\n[grid]\nmodel = "{rbm}"\n', "seed must be a non-negative integer"),
        ('task = "ais_log_z"\ngrid = 3\n', "grid must be a table of lists"),
        ('task = "ais_log_z"\n[grid]\nmodel = []\n', "is empty"),
        ('task = "ais_log_z"\n[grid\n', "not valid TOML"),
    ],
)
def test_spec_mistakes_exit_2_with_one_line(text, match, models, tmp_path, capsys):
    notref = tmp_path / "notref.npz"
    np.savez(notref, a=np.zeros(2))
    spec = _write(tmp_path / "s.toml", text.replace("{rbm}", models["rbm"][0]).replace("{notref}", str(notref)))
    rc, cap = _cli([spec, "--out", str(tmp_path / "o")], capsys)
    _one_line_error(rc, cap, match)
    assert not (tmp_path / "o").exists()  # nothing written


def test_option_and_file_mistakes_exit_2(models, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(_executors, "CONNECT_TIMEOUT", "1s")
    good = _write(tmp_path / "s.toml", f'task = "ais_log_z"\n[grid]\nmodel = "{models["rbm"][0]}"\nn_betas = 20\n')
    _one_line_error(*_cli([str(tmp_path / "absent.toml")], capsys), "cannot read spec file")
    _one_line_error(*_cli([_write(tmp_path / "s.yaml", "task: x")], capsys), "must end in .toml or .json")
    _one_line_error(*_cli([_write(tmp_path / "b.json", "{")], capsys), "not valid JSON")
    _one_line_error(*_cli([good, "--workers", "0"], capsys), "--workers must be >= 1")
    _one_line_error(*_cli([good, "--resume"], capsys), "--resume needs --out")
    _one_line_error(*_cli([good, "--executor", "tcp://127.0.0.1:9"], capsys), "cannot reach the Dask scheduler")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("x")
    _one_line_error(*_cli([good, "--out", str(foreign)], capsys), "without a sweep manifest")
    assert [p.name for p in foreign.iterdir()] == ["keep.txt"]


def test_failed_task_exit_1(models, tmp_path, capsys):
    bad = tmp_path / "bad.npz"  # a reference file of a model AIS does not support
    from ebm_ref.energies import StudentT

    save(bad, StudentT(np.zeros(2), np.zeros(2), np.zeros(2)), np.zeros((2, 2)))
    spec = _write(tmp_path / "s.toml", f'task = "ais_log_z"\n[grid]\nmodel = ["{bad}", "{models["rbm"][0]}"]\n'
                  'n_betas = 20\nn_chains = 5\n')
    rc, cap = _cli([spec, "--workers", "1"], capsys)
    assert rc == 1
    assert "2 task(s), 1 failed" in cap.err and "AIS supports RBM, GRBM and Ising" in cap.err
    assert "FAILED" in cap.out


def test_builtin_tasks_declare_their_settings():
    for name, spec in TASKS.items():
        assert callable(spec.fn) and spec.summary and spec.settings
        assert spec.fn.__module__ == "ebm_ref.sweep.tasks" and spec.fn.__name__ == name


@pytest.mark.slow
def test_killed_driver_then_resume(models, tmp_path):
    """Also the end-to-end check of ``python -m ebm_ref sweep`` in a fresh process."""
    out = tmp_path / "o"
    spec = _write(tmp_path / "s.toml", f"""
task = "ais_log_z"
seed = 1
[grid]
model = ["{models['rbm'][0]}", "{models['ising'][0]}"]
method = ["ais", "reverse"]
n_chains = [100, 101]
n_betas = 20000
""")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "ebm_ref", "sweep", spec, "--workers", "2", "--out", str(out)]
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(list((out / "tasks").glob("*.json"))) < 2:
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # driver and workers
    proc.wait()
    proc.stderr.close()
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in (out / "tasks").glob("*.json")}
    assert 2 <= len(before) < 8
    res = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in (out / "tasks").glob("*.json")}
    assert len(after) == 8
    for name, state in before.items():  # finished tasks were not run or written again
        assert after[name] == state
    recs = sweep.load(out)
    assert all(r.ok for r in recs)
    # the same records as one uninterrupted run
    fresh = sweep.run(ais_log_z, [r.settings for r in recs], 1, executor=ThreadPoolExecutor(2))
    assert sweep.table(recs).tobytes() == sweep.table(fresh).tobytes()


# ------------------------------------------------------------------ ising_2d
# Each z below is (estimate - exact) / stderr of a fixed-seed run. A correct
# sampler and error bar give |z| > 3.89 with probability 1e-4 per assertion
# (two-sided normal, the suite's alpha); 6 assertions: family rate <= 6e-4.
Z = 3.89


def test_ising_2d_spec_all_samplers_agree_with_exact(tmp_path, capsys):
    spec = _write(tmp_path / "s.toml", """
task = "ising_2d"
seed = 2
[grid]
beta = 0.3
L = 4
sampler = ["gibbs", "swendsen_wang", "wolff"]
n_chains = 8
n_burn = 200
n_steps = 3000
""")
    rc, cap = _cli([spec, "--workers", "2", "--out", str(tmp_path / "o")], capsys)
    assert rc == 0, cap.err
    recs = sweep.load(tmp_path / "o")
    assert [r["sampler"] for r in recs] == ["gibbs", "swendsen_wang", "wolff"]
    e_exact = exact.ising_energy_2d(4, 0.3)
    c_exact = exact.ising_specific_heat_2d(4, 0.3)
    for r in recs:
        assert r.ok and r["n_saved"] == 3000
        assert r["energy_exact"] == e_exact and r["specific_heat_exact"] == c_exact
        assert abs(r["energy_z"]) < Z and abs(r["specific_heat_z"]) < Z, r
        assert r["energy_z"] == (r["energy"] - e_exact) / r["energy_err"]
        assert 0 < r["binder"] < 2 / 3 and 0 < r["abs_m"] < 1  # U4 between its disordered and ordered limits
    # negative control: the same estimates against the exact energy at a
    # slightly wrong temperature (beta 0.33, a planted off-by-10% bug) fail
    wrong = exact.ising_energy_2d(4, 0.33)
    assert all(abs(r["energy"] - wrong) / r["energy_err"] > Z for r in recs)


def test_ising_2d_segments_and_settings(monkeypatch):
    from ebm_ref.sweep import tasks

    # traces of at most 8 chains x 16 sites x 10 states: 5 segments of 10 saved states
    monkeypatch.setattr(tasks, "_TRACE_ENTRIES", 8 * 16 * 10)
    s = complete_settings("ising_2d", {"beta": 0.3, "L": 4, "n_steps": 1000, "thin": 20, "n_burn": 100})
    assert s == {"beta": 0.3, "L": 4, "sampler": "gibbs", "n_chains": 8, "n_burn": 100, "n_steps": 1000, "thin": 20}
    r = tasks.ising_2d(s, sweep.task_seed(0, s))
    assert r["n_saved"] == 50
    assert abs(r["energy_z"]) < Z  # alpha 1e-4 as above
    with pytest.raises(ValueError, match="n_steps // thin must be >= 4"):
        tasks._check_ising_settings([{**s, "n_steps": 30}])
    with pytest.raises(ValueError, match="L must be >= 2"):
        tasks._check_ising_settings([{**s, "L": 1}])
    with pytest.raises(TypeError, match="'L' must be int"):
        complete_settings("ising_2d", {"beta": 0.3, "L": 4.0})
    assert complete_settings("ising_2d", {"beta": 1, "L": 4})["beta"] == 1.0  # int given for a float


@pytest.mark.slow
def test_executor_address_runs_on_a_dask_cluster(tmp_path, capsys, monkeypatch):
    distributed = pytest.importorskip("distributed")  # CI installs it; a skip fails CI
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    spec = _write(tmp_path / "s.json", json.dumps({"task": "ising_2d", "seed": 5, "grid": {
        "beta": [0.3], "L": [4], "sampler": ["wolff", "swendsen_wang"], "n_chains": 4, "n_burn": 50,
        "n_steps": 400}}))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as lc:
        rc, cap = _cli([spec, "--executor", lc.scheduler_address, "--out", str(tmp_path / "d")], capsys)
    assert rc == 0, cap.err
    rc, cap = _cli([spec, "--executor", "local", "--workers", "2", "--out", str(tmp_path / "l")], capsys)
    assert rc == 0, cap.err
    on_dask, local = sweep.load(tmp_path / "d"), sweep.load(tmp_path / "l")
    assert len(on_dask) == 2 and all(r.ok for r in on_dask)
    assert sweep.table(on_dask).tobytes() == sweep.table(local).tobytes()
