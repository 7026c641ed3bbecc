r"""Reference-value files: ebm_ref's numbers for a model and inputs, on disk.

A reference file is one ``.npz`` holding

* ``param/<name>``: the model parameters, in the layouts of docs/models.md;
* ``fixed/<name>``: fixed, non-parameter array attributes (e.g. the
  ``means`` of a ``GaussianMixture``);
* ``input/x`` and, when the mixed derivatives are requested, ``input/v``,
  ``input/c``, ``input/weights``;
* ``value/<quantity>`` (arrays) or ``value/<quantity>/<param>`` (dicts);
* ``manifest``: a JSON text with the model class, its scalar fixed
  attributes, the formula version, the ebm_ref version, the dtype and the
  quantities in the order they are compared.

Quantities: ``energy``, ``grad_x``, ``hessian_diag``, ``grad_params``
(weighted by ``input/weights``), ``grad_params_of_grad_x`` (with
``input/v``), ``grad_params_of_hessian_diag`` (with ``input/c``),
``log_partition`` (where :func:`ebm_ref.exact.log_partition` applies).

Another implementation computes the same quantities at the stored inputs
and hands them to :func:`compare`, which names the first mismatching one.
The command line writes a file without Python code::

    python -m ebm_ref reference rbm --sizes 6 3 --seed 0 -o rbm.npz
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from . import __version__
from .testing._compare import PRIMITIVES

__all__ = [
    "QUANTITIES",
    "FORMULA_VERSION",
    "Reference",
    "ReferenceComparison",
    "save",
    "load",
    "compare",
    "build_model",
    "register_cli",
]

#: Version of the formulas of docs/models.md the values follow; bumped when a
#: formula or a parameter layout changes.
FORMULA_VERSION = 1
FILE_FORMAT = "ebm_ref.reference/1"

QUANTITIES = PRIMITIVES + ("log_partition",)
_DICT_QUANTITIES = ("grad_params", "grad_params_of_grad_x", "grad_params_of_hessian_diag")

# Fixed (non-parameter) attributes needed to rebuild each model: scalars and
# strings go to the manifest, arrays to ``fixed/<name>``.
_FIXED = {
    "Ising": ("domain",),
    "GaussianMixture": ("means", "log_scales"),
    "MLPEnergy": ("sizes", "activation"),
    "LatentEnergy": ("z_grid", "beta"),
    "ConditionalLatentEnergy": ("sizes", "activation", "z_grid", "beta"),
}


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
    """

    manifest: dict
    params: dict
    fixed: dict
    inputs: dict
    values: dict

    @property
    def x(self):
        """The stored input batch."""
        return self.inputs["x"]

    def model(self):
        """Rebuild the ebm_ref model the values were computed with."""
        return build_model(self.manifest["model"], self.params, self.fixed)


@dataclass
class ReferenceComparison:
    """Report of :func:`compare`.

    Attributes
    ----------
    results : dict
        Quantity -> ``(max_rel_error, where, got, expected)`` in file order.
    first_mismatch : str or None
        Name of the first quantity (in file order) past ``rtol``.
    not_compared : list of str
        Stored quantities that ``outputs`` did not provide.
    rtol : float
    """

    results: dict = field(default_factory=dict)
    first_mismatch: str | None = None
    not_compared: list = field(default_factory=list)
    rtol: float = 1e-10

    @property
    def passed(self):
        return self.first_mismatch is None

    def __str__(self):
        lines = [f"reference comparison (rtol {self.rtol:g}):"]
        for name, (err, where, got, exp) in self.results.items():
            status = "ok" if err <= self.rtol else "MISMATCH"
            text = f"  {name}: max rel error {err:.3e} {status}"
            if err > self.rtol:
                text += f" at {where}: got {got!r}, expected {exp!r}"
            lines.append(text)
        if self.not_compared:
            lines.append(f"  not compared: {', '.join(self.not_compared)}")
        lines.append("  -> " + ("all match" if self.passed else f"first mismatch: {self.first_mismatch}"))
        return "\n".join(lines)

    def assert_ok(self):
        """Raise ``AssertionError`` naming the first mismatching quantity."""
        if not self.passed:
            raise AssertionError(f"first mismatching quantity: {self.first_mismatch}\n{self}")
        return self


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
    from .exact import log_partition

    return np.asarray(log_partition(model), dtype=np.float64)


