"""Checks that other implementations import into their own tests (docs/checking.md).

* :func:`check_grad`, :func:`check_energy_derivatives`: finite-difference
  checks of ebm_ref-style models.
* :func:`compare_energy` / :func:`assert_energy_matches`: a third-party
  energy's primitives against ebm_ref's, at several parameter scales.
* :func:`check_sampler` / :func:`assert_sampler_exact`: a third-party
  sampler's output against the exact distribution of a small model.
* :func:`check_objective_grad`, :func:`compare_objective`: a third-party
  loss's gradient by finite differences (seed fixed), and its value and
  gradient against ebm_ref's objective of the same name.
* :func:`from_torch`, :func:`from_jax` (:class:`ParamMap`): turn a PyTorch
  module or a JAX function and a parameter mapping into the callables the
  checks take (docs/torch-jax.md).
* Reference files: :mod:`ebm_ref.reference` (``save``, ``load``,
  ``compare``).

Every report records the dtype it received and carries ``suspects`` (short
codes, :data:`SUSPECTS`) and a ``diagnosis`` sentence; float32 results are
judged under a stated rounding allowance (docs/checking.md).
"""

from ._compare import EnergyComparison, QuantityComparison, assert_energy_matches, compare_energy
from ._diagnose import SUSPECTS
from ._energycheck import DerivativeReport, check_energy_derivatives
from ._gradcheck import GradCheckResult, check_grad
from ._objectivecheck import ObjectiveComparison, check_objective_grad, compare_objective
from ._samplercheck import SamplerCheckResult, assert_sampler_exact, check_sampler, enumerate_distribution
from ._adapters import ParamMap, from_jax, from_torch

__all__ = [
    "check_grad",
    "GradCheckResult",
    "check_energy_derivatives",
    "DerivativeReport",
    "compare_energy",
    "assert_energy_matches",
    "EnergyComparison",
    "QuantityComparison",
    "check_sampler",
    "assert_sampler_exact",
    "SamplerCheckResult",
    "enumerate_distribution",
    "check_objective_grad",
    "compare_objective",
    "ObjectiveComparison",
    "SUSPECTS",
    "from_torch",
    "from_jax",
    "ParamMap",
]
