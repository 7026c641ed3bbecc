"""Reference files (ebm_ref.reference): exact round trip, first-mismatch
reporting, model rebuilding, and the ``reference`` command line."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from ebm_ref import reference
from ebm_ref.energies import GRBM, RBM, GaussianMixture, Ising, MLPEnergy, StudentT

REPO = pathlib.Path(__file__).resolve().parent.parent


def _models():
    rng = np.random.default_rng(5)
    return {
        "rbm": RBM(rng.standard_normal((6, 3)), rng.standard_normal(6), rng.standard_normal(3)),
        "ising": Ising.random(7, 1.0, seed=2, domain="binary"),
        "grbm": GRBM(rng.standard_normal((3, 2)), rng.standard_normal(3), rng.standard_normal(2), 0.2 * rng.standard_normal(3)),
        "student-t": StudentT(rng.standard_normal(2), 0.2 * rng.standard_normal(2), np.log(4.0) * np.ones(2)),
        "mixture": GaussianMixture(rng.standard_normal(3), rng.standard_normal((3, 2)), 0.1 * rng.standard_normal((3, 2))),
        "mlp": MLPEnergy((2, 5), activation="swish", seed=4),
    }


MODELS = _models()


def _inputs(model, n=6, seed=0):
    rng = np.random.default_rng(seed)
    if model.domain == "binary":
        return rng.integers(0, 2, size=(n, model.n_features)).astype(float)
    if model.domain == "spin":
        return 2.0 * rng.integers(0, 2, size=(n, model.n_features)) - 1.0
    return rng.standard_normal((n, model.n_features))


@pytest.mark.parametrize("key", list(MODELS))
def test_round_trip_is_exact(tmp_path, key):
    model = MODELS[key]
    x = _inputs(model)
    path = reference.save(tmp_path / f"{key}.npz", model, x, seed=3)
    ref = reference.load(path)
    m = ref.manifest
    assert m["model"] == type(model).__name__
    assert m["formula_version"] == reference.FORMULA_VERSION and m["dtype"] == "float64"
    assert m["ebm_ref_version"]
    assert list(ref.params) == list(model.params)
    for k, v in model.params.items():
        np.testing.assert_array_equal(ref.params[k], v)
    np.testing.assert_array_equal(ref.x, x)
    # bit-for-bit: the stored values equal a fresh computation at the stored inputs
    w, v, c = ref.inputs["weights"], ref.inputs["v"], ref.inputs["c"]
    np.testing.assert_array_equal(ref.values["energy"], model.energy(x))
    np.testing.assert_array_equal(ref.values["grad_x"], model.grad_x(x))
    np.testing.assert_array_equal(ref.values["hessian_diag"], model.hessian_diag(x))
    for q, got in (
        ("grad_params", model.grad_params(x, w)),
        ("grad_params_of_grad_x", model.grad_params_of_grad_x(x, v)),
        ("grad_params_of_hessian_diag", model.grad_params_of_hessian_diag(x, c)),
    ):
        assert list(ref.values[q]) == list(got)
        for k in got:
            np.testing.assert_array_equal(ref.values[q][k], got[k])
    # the rebuilt model reproduces the file exactly
    rebuilt = ref.model()
    assert type(rebuilt) is type(model)
    outputs = {
        "energy": rebuilt.energy(x),
        "grad_x": rebuilt.grad_x(x),
        "hessian_diag": rebuilt.hessian_diag(x),
        "grad_params": rebuilt.grad_params(x, w),
        "grad_params_of_grad_x": rebuilt.grad_params_of_grad_x(x, v),
        "grad_params_of_hessian_diag": rebuilt.grad_params_of_hessian_diag(x, c),
    }
    rep = reference.compare(path, outputs, rtol=0.0, atol=1e-300)
    assert rep.passed, str(rep)


def test_log_partition_stored_where_exact(tmp_path):
    from ebm_ref.exact import log_partition

    model = MODELS["rbm"]
    ref = reference.load(reference.save(tmp_path / "lz.npz", model, _inputs(model)))
    assert "log_partition" in ref.manifest["quantities"]
    assert ref.values["log_partition"] == float(log_partition(model))


def test_compare_names_the_first_mismatching_quantity(tmp_path):
    model = MODELS["rbm"]
    path = reference.save(tmp_path / "r.npz", model, _inputs(model))
    ref = reference.load(path)
    outputs = {q: ref.values[q] for q in ref.values}
    assert reference.compare(path, outputs).passed
    bad = dict(outputs)
    bad["hessian_diag"] = outputs["hessian_diag"] * (1 + 1e-6)
    gp = dict(outputs["grad_params_of_grad_x"])
    gp["b_h"] = -gp["b_h"]
    bad["grad_params_of_grad_x"] = gp
    rep = reference.compare(path, bad)
    assert rep.first_mismatch == "hessian_diag"  # the first in file order of the two
    with pytest.raises(AssertionError, match="first mismatching quantity: hessian_diag"):
        rep.assert_ok()
    bad["hessian_diag"] = outputs["hessian_diag"]
    rep = reference.compare(path, bad)
    assert rep.first_mismatch == "grad_params_of_grad_x"
    assert rep.results["grad_params_of_grad_x"][1][0] == "b_h"


def test_compare_partial_shape_and_key_problems(tmp_path):
    model = MODELS["ising"]
    path = reference.save(tmp_path / "i.npz", model, _inputs(model), quantities=("energy", "grad_x", "grad_params"))
    ref = reference.load(path)
    assert ref.manifest["quantities"] == ["energy", "grad_x", "grad_params"]
    assert "v" not in ref.inputs and "c" not in ref.inputs
    rep = reference.compare(path, {"energy": ref.values["energy"]})
    assert rep.passed and rep.not_compared == ["grad_x", "grad_params"]
    rep = reference.compare(path, {"grad_x": ref.values["grad_x"].T})
    assert rep.first_mismatch == "grad_x"
    rep = reference.compare(path, {"grad_params": {"J": ref.values["grad_params"]["J"]}})
    assert rep.first_mismatch == "grad_params"
    rep = reference.compare(path, {"energy": np.full(6, np.inf)})
    assert rep.first_mismatch == "energy"
    with pytest.raises(ValueError, match="does not hold"):
        reference.compare(path, {"hessian_diag": np.zeros((6, 7))})


def test_save_and_load_errors(tmp_path):
    model = MODELS["rbm"]
    with pytest.raises(ValueError, match="`quantities`"):
        reference.save(tmp_path / "x.npz", model, _inputs(model), quantities=("energy", "entropy"))
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not an ebm_ref reference file"):
        reference.load(tmp_path / "other.npz")
    with pytest.raises(ValueError, match="shape"):
        reference.save(tmp_path / "y.npz", model, np.zeros((2, 5)))


def test_manifest_is_json_and_suffix_added(tmp_path):
    model = MODELS["mixture"]
    path = reference.save(tmp_path / "mix", model, _inputs(model))
    assert path.suffix == ".npz" and path.exists()
    with np.load(path) as data:
        manifest = json.loads(str(data["manifest"]))
        assert "fixed/means" in data.files and "fixed/log_scales" in data.files
    assert manifest["fixed_arrays"] == ["means", "log_scales"]
    ref = reference.load(path)
    np.testing.assert_array_equal(ref.model().means, model.means)


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "ebm_ref", "reference", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    "args, cls",
    [(("rbm", "--sizes", "6", "3"), "RBM"), (("ising", "--sizes", "9"), "Ising")],
)
def test_cli_writes_a_loadable_file(tmp_path, args, cls):
    out = tmp_path / "ref.npz"
    proc = _cli(*args, "--seed", "7", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "wrote" in proc.stdout
    ref = reference.load(out)
    assert ref.manifest["model"] == cls and ref.manifest["seed"] == 7
    model = ref.model()
    np.testing.assert_array_equal(ref.values["energy"], model.energy(ref.x))
    if cls == "Ising":
        assert model.n_features == 9 and model.domain == "spin"


def test_cli_is_reproducible_and_rejects_bad_sizes(tmp_path, capsys):
    from ebm_ref.__main__ import main

    # in-process (the subprocess path is covered above)
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    assert main(["reference", "rbm", "--sizes", "4", "2", "--seed", "1", "-o", str(a)]) == 0
    assert main(["reference", "rbm", "--sizes", "4", "2", "--seed", "1", "-o", str(b)]) == 0
    ra, rb = reference.load(a), reference.load(b)
    assert ra.manifest == rb.manifest
    for q in ra.values:
        va, vb = ra.values[q], rb.values[q]
        for k in va if isinstance(va, dict) else [None]:
            np.testing.assert_array_equal(va[k] if k else va, vb[k] if k else vb)
    with pytest.raises(SystemExit) as info:
        main(["reference", "rbm", "--sizes", "4", "-o", str(tmp_path / "c.npz")])
    assert info.value.code == 2
    assert not (tmp_path / "c.npz").exists()
    assert main(["reference", "ising-lattice", "--sizes", "3", "--domain", "binary", "-o", str(tmp_path / "e.npz")]) == 0
    lat = reference.load(tmp_path / "e.npz").model()
    assert lat.domain == "binary" and lat.n_features == 9


def test_skipped_log_partition_is_recorded(tmp_path):
    model = MODELS["mlp"]
    ref = reference.load(reference.save(tmp_path / "m.npz", model, _inputs(model), quantities=("energy", "log_partition")))
    if "log_partition" not in ref.manifest["quantities"]:
        assert "log_partition" in ref.manifest["skipped"]
    else:
        assert ref.manifest["skipped"] == {}
