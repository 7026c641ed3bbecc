r"""Training objectives with exact gradients (docs/objectives.md).

Every objective is an object with ``value_and_grad(model, x, seed) ->
(loss, grads)`` (``grads`` the exact gradient of ``loss`` with the call's
random numbers held fixed, built only from the six primitives of docs/models.md)
and ``value(model, x, seed)``. See :mod:`ebm_ref.objectives._base`.

=============================  ==================  ===========================
objective                      model domain        reference
=============================  ==================  ===========================
``ExactMLE``                   small (exact)       --
``CD``, ``PCD``                any (a sampler)     Hinton 2002; Tieleman 2008
``ScoreMatching``              real                Hyvärinen 2005
``DenoisingScoreMatching``     real                Vincent 2011
``DiffusionScoreMatching``     real                Barp et al. 2019
``RatioMatching``              binary, spin        Hyvärinen 2007
``GradientRatioMatching``      binary, spin        Grathwohl et al. 2021
``EnergyDiscrepancy``          real / binary,spin  Schröder, Ou et al. 2023
``LatentEnergyLoss`` etc.      real (free energy)  LeCun et al. 2006
=============================  ==================  ===========================
"""

from ._base import Objective
from .energy_discrepancy import EnergyDiscrepancy
from .latent import LatentEnergyLoss, LatentHingeLoss, LatentLogLoss
from .likelihood import CD, PCD, ExactMLE
from .pseudo_likelihood import PseudoLikelihood
from .ratio_matching import GradientRatioMatching, RatioMatching
from .score_matching import (
    DenoisingScoreMatching,
    DiffusionScoreMatching,
    GaussianFlow,
    ManualFlow,
    ScoreMatching,
)
from .sliced_score_matching import SlicedScoreMatching

__all__ = [
    "Objective",
    "ExactMLE",
    "CD",
    "PCD",
    "ScoreMatching",
    "DenoisingScoreMatching",
    "DiffusionScoreMatching",
    "ManualFlow",
    "GaussianFlow",
    "RatioMatching",
    "GradientRatioMatching",
    "EnergyDiscrepancy",
    "LatentEnergyLoss",
    "LatentHingeLoss",
    "LatentLogLoss",
    "PseudoLikelihood",
    "SlicedScoreMatching",
]
