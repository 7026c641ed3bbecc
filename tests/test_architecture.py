"""The package's layout rules, checked on the source text (AST, no imports).

The rules keep the architecture readable and the dispatch honest:

(a) no module under ebm_ref/ is longer than 500 lines;
(b) a module of one subpackage (``ebm_ref/<sub>/...``) imports no private
    name of ANOTHER subpackage: neither a name with a leading underscore nor
    anything from a module whose dotted path has such a component. The
    top-level infrastructure modules ``ebm_ref/_*.py`` (random numbers,
    numerics, validation, threads, ...) are shared by everyone and allowed;
(c) no class checks by identity or by name: no ``type(x) is ...`` /
    ``type(x) == ...``, no comparison of a ``__name__`` with anything, no
    ``hasattr(x, "_private")`` probe (a model's behaviour goes through the
    documented hooks of its base class);
(d) no module is named like a function or class it defines that its
    subpackage exports (``samplers/gibbs.py`` defining the exported
    ``gibbs`` makes ``ebm_ref.samplers.gibbs`` mean two things);
(e) no top-level module of ebm_ref/ and no script in scripts/ imports a
    private name of a subpackage.

Each test lists every violation it finds, not only the first.
"""

from __future__ import annotations

import ast
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
PKG = ROOT / "ebm_ref"
MAX_LINES = 500


def _modules():
    return sorted(p for p in PKG.rglob("*.py") if "__pycache__" not in p.parts)


def _scripts():
    return sorted((ROOT / "scripts").glob("*.py"))


def _dotted(path):
    """Dotted module name of a file under ebm_ref/ (``ebm_ref.sub.mod``)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return parts


def _package_of(path):
    parts = _dotted(path)
    return parts if path.name == "__init__.py" else parts[:-1]


def _rel(path):
    return path.relative_to(ROOT).as_posix()


def _imports(path):
    """``(lineno, module_parts, name)`` for every import in the file.

    ``name`` is the imported name for ``from m import name`` and ``None``
    for ``import m``; relative imports are resolved against the file's
    package. Imports inside functions count as well.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                out.append((node.lineno, alias.name.split("."), None))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if not _rel(path).startswith("ebm_ref/"):
                    continue
                base = _package_of(path)
                base = base[: len(base) - (node.level - 1)]
                module = base + (node.module.split(".") if node.module else [])
            else:
                module = (node.module or "").split(".")
            for alias in node.names:
                out.append((node.lineno, module, alias.name))
    return out


def _private_target(module, name):
    """``(subpackage, what)`` when the import reaches a private name of a
    subpackage of ebm_ref, else ``None``.

    A top-level module ``ebm_ref._x`` (shared infrastructure) is not a
    subpackage. ``from ebm_ref.sub import _mod`` where ``_mod`` is a
    private module counts, as does any name from ``ebm_ref.sub._mod``.
    """
    if not module or module[0] != "ebm_ref" or len(module) < 2:
        return None
    sub = module[1]
    if not (PKG / sub).is_dir():
        return None  # a top-level module: ebm_ref._rng, ebm_ref.train, ...
    private_path = any(part.startswith("_") for part in module[2:])
    private_name = name is not None and name.startswith("_")
    if private_path or private_name:
        what = ".".join(module) + ("" if name is None else f" import {name}")
        return sub, what
    return None


def _report(title, violations):
    return f"{len(violations)} {title}:\n  " + "\n  ".join(violations)


def test_no_module_longer_than_500_lines():
    violations = []
    for path in _modules():
        n = len(path.read_text().splitlines())
        if n > MAX_LINES:
            violations.append(f"{_rel(path)}: {n} lines")
    assert not violations, _report(f"modules longer than {MAX_LINES} lines", violations)


def test_no_private_import_across_subpackages():
    violations = []
    for path in _modules():
        parts = _dotted(path)
        if len(path.relative_to(PKG).parts) < 2:
            continue  # top-level modules: see test_top_level_and_scripts_import_no_private_name
        own = parts[1]
        for lineno, module, name in _imports(path):
            hit = _private_target(module, name)
            if hit is not None and hit[0] != own:
                violations.append(f"{_rel(path)}:{lineno}: from {hit[1]}")
    assert not violations, _report("private imports across subpackages", violations)


def test_top_level_and_scripts_import_no_private_name():
    violations = []
    files = [p for p in _modules() if len(p.relative_to(PKG).parts) == 1] + _scripts()
    for path in files:
        for lineno, module, name in _imports(path):
            hit = _private_target(module, name)
            if hit is not None:
                violations.append(f"{_rel(path)}:{lineno}: from {hit[1]}")
    assert not violations, _report("private imports of subpackages in top-level modules and scripts", violations)


