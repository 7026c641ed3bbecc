"""The reference-file format: writing (``save``), reading and checking (``load``).

Every way a file can be wrong when read (not an archive, a damaged or
truncated archive, a missing or malformed manifest, an incompatible
version, a missing or mistyped entry, a checksum that does not match) is
one exception, :class:`ReferenceFileError`, whose message names the file
and what is wrong: a user comparing numbers from another machine needs to
know that the file, not their code, is at fault.
"""

from __future__ import annotations

import json
import os
import pathlib
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .. import __version__
from .._validation import check_batch
from ._registry import build_model, fixed_attributes
from ._schema import (
    DICT_QUANTITIES,
    EXTRA_INPUT,
    FILE_FORMAT,
    FORMULA_VERSION,
    QUANTITIES,
    ReferenceFileError,
    check_entries,
    check_manifest,
    checksum,
    read_entries,
)

@dataclass
class Reference:
    """Contents of a reference file (see :func:`load`).

    Attributes
    ----------
    manifest : dict
    params : dict of str to ndarray
    fixed : dict
        Fixed attributes (arrays and scalars).
    inputs : dict of str to ndarray
        ``x`` and, when stored, ``v``, ``c``, ``weights``.
    values : dict
        Quantity name -> ndarray, or dict of ndarrays for parameter
        gradients, in manifest order.
    path : str or None
        The file it was read from.
    """

    manifest: dict
    params: dict
    fixed: dict
    inputs: dict
    values: dict
    path: str | None = None

    @property
    def x(self):
        """The stored input batch."""
        return self.inputs["x"]

    def model(self):
        """Rebuild the ebm_ref model the values were computed with.

        Raises
        ------
        ReferenceFileError
            If the stored parameters do not make a valid model.
        """
        try:
            return build_model(self.manifest["model"], self.params, self.fixed)
        except (ValueError, TypeError, KeyError) as exc:
            raise ReferenceFileError(
                f"reference file {self.path!r}: its parameters do not make a valid "
                f"{self.manifest.get('model')}: {exc}"
            ) from None


# ---------------------------------------------------------------------- save
def _compute(model, name, x, w, v, c):
    if name == "energy":
        return model.energy(x)
    if name == "grad_x":
        return model.grad_x(x)
    if name == "hessian_diag":
        return model.hessian_diag(x)
    if name == "grad_params":
        return model.grad_params(x, w)
    if name == "grad_params_of_grad_x":
        return model.grad_params_of_grad_x(x, v)
    if name == "grad_params_of_hessian_diag":
        return model.grad_params_of_hessian_diag(x, c)
    from ..exact import log_partition

    return np.asarray(log_partition(model), dtype=np.float64)


