"""User mistakes on the command line end like argparse's own: one line
``ebm-ref ...: error: ...`` on stderr, exit status 2, no traceback, and no
file written; every sub-command's ``--help`` lists its choices and every
option with its default.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ebm_ref.__main__ import main
from ebm_ref.bench import available_suites
from ebm_ref.reference import QUANTITIES
from ebm_ref.sweep.tasks import TASKS


def _run(argv, capsys):
    """``(exit status, stderr)`` of ``main(argv)`` run in-process."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def _assert_usage_error(code, err, *fragments):
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1 and lines[0].startswith("ebm-ref"), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


# (argv after "reference" with OUT standing for the output path, fragments of the error line)
REFERENCE_CASES = {
    "negative_size": (["rbm", "--sizes", "6", "-3"], ["--sizes", "'-3'"]),
    "zero_size": (["rbm", "--sizes", "6", "0"], ["--sizes", "'0'"]),
    "size_not_a_number": (["rbm", "--sizes", "6", "x"], ["--sizes", "'x'"]),
    "too_few_sizes": (["rbm", "--sizes", "6"], ["--sizes", "V H"]),
    "too_many_sizes": (["rbm", "--sizes", "6", "3", "2"], ["--sizes"]),
    "mlp_without_hidden": (["mlp", "--sizes", "4"], ["two or more"]),
    "latent_with_sizes": (["latent", "--sizes", "3"], ["--sizes"]),
    "lattice_too_small": (["ising-lattice", "--sizes", "1"], ["`L`"]),
    "unknown_model": (["boltzmann", "--sizes", "3"], ["MODEL", "boltzmann"]),
    "unknown_quantity": (["rbm", "--sizes", "4", "2", "--quantities", "energy", "entropy"], ["--quantities", "entropy"]),
    "n_zero": (["rbm", "--sizes", "4", "2", "--n", "0"], ["--n", "'0'"]),
    "n_negative": (["rbm", "--sizes", "4", "2", "--n", "-1"], ["--n"]),
    "n_fraction": (["rbm", "--sizes", "4", "2", "--n", "2.5"], ["--n", "'2.5'"]),
    "seed_negative": (["rbm", "--sizes", "4", "2", "--seed", "-1"], ["--seed"]),
    "scale_nan": (["rbm", "--sizes", "4", "2", "--scale", "nan"], ["--scale"]),
    "scale_inf": (["rbm", "--sizes", "4", "2", "--scale", "inf"], ["--scale"]),
    "scale_text": (["rbm", "--sizes", "4", "2", "--scale", "big"], ["--scale"]),
    "unknown_domain": (["ising", "--sizes", "4", "--domain", "ternary"], ["--domain", "ternary"]),
    "unknown_option": (["rbm", "--sizes", "4", "2", "--sise", "3"], ["--sise"]),
}


@pytest.mark.parametrize("case", sorted(REFERENCE_CASES))
def test_reference_usage_errors(tmp_path, capsys, case):
    argv, fragments = REFERENCE_CASES[case]
    out = tmp_path / "ref.npz"
    code, err = _run(["reference", *argv, "-o", str(out)], capsys)
    _assert_usage_error(code, err, *fragments)
    assert not out.exists() and os.listdir(tmp_path) == []


def test_reference_output_folder_missing(tmp_path, capsys):
    code, err = _run(["reference", "rbm", "--sizes", "4", "2", "-o", str(tmp_path / "no" / "r.npz")], capsys)
    _assert_usage_error(code, err, "--output", "does not exist")


def test_reference_output_wrong_suffix(tmp_path, capsys):
    code, err = _run(["reference", "rbm", "--sizes", "4", "2", "-o", str(tmp_path / "r.txt")], capsys)
    _assert_usage_error(code, err, "--output", ".npz")
    assert os.listdir(tmp_path) == []


def test_reference_output_missing(capsys):
    code, err = _run(["reference", "rbm", "--sizes", "4", "2"], capsys)
    _assert_usage_error(code, err, "-o/--output")


def test_reference_output_is_a_folder(tmp_path, capsys):
    (tmp_path / "d.npz").mkdir()
    code, err = _run(["reference", "rbm", "--sizes", "4", "2", "-o", str(tmp_path / "d.npz")], capsys)
    _assert_usage_error(code, err, "--output", "folder")


def test_reference_never_overwrites_without_force(tmp_path, capsys):
    out = tmp_path / "r.npz"
    out.write_bytes(b"someone's data")
    code, err = _run(["reference", "rbm", "--sizes", "4", "2", "-o", str(out)], capsys)
    _assert_usage_error(code, err, "--output", "exists")
    assert out.read_bytes() == b"someone's data"
    code, _ = _run(["reference", "rbm", "--sizes", "4", "2", "-o", str(out), "--force"], capsys)
    assert code == 0 and out.read_bytes()[:2] == b"PK"