def _is_type_call(node):
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "type"
        and len(node.args) == 1
    )


def _is_name_attr(node):
    return isinstance(node, ast.Attribute) and node.attr in ("__name__", "__qualname__")


def _class_check_violations(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            identity = any(isinstance(op, (ast.Is, ast.IsNot, ast.Eq, ast.NotEq)) for op in node.ops)
            if identity and any(_is_type_call(o) for o in operands):
                out.append(f"{_rel(path)}:{node.lineno}: type(...) compared by is/==")
            if any(_is_name_attr(o) for o in operands):
                out.append(f"{_rel(path)}:{node.lineno}: class compared by its __name__")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "hasattr"
            and len(node.args) == 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and node.args[1].value.startswith("_")
            and not node.args[1].value.startswith("__")
        ):
            out.append(f"{_rel(path)}:{node.lineno}: hasattr(..., {node.args[1].value!r}) probes a private name")
    return out


def test_no_class_checks_by_identity_or_name():
    violations = []
    for path in _modules():
        violations += _class_check_violations(path)
    assert not violations, _report("class checks by identity, name or private attribute", violations)


def _exported_names(init):
    """Names a subpackage's ``__init__`` imports or lists in ``__all__``."""
    tree = ast.parse(init.read_text(), filename=str(init))
    names = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            names.update(a.asname or a.name for a in node.names)
        elif isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            if isinstance(node.value, (ast.List, ast.Tuple)):
                names.update(e.value for e in node.value.elts if isinstance(e, ast.Constant))
    return names


def test_no_module_shadowed_by_its_function():
    violations = []
    for init in sorted(PKG.rglob("__init__.py")):
        if "__pycache__" in init.parts:
            continue
        exported = _exported_names(init)
        for path in sorted(init.parent.glob("*.py")):
            stem = path.stem
            if path.name == "__init__.py" or stem not in exported:
                continue
            tree = ast.parse(path.read_text(), filename=str(path))
            defined = {
                n.name
                for n in tree.body
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            }
            if stem in defined:
                violations.append(f"{_rel(path)}: defines {stem}, which {_rel(init)} exports")
    assert not violations, _report("modules shadowed by a function of the same name", violations)


# ---- the checker itself: each rule finds a planted violation -------------


def test_checker_finds_planted_violations(tmp_path, monkeypatch):
    fake = tmp_path / "ebm_ref"
    (fake / "alpha").mkdir(parents=True)
    (fake / "beta").mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "_infra.py").write_text("def helper():\n    pass\n")
    (fake / "beta" / "__init__.py").write_text("from .thing import thing\n")
    (fake / "beta" / "_impl.py").write_text("def _hidden():\n    pass\n")
    (fake / "beta" / "thing.py").write_text("def thing():\n    pass\n")
    (fake / "alpha" / "__init__.py").write_text("")
    (fake / "alpha" / "mod.py").write_text(
        "from .._infra import helper\n"  # allowed: top-level infrastructure
        "from ..beta._impl import _hidden\n"  # private module and name of beta
        "from ebm_ref.beta import _impl\n"  # private module of beta
        "from . import mod\n"  # own subpackage: allowed
        "def f(x):\n"
        "    from ..beta import thing\n"  # public: allowed
        "    if type(x) is int or hasattr(x, '_secret') or type(x).__name__ == 'RBM':\n"
        "        return 1\n"
        + "x = 1\n" * MAX_LINES
    )
    mod = sys.modules[__name__]
    monkeypatch.setattr(mod, "ROOT", tmp_path)
    monkeypatch.setattr(mod, "PKG", fake)
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "s.py").write_text("from ebm_ref.beta._impl import x\nfrom ebm_ref._infra import helper\n")

    def failure(test):
        try:
            test()
        except AssertionError as exc:
            return str(exc)
        return ""

    msg = failure(test_no_module_longer_than_500_lines)
    assert "ebm_ref/alpha/mod.py" in msg and msg.startswith("1 ")
    msg = failure(test_no_private_import_across_subpackages)
    assert msg.startswith("2 "), msg
    assert "ebm_ref.beta._impl import _hidden" in msg and "ebm_ref.beta import _impl" in msg
    msg = failure(test_top_level_and_scripts_import_no_private_name)
    assert msg.startswith("1 ") and "scripts/s.py:1" in msg, msg
    msg = failure(test_no_class_checks_by_identity_or_name)
    assert msg.startswith("3 ") and "'_secret'" in msg and "__name__" in msg and "type(...)" in msg, msg
    msg = failure(test_no_module_shadowed_by_its_function)
    assert msg.startswith("1 ") and "ebm_ref/beta/thing.py" in msg, msg
