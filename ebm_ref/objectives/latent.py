r"""Losses on free energies for latent-variable models (the ellipse lecture).

For a latent-variable energy :math:`E(y, z)` the model's ``energy(y)`` is
the free energy :math:`F_\beta(y) = -\frac1\beta \log \frac1{|\mathcal Z|}
\sum_z e^{-\beta E(y, z)}` (:math:`F_\infty = \min_z E`); these losses work
on ``energy`` and ``grad_params`` and so apply to any model, and, with
``beta=`` given, on ``free_energy(y, beta)`` and
``grad_params_free_energy(y, beta, weights)`` (``LatentEnergy``).

Conditional models (``ConditionalLatentEnergy``, whose free energy
:math:`F(y \mid x)` is ``free_energy(x, y, beta)`` with parameter gradient
``grad_params_free_energy(x, y, beta, weights)``; not an ``EnergyModel``)
are accepted as well: pass the data as a pair ``(x, y)``. Negatives are then
searched among ``y`` values for each ``x_i`` (the lecture's conditional
case). ``train.fit`` takes ``EnergyModel`` s only; train a conditional model
with ``value_and_grad`` and an optimiser's ``step``.
"""

from __future__ import annotations

import numbers

import numpy as np

from .._numerics import sigmoid, softplus
from .._validation import check_batch, check_int, check_positive
from ..energies import EnergyModel
from ._base import Objective, _check_model

__all__ = ["LatentEnergyLoss", "LatentHingeLoss", "LatentLogLoss"]

_MAX_GRID = 1_000_000


def _check_beta(beta):
    if beta is None:
        return None
    return check_positive(beta, "beta", allow_inf=True)


def _is_conditional(model):
    return (not isinstance(model, EnergyModel)) and hasattr(model, "n_features_x") and hasattr(
        model, "grad_params_free_energy"
    )


class _View:
    r"""Free energies of one batch: :math:`F(y)` or, for a conditional model, :math:`F(y \mid x)`.

    ``xc`` is ``None`` for an unconditional model.
    """

    def __init__(self, model, xc, beta):
        self.model, self.xc, self.beta = model, xc, beta
        if xc is None and beta is not None and not hasattr(model, "free_energy"):
            raise TypeError(
                f"`beta` was given but {type(model).__name__} has no free_energy(y, beta); "
                "leave beta=None to use model.energy."
            )

    def free(self, y, xc=None):
        if self.xc is None:
            if self.beta is None:
                return self.model.energy(y)
            return np.asarray(self.model.free_energy(y, self.beta), dtype=np.float64)
        xc = self.xc if xc is None else xc
        return np.asarray(self.model.free_energy(xc, y, self.beta), dtype=np.float64)

    def grad(self, y, weights, xc=None):
        if self.xc is None:
            if self.beta is None:
                return self.model.grad_params(y, weights)
            return self.model.grad_params_free_energy(y, self.beta, weights)
        xc = self.xc if xc is None else xc
        return self.model.grad_params_free_energy(xc, y, self.beta, weights)


class _Latent(Objective):
    """Data handling shared by the latent losses (plain or conditional models)."""

    def _prepare_view(self, model, data):
        owner = type(self).__name__
        if _is_conditional(model):
            if not isinstance(data, tuple) or len(data) != 2:
                raise TypeError(
                    f"{owner} on a conditional model needs the data as a pair (x, y); got {type(data).__name__}."
                )
            xc, _ = check_batch(data[0], model.n_features_x, "x", type(model).__name__)
            y, _ = check_batch(data[1], 2, "y", type(model).__name__)
            if xc.shape[0] != y.shape[0]:
                raise ValueError(
                    f"`x` and `y` must have the same number of samples; got {xc.shape[0]} and {y.shape[0]}."
                )
            return _View(model, xc, self.beta), y
        _check_model(model, owner)
        return _View(model, None, self.beta), self._prepare(model, data)

    def value_and_grad(self, model, x, seed=None):
        r"""Loss and its exact parameter gradient.

        Parameters
        ----------
        model : EnergyModel or ConditionalLatentEnergy
        x : array_like of shape (n, d), or a pair ``(x, y)``
            Data states; for a conditional model the pair of inputs
            ``(n, d_x)`` and outputs ``(n, 2)``.
        seed : ignored
            These losses are deterministic.

        Returns
        -------
        loss : float
        grads : dict of str to ndarray
        """
        view, y = self._prepare_view(model, x)
        loss, grads = self._loss(view, y, True)
        return float(loss), grads

    def value(self, model, x, seed=None):
        """The loss alone (same arguments as :meth:`value_and_grad`)."""
        view, y = self._prepare_view(model, x)
        return float(self._loss(view, y, False)[0])


