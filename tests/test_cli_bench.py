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


def _capture_bench(monkeypatch, isa, environ):
    """Run ``bench exact --quick --isa avx2`` with the CPU, the environment, the suites and the child stubbed."""
    import ebm_ref.bench as bench
    from ebm_ref.bench import _peers

    calls = {"suites": [], "child": []}
    monkeypatch.setattr(_peers, "cpu_info", lambda: {"model_name": "x", "isa": isa, "isa_limits": {}})
    monkeypatch.setattr(bench, "run_suites", lambda names, quick: calls["suites"].append((names, quick)))

    class Done:
        returncode = 7

    def fake_run(argv, env):
        calls["child"].append((argv, env))
        return Done()

    monkeypatch.setattr(subprocess, "run", fake_run)
    for k in list(__import__("os").environ):
        monkeypatch.delenv(k)
    for k, v in environ.items():
        monkeypatch.setenv(k, v)
    code = main(["bench", "exact", "--quick", "--isa", "avx2"])
    return code, calls


def test_isa_avx2_reruns_the_suites_capped_in_a_child(monkeypatch):
    from ebm_ref.bench._peers import avx2_cap

    code, calls = _capture_bench(monkeypatch, "AVX-512", {"PATH": "/bin"})
    assert code == 7 and calls["suites"] == []  # the child's exit status, nothing run here
    (argv, env), = calls["child"]
    assert argv[1:] == ["-m", "ebm_ref", "bench", "exact", "--isa", "avx2", "--quick"]
    assert env == avx2_cap({"PATH": "/bin"}, "AVX-512") and env["NUMBA_CPU_NAME"] == "haswell"


def test_isa_avx2_runs_here_when_already_capped_or_on_an_avx2_cpu(monkeypatch):
    from ebm_ref.bench._peers import avx2_cap

    for isa, environ in [("AVX-512", avx2_cap({"PATH": "/bin"}, "AVX-512")), ("AVX2", {"PATH": "/bin"})]:
        code, calls = _capture_bench(monkeypatch, isa, environ)
        assert code == 0 and calls["child"] == [] and calls["suites"] == [(["exact"], True)]


def test_isa_avx2_on_a_cpu_without_avx2_is_a_usage_error(monkeypatch, capsys):
    with pytest.raises(SystemExit) as exc:
        _capture_bench(monkeypatch, "baseline", {"PATH": "/bin"})
    assert exc.value.code == 2
    assert "--isa avx2 needs a CPU with AVX2" in capsys.readouterr().err
