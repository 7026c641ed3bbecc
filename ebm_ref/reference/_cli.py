"""``python -m ebm_ref reference MODEL ...``: write a reference file for a random model.

User mistakes (a size that is not a positive integer, an unknown model or
quantity, an output that exists or whose folder does not) end as argparse
does: one line ``ebm-ref reference: error: ...`` on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from .. import energies
from ._format import check_writable, destination, load, save
from ._schema import QUANTITIES


def _rng(seed, purpose):
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(purpose,)))


def _rbm(sizes, rng, scale, domain):
    V, H = sizes
    return energies.RBM(scale * rng.standard_normal((V, H)) / np.sqrt(V), rng.standard_normal(V), rng.standard_normal(H))


def _grbm(sizes, rng, scale, domain):
    V, H = sizes
    W = scale * rng.standard_normal((V, H)) / np.sqrt(V)
    return energies.GRBM(W, rng.standard_normal(V), rng.standard_normal(H), 0.3 * rng.standard_normal(V))


def _ising(sizes, rng, scale, domain):
    return energies.Ising.random(sizes[0], scale, int(rng.integers(2**31)), domain=domain)


def _ising_lattice(sizes, rng, scale, domain):
    return energies.Ising.lattice(sizes[0], 0.4 * scale, domain=domain)


def _student_t(sizes, rng, scale, domain):
    d = sizes[0]
    return energies.StudentT(rng.standard_normal(d), 0.3 * rng.standard_normal(d), np.log(3.0) + 0.3 * rng.standard_normal(d))


def _mixture(sizes, rng, scale, domain):
    K, d = sizes
    return energies.GaussianMixture(rng.standard_normal(K), 2.0 * rng.standard_normal((K, d)), 0.3 * rng.standard_normal((K, d)))


def _mlp(sizes, rng, scale, domain):
    return energies.MLPEnergy(tuple(sizes), seed=int(rng.integers(2**31)))


def _latent(sizes, rng, scale, domain):
    return energies.LatentEnergy(1.0 + rng.random(2))


# CLI name -> (build, number of --sizes (None: two or more), what they mean)
MODELS = {
    "rbm": (_rbm, 2, "V H"),
    "grbm": (_grbm, 2, "V H"),
    "ising": (_ising, 1, "d"),
    "ising-lattice": (_ising_lattice, 1, "L"),
    "student-t": (_student_t, 1, "d"),
    "mixture": (_mixture, 2, "K d"),
    "mlp": (_mlp, None, "d h1 [h2 ...]"),
    "latent": (_latent, 0, "none"),
}
_ALIASES = {"studentt": "student-t", "gaussian-mixture": "mixture", "gaussianmixture": "mixture", "latent-energy": "latent"}


def _model_name(text):
    key = text.lower().replace("_", "-")
    return _ALIASES.get(key, key)


def _int_at_least(least, what):
    """argparse type: an integer >= ``least`` (anything else is a usage error)."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < least:
            raise argparse.ArgumentTypeError(f"expected {what}; got {text!r}")
        return value

    return parse


_positive_int = _int_at_least(1, "a positive integer")
_seed = _int_at_least(0, "a non-negative integer")


def _finite(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a finite number; got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number; got {text!r}")
    return value


def cli_model(parser, name, sizes, seed, scale, domain):
    """The model of ``reference MODEL --sizes ...``, drawn from ``seed``."""
    build, count, meaning = MODELS[name]
    if (count is None and len(sizes) < 2) or (count is not None and len(sizes) != count):
        need = "two or more values" if count is None else f"{count} value(s)"
        parser.error(f"{name}: --sizes takes {need} ({meaning}); got {list(sizes)}")
    try:
        return build(sizes, _rng(seed, 0), scale, domain)
    except (ValueError, TypeError) as exc:
        parser.error(f"{name} with --sizes {' '.join(map(str, sizes))}: {exc}")


def cli_inputs(model, n, seed):
    """``n`` inputs of the model's domain, drawn from ``seed``."""
    rng = _rng(seed, 1)
    d = model.n_features
    if model.domain == "binary":
        return rng.integers(0, 2, size=(n, d)).astype(np.float64)
    if model.domain == "spin":
        return 2.0 * rng.integers(0, 2, size=(n, d)) - 1.0
    return rng.standard_normal((n, d))


def _cmd_reference(args):
    parser = args.parser
    try:
        path = destination(args.output)
        check_writable(path, args.force)
    except (OSError, ValueError) as exc:
        parser.error(f"-o/--output: {exc}")
    model = cli_model(parser, args.model, args.sizes, args.seed, args.scale, args.domain)
    x = cli_inputs(model, args.n, args.seed)
    quantities = args.quantities or list(QUANTITIES)
    try:
        path = save(path, model, x, quantities, seed=args.seed, overwrite=args.force)
    except FileExistsError as exc:
        parser.error(f"-o/--output: {exc}")
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
    sizes = "; ".join(f"{k}: {v[2]}" for k, v in MODELS.items())
    p.add_argument("model", type=_model_name, choices=list(MODELS), metavar="MODEL", help=f"one of {', '.join(MODELS)}")
    p.add_argument("--sizes", type=_positive_int, nargs="*", default=[], help=f"positive integers; {sizes} (default: none)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the model and the inputs (default: 0)")
    p.add_argument("--n", type=_positive_int, default=8, help="number of input states (default: 8)")
    p.add_argument("--scale", type=_finite, default=1.0, help="weight scale for rbm, grbm, ising, ising-lattice (default: 1.0)")
    p.add_argument("--domain", default="spin", choices=("spin", "binary"), help="Ising domain (default: spin)")
    p.add_argument(
        "--quantities", nargs="*", default=None, choices=QUANTITIES, metavar="Q",
        help=f"subset of {', '.join(QUANTITIES)} (default: all)",
    )
    p.add_argument("-o", "--output", required=True, help="output path (required), ending in .npz; without a suffix .npz is appended")
    p.add_argument("--force", action="store_true", help="replace an existing output file, never through a symbolic link (default: off)")
    p.set_defaults(func=_cmd_reference, parser=p)
    return p
