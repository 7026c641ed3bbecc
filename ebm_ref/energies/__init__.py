"""Energy models (docs/models.md). Each implements the six primitives of
:class:`~ebm_ref.energies._base.EnergyModel`.

Model modules are imported on first use of their class name.
"""

from __future__ import annotations

import importlib

from ._base import EnergyModel, NumbaForm
from .rbm import RBM

_LOCATIONS = {
    "Ising": ".ising",
    "LatticeSpec": ".lattice",
    "GRBM": ".grbm",
    "StudentT": ".student_t",
    "GaussianMixture": ".mixture",
    "MLPEnergy": ".mlp",
    "LatentEnergy": ".latent",
    "ConditionalLatentEnergy": ".latent",
    "LowRankBoltzmann": ".boltzmann",
    "FVBM": ".fvbm",
}

__all__ = ["EnergyModel", "NumbaForm", "RBM", *_LOCATIONS]


def __getattr__(name):
    if name in _LOCATIONS:
        mod = importlib.import_module(_LOCATIONS[name], __name__)
        return getattr(mod, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
