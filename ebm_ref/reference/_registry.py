"""The models a reference file can hold: what to store beside the parameters
and how to rebuild the model from what was stored.

A file names its model by class name (the manifest's ``model``); the class
itself is found by ``isinstance`` when saving, never by comparing names.
Adding a model: one entry in ``_SPECS`` (its fixed attributes and, when its
constructor does not take exactly its parameters, a ``build`` function).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from .. import energies


class ModelSpec(NamedTuple):
    """How one model class is stored.

    ``name``: the class's name in :mod:`ebm_ref.energies` (resolved when
    used, so that importing this module imports no model module);
    ``fixed``: non-parameter attributes needed to rebuild it (scalars and
    strings go to the manifest, arrays to ``fixed/<name>``); ``build``:
    ``(cls, params, fixed) -> model``, or ``None`` for ``cls(**params)``.
    """

    name: str
    fixed: tuple = ()
    build: Callable | None = None


def _beta(fixed):
    beta = fixed.get("beta", 1.0)
    return np.inf if beta == "inf" else float(beta)


def _build_ising(cls, params, fixed):
    return cls(params["J"], params["h"], domain=fixed.get("domain", "spin"))


def _build_mixture(cls, params, fixed):
    return cls(params["logits"], fixed["means"], fixed["log_scales"])


def _build_mlp(cls, params, fixed):
    return cls(tuple(fixed["sizes"]), activation=fixed.get("activation", "softplus")).with_params(params)


def _build_latent(cls, params, fixed):
    return cls(params["w"], z_grid=fixed.get("z_grid"), beta=_beta(fixed))


def _build_conditional_latent(cls, params, fixed):
    model = cls(
        tuple(fixed["sizes"]),
        activation=fixed.get("activation", "tanh"),
        z_grid=fixed.get("z_grid"),
        beta=_beta(fixed),
    )
    return model.with_params(params)


# Subclasses before their base classes: the first isinstance match wins.
_SPECS = (
    ModelSpec("ConditionalLatentEnergy", ("sizes", "activation", "z_grid", "beta"), _build_conditional_latent),
    ModelSpec("LatentEnergy", ("z_grid", "beta"), _build_latent),
    ModelSpec("Ising", ("domain",), _build_ising),
    ModelSpec("GaussianMixture", ("means", "log_scales"), _build_mixture),
    ModelSpec("MLPEnergy", ("sizes", "activation"), _build_mlp),
    ModelSpec("RBM"),
    ModelSpec("GRBM"),
    ModelSpec("StudentT"),
    ModelSpec("LowRankBoltzmann"),
)
_BY_NAME = {spec.name: spec for spec in _SPECS}
MODEL_NAMES = tuple(_BY_NAME)


def spec_of(model):
    """The ``ModelSpec`` of ``model`` (``None`` for a model outside the registry)."""
    for spec in _SPECS:
        if isinstance(model, getattr(energies, spec.name)):
            return spec
    return None


def fixed_attributes(model):
    """``(arrays, scalars)``: the fixed attributes of ``model`` as stored."""
    spec = spec_of(model)
    arrays, scalars = {}, {}
    for attr in spec.fixed if spec is not None else ():
        val = getattr(model, attr, None)
        if val is None:
            continue
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


def build_model(name, params, fixed=None):
    """Rebuild an ebm_ref model from its class name, parameters and fixed attributes.

    Parameters
    ----------
    name : str
        Class name in :mod:`ebm_ref.energies` (the manifest's ``model``).
    params : dict of str to ndarray
    fixed : dict, optional
        Fixed attributes as stored by :func:`ebm_ref.reference.save`.

    Returns
    -------
    EnergyModel

    Raises
    ------
    ValueError
        For a model name outside ``MODEL_NAMES``.
    """
    spec = _BY_NAME.get(name) if isinstance(name, str) else None
    if spec is None:
        raise ValueError(f"`name` {name!r} is not a model a reference file can hold; one of {', '.join(MODEL_NAMES)}.")
    fixed = dict(fixed or {})
    cls = getattr(energies, spec.name)
    if spec.build is None:
        return cls(**params)
    return spec.build(cls, params, fixed)
