"""What a reference file must hold, and the checks ``load`` runs on it.

Each check raises :class:`ReferenceFileError` naming the file and the first
thing wrong with it; none lets a NumPy, zip or JSON exception through.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
import zlib

import numpy as np

from ..energies import EnergyModel
from ._registry import MODEL_NAMES

#: Version of the formulas of docs/models.md the values follow; bumped when a
#: formula or a parameter layout changes.
FORMULA_VERSION = 1
#: Written by this version; version 1 (no checksum) is still read.
FILE_FORMAT = "ebm_ref.reference/2"
_READABLE_FORMATS = ("ebm_ref.reference/1", FILE_FORMAT)

# The six primitives of every EnergyModel, in the order they are compared.
PRIMITIVE_QUANTITIES = EnergyModel.PRIMITIVES
QUANTITIES = PRIMITIVE_QUANTITIES + ("log_partition",)
DICT_QUANTITIES = ("grad_params", "grad_params_of_grad_x", "grad_params_of_hessian_diag")
# Which stored input each quantity needs besides x.
EXTRA_INPUT = {"grad_params": "weights", "grad_params_of_grad_x": "v", "grad_params_of_hessian_diag": "c"}


class ReferenceFileError(ValueError):
    """A file that is not a readable ebm_ref reference file.

    The message names the file and what is wrong with it. A subclass of
    ``ValueError``, so code written for the earlier ``ValueError`` still
    catches it.
    """



def checksum(arrays):
    """SHA-256 over every entry but the manifest: name, dtype, shape, bytes."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        if name == "manifest":
            continue
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(a.tobytes())
    return "sha256:" + h.hexdigest()



def _error(name, what):
    return ReferenceFileError(f"{name!r} is not an ebm_ref reference file this version can read: {what}.")


def read_entries(name):
    """Every entry of the ``.npz`` archive ``name``, read eagerly.

    Eagerly, so that a damaged member is reported here as a
    :class:`ReferenceFileError` and not later from inside NumPy.
    """
    with open(name, "rb") as fh:  # a missing file stays an OSError
        head = fh.read(4)
    if not head:
        raise _error(name, "the file is empty")
    if head not in (b"PK\x03\x04", b"PK\x05\x06"):  # a zip's first member, or an empty zip
        raise _error(name, "not a NumPy .npz (zip) archive")
    entries = {}
    key = None
    try:
        with np.load(name, allow_pickle=False) as data:
            for key in data.files:
                entries[key] = data[key]
    except ValueError as exc:
        if key is None:
            raise _error(name, f"the archive cannot be read ({exc})") from None
        if "pickle" in str(exc):
            raise _error(name, f"entry {key!r} is an object array, which only pickle can read") from None
        raise _error(name, f"entry {key!r} cannot be read ({exc})") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError, NotImplementedError) as exc:
        where = "the archive" if key is None else f"entry {key!r}"
        raise _error(name, f"{where} is damaged or truncated ({type(exc).__name__}: {exc})") from None
    return entries


# Manifest fields and their JSON types (bool is not an int here).
_FIELDS = (
    ("model", str),
    ("domain", str),
    ("n_features", int),
    ("params", list),
    ("fixed", dict),
    ("fixed_arrays", list),
    ("quantities", list),
    ("skipped", dict),
    ("formula_version", int),
    ("ebm_ref_version", str),
    ("dtype", str),
    ("seed", int),
)
_STRING_LISTS = ("params", "fixed_arrays", "quantities")


def _type_name(value):
    return {dict: "an object", list: "a list", str: "a string", int: "an integer"}.get(type(value), type(value).__name__)


