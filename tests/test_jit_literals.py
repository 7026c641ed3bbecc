"""No kernel passes a literal ``True``/``False`` to another compiled kernel.

Numba types a literal boolean argument as ``Literal[bool]`` and compiles the
callee, and everything it calls, once more for each value. Four such copies
of the continuous models' tile evaluator (each with the MLP kernel) made the
Langevin driver's first call take 38 s instead of 19. Kernels pass
``ebm_ref._jit.ON`` / ``OFF`` (NumPy booleans, typed as plain ``bool``).
Callees decorated with ``jit_inline`` are exempt: Numba inlines them into the
caller, so they never get a specialisation of their own.

This is a static check (the AST of every module): compile times are not
measured by tests.
"""

from __future__ import annotations

import ast
import pathlib

PKG = pathlib.Path(__file__).resolve().parent.parent / "ebm_ref"
# decorators whose functions are compiled on their own (a dispatcher each)
_SEPARATE = {"jit", "pjit", "jit_nogil"}
_ALL_JIT = _SEPARATE | {"jit_inline"}


def _decorators(fn):
    names = set()
    for d in fn.decorator_list:
        if isinstance(d, ast.Name):
            names.add(d.id)
        elif isinstance(d, ast.Attribute):
            names.add(d.attr)
    return names


def _functions(trees):
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef):
                yield path, node


def literal_flag_calls(pkg):
    """``"file:line caller -> callee(...)"`` for each literal bool passed to a separately compiled kernel."""
    trees = {p: ast.parse(p.read_text(), filename=str(p)) for p in sorted(pkg.rglob("*.py"))}
    separate = {fn.name for _, fn in _functions(trees) if _decorators(fn) & _SEPARATE}
    found = []
    for path, fn in _functions(trees):
        if not _decorators(fn) & _ALL_JIT:
            continue
        for call in ast.walk(fn):
            if not isinstance(call, ast.Call):
                continue
            f = call.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
            if name not in separate:
                continue
            args = list(call.args) + [k.value for k in call.keywords]
            if any(isinstance(a, ast.Constant) and isinstance(a.value, bool) for a in args):
                found.append(f"{path.relative_to(pkg.parent).as_posix()}:{call.lineno} {fn.name} -> {name}(...)")
    return found


def test_no_literal_bool_reaches_a_compiled_kernel():
    found = literal_flag_calls(PKG)
    assert not found, "literal True/False passed to a compiled kernel (use ON/OFF):\n  " + "\n  ".join(found)


def test_check_finds_a_planted_literal(tmp_path):
    pkg = tmp_path / "ebm_ref"
    pkg.mkdir()
    (pkg / "m.py").write_text(
        "from ._jit import jit, jit_inline, pjit, ON\n"
        "@jit\n"
        "def callee(x, flag):\n    return x\n"
        "@jit_inline\n"
        "def inlined(x, flag):\n    return x\n"
        "@pjit\n"
        "def driver(x):\n"
        "    callee(x, ON)\n"  # allowed
        "    inlined(x, True)\n"  # allowed: inlined, no specialisation
        "    callee(x, flag=False)\n"  # caught
        "    return callee(x, True)\n"  # caught
        "def python_side(x):\n"
        "    return callee(x, True)\n"  # allowed: a call from Python is typed as bool
    )
    found = literal_flag_calls(pkg)
    assert len(found) == 2 and all("driver -> callee" in f for f in found), found
