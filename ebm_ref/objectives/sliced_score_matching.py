r"""Sliced score matching (Song, Garg, Shi & Ermon 2019) for continuous models.

See docs/pseudo-likelihood-and-ssm.md. Sign convention as in
:mod:`~ebm_ref.objectives.score_matching`: the model score is
:math:`\psi = -g`, :math:`g = \nabla_x E`, and :math:`H = \nabla_x^2 E`.
"""

from __future__ import annotations

import numbers

import numpy as np

from .._validation import as_float_array, check_finite
from ._base import Objective, _objective_rng

__all__ = ["SlicedScoreMatching"]

_DISTRIBUTIONS = ("rademacher", "gaussian")


class SlicedScoreMatching(Objective):
    r"""Sliced score matching (SSM) and its variance-reduced form (SSM-VR).

    Parameters
    ----------
    n_projections : int, default 1
        Number :math:`P \ge 1` of random directions per sample.
    distribution : {"rademacher", "gaussian"}, default "rademacher"
        Law of the directions: independent :math:`\pm 1` entries, or
        :math:`N(0, I)`. Both have :math:`\mathbb E[v v^\top] = I`.
    variance_reduced : bool, default False
        ``True`` replaces :math:`\tfrac12 (v^\top g)^2` by its expectation
        over :math:`v`, :math:`\tfrac12\|g\|^2` (SSM-VR).

    Notes
    -----
    With directions :math:`v_{ip}` drawn from ``seed``,

    .. math::

        J(\theta) = \frac1n\sum_i \frac1P \sum_p \Big[\tfrac12 (v_{ip}^\top g(x_i))^2
                    - v_{ip}^\top H(x_i)\, v_{ip}\Big]

    (SSM-VR: :math:`\tfrac12\|g(x_i)\|^2` in place of the first term).
    Since :math:`\mathbb E[(v^\top g)^2] = g^\top\mathbb E[vv^\top] g =
    \|g\|^2` and :math:`\mathbb E[v^\top H v] = \operatorname{tr}(H\,
    \mathbb E[vv^\top]) = \operatorname{tr} H`, the expectation over the
    directions is exactly :class:`ScoreMatching`'s
    :math:`\tfrac12\|g\|^2 - \operatorname{tr} H`, for both laws and both
    forms; for Rademacher directions the average over all :math:`2^d` sign
    vectors equals it exactly (:math:`\frac1{2^d}\sum_v v v^\top = I`).

    Gradient with the directions held fixed, from the Hessian-vector
    primitive ``grad_params_of_hvp`` (:math:`\sum_i \partial_\theta[u_i\cdot
    H(x_i) v_i]`):

    .. math::

        \nabla_\theta J = \frac1{nP}\sum_{i,p}\Big[\texttt{grad\_params\_of\_grad\_x}
        \big(x_i, (v_{ip}^\top g_i)\, v_{ip}\big)
        - \texttt{grad\_params\_of\_hvp}(x_i, v_{ip}, v_{ip})\Big]

    (SSM-VR: ``grad_params_of_grad_x(x, g / n)`` for the first term).

    **Model requirement.** The model must have ``hvp(x, v)`` (``H(x) v``,
    ``(n, d)``) and ``grad_params_of_hvp(x, v, u)``; ``StudentT``,
    ``GaussianMixture``, ``GRBM`` and ``MLPEnergy`` do (exact, no finite
    differences); any other model raises ``TypeError``.

    **Cost.** One ``grad_x`` and :math:`P` Hessian-vector products per sample
    (each a constant number of passes), independent of :math:`d`;
    :class:`ScoreMatching` needs the whole Hessian diagonal, which for an MLP
    carries :math:`d` tangents through the network (O(d) passes).

    **Randomness.** ``seed`` is required. The directions are the first
    ``n * P * d`` draws of a NumPy ``Generator`` on the objective's stream of
    ``seed`` (docs/conventions.md), arranged ``(n, P, d)`` (:meth:`directions`),
    so the directions of a prefix of the samples do not depend on how many
    samples follow.

    References
    ----------
    Hyvärinen, A. (2005). Estimation of non-normalized statistical models by
    score matching. JMLR 6, 695-709.
    Song, Y., Garg, S., Shi, J., Ermon, S. (2019). Sliced score matching: a
    scalable approach to density and score estimation. UAI.

    Examples
    --------
    >>> import numpy as np
    >>> from ebm_ref.energies import StudentT
    >>> from ebm_ref.objectives import SlicedScoreMatching
    >>> model = StudentT([0.0, 1.0], [0.0, -0.5], [1.0, 2.0])
    >>> x = np.random.default_rng(0).normal(size=(6, 2))
    >>> loss, grads = SlicedScoreMatching(n_projections=2).value_and_grad(model, x, seed=1)
    >>> sorted(grads) == sorted(model.params)
    True
    """

    domains = ("real",)

    def __init__(self, n_projections=1, distribution="rademacher", variance_reduced=False):
        if isinstance(n_projections, (bool, np.bool_)) or not isinstance(n_projections, numbers.Integral):
            raise TypeError(f"`n_projections` must be an int; got {type(n_projections).__name__}.")
        if int(n_projections) < 1:
            raise ValueError(f"`n_projections` must be >= 1; got {int(n_projections)}.")
        if int(n_projections) > 2**31 - 1:  # one direction array per projection: never allocatable
            raise ValueError(f"`n_projections` must be at most 2**31 - 1; got {int(n_projections)}.")
        if not isinstance(distribution, str) or distribution not in _DISTRIBUTIONS:
            raise ValueError(f"`distribution` must be one of {_DISTRIBUTIONS}; got {distribution!r}.")
        if not isinstance(variance_reduced, (bool, np.bool_)):
            raise TypeError(f"`variance_reduced` must be a bool; got {type(variance_reduced).__name__}.")
        self.n_projections = int(n_projections)
        self.distribution = distribution
        self.variance_reduced = bool(variance_reduced)

    def _repr_fields(self):
        return {
            "n_projections": self.n_projections,
            "distribution": self.distribution,
            "variance_reduced": self.variance_reduced,
        }

    # ------------------------------------------------------------- public extras
    def directions(self, n, d, seed):
        r"""The directions drawn for ``seed``: ``(n, n_projections, d)`` float64.

        Parameters
        ----------
        n, d : int
            Number of samples (``>= 0``) and dimension (``>= 1``).
        seed : int, numpy.random.SeedSequence or numpy.random.Generator

        Notes
        -----
        Rademacher: ``2 * integers(0, 2) - 1``; Gaussian: ``standard_normal``;
        both from the objective's stream of ``seed``, in row-major order.
        """
        n, d = int(n), int(d)
        if n < 0 or d < 1:
            raise ValueError(f"`n` must be >= 0 and `d` >= 1; got n={n}, d={d}.")
        rng = _objective_rng(seed)
        shape = (n, self.n_projections, d)
        if self.distribution == "rademacher":
            return 2.0 * rng.integers(0, 2, size=shape).astype(np.float64) - 1.0
        return rng.standard_normal(shape)

    def value_and_grad_with(self, model, x, directions):
        r"""Loss and exact gradient for given directions (any number per sample).

        Parameters
        ----------
        model : EnergyModel
            A continuous model with ``hvp`` and ``grad_params_of_hvp``.
        x : array_like of shape (n, d) or (d,)
        directions : array_like of shape (n, P, d)
            Any ``P >= 1`` finite directions per sample; ``n_projections``
            and ``distribution`` are not used, ``variance_reduced`` is.

        Returns
        -------
        loss : float
        grads : dict
        """
        x2d = self._prepare(model, x)
        v = as_float_array(directions, "directions")
        n, d = x2d.shape
        if v.ndim != 3 or v.shape[0] != n or v.shape[2] != d or v.shape[1] < 1:
            raise ValueError(f"`directions` must have shape ({n}, P, {d}) with P >= 1; got {v.shape}.")
        check_finite(v, "directions")
        loss, grads = self._from_directions(model, x2d, v, need_grad=True)
        return float(loss), grads

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _check_hvp(model):
        if not getattr(model, "has_hvp", False):
            raise TypeError(
                f"SlicedScoreMatching needs the Hessian-vector primitives hvp(x, v) and "
                f"grad_params_of_hvp(x, v, u); {type(model).__name__} lacks them "
                f"(available on StudentT, GaussianMixture, GRBM, MLPEnergy; see docs/pseudo-likelihood-and-ssm.md)."
            )

    def _prepare(self, model, x):
        x2d = super()._prepare(model, x)
        self._check_hvp(model)
        return x2d

    def _from_directions(self, model, x, v, need_grad):
        n, P, d = v.shape
        xr = np.repeat(x, P, axis=0)
        vf = v.reshape(n * P, d)
        g = model.grad_x(x)
        vhv = np.sum(vf * model.hvp(xr, vf), axis=1)
        if self.variance_reduced:
            first = 0.5 * np.sum(g * g, axis=1)
        else:
            proj = np.sum(vf * np.repeat(g, P, axis=0), axis=1)
            first = 0.5 * (proj * proj).reshape(n, P).mean(axis=1)
        loss = float(np.mean(first - vhv.reshape(n, P).mean(axis=1)))
        if not need_grad:
            return loss, None
        w = 1.0 / (n * P)
        if self.variance_reduced:
            g1 = model.grad_params_of_grad_x(x, g / n)
        else:
            g1 = model.grad_params_of_grad_x(xr, (proj * w)[:, None] * vf)
        g2 = model.grad_params_of_hvp(xr, vf, w * vf)
        return loss, {k: g1[k] - g2[k] for k in g1}

    # ---------------------------------------------------------------- objective
    def _value(self, model, x, seed):
        return self._from_directions(model, x, self.directions(*x.shape, seed), need_grad=False)[0]

    def _value_and_grad(self, model, x, seed):
        return self._from_directions(model, x, self.directions(*x.shape, seed), need_grad=True)