def _fixed_attributes(model):
    arrays, scalars = {}, {}
    for attr in _FIXED.get(type(model).__name__, ()):
        if not hasattr(model, attr):
            continue
        val = getattr(model, attr)
        if isinstance(val, str):
            scalars[attr] = val
        elif np.ndim(val) == 0:
            f = float(val)
            scalars[attr] = "inf" if np.isinf(f) else f
        elif attr == "sizes":
            scalars[attr] = [int(s) for s in val]
        else:
            arrays[attr] = np.asarray(val, dtype=np.float64)
    return arrays, scalars


def save(path, model, x, quantities=QUANTITIES, *, seed=0):
    r"""Write ebm_ref's reference values for ``model`` at ``x`` to an ``.npz`` file.

    Parameters
    ----------
    path : str or path-like
        Destination (``.npz`` is appended by NumPy if missing).
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

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    ValueError
        For an unknown quantity name.

    Notes
    -----
    Values are float64 and stored bit for bit, so :func:`load` returns
    exactly what ebm_ref computed. The manifest records
    ``formula_version`` (:data:`FORMULA_VERSION`), ``ebm_ref_version``,
    ``model`` (class name), scalar fixed attributes and ``quantities``.
    """
    quantities = list(quantities)
    unknown = [q for q in quantities if q not in QUANTITIES]
    if unknown:
        raise ValueError(f"`quantities` must be among {QUANTITIES}; got unknown {unknown}.")
    x2d, _ = model._check_x(x)
    rng = np.random.default_rng(seed)
    n, d = x2d.shape
    w = rng.uniform(0.5, 1.5, size=n)
    v = rng.standard_normal((n, d))
    c = rng.standard_normal((n, d))
    arrays = {"input/x": x2d}
    if "grad_params" in quantities:
        arrays["input/weights"] = w
    if "grad_params_of_grad_x" in quantities:
        arrays["input/v"] = v
    if "grad_params_of_hessian_diag" in quantities:
        arrays["input/c"] = c
    for k, p in model.params.items():
        arrays[f"param/{k}"] = np.asarray(p, dtype=np.float64)
    fixed_arrays, fixed_scalars = _fixed_attributes(model)
    for k, a in fixed_arrays.items():
        arrays[f"fixed/{k}"] = a
    stored = []
    skipped = {}
    for q in quantities:
        try:
            val = _compute(model, q, x2d, w, v, c)
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
    }
    arrays["manifest"] = np.array(json.dumps(manifest, sort_keys=True))
    path = pathlib.Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    np.savez(path, **arrays)
    return path


# ---------------------------------------------------------------------- load
def load(path):
    """Read a reference file written by :func:`save`.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    Reference

    Raises
    ------
    ValueError
        If the file is not an ebm_ref reference file.
    """
    with np.load(path, allow_pickle=False) as data:
        if "manifest" not in data.files:
            raise ValueError(f"`path` {str(path)!r} is not an ebm_ref reference file (no manifest).")
        manifest = json.loads(str(data["manifest"]))
        if manifest.get("format") != FILE_FORMAT:
            raise ValueError(
                f"`path` {str(path)!r} has format {manifest.get('format')!r}; expected {FILE_FORMAT!r}."
            )
        params = {k: data[f"param/{k}"] for k in manifest["params"]}
        fixed = dict(manifest.get("fixed", {}))
        for k in manifest.get("fixed_arrays", []):
            fixed[k] = data[f"fixed/{k}"]
        inputs = {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith("input/")}
        values = {}
        for q in manifest["quantities"]:
            if q in _DICT_QUANTITIES:
                values[q] = {k: data[f"value/{q}/{k}"] for k in manifest["params"]}
            else:
                values[q] = data[f"value/{q}"]
    return Reference(manifest, params, fixed, inputs, values)


