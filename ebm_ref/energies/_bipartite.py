"""Sizes of the two-layer models whose couplings ``W`` are visible x hidden (RBM, GRBM)."""

from __future__ import annotations

__all__ = ["Bipartite"]


class Bipartite:
    """Mixin: ``n_features``, ``n_visible``, ``n_hidden`` and the description from ``W`` of shape ``(V, H)``."""

    @property
    def n_features(self):
        return self._params["W"].shape[0]

    @property
    def n_visible(self):
        """Number of visible units ``V``."""
        return self._params["W"].shape[0]

    @property
    def n_hidden(self):
        """Number of hidden units ``H``."""
        return self._params["W"].shape[1]

    def _describe(self):
        return f"{type(self).__name__} with {self.n_visible} visible units"
