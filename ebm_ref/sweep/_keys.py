"""Task identity: the canonical encoding of a settings dict and the task seed.

Why an encoding of the settings and not the task's position: a task must
draw the same random numbers whichever worker runs it, in whatever order,
after a retry, on resume, and when the grid is reordered or extended. Its
position in the grid changes in all of those; its settings do not.

Encoding (``canonical``): JSON with sorted keys, no spaces, and every value
tagged with its kind, so that equal settings give equal bytes and different
settings give different bytes:

* ``bool`` and ``numpy.bool_`` -> ``["b", true]``;
* integers (Python or NumPy) -> ``["i", "<decimal>"]``;
* floats (Python or NumPy float16/32/64) -> ``["f", float.hex(x)]``
  (exact, no repr rounding; ``-0.0`` and ``0.0`` differ; NaN is refused:
  NaN != NaN, so it cannot name a task);
* ``str`` -> ``["s", text]``; ``None`` -> ``["n"]``;
* lists and tuples (nested) -> ``["l", [...]]``.

An ``int`` 4 and a ``float`` 4.0 are different settings (a task may treat
them differently); ``numpy.int64(4)`` and ``4`` are the same one.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers

import numpy as np

__all__ = ["canonical", "task_id", "task_seed", "plain_settings", "check_settings"]


def _encode(value, where):
    if isinstance(value, (bool, np.bool_)):
        return ["b", bool(value)]
    if isinstance(value, numbers.Integral):
        return ["i", str(int(value))]
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v):
            raise ValueError(f"`grid` setting {where} is NaN; a task's settings must compare equal to themselves.")
        return ["f", v.hex()]
    if isinstance(value, str):
        return ["s", value]
    if value is None:
        return ["n"]
    if isinstance(value, (list, tuple)):
        return ["l", [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)]]
    raise TypeError(
        f"`grid` setting {where} must be a bool, int, float, str, None or a list of them; "
        f"got {type(value).__name__}."
    )


def _plain(value):
    """JSON-ready plain Python value (NumPy scalars unwrapped, tuples -> lists)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def check_settings(settings, where="`grid`"):
    """A settings dict with str keys and encodable values; returns a plain copy."""
    if not isinstance(settings, dict):
        raise TypeError(f"{where} entries must be dicts of settings; got {type(settings).__name__}.")
    for k, v in settings.items():
        if not isinstance(k, str):
            raise TypeError(f"{where} setting names must be str; got {k!r}.")
        _encode(v, repr(k))
    return {k: _plain(v) for k, v in settings.items()}


def plain_settings(settings):
    """Settings as plain Python values (what records and files hold)."""
    return {k: _plain(v) for k, v in settings.items()}


def canonical(settings):
    """Canonical bytes of a settings dict (see the module docstring)."""
    enc = {k: _encode(v, repr(k)) for k, v in settings.items()}
    return json.dumps(enc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _digest(settings):
    return hashlib.sha256(b"ebm_ref.sweep/1\0" + canonical(settings)).digest()


def task_id(settings):
    """Hex name of a task (first 20 hex digits of the SHA-256 of its encoding).

    Used for its record files; 80 bits make a collision between two tasks of
    one sweep vanishingly unlikely (about n^2 / 2^81 for n tasks).
    """
    return _digest(settings).hex()[:20]


def task_seed(seed, settings):
    """The SeedSequence of the task with ``settings`` in a sweep seeded by ``seed``.

    ``SeedSequence(seed.entropy, spawn_key=seed.spawn_key + words)``, where
    ``words`` are the first four 32-bit words of the SHA-256 of the
    canonical encoding: 128 bits of the settings enter the seed, nothing
    else does.
    """
    d = _digest(settings)
    words = tuple(int.from_bytes(d[4 * i : 4 * i + 4], "little") for i in range(4))
    return np.random.SeedSequence(seed.entropy, spawn_key=tuple(seed.spawn_key) + words)
