"""The figure scripts' shared helpers (scripts/_figkit.py): ESS, seeds, tables, deterministic PNGs."""

import ast
import hashlib
import io
import math
import pathlib
import sys

import numpy as np
import pytest

from ebm_ref.__main__ import load_script
from ebm_ref.__main__ import main as cli_main

SCRIPTS = pathlib.Path(__file__).resolve().parent.parent / "scripts"


@pytest.fixture(scope="module")
def kit():
    # loading a figure script puts scripts/ on sys.path, as running the figures command does
    load_script(SCRIPTS / "fig_06_discrete_sampling.py")
    import _figkit

    return _figkit


def _ar1(phi, n, c, k, seed):
    rng = np.random.default_rng(seed)
    eps = rng.standard_normal((n, c, k))
    x = np.empty_like(eps)
    x[0] = eps[0] / math.sqrt(1.0 - phi**2)  # stationary start
    for i in range(1, n):
        x[i] = phi * x[i - 1] + eps[i]
    return x


@pytest.mark.parametrize("phi", [0.0, 0.5, 0.9, -0.4, -0.8])
def test_ess_of_ar1_matches_its_integrated_autocorrelation_time(kit, phi):
    # AR(1) with coefficient phi: tau_int = (1 + phi) / (1 - phi) (1, 3, 19, 0.43, 0.11), so
    # ESS = n c / tau. Both signs: the MALA chains of figure 9 at d = 1 are anti-correlated.
    n, c = 20000, 8
    x = _ar1(phi, n, c, 2, seed=17)
    tau_true = (1 + phi) / (1 - phi)
    tau = n * c / kit.ess(x)
    # Error of the estimate (Sokal; Priestley's variance of a truncated spectral estimate at frequency 0):
    # relative sd sqrt(2 (2M + 1) / N) with N = n c = 160000 and M the window, here M ~ 5 (1 + 2 sum |rho|)
    # = 5 (1 + |phi|) / (1 - |phi|) lags. Allow 5 sd (two coordinates per case: false-failure rate
    # < 1e-5) plus the low bias of the mean subtraction, at most (2M + 1) tau_abs / N.
    tau_abs = (1 + abs(phi)) / (1 - abs(phi))
    m = math.ceil(5 * tau_abs) + 1
    tol = 5 * math.sqrt(2 * (2 * m + 1) / (n * c)) * tau_true + (2 * m + 1) * tau_abs / (n * c)
    assert np.all(np.abs(tau - tau_true) < tol), (tau, tau_true, tol)
    if phi > 0:
        # negative control: the "1 + sum rho" convention (half the sum) is rejected
        assert np.all(np.abs(0.5 * (tau + 1.0) - tau_true) > tol)
    if phi < -0.5:
        # negative control: a window sized by tau itself (Sokal's M >= 5 tau(M)) stops after two or three
        # lags of an alternating series and misses by more than the tolerance
        y = x[:, :, 0] - x[:, :, 0].mean()
        acov = np.array([np.mean(y[: n - t] * y[t:]) * (n - t) / n for t in range(40)])
        taus = 2 * np.cumsum(acov / acov[0]) - 1
        window = int(np.flatnonzero(np.arange(40) >= 5 * taus)[0])
        assert abs(taus[window] - tau_true) > tol


def test_ess_shapes_and_frozen_chains(kit):
    x = _ar1(0.5, 2000, 4, 3, seed=3)
    per = kit.ess(x)
    assert per.shape == (3,)
    assert kit.ess(x[:, :, 1]) == per[1]
    # chains that never move (each at its own value): the pooled autocorrelation is ~1 - t/n at every
    # lag, tau ~ n, so the ESS is about the number of chains, not n c
    frozen = np.repeat(np.random.default_rng(0).standard_normal((1, 4)), 1000, axis=0)
    assert kit.ess(frozen) < 4 * 2.5


def test_seed_scheme_is_stateless_and_separates_figures(kit):
    a = kit.rng(0, 6, 1, 0).random(4)
    # the same key gives the same stream however often it is asked for
    assert np.array_equal(a, kit.rng(0, 6, 1, 0).random(4))
    # the key is SeedSequence's spawn key under the figure's seed (the library's own derivation)
    ss = kit.seed_sequence(3, 6, 1)
    assert ss.entropy == 3 and ss.spawn_key == (6, 1)
    # a stream's key can be extended: the same stream as the full key at once
    nested = kit.seed_sequence(kit.seed_sequence(3, 6), 1)
    assert nested.entropy == 3 and nested.spawn_key == (6, 1)
    assert np.array_equal(nested.generate_state(4), ss.generate_state(4))
    # another figure, purpose or seed is another stream
    for other in (kit.rng(0, 7, 1, 0), kit.rng(0, 6, 1, 1), kit.rng(1, 6, 1, 0)):
        assert not np.array_equal(a, other.random(4))


