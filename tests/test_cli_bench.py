"""`ebm-ref bench`: the suites are listed in --help and an unknown one is a usage error."""

import subprocess
import sys

import pytest

from ebm_ref.__main__ import main
from ebm_ref.bench import available_suites


def test_help_lists_every_suite(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--help"])
    assert exc.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for name in available_suites():
        assert name in out


def test_unknown_suite_is_one_line_and_exit_2():
    proc = subprocess.run(
        [sys.executable, "-m", "ebm_ref", "bench", "nosuchsuite"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "unknown benchmark suite(s) nosuchsuite" in proc.stderr
    assert proc.stdout == ""
