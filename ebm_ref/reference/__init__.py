r"""Reference-value files: ebm_ref's numbers for a model and inputs, on disk.

A reference file is one ``.npz`` holding

* ``param/<name>``: the model parameters, in the layouts of docs/models.md;
* ``fixed/<name>``: fixed, non-parameter array attributes (e.g. the
  ``means`` of a ``GaussianMixture``);
* ``input/x`` and, when the mixed derivatives are requested, ``input/v``,
  ``input/c``, ``input/weights``;
* ``value/<quantity>`` (arrays) or ``value/<quantity>/<param>`` (dicts);
* ``manifest``: a JSON text with the model class, its scalar fixed
  attributes, the formula version, the ebm_ref version, the dtype, the
  quantities in the order they are compared and a checksum of the entries.

Another implementation computes the same quantities at the stored inputs
and hands them to :func:`compare`, which names the first mismatching one.
The command line writes a file without Python code::

    python -m ebm_ref reference rbm --sizes 6 3 --seed 0 -o rbm.npz

The modules: ``_schema`` (what a file holds and the checks on reading),
``_format`` (``save``/``load``), ``_compare``, ``_registry`` (which models
a file can hold and how they are rebuilt) and ``_cli`` (the sub-command).
"""

from __future__ import annotations

from ._cli import register_cli
from ._compare import ReferenceComparison, compare
from ._format import Reference, load, save
from ._registry import MODEL_NAMES, build_model
from ._schema import FILE_FORMAT, FORMULA_VERSION, QUANTITIES, ReferenceFileError

__all__ = [
    "QUANTITIES",
    "FORMULA_VERSION",
    "FILE_FORMAT",
    "MODEL_NAMES",
    "Reference",
    "ReferenceComparison",
    "ReferenceFileError",
    "save",
    "load",
    "compare",
    "build_model",
    "register_cli",
]