class LatentEnergyLoss(_Latent):
    r"""The energy loss: mean free energy of the data.

    Parameters
    ----------
    beta : float or np.inf, optional
        Inverse temperature of the free energy; ``None`` (default) uses
        ``model.energy`` (the model's own ``beta``).

    Notes
    -----
    .. math::

        L(\theta) = \frac1n \sum_i F(y_i), \qquad
        \nabla_\theta L = \frac1n \sum_i \nabla_\theta F(y_i).

    It only pulls the energy down at the data and can collapse (a flat
    energy is optimal), as the lecture shows; the contrastive losses below
    push up elsewhere. Deterministic: ``seed`` is ignored.

    References
    ----------
    LeCun, Y., Chopra, S., Hadsell, R., Ranzato, M., Huang, F. J. (2006). A
    tutorial on energy-based learning. In Predicting Structured Data, MIT
    Press.
    """

    def __init__(self, beta=None):
        self.beta = _check_beta(beta)

    def _repr_fields(self):
        return {"beta": self.beta}

    def _loss(self, view, y, need_grad):
        loss = float(np.mean(view.free(y)))
        if not need_grad:
            return loss, None
        return loss, view.grad(y, np.full(y.shape[0], 1.0 / y.shape[0]))


class _Contrastive(_Latent):
    r"""Shared negative selection: the most offending incorrect answer."""

    def __init__(self, candidates=None, grid_size=24, pad=0.25, min_distance=None, beta=None):
        self.candidates = None
        if candidates is not None:
            cand = np.asarray(candidates)
            if cand.ndim != 2:
                raise ValueError(f"`candidates` must be a 2-D array (k, d); got shape {cand.shape}.")
            self.candidates, _ = check_batch(cand, cand.shape[1], "candidates", "the candidate set")
        self.grid_size = check_int(grid_size, "grid_size", minimum=2)
        if isinstance(pad, (bool, np.bool_)) or not isinstance(pad, numbers.Real):
            raise TypeError(f"`pad` must be a real number >= 0; got {type(pad).__name__}.")
        if not np.isfinite(pad) or pad < 0:
            raise ValueError(f"`pad` must be finite and >= 0; got {pad!r}.")
        self.pad = float(pad)
        if min_distance is not None:
            if isinstance(min_distance, (bool, np.bool_)) or not isinstance(min_distance, numbers.Real):
                raise TypeError(f"`min_distance` must be a real number >= 0; got {type(min_distance).__name__}.")
            if not np.isfinite(min_distance) or min_distance < 0:
                raise ValueError(f"`min_distance` must be finite and >= 0; got {min_distance!r}.")
            min_distance = float(min_distance)
        self.min_distance = min_distance
        self.beta = _check_beta(beta)

    def _candidate_set(self, model, y):
        """Candidates (k, d) and the exclusion radius."""
        if self.candidates is not None:
            if self.candidates.shape[1] != y.shape[1]:
                raise ValueError(
                    f"`candidates` must have {y.shape[1]} columns like `x`; got {self.candidates.shape[1]}."
                )
            if isinstance(model, EnergyModel):
                model.check_states(self.candidates, "candidates")
            r = 0.0 if self.min_distance is None else self.min_distance
            return self.candidates, r
        if getattr(model, "domain", "real") != "real":
            raise ValueError(
                f"{type(self).__name__} builds its default grid of negatives only for real-valued models; "
                f"pass `candidates` for {type(model).__name__} (domain={model.domain!r})."
            )
        d = y.shape[1]
        if self.grid_size**d > _MAX_GRID:
            raise ValueError(
                f"the default grid has grid_size**d = {self.grid_size}**{d} points, more than {_MAX_GRID}; "
                "pass `candidates` instead."
            )
        lo, hi = y.min(axis=0), y.max(axis=0)
        span = np.maximum(hi - lo, 1e-12 + 1e-3 * np.maximum(1.0, np.abs(hi)))
        lo = lo - self.pad * span
        hi = hi + self.pad * span
        axes = [np.linspace(lo[k], hi[k], self.grid_size) for k in range(d)]
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, d)
        spacing = float(np.max((hi - lo) / (self.grid_size - 1)))
        r = 2.0 * spacing if self.min_distance is None else self.min_distance
        return grid, r

    def offending(self, model, x):
        r"""The most offending incorrect answer for each data point.

        Parameters
        ----------
        model : EnergyModel or ConditionalLatentEnergy
        x : array_like of shape (n, d), or a pair ``(x, y)``

        Returns
        -------
        ndarray of shape (n, d)
            :math:`\hat y_i = \arg\min \{F(c) : c \in C, \|c - y_i\| >
            r\}` over the candidate set :math:`C` (:math:`F(c \mid x_i)` for
            a conditional model).
        """
        view, y = self._prepare_view(model, x)
        return self._offending(view, y)[0]

    def _offending(self, view, y):
        cand, r = self._candidate_set(view.model, y)
        n, k = y.shape[0], cand.shape[0]
        if view.xc is None:
            f_c = np.broadcast_to(view.free(cand), (n, k))
        else:
            xs = np.repeat(view.xc, k, axis=0)
            f_c = view.free(np.tile(cand, (n, 1)), xc=xs).reshape(n, k)
        d2 = np.sum((y[:, None, :] - cand[None, :, :]) ** 2, axis=2)
        allowed = d2 > r * r
        if not np.all(allowed.any(axis=1)):
            i = int(np.argmin(allowed.any(axis=1)))
            raise ValueError(
                f"no candidate lies farther than min_distance={r!r} from x[{i}]; "
                "widen `candidates` or lower `min_distance`."
            )
        j = np.argmin(np.where(allowed, f_c, np.inf), axis=1)
        return cand[j], f_c[np.arange(n), j]

    def _parts(self, view, y):
        y_hat, f_hat = self._offending(view, y)
        return y_hat, view.free(y), f_hat

    def _grad(self, view, y, y_hat, c):
        n = y.shape[0]
        states = np.concatenate([y, y_hat], axis=0)
        weights = np.concatenate([c / n, -c / n])
        xc = None if view.xc is None else np.concatenate([view.xc, view.xc], axis=0)
        return view.grad(states, weights, xc=xc)

    def _repr_fields(self):
        return {"grid_size": self.grid_size, "pad": self.pad, "min_distance": self.min_distance, "beta": self.beta}