def build_model(name, params, fixed=None):
    """Rebuild an ebm_ref model from its class name, parameters and fixed attributes.

    Parameters
    ----------
    name : str
        Class name in :mod:`ebm_ref.energies`.
    params : dict of str to ndarray
    fixed : dict, optional
        Fixed attributes as stored by :func:`save`.

    Returns
    -------
    EnergyModel

    Raises
    ------
    ValueError
        For an unknown model name.
    """
    from . import energies

    fixed = dict(fixed or {})
    cls = getattr(energies, name, None)
    if cls is None:
        raise ValueError(f"`name` {name!r} is not a model of ebm_ref.energies.")
    if name == "Ising":
        return cls(params["J"], params["h"], domain=fixed.get("domain", "spin"))
    if name == "GaussianMixture":
        return cls(params["logits"], fixed["means"], fixed["log_scales"])
    if name == "MLPEnergy":
        model = cls(tuple(fixed["sizes"]), activation=fixed.get("activation", "softplus"))
        return model.with_params(params)
    beta = fixed.get("beta", 1.0)
    beta = np.inf if beta == "inf" else float(beta)
    if name == "LatentEnergy":
        return cls(params["w"], z_grid=fixed.get("z_grid"), beta=beta)
    if name == "ConditionalLatentEnergy":
        model = cls(
            tuple(fixed["sizes"]), activation=fixed.get("activation", "tanh"), z_grid=fixed.get("z_grid"), beta=beta
        )
        return model.with_params(params)
    return cls(**params)


# ------------------------------------------------------------------- compare
def _as_float_dict(value):
    if isinstance(value, Mapping):
        return {k: np.asarray(v, dtype=np.float64) for k, v in value.items()}
    return {None: np.asarray(value, dtype=np.float64)}


def compare(path, outputs, *, rtol=1e-10, atol=1e-12):
    r"""Compare another implementation's values with a reference file.

    Parameters
    ----------
    path : str, path-like or Reference
        A file written by :func:`save` (or its loaded contents).
    outputs : dict
        Quantity name -> array (``energy``, ``grad_x``, ``hessian_diag``,
        ``log_partition``) or dict of arrays (the parameter gradients),
        computed at the stored inputs.
    rtol : float, default 1e-10
    atol : float, default 1e-12
        Lower bound of the error denominator.

    Returns
    -------
    ReferenceComparison
        ``first_mismatch`` is the name of the first quantity, in the file's
        order, whose relative error exceeds ``rtol`` (or whose shape or keys
        differ, or which is non-finite); ``assert_ok()`` raises with it.

    Raises
    ------
    ValueError
        If ``outputs`` names a quantity the file does not hold.

    Notes
    -----
    Per quantity, :math:`\max_j |g_j - r_j| / \max(|r_j|, 10^{-3}\max_l|r_l|,
    \mathrm{atol})`, as in :func:`ebm_ref.testing.compare_energy`.
    """
    ref = path if isinstance(path, Reference) else load(path)
    extra = [k for k in outputs if k not in ref.values]
    if extra:
        raise ValueError(
            f"`outputs` has quantities {extra} that the reference file does not hold; it holds {list(ref.values)}."
        )
    rep = ReferenceComparison(rtol=rtol)
    for q, expected in ref.values.items():
        if q not in outputs:
            rep.not_compared.append(q)
            continue
        e = _as_float_dict(expected)
        g = _as_float_dict(outputs[q])
        if set(g) != set(e):
            rep.results[q] = (np.inf, "keys", sorted(map(str, g)), sorted(map(str, e)))
        else:
            floor = max(atol, 1e-3 * max((float(np.max(np.abs(a))) if a.size else 0.0) for a in e.values()))
            worst = (0.0, None, None, None)
            for k in e:
                a, b = g[k], e[k]
                if a.shape != b.shape:
                    worst = (np.inf, (k, "shape"), a.shape, b.shape)
                    break
                if b.size == 0:
                    continue
                with np.errstate(all="ignore"):
                    rel = np.abs(a - b) / np.maximum(np.abs(b), floor)
                rel = np.where(np.isfinite(a), rel, np.inf)
                i = np.unravel_index(int(np.argmax(rel)), rel.shape) if rel.ndim else ()
                if float(rel[i]) > worst[0] or worst[1] is None:
                    where = (k, tuple(int(t) for t in i)) if k is not None else tuple(int(t) for t in i)
                    worst = (float(rel[i]), where, float(a[i]), float(b[i]))
            rep.results[q] = worst
        if rep.first_mismatch is None and not rep.results[q][0] <= rtol:
            rep.first_mismatch = q
    return rep


