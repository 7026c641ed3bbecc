"""Numba-jitted MCMC samplers, parallel over chains, one RNG stream per chain.

Public functions (docs/samplers.md): ``gibbs``, ``rwmh``, ``langevin``, ``gwg``,
``gibbs_langevin``, ``dula``, ``hmc``, ``swendsen_wang``, ``wolff``,
``parallel_tempering`` and ``boltzmann_auxiliary``; all return a
:class:`SampleResult` (``parallel_tempering`` its subclass
:class:`TemperingResult`).

The functions are imported eagerly: a submodule named like its function
(``samplers/gwg.py`` defines ``gwg``) would otherwise replace the function
attribute once the submodule is imported.
"""

from ._result import SampleResult
from .boltzmann import boltzmann_auxiliary
from .cluster import swendsen_wang, wolff
from .dula import dula
from ._gibbs_sweeps import gibbs
from .gibbs_langevin import gibbs_langevin
from .gwg import gwg
from .hmc import hmc
from .langevin import langevin
from .mh import rwmh
from .tempering import TemperingResult, parallel_tempering

__all__ = [
    "SampleResult", "gibbs", "gwg", "rwmh", "langevin", "gibbs_langevin", "dula", "hmc",
    "swendsen_wang", "wolff", "parallel_tempering", "TemperingResult", "boltzmann_auxiliary",
]
