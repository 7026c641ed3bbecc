"""The worked examples of "Checking your implementation" run as tests.

The section is read from README.md; every ```python block runs in a fresh namespace and must not raise (each ends in an
``assert_ok()``)."""

from __future__ import annotations

import contextlib
import io
import pathlib
import re

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
HEADING = "Checking your implementation"


def _section(text):
    """The text under the heading ``HEADING`` up to the next heading of the same or higher level."""
    m = re.search(rf"^(#+)\s+{re.escape(HEADING)}\s*$", text, flags=re.M)
    if m is None:
        return None
    level = len(m.group(1))
    rest = text[m.end():]
    nxt = re.search(rf"^#{{1,{level}}}\s", rest, flags=re.M)
    return rest[: nxt.start()] if nxt else rest


def _source():
    sec = _section((REPO / "README.md").read_text(encoding="utf-8"))
    if sec is None:
        raise AssertionError(f"no '{HEADING}' section in README.md")
    return "README.md", sec


def _blocks():
    name, sec = _source()
    blocks = re.findall(r"^```python\n(.*?)^```", sec, flags=re.M | re.S)
    return name, blocks


SOURCE, BLOCKS = _blocks()


def test_section_has_three_examples():
    assert len(BLOCKS) >= 3, f"{SOURCE}: found {len(BLOCKS)} python blocks"


def test_section_shows_the_adapters_and_plain_numpy():
    # a PyTorch model and a JAX function through the adapters, and the plain-callable interface without one
    assert any("from_torch(" in b and "nn.Module" in b for b in BLOCKS)
    assert any("from_jax(" in b and "import jax" in b for b in BLOCKS)
    assert any("import torch" not in b and "import jax" not in b and "compare_energy(" in b for b in BLOCKS)


@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=[f"{SOURCE}-example{i + 1}" for i in range(len(BLOCKS))])
def test_example_runs(index):
    code = BLOCKS[index]
    assert "assert_ok()" in code  # every example checks something
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, f"<{SOURCE} example {index + 1}>", "exec"), {"__name__": "__example__"})
    # the printed report says it passed
    assert re.search(r"\bok\b|all match", out.getvalue()), out.getvalue()


def test_section_finder_prefers_readme_and_stops_at_next_heading():
    text = "# T\n\n## Checking your implementation\nA\n```python\nx = 1\n```\n### Sub\nB\n## Next\nC\n"
    sec = _section(text)
    assert "A" in sec and "Sub" in sec and "C" not in sec
    assert _section("# nothing here\n") is None
