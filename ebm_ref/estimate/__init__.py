r"""Estimates of partition functions beyond enumeration (docs/exact.md).

* :func:`ais` — annealed importance sampling (Neal 2001), a stochastic lower
  bound on :math:`\log Z`;
* :func:`reverse_ais` — reverse AIS from (exact) model samples (Burda,
  Grosse & Salakhutdinov 2015), a stochastic upper bound;
* :func:`betas` — the usual annealing schedules;
* :func:`log_likelihood` — estimated test log-likelihood
  :math:`-F(x) - \widehat{\log Z}`.

All support ``RBM``, ``GRBM`` and ``Ising`` (both domains) and return an
:class:`AISResult`.
"""

from ._ais import AISResult, ais, betas, log_likelihood, reverse_ais
from ._boltzmann import BoundResult, boltzmann_bound

__all__ = ["AISResult", "ais", "reverse_ais", "betas", "log_likelihood", "BoundResult", "boltzmann_bound"]
