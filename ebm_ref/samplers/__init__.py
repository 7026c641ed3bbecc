"""Numba-jitted MCMC samplers, parallel over chains, one RNG stream per chain.

Public functions (docs/samplers.md): ``gibbs``, ``rwmh``, ``langevin``, ``gwg``,
``gibbs_langevin``, ``dula``, ``hmc``, ``swendsen_wang``, ``wolff``,
``parallel_tempering`` and ``boltzmann_auxiliary``; all return a
:class:`SampleResult` (``parallel_tempering`` its subclass
:class:`TemperingResult`).

Each function lives in a private module whose name differs from its own
(``samplers/_gwg.py`` defines ``gwg``), so importing a submodule never
replaces the function attribute of the package.
"""

from ._result import SampleResult
from .boltzmann import boltzmann_auxiliary
from .cluster import swendsen_wang, wolff
from ._dula import dula
from ._gibbs_sweeps import gibbs
from ._gibbs_langevin import gibbs_langevin
from ._gwg import gwg
from ._hmc import hmc
from ._langevin import langevin
from .mh import rwmh
from .tempering import TemperingResult, parallel_tempering

__all__ = [
    "SampleResult", "gibbs", "gwg", "rwmh", "langevin", "gibbs_langevin", "dula", "hmc",
    "swendsen_wang", "wolff", "parallel_tempering", "TemperingResult", "boltzmann_auxiliary",
]
