"""The interop corpus with default settings: every correct implementation passes, every planted bug is caught.

The entries are tutorial-style PyTorch, JAX and scikit-learn code reached through from_torch / from_jax / ParamMap
(tests/_interop_catalog.py lists them). Each check's false-failure rate is the kit's default: alpha = 1e-4 for
check_sampler (split between the exact and the fixed start) and for the z-tests of compare_objective's expectation
mode; the deterministic comparisons have no false failures (rtol 1e-8 in float64; float32 judged by float32
rounding). Where a bug has a known shape (transpose, a constant factor, overflow) the report must also name it among
its suspects, and exactly those (a wrong cause named is a defect). The last test rebuilds the catch table (bug -> caught? -> suspects) from the rows collected here.
"""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _interop_catalog as cat  # noqa: E402

ROWS = {}


def _params(names):
    return [pytest.param(n, id=n, marks=[pytest.mark.slow] if n in cat.SLOW else []) for n in names]


@pytest.mark.parametrize("name", _params(cat.CORRECT))
def test_correct_implementation_passes(name):
    _, run = cat.CORRECT[name]
    report = run()
    assert report.passed, f"{name}:\n{report}"
    # no false alarm: a passing report names only accepted framework behaviour
    assert set(cat.suspects_of(report)) <= {"softplus_threshold", "float32"}, f"{name}: {cat.suspects_of(report)}"


@pytest.mark.parametrize("name", _params(cat.BUGS))
def test_planted_bug_is_caught(name):
    what, run, expected = cat.BUGS[name]
    report = run()
    suspects = cat.suspects_of(report)
    ROWS[name] = (name, what, not report.passed, suspects, expected, cat.failed_part(report))
    assert not report.passed, f"planted bug not caught: {name} ({what})\n{report}"
    # exactly the expected codes: a missing one is a lost diagnosis, an extra one a wrong cause named
    assert set(suspects) == set(expected), f"{name}: the report should name {expected}; it names {suspects}\n{report}"


@pytest.mark.slow  # cheap after the rows above; alone it reruns every bug
def test_catch_table():
    rows = [ROWS[n] if n in ROWS else cat.catch_table([n])[0] for n in cat.BUGS]
    table = cat.markdown(rows)
    print("\n" + table)
    assert len(rows) >= 15 and all(r[2] for r in rows), table
    assert table.count("| yes |") == len(rows)
    # the bugs named with their cause (docs/checking.md): at least 16 of the 19
    named = [r for r in rows if r[4]]
    assert len(named) >= 16 and all(set(r[3]) == set(r[4]) for r in named), table
