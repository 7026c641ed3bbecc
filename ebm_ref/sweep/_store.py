"""Durable sweep results: one folder, a manifest and one record per task.

Layout of ``out``::

    out/manifest.json          the sweep's identity, every task's settings, runs
    out/tasks/<id>.json        one finished task: settings, status, scalars, error
    out/tasks/<id>.npz         its arrays (only when it returned arrays)

Every file is written to a temporary name in the same folder, flushed to
disk and renamed over its final name (``os.replace``, atomic on POSIX and
Windows), so a reader, or a sweep killed at any instant, sees either the
old file or the whole new one. A task's ``.json`` is written after its
``.npz``: the JSON is the commit mark, and a task counts as finished only
when its JSON says so. No file is a pickle: ``.npz`` is read with
``allow_pickle=False`` and JSON holds only text, numbers and lists.

Float scalars that are not finite are written as the strings ``"NaN"``,
``"Infinity"`` and ``"-Infinity"`` (JSON has no such numbers); the
``types`` entry of the record restores every scalar's Python type.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import pathlib
import platform
import socket
import sys
import tempfile

import numpy as np

__all__ = ["FORMAT", "Store", "environment", "read_record_file"]

FORMAT = "ebm_ref.sweep/1"


def environment():
    """Versions and machine of the current process (for the manifest)."""
    import numba
    import scipy

    from .. import __version__

    return {
        "ebm_ref": __version__,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "numba": numba.__version__,
        "scipy": scipy.__version__,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "host": socket.gethostname(),
        "cpu_count": os.cpu_count(),
    }


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _atomic_write(path, write):
    """Call ``write(fileobj)`` on a temporary file, then rename it to ``path``."""
    path = pathlib.Path(path)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _write_json(path, obj):
    text = json.dumps(obj, indent=1, allow_nan=False, ensure_ascii=False) + "\n"
    _atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def _scalar_to_json(v):
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    return v


def _scalar_from_json(v, kind):
    if kind == "float":
        return float(v)  # float("NaN"), float("Infinity") parse
    if kind == "int":
        return int(v)
    if kind == "bool":
        return bool(v)
    return str(v)


def _kind(v):
    return {bool: "bool", int: "int", float: "float", str: "str"}[type(v)]


def _seed_json(ss):
    ent = ss.entropy
    if isinstance(ent, (list, tuple, np.ndarray)):
        ent = [int(e) for e in ent]
    else:
        ent = int(ent)
    return {"entropy": ent, "spawn_key": [int(k) for k in ss.spawn_key]}


def read_record_file(path):
    """Parse one ``tasks/<id>.json`` (and its ``.npz``); ``None`` if unreadable."""
    path = pathlib.Path(path)
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        return None
    results = {k: _scalar_from_json(v, meta["types"][k]) for k, v in meta.get("results", {}).items()}
    arrays = meta.get("arrays", [])
    if arrays:
        try:
            with np.load(path.with_suffix(".npz"), allow_pickle=False) as data:
                loaded = {k: data[k] for k in arrays}
        except (OSError, ValueError, KeyError):
            return None
        results.update(loaded)
    order = meta.get("order", list(results))
    meta["results"] = {k: results[k] for k in order}
    return meta


class Store:
    """The ``out`` folder of one sweep (see the module docstring)."""

    def __init__(self, root, identity, manifest):
        self.root = root
        self.tasks_dir = root / "tasks"
        self.identity = identity
        self.manifest = manifest

    # ------------------------------------------------------------ opening
    @classmethod
    def open(cls, out, fn_name, ss, tasks, ids, resume, run_info):
        """Check ``out`` for this sweep; refuse a foreign folder.

        Writes nothing: :meth:`begin` does, once the executor is ready too.
        """
        if not isinstance(out, (str, os.PathLike)):
            raise TypeError(f"`out` must be a folder path (str or path-like); got {type(out).__name__}.")
        root = pathlib.Path(out)
        identity = {"format": FORMAT, "fn": fn_name, "seed": _seed_json(ss)}
        mpath = root / "manifest.json"
        manifest = None
        if root.exists():
            if not root.is_dir():
                raise ValueError(f"`out` {str(root)!r} exists and is not a folder.")
            if mpath.exists():
                try:
                    manifest = json.loads(mpath.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    manifest = None
                if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
                    raise ValueError(
                        f"`out` {str(root)!r} has a manifest.json that is not an ebm_ref sweep's; "
                        "choose another folder."
                    )
                theirs = {k: manifest.get(k) for k in identity}
                if theirs != identity:
                    diff = [k for k in identity if theirs[k] != identity[k]]
                    raise ValueError(
                        f"`out` {str(root)!r} holds a different sweep (its {' and '.join(diff)} "
                        f"differ: {', '.join(f'{k}={theirs[k]!r}' for k in diff)}); choose another folder."
                    )
            elif any(root.iterdir()):
                raise ValueError(
                    f"`out` {str(root)!r} is a non-empty folder without a sweep manifest; "
                    "choose an empty or new folder."
                )
        store = cls(root, identity, manifest)
        if manifest is not None and not resume:
            n_done = len(store.finished_ids())
            if n_done:
                raise ValueError(
                    f"`out` {str(root)!r} already holds {n_done} finished task(s) of this sweep; "
                    "pass resume=True (--resume) to keep them, or choose another folder."
                )
        store._pending = (tasks, ids, run_info)
        return store

    def begin(self):
        """Create the folder and write the manifest (after every check passed)."""
        tasks, ids, run_info = self._pending
        manifest = self.manifest
        identity = self.identity
        self.root.mkdir(parents=True, exist_ok=True)
        if manifest is None:
            manifest = dict(identity)
            manifest.update({"created": _now(), "ebm_ref_version": run_info["environment"]["ebm_ref"],
                             "tasks": {}, "runs": []})
        known = manifest.setdefault("tasks", {})
        for i, s in zip(ids, tasks):
            known.setdefault(i, s)
        manifest.setdefault("runs", []).append(run_info)
        self.manifest = manifest
        # the manifest first: a folder is never left non-empty without one
        _write_json(self.root / "manifest.json", manifest)
        self.tasks_dir.mkdir(exist_ok=True)

    # ------------------------------------------------------------ records
    def finished_ids(self):
        """Ids of tasks whose record says they finished without error."""
        done = set()
        if not self.tasks_dir.is_dir():
            return done
        for p in self.tasks_dir.glob("*.json"):
            if p.name.startswith("."):
                continue
            try:
                meta = json.loads(p.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(meta, dict) and meta.get("status") == "ok" and meta.get("task") == p.stem:
                done.add(p.stem)
        return done

    def read(self, tid):
        """The record file of task ``tid`` as a dict, or ``None``."""
        return read_record_file(self.tasks_dir / f"{tid}.json")

    def write(self, tid, settings, payload):
        """Write one task's record: arrays first, then the JSON commit mark."""
        results = payload.get("results") or {}
        arrays = {k: v for k, v in results.items() if isinstance(v, np.ndarray)}
        scalars = {k: v for k, v in results.items() if not isinstance(v, np.ndarray)}
        if arrays:
            _atomic_write(self.tasks_dir / f"{tid}.npz", lambda fh: np.savez(fh, **arrays))
        meta = {
            "format": FORMAT,
            "task": tid,
            "status": "error" if payload.get("error") else "ok",
            "settings": settings,
            "order": list(results),
            "results": {k: _scalar_to_json(v) for k, v in scalars.items()},
            "types": {k: _kind(v) for k, v in scalars.items()},
            "arrays": list(arrays),
            "error": payload.get("error"),
            "seconds": payload.get("seconds"),
            "attempts": payload.get("attempts"),
            "host": payload.get("host"),
            "pid": payload.get("pid"),
            "finished": _now(),
        }
        _write_json(self.tasks_dir / f"{tid}.json", meta)