def test_markdown_table(kit):
    table = kit.markdown_table(("a", "b"), [(1, "x"), (2.5, "y")])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| 1 | x |", "| 2.5 | y |"]


def test_write_figures_is_byte_deterministic_without_metadata(kit, tmp_path):
    def plot(res):
        plt = kit.pyplot()
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.plot(res["y"])
        return fig

    def caption(res, names):
        return f"## test\n\n![t]({names[0]})\n"

    digests = []
    for sub in ("a", "b"):
        out = kit.write_figures(tmp_path / sub, {"y": [0.0, 1.0, 0.5]}, {"t.png": plot}, caption)
        data = pathlib.Path(out["files"][0]).read_bytes()
        assert out["caption"] == "## test\n\n![t](t.png)\n"
        assert b"Software" not in data and b"matplotlib" not in data.lower()
        digests.append(hashlib.sha256(data).hexdigest())
    assert digests[0] == digests[1]
    # closed after saving: no figure left open
    assert kit.pyplot().get_fignums() == []


# ----------------------------------------------------------- the figures command


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self):
        return True


TINY_SCRIPT = '''
import time


def main(out_dir, seed=0):
    time.sleep(1.3)  # long enough for the progress line to be rewritten once
    return {"files": [], "caption": f"## tiny\\n\\nseed {seed}\\n"}
'''


@pytest.fixture()
def tiny(tmp_path):
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "fig_99_tiny.py").write_text(TINY_SCRIPT)
    return ["figures", "--scripts", str(scripts), "--out", str(tmp_path / "out"), "--seed", "3"]


@pytest.mark.parametrize("terminal, flag, shown", [(True, [], True), (True, ["--no-progress"], False),
                                                  (False, [], False)])
def test_progress_only_on_a_terminal(tiny, monkeypatch, capsys, terminal, flag, shown):
    err = _Terminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    assert cli_main(tiny + flag) == 0
    text = err.getvalue()
    if shown:
        # the figure's name and place in the run, rewritten in place (carriage return), at least twice
        # in 1.3 s (once at the start, once a second later), then erased
        assert text.count("[1/1] fig_99_tiny:") >= 2 and text.startswith("\r") and text.endswith("\r\033[K")
    else:
        assert text == ""
    # the results go to stdout whatever the terminal
    assert "fig_99_tiny" in capsys.readouterr().out
    out = pathlib.Path(tiny[4])
    assert (out / "fig_99_tiny.md").read_text() == "## tiny\n\nseed 3\n"


def test_figures_help_documents_every_option_with_its_default(capsys):
    with pytest.raises(SystemExit):
        cli_main(["figures", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for option in ("NAME", "--scripts DIR", "--out DIR", "--seed N", "--no-progress"):
        assert option in text
    assert text.count("(default:") >= 4


def _violations(source, allowed):
    """Private ebm_ref imports (outside ``allowed``) and clock reads in a script's source."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ebm_ref"):
            private = any(p.startswith("_") for p in node.module.split(".")) or any(
                a.name.startswith("_") for a in node.names
            )
            if private and node.module not in allowed:
                found.append(f"private import from {node.module}")
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = {a.name for a in node.names} | {getattr(node, "module", None) or ""}
            found += [f"imports {m}" for m in sorted({"time", "timeit", "datetime"} & names)]
        if isinstance(node, ast.Attribute) and node.attr in ("perf_counter", "wall_time"):
            found.append(f"reads {node.attr}")
    return found


def test_scripts_import_public_names_only_and_read_no_clock():
    # the scripts are examples of the public API; and a figure must not depend on how fast it ran
    import ebm_ref

    # limit_threads is to be exported by ebm_ref; until it is, ebm_ref._threads is the one private
    # module a script may import it from
    allowed = set() if hasattr(ebm_ref, "limit_threads") else {"ebm_ref._threads"}
    scripts = sorted(SCRIPTS.glob("fig_*.py"))
    assert len(scripts) >= 11
    for path in scripts:
        assert _violations(path.read_text(), allowed) == [], path.name
    # planted: each kind of violation is found
    planted = "import time\nfrom ebm_ref.samplers._flip import x\nfrom ebm_ref import _rng\nt = hist.wall_time\n"
    assert _violations(planted, allowed) == [
        "imports time", "private import from ebm_ref.samplers._flip", "private import from ebm_ref", "reads wall_time",
    ]