def destination(path):
    """The path ``save`` writes for ``path``: ``.npz`` appended when it has no suffix.

    Any other suffix is refused rather than turned into ``name.txt.npz``.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`path` must be a str or path-like; got {type(path).__name__}.")
    p = pathlib.Path(os.fspath(path))
    if p.name in ("", ".", ".."):
        raise ValueError(f"`path` {str(path)!r} names no file.")
    if p.name.endswith(".npz"):  # also ".npz" alone, which Path sees as a dotfile without suffix
        return p
    if p.suffix == "":
        p = p.with_name(p.name + ".npz")
    else:
        raise ValueError(
            f"`path` {str(path)!r} must end in .npz (a name without a suffix gets .npz appended); "
            f"got the suffix {p.suffix!r}."
        )
    return p


def check_writable(p, overwrite):
    """Refuse what ``save`` must never do: clobber a file, write through a link."""
    if p.is_symlink():
        raise ValueError(f"`path` {str(p)!r} is a symbolic link; refusing to write through it.")
    if not p.parent.is_dir():
        raise FileNotFoundError(f"`path` {str(p)!r}: the folder {str(p.parent)!r} does not exist.")
    if p.is_dir():
        raise IsADirectoryError(f"`path` {str(p)!r} is a folder.")
    if p.exists() and not overwrite:
        raise FileExistsError(f"`path` {str(p)!r} exists; pass overwrite=True to replace it.")


def _write(p, arrays, overwrite):
    """Write to a temporary file beside ``p``, then move it into place.

    Without ``overwrite`` the move is a hard link, which fails if ``p``
    appeared meanwhile; with it, ``os.replace`` swaps the directory entry
    (a link placed there meanwhile is replaced, its target never written).
    A half-written file is never left under the final name.
    """
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        mask = os.umask(0o022)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        if overwrite:
            os.replace(tmp, p)
            return
        try:
            os.link(tmp, p)
        except FileExistsError:
            raise FileExistsError(f"`path` {str(p)!r} exists; pass overwrite=True to replace it.") from None
        except OSError:  # no hard links on this file system
            check_writable(p, False)
            os.replace(tmp, p)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def save(path, model, x, quantities=QUANTITIES, *, seed=0, overwrite=False):
    r"""Write ebm_ref's reference values for ``model`` at ``x`` to an ``.npz`` file.

    Parameters
    ----------
    path : str or path-like
        Destination. It must end in ``.npz``; a name without a suffix gets
        ``.npz`` appended; any other suffix is refused.
    model : EnergyModel
    x : array_like of shape (n, d)
        Inputs (for binary models any real values: the continuous
        extension; states are the usual choice).
    quantities : sequence of str, default all of ``QUANTITIES``
        Which values to store. ``log_partition`` is skipped silently when
        ``ebm_ref.exact`` cannot compute it for this model (it is then
        absent from ``quantities`` and listed with the reason under
        ``skipped`` in the manifest); naming it alone and failing raises.
    seed : int, default 0
        Seeds ``weights`` ~ U(0.5, 1.5), ``v`` and ``c`` ~ N(0, 1), stored
        as inputs.
    overwrite : bool, default False
        Replace an existing file. A symbolic link is refused either way.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    ValueError
        For an unknown quantity name, a suffix other than ``.npz``, or a
        ``path`` that is a symbolic link.
    FileExistsError
        If the file exists and ``overwrite`` is false.
    FileNotFoundError
        If the folder of ``path`` does not exist.

    Notes
    -----
    Values are float64 and stored bit for bit, so :func:`load` returns
    exactly what ebm_ref computed. The manifest records
    ``formula_version`` (:data:`FORMULA_VERSION`), ``ebm_ref_version``,
    ``model`` (class name), scalar fixed attributes, ``quantities`` and a
    SHA-256 ``checksum`` of every other entry. The file is written under a
    temporary name and moved into place, so a crash never leaves a
    truncated file under ``path``.
    """
    p = destination(path)
    if isinstance(quantities, str):
        raise TypeError("`quantities` must be a sequence of quantity names, not one string.")
    quantities = list(quantities)
    unknown = [q for q in quantities if q not in QUANTITIES]
    if unknown:
        raise ValueError(f"`quantities` must be among {QUANTITIES}; got unknown {unknown}.")
    if len(set(quantities)) != len(quantities):
        raise ValueError(f"`quantities` names a quantity twice: {quantities}.")
    check_writable(p, overwrite)
    x2d, _ = check_batch(x, model.n_features, "x", f"a model with {model.n_features} features")
    rng = np.random.default_rng(seed)
    n, d = x2d.shape
    extra = {"weights": rng.uniform(0.5, 1.5, size=n), "v": rng.standard_normal((n, d))}
    extra["c"] = rng.standard_normal((n, d))
    arrays = {"input/x": x2d}
    for q in quantities:
        if q in EXTRA_INPUT:
            arrays[f"input/{EXTRA_INPUT[q]}"] = extra[EXTRA_INPUT[q]]
    for k, a in model.params.items():
        arrays[f"param/{k}"] = np.asarray(a, dtype=np.float64)
    fixed_arrays, fixed_scalars = fixed_attributes(model)
    for k, a in fixed_arrays.items():
        arrays[f"fixed/{k}"] = a
    stored, skipped = [], {}
    for q in quantities:
        try:
            val = _compute(model, q, x2d, extra["weights"], extra["v"], extra["c"])
        except (ValueError, TypeError, ImportError, AttributeError) as exc:
            if q == "log_partition" and len(quantities) > 1:
                skipped[q] = f"{type(exc).__name__}: {exc}"
                continue
            raise
        if isinstance(val, Mapping):
            for k, a in val.items():
                arrays[f"value/{q}/{k}"] = np.asarray(a, dtype=np.float64)
        else:
            arrays[f"value/{q}"] = np.asarray(val, dtype=np.float64)
        stored.append(q)
    manifest = {
        "format": FILE_FORMAT,
        "model": type(model).__name__,
        "domain": model.domain,
        "n_features": int(model.n_features),
        "params": list(model.params),
        "fixed": fixed_scalars,
        "fixed_arrays": list(fixed_arrays),
        "quantities": stored,
        "skipped": skipped,
        "formula_version": FORMULA_VERSION,
        "ebm_ref_version": __version__,
        "dtype": "float64",
        "seed": int(seed),
        "checksum": checksum(arrays),
    }
    arrays["manifest"] = np.array(json.dumps(manifest, sort_keys=True))
    _write(p, arrays, overwrite)
    return p


# ---------------------------------------------------------------------- load
def load(path):
    """Read and check a reference file written by :func:`save`.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    Reference

    Raises
    ------
    ReferenceFileError
        For anything but an intact reference file of a readable version:
        not an ``.npz`` archive, a damaged or truncated archive, an entry
        that needs pickle, a missing or malformed manifest, an unknown
        format or formula version, a missing or mistyped entry, or a
        checksum that does not match. The message names the file.
    OSError
        If the file cannot be opened (missing, a folder, no permission).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`path` must be a str or path-like; got {type(path).__name__}.")
    name = os.fspath(path)
    data = read_entries(name)
    manifest = check_manifest(name, data)
    check_entries(name, manifest, data)
    params = {k: data[f"param/{k}"] for k in manifest["params"]}
    fixed = dict(manifest["fixed"])
    for k in manifest["fixed_arrays"]:
        fixed[k] = data[f"fixed/{k}"]
    inputs = {k.split("/", 1)[1]: data[k] for k in sorted(data) if k.startswith("input/")}
    values = {}
    for q in manifest["quantities"]:
        if q in DICT_QUANTITIES:
            values[q] = {k: data[f"value/{q}/{k}"] for k in manifest["params"]}
        else:
            values[q] = data[f"value/{q}"]
    return Reference(manifest, params, fixed, inputs, values, path=name)