def test_reference_refuses_a_symbolic_link_even_with_force(tmp_path, capsys):
    target = tmp_path / "target.npz"
    target.write_bytes(b"keep")
    link = tmp_path / "link.npz"
    link.symlink_to(target)
    code, err = _run(["reference", "rbm", "--sizes", "4", "2", "-o", str(link), "--force"], capsys)
    _assert_usage_error(code, err, "symbolic link")
    assert target.read_bytes() == b"keep"


def _spec(tmp_path, content):
    path = tmp_path / "spec.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


GOOD_SPEC = {"task": "ising_2d", "grid": {"L": [4], "beta": [0.3], "n_steps": [10]}}

SWEEP_CASES = {
    "spec_missing": (lambda t: [str(t / "absent.json")], ["absent.json"]),
    "spec_not_json": (lambda t: [_spec(t, "{task")], ["not valid JSON"]),
    "spec_unknown_task": (lambda t: [_spec(t, {"task": "nope", "grid": {}})], ["unknown task 'nope'"]),
    "spec_missing_setting": (lambda t: [_spec(t, {"task": "ising_2d", "grid": {"L": [4]}})], ["beta"]),
    "workers_zero": (lambda t: [_spec(t, GOOD_SPEC), "--workers", "0"], ["--workers", ">= 1"]),
    "workers_text": (lambda t: [_spec(t, GOOD_SPEC), "--workers", "many"], ["--workers"]),
    "retries_negative": (lambda t: [_spec(t, GOOD_SPEC), "--retries", "-1"], ["--retries"]),
    "resume_without_out": (lambda t: [_spec(t, GOOD_SPEC), "--resume"], ["--resume needs --out"]),
}


@pytest.mark.parametrize("case", sorted(SWEEP_CASES))
def test_sweep_usage_errors(tmp_path, capsys, case):
    make, fragments = SWEEP_CASES[case]
    code, err = _run(["sweep", *make(tmp_path)], capsys)
    _assert_usage_error(code, err, *fragments)


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["bench", "nosuchsuite"], ["nosuchsuite"]),
        (["bench", "--quick=3"], ["--quick"]),
        ([], ["command"]),
        (["nosuchcommand"], ["nosuchcommand"]),
    ],
)
def test_bench_and_top_level_usage_errors(capsys, argv, fragments):
    code, err = _run(argv, capsys)
    _assert_usage_error(code, err, *fragments)


@pytest.mark.parametrize(
    "argv",
    [
        ["reference", "rbm", "--sizes", "6", "-3", "-o", "unused.npz"],
        ["reference", "rbm", "--sizes", "4", "2", "-o", os.path.join("no_such_folder_x", "r.npz")],
    ],
)
def test_usage_errors_in_a_fresh_process(tmp_path, argv):
    proc = subprocess.run(
        [sys.executable, "-m", "ebm_ref", *argv], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    _assert_usage_error(proc.returncode, proc.stderr)
    assert proc.stdout == "" and os.listdir(tmp_path) == []


def _help(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main([*argv, "--help"])
    assert info.value.code == 0
    return capsys.readouterr().out


def _option_entries(text):
    """The entries of the help's 'options:' section: option strings -> help text."""
    section = text.split("options:", 1)[1]
    entries, current = {}, None
    for line in section.splitlines():
        if line.startswith("  -"):
            head = line.split("  ", 2)[1:]  # "--x X" then its help, if on the same line
            current = head[0].strip()
            entries[current] = head[1] if len(head) > 1 else ""
        elif current is not None and line.startswith("    "):
            entries[current] += " " + line.strip()
    return {k: " ".join(v.split()) for k, v in entries.items() if not k.startswith("-h")}


@pytest.mark.parametrize(
    "command, choices",
    [
        ("reference", ["rbm", "grbm", "ising", "ising-lattice", "student-t", "mixture", "mlp", "latent", *QUANTITIES]),
        ("sweep", list(TASKS)),
        ("bench", available_suites()),
    ],
)
def test_help_lists_choices_and_defaults(capsys, command, choices):
    text = _help([command], capsys)
    flat = " ".join(text.split())  # argparse wraps lines
    for choice in choices:
        assert choice in flat, choice
    entries = _option_entries(text)
    assert len(entries) >= 1
    for option, help_text in entries.items():
        assert "(default" in help_text or "(required)" in help_text, (command, option, help_text)