# ----------------------------------------------------------------------- CLI
def _cli_model(name, sizes, seed, scale, domain):
    """Build the model of ``reference MODEL --sizes ...`` from ``seed``."""
    from . import energies

    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
    key = name.lower().replace("_", "-")

    def need(k):
        if len(sizes) != k:
            raise SystemExit(f"reference {name}: --sizes needs {k} value(s); got {list(sizes)}.")

    if key == "rbm":
        need(2)
        V, H = sizes
        return energies.RBM(scale * rng.standard_normal((V, H)) / np.sqrt(V), rng.standard_normal(V), rng.standard_normal(H))
    if key == "grbm":
        need(2)
        V, H = sizes
        return energies.GRBM(
            scale * rng.standard_normal((V, H)) / np.sqrt(V),
            rng.standard_normal(V),
            rng.standard_normal(H),
            0.3 * rng.standard_normal(V),
        )
    if key == "ising":
        need(1)
        return energies.Ising.random(sizes[0], scale, int(rng.integers(2**31)), domain=domain)
    if key == "ising-lattice":
        need(1)
        return energies.Ising.lattice(sizes[0], 0.4 * scale, domain=domain)
    if key in ("student-t", "studentt"):
        need(1)
        d = sizes[0]
        return energies.StudentT(rng.standard_normal(d), 0.3 * rng.standard_normal(d), np.log(3.0) + 0.3 * rng.standard_normal(d))
    if key in ("mixture", "gaussian-mixture", "gaussianmixture"):
        need(2)
        K, d = sizes
        return energies.GaussianMixture(rng.standard_normal(K), 2.0 * rng.standard_normal((K, d)), 0.3 * rng.standard_normal((K, d)))
    if key == "mlp":
        if len(sizes) < 2:
            raise SystemExit(f"reference {name}: --sizes needs d and at least one hidden width; got {list(sizes)}.")
        return energies.MLPEnergy(tuple(sizes), seed=int(rng.integers(2**31)))
    if key in ("latent", "latent-energy"):
        return energies.LatentEnergy(1.0 + rng.random(2))
    raise SystemExit(
        f"reference: unknown MODEL {name!r}; choose rbm, grbm, ising, ising-lattice, student-t, mixture, mlp or latent."
    )


def _cli_inputs(model, n, seed):
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))
    d = model.n_features
    if model.domain == "binary":
        return rng.integers(0, 2, size=(n, d)).astype(np.float64)
    if model.domain == "spin":
        return 2.0 * rng.integers(0, 2, size=(n, d)) - 1.0
    return rng.standard_normal((n, d))


def _cmd_reference(args):
    model = _cli_model(args.model, args.sizes, args.seed, args.scale, args.domain)
    x = _cli_inputs(model, args.n, args.seed)
    quantities = args.quantities or list(QUANTITIES)
    path = save(args.output, model, x, quantities, seed=args.seed)
    ref = load(path)
    print(f"wrote {path}: {ref.manifest['model']} {', '.join(ref.manifest['quantities'])}")
    return 0


def register_cli(subparsers):
    """Add the ``reference`` sub-command to ``python -m ebm_ref``.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        From ``parser.add_subparsers()``.

    Returns
    -------
    argparse.ArgumentParser
        The sub-command's parser.
    """
    p = subparsers.add_parser(
        "reference",
        help="write a reference-value .npz for a random model",
        description="Write ebm_ref's reference values (energy, derivatives, log Z) for a random model to an .npz file.",
    )
    p.add_argument("model", help="rbm, grbm, ising, ising-lattice, student-t, mixture, mlp or latent")
    p.add_argument("--sizes", type=int, nargs="*", default=[], help="rbm/grbm: V H; ising: d; ising-lattice: L; "
                   "student-t: d; mixture: K d; mlp: d h1 ...")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n", type=int, default=8, help="number of input states (default 8)")
    p.add_argument("--scale", type=float, default=1.0, help="weight scale (default 1)")
    p.add_argument("--domain", default="spin", choices=("spin", "binary"), help="Ising domain (default spin)")
    p.add_argument("--quantities", nargs="*", default=None, help=f"subset of {' '.join(QUANTITIES)}")
    p.add_argument("-o", "--output", required=True, help="output .npz path")
    p.set_defaults(func=_cmd_reference)
    return p
