"""``python -m ebm_ref sweep SPEC``: a built-in task over a grid from a TOML/JSON file.

Spec file (TOML shown; JSON has the same keys)::

    task = "ais_log_z"        # a name in ebm_ref.sweep.tasks.TASKS
    seed = 0                  # optional, default 0
    [grid]                    # name -> list of values (a scalar = one value)
    model = ["rbm.npz", "ising.npz"]
    method = ["ais", "reverse"]

``grid`` may instead be a list of settings tables (``[[grid]]`` in TOML).
Settings left out take the task's defaults, which are then written into
every record. Mistakes in the spec or the options end with one line on
stderr and exit status 2; a run whose tasks all finished exits 0, one with
failed tasks 1.
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import sys

__all__ = ["register_cli", "read_spec", "SpecError"]

_TOP_KEYS = ("task", "seed", "grid")


class SpecError(ValueError):
    """A mistake in a sweep spec file."""


def _load_file(path):
    p = pathlib.Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise SpecError(f"cannot read spec file {str(p)!r}: {exc.strerror or exc}.") from None
    if p.suffix.lower() == ".json":
        try:
            return json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise SpecError(f"spec file {str(p)!r} is not valid JSON: {exc}.") from None
    if p.suffix.lower() == ".toml":
        try:
            import tomllib
        except ImportError:  # Python 3.10
            try:
                import tomli as tomllib
            except ImportError:
                raise SpecError(
                    f"spec file {str(p)!r}: reading TOML needs Python >= 3.11 (or the tomli package); "
                    "write the spec as JSON instead."
                ) from None
        try:
            return tomllib.loads(raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SpecError(f"spec file {str(p)!r} is not valid TOML: {exc}.") from None
    raise SpecError(f"spec file {str(p)!r} must end in .toml or .json.")


def read_spec(path):
    """Read and check a spec file; return ``(task_name, seed, list of settings)``.

    Raises
    ------
    SpecError
        For any mistake, with a one-line message.
    """
    from .tasks import TASKS, complete_settings

    spec = _load_file(path)
    if not isinstance(spec, dict):
        raise SpecError(f"spec file {str(path)!r} must hold a table with keys task, grid (and seed).")
    extra = [k for k in spec if k not in _TOP_KEYS]
    if extra:
        raise SpecError(f"spec file {str(path)!r}: unknown key {extra[0]!r}; the keys are {', '.join(_TOP_KEYS)}.")
    task = spec.get("task")
    if task not in TASKS:
        raise SpecError(f"spec file {str(path)!r}: unknown task {task!r}; built-in tasks: {', '.join(TASKS)}.")
    seed = spec.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SpecError(f"spec file {str(path)!r}: seed must be a non-negative integer; got {seed!r}.")
    grid = spec.get("grid")
    if isinstance(grid, dict):
        from ._runner import expand_grid

        lists = {k: (v if isinstance(v, list) else [v]) for k, v in grid.items()}
        try:
            raw = expand_grid(lists)
        except (TypeError, ValueError) as exc:
            raise SpecError(f"spec file {str(path)!r}: {exc}") from None
    elif isinstance(grid, list) and grid and all(isinstance(g, dict) for g in grid):
        raw = grid
    else:
        raise SpecError(f"spec file {str(path)!r}: grid must be a table of lists or a list of tables.")
    try:
        tasks = [complete_settings(task, s) for s in raw]
    except (TypeError, ValueError) as exc:
        raise SpecError(f"spec file {str(path)!r}: {exc}") from None
    check = getattr(TASKS[task].fn, "check_settings", None)
    if check is not None:
        try:
            check(tasks)
        except (TypeError, ValueError, OSError) as exc:
            raise SpecError(f"spec file {str(path)!r}: {exc}") from None
    return task, seed, tasks


def _fmt(v):
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.6g}"
    if hasattr(v, "shape"):
        return f"array{tuple(v.shape)}"
    return str(v)


def format_records(records):
    """A plain-text table of the records (scalars; arrays shown by shape)."""
    names = []
    for r in records:
        for k in r:
            if k not in names:
                names.append(k)
    rows = [[_fmt(r.get(k, "")) for k in names] + ["ok" if r.ok else "FAILED"] for r in records]
    head = names + ["status"]
    widths = [max(len(h), *(len(row[j]) for row in rows)) for j, h in enumerate(head)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(head, widths))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def _cmd_sweep(args):
    from ._runner import run
    from .tasks import TASKS

    def fail(msg):
        print(f"ebm-ref sweep: error: {msg}", file=sys.stderr)
        return 2

    try:
        task, seed, tasks = read_spec(args.spec)
    except SpecError as exc:
        return fail(str(exc))
    if args.workers is not None and args.workers < 1:
        return fail(f"--workers must be >= 1; got {args.workers}.")
    if args.retries < 0:
        return fail(f"--retries must be >= 0; got {args.retries}.")
    if args.resume and args.out is None:
        return fail("--resume needs --out, the folder of the sweep to resume.")
    try:
        records = run(
            TASKS[task].fn, tasks, seed, executor=args.executor, workers=args.workers, out=args.out,
            resume=args.resume, retries=args.retries, progress=args.progress,
        )
    except (TypeError, ValueError, OSError, ImportError) as exc:
        return fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    print(format_records(records))
    n_bad = sum(not r.ok for r in records)
    where = f"; records in {args.out}" if args.out else ""
    print(f"{len(records)} task(s), {n_bad} failed{where}", file=sys.stderr)
    for r in records:
        if not r.ok:
            last = r.error.strip().splitlines()[-1] if r.error else ""
            print(f"failed: {r.settings}: {last}", file=sys.stderr)
    return 1 if n_bad else 0


def register_cli(subparsers):
    """Add the ``sweep`` sub-command to ``python -m ebm_ref``."""
    from .tasks import TASKS

    p = subparsers.add_parser(
        "sweep",
        help="run a built-in task over a grid of settings (local processes or a Dask cluster)",
        description="Run a built-in task over a grid of settings from a TOML or JSON spec file "
        f"(tasks: {', '.join(TASKS)}).",
    )
    p.add_argument("spec", help="spec file (.toml or .json) with task, seed and grid")
    p.add_argument("--executor", default="local", help="'local' (a local process pool) or a Dask scheduler "
                   "address tcp://host:port (default: local)")
    p.add_argument("--workers", type=int, default=None, help="local worker processes; with Dask, the most "
                   "tasks in flight (default: the number of cores)")
    p.add_argument("--out", default=None, help="folder for durable per-task records and the manifest "
                   "(default: none, records kept in memory only)")
    p.add_argument("--resume", action="store_true", help="keep the finished tasks in --out, run the rest "
                   "(default: off)")
    p.add_argument("--retries", type=int, default=0, help="resubmissions of a task lost with its worker "
                   "(default: 0)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: when stderr is a terminal)")
    p.set_defaults(func=_cmd_sweep)
    return p