_NEG_DOC = r"""
    Negatives follow LeCun et al. (2006): for each data point the **most
    offending incorrect answer** :math:`\hat y_i = \arg\min\{F(c): c \in C,
    \|c - y_i\| > r\}`, the lowest free energy among candidates :math:`C`
    farther than :math:`r` from :math:`y_i`. :math:`C` is ``candidates`` if
    given (default :math:`r = 0`), else a regular ``grid_size``-per-axis grid
    over the bounding box of the batch widened by ``pad`` times its extent
    on each side (default :math:`r` = twice the grid spacing). The choice of
    :math:`\hat y` is piecewise constant in the parameters and is held fixed
    in the gradient (exact except at ties). For a conditional model the
    data are a pair ``(x, y)``, :math:`F(c \mid x_i)` is minimised for each
    ``i`` and the default grid spans the ``y`` batch. Deterministic: ``seed``
    is ignored.

    References
    ----------
    LeCun, Y., Chopra, S., Hadsell, R., Ranzato, M., Huang, F. J. (2006). A
    tutorial on energy-based learning.
"""

# the parameters both contrastive losses share (their docstrings include it)
_CANDIDATES_DOC = r"""    candidates : array_like of shape (k, d), optional
        Candidate negatives; default a grid (see Notes).
    grid_size : int, default 24
    pad : float, default 0.25
    min_distance : float, optional
    beta : float or np.inf, optional
        As for :class:`LatentEnergyLoss`.
"""


class LatentHingeLoss(_Contrastive):
    __doc__ = r"""Hinge loss on free energies with a margin.

    Parameters
    ----------
    margin : float, default 1.0
        Margin :math:`m` (> 0).
""" + _CANDIDATES_DOC + r"""
    Notes
    -----
    .. math::

        L(\theta) = \frac1n \sum_i \big(m - [F(\hat y_i) - F(y_i)]\big)^+,
        \qquad
        \nabla_\theta L = \frac1n \sum_{i:\,\text{active}}
            \big[\nabla_\theta F(y_i) - \nabla_\theta F(\hat y_i)\big].
    """ + _NEG_DOC

    def __init__(self, margin=1.0, candidates=None, grid_size=24, pad=0.25, min_distance=None, beta=None):
        super().__init__(candidates, grid_size, pad, min_distance, beta)
        self.margin = check_positive(margin, "margin")

    def _repr_fields(self):
        return {"margin": self.margin, **super()._repr_fields()}

    def _loss(self, view, y, need_grad):
        y_hat, f_y, f_hat = self._parts(view, y)
        per = self.margin - (f_hat - f_y)
        loss = float(np.mean(np.maximum(0.0, per)))
        if not need_grad:
            return loss, None
        return loss, self._grad(view, y, y_hat, (per > 0).astype(np.float64))


class LatentLogLoss(_Contrastive):
    __doc__ = r"""Log loss (softplus) on free-energy differences.

    Parameters
    ----------
""" + _CANDIDATES_DOC + r"""
    Notes
    -----
    .. math::

        L(\theta) = \frac1n \sum_i \operatorname{softplus}\big(F(y_i) -
        F(\hat y_i)\big), \qquad
        \nabla_\theta L = \frac1n \sum_i \sigma\big(F(y_i) - F(\hat y_i)\big)
        \big[\nabla_\theta F(y_i) - \nabla_\theta F(\hat y_i)\big],

    a soft hinge with no margin (softplus is ``logaddexp(0, .)``).
    """ + _NEG_DOC

    def _loss(self, view, y, need_grad):
        y_hat, f_y, f_hat = self._parts(view, y)
        diff = f_y - f_hat
        loss = float(np.mean(softplus(diff)))
        if not need_grad:
            return loss, None
        return loss, self._grad(view, y, y_hat, sigmoid(diff))
