"""ebm_ref: a CPU reference implementation of energy-based models.

Conventions (docs/conventions.md): ``p(x) = exp(-E(x)) / Z``; batches first; float64;
binary states are 0.0/1.0 (``domain="binary"``) or -1.0/+1.0
(``domain="spin"``); every stochastic function takes ``seed``.
"""

from ._threads import limit_threads

__all__ = ["limit_threads"]

__version__ = "0.1.0"