def check_manifest(name, data):
    """The manifest of ``data`` as a dict, after checking every field."""
    if "manifest" not in data:
        raise _error(name, "no 'manifest' entry")
    raw = data["manifest"]
    if not isinstance(raw, np.ndarray) or raw.ndim != 0 or raw.dtype.kind != "U":
        raise _error(name, "the 'manifest' entry is not a text")
    try:
        manifest = json.loads(str(raw))
    except ValueError as exc:
        raise _error(name, f"the manifest is not JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise _error(name, f"the manifest is {_type_name(manifest)}, not a JSON object")
    fmt = manifest.get("format")
    if not isinstance(fmt, str):
        raise _error(name, "manifest field 'format' is missing or not a string")
    if fmt not in _READABLE_FORMATS:
        if fmt.startswith("ebm_ref.reference/"):
            raise _error(name, f"format {fmt!r} is not readable by this ebm_ref (it reads {', '.join(_READABLE_FORMATS)})")
        raise _error(name, f"manifest format {fmt!r} is not an ebm_ref reference format")
    fields = _FIELDS + ((("checksum", str),) if fmt == FILE_FORMAT else ())
    for key, kind in fields:
        if key not in manifest:
            raise _error(name, f"manifest field {key!r} is missing")
        value = manifest[key]
        if isinstance(value, bool) or not isinstance(value, kind):
            raise _error(name, f"manifest field {key!r} is {_type_name(value)}; expected {_type_name(kind())}")
    for key in _STRING_LISTS:
        items = manifest[key]
        if not all(isinstance(s, str) for s in items) or len(set(items)) != len(items):
            raise _error(name, f"manifest field {key!r} must be a list of distinct strings; got {items!r}")
    if manifest["formula_version"] != FORMULA_VERSION:
        raise _error(
            name,
            f"formula_version {manifest['formula_version']} is not this ebm_ref's {FORMULA_VERSION} "
            "(the formulas or layouts changed; rewrite the file)",
        )
    if manifest["dtype"] != "float64":
        raise _error(name, f"manifest dtype {manifest['dtype']!r}; reference files are float64")
    if manifest["model"] not in MODEL_NAMES:
        raise _error(name, f"unknown model {manifest['model']!r} (known: {', '.join(MODEL_NAMES)})")
    if manifest["n_features"] < 1:
        raise _error(name, f"manifest field 'n_features' is {manifest['n_features']}; expected >= 1")
    unknown = [q for q in manifest["quantities"] if q not in QUANTITIES]
    if unknown:
        raise _error(name, f"unknown quantities {unknown} in the manifest (known: {', '.join(QUANTITIES)})")
    return manifest


def _entry(name, data, key, shape=None):
    if key not in data:
        raise _error(name, f"entry {key!r} is missing")
    a = data[key]
    if not isinstance(a, np.ndarray) or a.dtype != np.float64:
        kind = a.dtype if isinstance(a, np.ndarray) else type(a).__name__
        raise _error(name, f"entry {key!r} is {kind}; expected a float64 array")
    if shape is not None and a.shape != shape:
        raise _error(name, f"entry {key!r} has shape {a.shape}; expected {shape}")
    return a


def check_entries(name, manifest, data):
    """Every entry the manifest announces exists, is float64 and has its
    shape; then the checksum (format 2) covers all entries."""
    d = manifest["n_features"]
    x = _entry(name, data, "input/x")
    if x.ndim != 2 or x.shape[1] != d or x.shape[0] < 1:
        raise _error(name, f"entry 'input/x' has shape {x.shape}; expected (n, {d}) with n >= 1")
    n = x.shape[0]
    params = {k: _entry(name, data, f"param/{k}") for k in manifest["params"]}
    for k in manifest["fixed_arrays"]:
        _entry(name, data, f"fixed/{k}")
    shapes = {"energy": (n,), "grad_x": (n, d), "hessian_diag": (n, d), "log_partition": ()}
    extra_shapes = {"weights": (n,), "v": (n, d), "c": (n, d)}
    for q in manifest["quantities"]:
        if q in DICT_QUANTITIES:
            _entry(name, data, f"input/{EXTRA_INPUT[q]}", extra_shapes[EXTRA_INPUT[q]])
            for k, p in params.items():
                _entry(name, data, f"value/{q}/{k}", p.shape)
        else:
            _entry(name, data, f"value/{q}", shapes[q])
    if manifest["format"] == FILE_FORMAT and checksum(data) != manifest["checksum"]:
        raise _error(name, "checksum mismatch (an entry was changed or damaged after the file was written)")
