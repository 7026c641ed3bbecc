r"""Pseudo-likelihood (Besag 1975) for binary and spin models (docs/pseudo-likelihood-and-ssm.md).

Notation: :math:`x^{(k)}` is :math:`x` with unit :math:`k` flipped
(:math:`x_k \to 1 - x_k` on {0,1}, :math:`s_k \to -s_k` on {-1,+1}) and
:math:`\Delta_k(x) = E(x^{(k)}) - E(x)` the energy change of that flip. The
two values of unit :math:`k` given the others are :math:`x` and
:math:`x^{(k)}`, so

.. math::

    \log p(x_k \mid x_{-k}) = -E(x) - \log\big(e^{-E(x)} + e^{-E(x^{(k)})}\big)
    = -\operatorname{softplus}(-\Delta_k(x)) = \log\sigma(\Delta_k(x)).

Everything below is built from :math:`\Delta`: the model primitive
``flip_energy_delta(x)`` (``(n, d)``) with its parameter derivative
``grad_params_of_flip_energy_delta(x, c)`` (closed forms for ``RBM`` and
``Ising``; the energies of the ``n d`` flipped states for any other binary
model).
"""

from __future__ import annotations

import numpy as np

from .._numerics import sigmoid, softplus
from ._base import Objective, _flip_sign, _objective_rng
from .._validation import check_int

__all__ = ["PseudoLikelihood"]


