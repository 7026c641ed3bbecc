"""ebm_ref: a CPU reference implementation of energy-based models.

Conventions (docs/conventions.md): ``p(x) = exp(-E(x)) / Z``; batches first; float64;
binary states are 0.0/1.0 (``domain="binary"``) or -1.0/+1.0
(``domain="spin"``); every stochastic function takes ``seed``.
"""

__version__ = "0.1.0"

__all__ = ["limit_threads"]


def __getattr__(name):
    # imported on first use: ``import ebm_ref`` stays free of Numba's import time
    if name == "limit_threads":
        from ._threads import limit_threads

        return limit_threads
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
