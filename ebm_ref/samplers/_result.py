"""Result type shared by every sampler (docs/samplers.md)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SampleResult"]


@dataclass(frozen=True)
class SampleResult:
    """What a sampler returns.

    Attributes
    ----------
    x : ndarray
        Final states, the shape of ``x0``.
    acceptance_rate : ndarray of shape (n_chains,) or None
        Fraction of accepted proposals per chain; ``None`` for samplers with
        no accept/reject step (Gibbs, ULA, unadjusted Gibbs-Langevin).
    trace : ndarray of shape (n_saved, n_chains, d) or None
        States after steps ``thin, 2 thin, ...`` (``n_saved = n_steps //
        thin``, the initial state excluded) when ``thin > 0``.
    energies : ndarray of shape (n_chains,)
        Energies ``E(x)`` of the final states (free energies for RBM/GRBM).
    """

    x: np.ndarray
    acceptance_rate: np.ndarray | None
    trace: np.ndarray | None
    energies: np.ndarray