class PseudoLikelihood(Objective):
    r"""Negative log pseudo-likelihood (Besag 1975) of binary or spin models, as a loss.

    Parameters
    ----------
    stochastic : bool, default False
        ``False``: the full sum over the ``d`` units (deterministic, ``seed``
        ignored). ``True``: the one-unit estimator of scikit-learn's
        ``BernoulliRBM.score_samples``: one unit :math:`k_i` per sample,
        drawn uniformly from ``seed``, times ``d`` (``seed`` required).

    Notes
    -----
    With :math:`\Delta_k(x) = E(x^{(k)}) - E(x)` the energy change of
    flipping unit :math:`k` (module docstring), the full loss is

    .. math::

        J(\theta) = -\frac1n \sum_i \sum_{k=1}^d \log p_\theta(x_{ik} \mid x_{i,-k})
        = \frac1n \sum_i \sum_k \operatorname{softplus}(-\Delta_k(x_i)),

    and its exact gradient, with :math:`c_{ik} = -\sigma(-\Delta_k(x_i))/n`
    (:math:`d\,\operatorname{softplus}(-\Delta)/d\Delta = -\sigma(-\Delta)`),

    .. math::

        \nabla_\theta J = \sum_{i,k} c_{ik}\, \nabla_\theta \Delta_k(x_i)
        = \texttt{grad\_params\_of\_flip\_energy\_delta}(x, c).

    Models with the hook ``flip_energy_delta`` / ``grad_params_of_flip_energy_delta``
    (``RBM``, ``Ising`` dense and lattice) use it; any other binary or spin
    model is served through its energies and ``grad_params`` on the ``n d``
    flipped states: :math:`\nabla_\theta\Delta_k(x) = \nabla_\theta
    E(x^{(k)}) - \nabla_\theta E(x)`.

    The stochastic estimator draws :math:`k_i` uniform on
    :math:`\{0, \dots, d-1\}` (:meth:`units`) and returns
    :math:`\frac1n\sum_i d\,\operatorname{softplus}(-\Delta_{k_i}(x_i))`, an
    unbiased estimate of :math:`J` (the mean over :math:`k_i` is the sum
    over units divided by :math:`d`). It needs two energies per sample
    (:math:`x_i` and :math:`x_i^{(k_i)}`), so it works for any binary model;
    the gradient is exact with the :math:`k_i` held fixed. Its per-sample
    value is minus scikit-learn's ``score_samples`` for the same units
    (:meth:`per_sample`).

    Besag's estimator is consistent: for data from the model family, the
    minimiser of :math:`J` converges to the true parameters as
    :math:`n \to \infty` (each conditional is correctly specified, so the
    expected gradient vanishes there). It is not efficient in general, and
    unlike maximum likelihood it never needs :math:`Z`.

    Costs: full, with the hook, O(n d H) for an RBM (``(n, d, H)`` work
    array) and O(n d) for a lattice Ising (neighbour sums; the ``J``
    gradient is a dense ``(d, d)`` array as for every Ising parameter
    derivative); without the hook ``n (d + 1)`` energies. Stochastic: two
    energies per sample and one ``grad_params`` call on ``2n`` states.

    Randomness (stochastic only): :math:`k_i` are the first ``n`` integers
    of a NumPy ``Generator`` on the objective's stream of ``seed`` (see
    docs/conventions.md), so the units of a prefix of the samples do not
    depend on how many samples follow.

    References
    ----------
    Besag, J. (1975). Statistical analysis of non-lattice data. Journal of
    the Royal Statistical Society D (The Statistician) 24(3), 179-195.
    Hyvärinen, A. (2006). Consistency of pseudolikelihood estimation of fully
    visible Boltzmann machines. Neural Computation 18(10), 2283-2292.

    Examples
    --------
    >>> import numpy as np
    >>> from ebm_ref.energies import Ising
    >>> from ebm_ref.objectives import PseudoLikelihood
    >>> model = Ising.random(5, 1.0, seed=0)
    >>> s = np.where(np.random.default_rng(1).random((8, 5)) < 0.5, 1.0, -1.0)
    >>> loss, grads = PseudoLikelihood().value_and_grad(model, s)
    >>> sorted(grads)
    ['J', 'h']
    >>> est = PseudoLikelihood(stochastic=True).value(model, s, seed=3)
    """

    domains = ("binary", "spin")

    def __init__(self, stochastic=False):
        if not isinstance(stochastic, (bool, np.bool_)):
            raise TypeError(f"`stochastic` must be a bool; got {type(stochastic).__name__}.")
        self.stochastic = bool(stochastic)

    def _repr_fields(self):
        return {"stochastic": self.stochastic}

    # ------------------------------------------------------------- public extras
    def units(self, n, d, seed):
        r"""The units the stochastic estimator flips for ``seed``: ``(n,)`` int64 in ``[0, d)``.

        Parameters
        ----------
        n, d : int
            Number of samples and of units (``n >= 0``, ``d >= 1``).
        seed : int, numpy.random.SeedSequence or numpy.random.Generator

        Returns
        -------
        ndarray of int64, shape (n,)
            The first ``n`` uniform integers of the objective's stream of
            ``seed``: entry ``i`` depends on ``seed`` and ``i`` only.
        """
        n = check_int(n, "n", minimum=0)
        d = check_int(d, "d", minimum=1)
        return _objective_rng(seed).integers(0, d, size=n, dtype=np.int64)

    def per_sample(self, model, x, units=None):
        r"""Per-sample losses, shape ``(n,)`` (their mean is the loss).

        Parameters
        ----------
        model : EnergyModel
            A binary or spin model.
        x : array_like of shape (n, d) or (d,)
            States of the model's domain.
        units : array_like of int, shape (n,), optional
            ``None``: the full sum :math:`\sum_k \operatorname{softplus}(-\Delta_k(x_i))`
            (:math:`-\log` of the pseudo-likelihood of :math:`x_i`). Given:
            :math:`d\,\operatorname{softplus}(-\Delta_{k_i}(x_i))`, the
            one-unit estimate with unit ``units[i]`` flipped in sample ``i``
            (equal to minus ``sklearn.neural_network.BernoulliRBM.score_samples``
            when scikit-learn draws the same units).

        Returns
        -------
        ndarray of shape (n,)
        """
        x2d = self._prepare(model, x)
        if units is None:
            return softplus(-self._deltas(model, x2d)).sum(axis=1)
        k = self._check_units(units, x2d)
        delta, _ = self._one_flip(model, x2d, k)
        return x2d.shape[1] * softplus(-delta)

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _check_units(units, x2d):
        k = np.asarray(units)
        n, d = x2d.shape
        if k.shape != (n,) or not np.issubdtype(k.dtype, np.integer):
            raise ValueError(f"`units` must be an integer array of shape ({n},); got dtype {k.dtype}, shape {k.shape}.")
        if n and (k.min() < 0 or k.max() >= d):
            raise ValueError(f"`units` must lie in [0, {d}); got values in [{k.min()}, {k.max()}].")
        return k.astype(np.int64)

    @staticmethod
    def _deltas(model, x):
        return model.flip_energy_delta(x)

    @staticmethod
    def _one_flip(model, x, k):
        rows = np.arange(x.shape[0])
        xf = x.copy()
        xf[rows, k] += _flip_sign(x[rows, k], model.domain)
        return model.energy(xf) - model.energy(x), xf

    # ---------------------------------------------------------------- objective
    def _value(self, model, x, seed):
        n, d = x.shape
        if self.stochastic:
            delta, _ = self._one_flip(model, x, self.units(n, d, seed))
            return float(np.mean(d * softplus(-delta)))
        return float(np.mean(softplus(-self._deltas(model, x)).sum(axis=1)))

    def _value_and_grad(self, model, x, seed):
        n, d = x.shape
        if self.stochastic:
            delta, xf = self._one_flip(model, x, self.units(n, d, seed))
            loss = float(np.mean(d * softplus(-delta)))
            c = -d * sigmoid(-delta) / n
            grads = model.grad_params(np.concatenate([xf, x]), weights=np.concatenate([c, -c]))
            return loss, grads
        delta = model.flip_energy_delta(x)
        loss = float(np.mean(softplus(-delta).sum(axis=1)))
        return loss, model.grad_params_of_flip_energy_delta(x, -sigmoid(-delta) / n)
