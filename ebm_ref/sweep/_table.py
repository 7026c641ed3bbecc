"""Records -> a NumPy structured array (one row per task)."""

from __future__ import annotations

import numpy as np

__all__ = ["table"]


def _column(name, values):
    """(dtype spec, filled values) of one column, or raise ValueError."""
    present = [v for v in values if v is not None]
    missing = len(present) < len(values)
    if not present:
        return None
    arrays = [isinstance(v, (np.ndarray, list, tuple)) for v in present]
    if any(arrays):
        if not all(arrays):
            raise ValueError(f"`records` column {name!r} mixes arrays and scalars.")
        arrs = [np.asarray(v) for v in present]
        shapes = {a.shape for a in arrs}
        if len(shapes) != 1 or any(a.dtype.kind not in "biuf" for a in arrs):
            return None  # arrays of different shapes: left out (see table's docstring)
        dt = np.result_type(*arrs)
        if missing:
            dt = np.float64
        shape = shapes.pop()
        fill = np.full(shape, np.nan) if missing else None
        return (dt, shape), [np.asarray(v, dtype=dt) if v is not None else fill for v in values]
    kinds = {type(v) for v in present}
    if kinds <= {bool} and not missing:
        return np.bool_, values
    if kinds <= {int} and not missing:
        return np.int64, values
    if kinds <= {bool, int, float}:
        if bool in kinds and kinds != {bool}:
            raise ValueError(f"`records` column {name!r} mixes booleans and numbers.")
        return np.float64, [np.nan if v is None else float(v) for v in values]
    if kinds <= {str}:
        width = max(1, max(len(v) for v in present))
        return f"U{width}", ["" if v is None else v for v in values]
    raise ValueError(f"`records` column {name!r} mixes values of types {sorted(k.__name__ for k in kinds)}.")


def table(records):
    """The records of a sweep as a NumPy structured array, one row per task.

    Parameters
    ----------
    records : list of Record or of dict
        What :func:`run` or :func:`load` returned (plain dicts work too).

    Returns
    -------
    numpy.ndarray
        Structured, with one field per setting and result name in order of
        first appearance, then ``ok`` (bool: the task finished without
        error). Field types: ``bool``, ``int64``, ``float64``, ``U<width>``
        for strings, and fixed-shape sub-arrays for array results that have
        the same shape in every record.

    Notes
    -----
    The rules for a careful reader of the table:

    * A column with a missing entry (a failed task, a result some tasks did
      not return, a ``None`` setting) becomes ``float64`` with NaN there
      (strings: ``""``); a column of ints and floats becomes ``float64``.
    * Array results whose shape differs between records (e.g. per-chain
      weights of runs with different chain counts) are left out: read them
      from the records.
    * The table is built from the values alone (no timings), so equal
      results give byte-identical tables (``a.tobytes() == b.tobytes()``).

    Raises
    ------
    TypeError
        If ``records`` is not a list of dicts.
    ValueError
        If a column mixes kinds (strings and numbers, booleans and numbers,
        arrays and scalars) or a name is ``"ok"``.
    """
    if not isinstance(records, (list, tuple)) or not all(isinstance(r, dict) for r in records):
        raise TypeError(f"`records` must be a list of records (dicts); got {type(records).__name__}.")
    names = []
    for r in records:
        for k in r:
            if k not in names:
                names.append(k)
    if "ok" in names:
        raise ValueError("`records` has a setting or result named 'ok'; the table reserves that name.")
    fields, cols = [], []
    for name in names:
        col = _column(name, [r.get(name) for r in records])
        if col is None:
            continue
        spec, vals = col
        fields.append((name, *spec) if isinstance(spec, tuple) else (name, spec))
        cols.append(vals)
    fields.append(("ok", np.bool_))
    cols.append([getattr(r, "ok", True) for r in records])
    out = np.zeros(len(records), dtype=fields)
    for (name, *_), vals in zip(fields, cols):
        for i, v in enumerate(vals):
            out[name][i] = v
    return out
