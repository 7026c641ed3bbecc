r"""Likelihood-based objectives: exact maximum likelihood, CD and PCD."""

from __future__ import annotations

import copy as _copy

import numpy as np

from .._validation import check_int
from ._base import Objective, _objective_rng, _sampler_seed, _sampler_states

__all__ = ["ExactMLE", "CD", "PCD"]


class ExactMLE(Objective):
    r"""Minus the exact average log-likelihood (small state spaces).

    Notes
    -----
    .. math::

        L(\theta) = -\frac1n \sum_i \log p_\theta(x_i)
                  = \frac1n \sum_i E(x_i) + \log Z(\theta),
        \qquad
        \nabla_\theta L = \frac1n \sum_i \nabla_\theta E(x_i)
                        - \mathbb E_{p_\theta}[\nabla_\theta E],

    computed by :func:`ebm_ref.exact.log_likelihood` and minus
    :func:`ebm_ref.exact.mle_grad` (enumeration or closed forms; models or
    sizes that :mod:`ebm_ref.exact` refuses are refused here with its
    error). Deterministic: ``seed`` is ignored.

    References
    ----------
    Fisher, R. A. (1922). On the mathematical foundations of theoretical
    statistics. Phil. Trans. R. Soc. A 222.
    """

    def _value(self, model, x, seed):
        from .. import exact

        return -float(np.mean(exact.log_likelihood(model, x)))

    def _value_and_grad(self, model, x, seed):
        from .. import exact

        loss = -float(np.mean(exact.log_likelihood(model, x)))
        g = exact.mle_grad(model, x)
        grads = {k: -np.asarray(v, dtype=np.float64) for k, v in g.items()}
        for name, mask in model.structural_zeros().items():
            grads[name][mask] = 0.0
        return loss, grads


def _default_sampler(model, owner):
    """Block/sweep Gibbs where it exists, Gibbs-with-gradients for other binary models."""
    # Block or site Gibbs for the models whose Gibbs conditionals have a
    # kernel (identified by their Numba form, as the samplers do; a subclass
    # that redefines a formula has no form and gets GWG on its own energy).
    from ..energies import GRBM, RBM, Ising

    form = model.numba_form()
    if form is not None and form.kind in (RBM.NUMBA_KIND, GRBM.NUMBA_KIND, Ising.NUMBA_KIND):
        from ..samplers import gibbs

        return gibbs
    if model.domain in ("binary", "spin"):
        from ..samplers import gwg

        return gwg
    raise TypeError(
        f"{owner} on a continuous {type(model).__name__} needs an explicit `sampler`, e.g. "
        "functools.partial(ebm_ref.samplers.langevin, step_size=0.01)."
    )


def _run_sampler(sampler, model, x0, k, seed, owner):
    """Call ``sampler(model, x0, k, seed=...)`` and return its final states."""
    return _sampler_states(sampler(model, x0, k, seed=seed), model, x0, owner, sampler)


def _surrogate(model, x, negatives):
    r"""``mean E(x) - mean E(negatives)`` and its gradient (negatives fixed)."""
    n, m = x.shape[0], negatives.shape[0]
    loss = float(np.mean(model.energy(x)) - np.mean(model.energy(negatives)))
    states = np.concatenate([x, negatives], axis=0)
    weights = np.concatenate([np.full(n, 1.0 / n), np.full(m, -1.0 / m)])
    return loss, model.grad_params(states, weights)


class CD(Objective):
    r"""Contrastive divergence CD-k (Hinton 2002).

    Parameters
    ----------
    k : int, default 1
        Sampler steps started at the data (>= 1).
    sampler : callable, optional
        ``sampler(model, x0, n_steps, seed=...)`` returning a
        :class:`~ebm_ref.samplers.SampleResult` (or anything with ``.x``, or
        the states). Default: :func:`ebm_ref.samplers.gibbs` for RBM, GRBM
        and Ising, :func:`ebm_ref.samplers.gwg` for other binary models;
        continuous models need one given, e.g.
        ``functools.partial(ebm_ref.samplers.langevin, step_size=0.01)``.

    Notes
    -----
    With negatives :math:`\tilde x_i` from ``k`` sampler steps started at
    :math:`x_i` (seeded by ``seed``), the returned loss is the surrogate

    .. math::

        L(\theta) = \frac1n \sum_i E(x_i) - \frac1n \sum_i E(\tilde x_i),

    and the returned gradient is its gradient **with the negatives held
    fixed**: :math:`\frac1n\sum_i \nabla_\theta E(x_i) - \frac1n\sum_i
    \nabla_\theta E(\tilde x_i)`, the CD update. It is not the derivative of
    the loss through the sampler: finite differences match it only with the
    negatives frozen (:meth:`surrogate`), or, for the binary samplers, with
    the same seed, where a small parameter change moves no sample.

    References
    ----------
    Hinton, G. E. (2002). Training products of experts by minimizing
    contrastive divergence. Neural Computation 14(8), 1771-1800.

    Examples
    --------
    >>> import functools
    >>> import numpy as np
    >>> from ebm_ref.energies import StudentT
    >>> from ebm_ref.objectives import CD
    >>> from ebm_ref.samplers import langevin
    >>> cd = CD(k=5, sampler=functools.partial(langevin, step_size=0.01, adjust=True))
    >>> model = StudentT([0.0], [0.0], [np.log(5.0)])
    >>> x = np.array([[0.3], [-1.2]])
    >>> neg = cd.negatives(model, x, seed=1)
    >>> cd.value_and_grad(model, x, seed=1)[0] == cd.surrogate(model, x, neg)[0]
    True
    """

    def __init__(self, k=1, sampler=None):
        self.k = check_int(k, "k", minimum=1)
        if sampler is not None and not callable(sampler):
            raise TypeError(f"`sampler` must be callable; got {type(sampler).__name__}.")
        self.sampler = sampler

    def _repr_fields(self):
        return {"k": self.k, "sampler": getattr(self.sampler, "__name__", self.sampler)}

    def _sampler_for(self, model):
        return self.sampler if self.sampler is not None else _default_sampler(model, type(self).__name__)

    def negatives(self, model, x, seed):
        r"""The negative samples of one call, shape of ``x`` (2-D).

        Parameters
        ----------
        model : EnergyModel
        x : array_like of shape (n, d)
        seed : int, SeedSequence or Generator

        Returns
        -------
        ndarray of shape (n, d)
        """
        x2d = self._prepare(model, x)
        return self._negatives(model, x2d, seed)

    def _negatives(self, model, x, seed):
        return _run_sampler(self._sampler_for(model), model, x, self.k, _sampler_seed(seed), type(self).__name__)

    def surrogate(self, model, x, negatives):
        r"""The surrogate loss and gradient for given (frozen) negatives.

        Parameters
        ----------
        model : EnergyModel
        x : array_like of shape (n, d)
            Data states.
        negatives : array_like of shape (m, d)
            Negative states (any number of rows), in the model's domain.

        Returns
        -------
        loss : float
            ``mean E(x) - mean E(negatives)``.
        grads : dict
            Its exact gradient.
        """
        x2d = self._prepare(model, x)
        neg, _ = model.check_states(negatives, "negatives")
        return _surrogate(model, x2d, neg)

    def _value_and_grad(self, model, x, seed):
        return _surrogate(model, x, self._negatives(model, x, seed))


class PCD(Objective):
    r"""Persistent contrastive divergence (Tieleman 2008).

    Parameters
    ----------
    k : int, default 1
        Sampler steps per call (>= 1).
    n_chains : int, default 100
        Number of persistent chains (>= 1).
    sampler : callable, optional
        As for :class:`CD`.

    Attributes
    ----------
    chains : ndarray of shape (n_chains, d) or None
        Current persistent states (``None`` before the first call).

    Notes
    -----
    The chains live in the object. On the first call they start at
    ``n_chains`` data rows drawn uniformly with replacement (using
    ``seed``); each call runs ``k`` sampler steps from the current chains
    and, when ``advance=True`` (the default), keeps the result. The loss is
    the surrogate :math:`\frac1n\sum_i E(x_i) - \frac1{C}\sum_c E(\tilde
    x_c)` over the *new* chain states and the gradient is taken with those
    negatives held fixed (see :class:`CD`). ``advance=False`` computes the
    same numbers without storing the new states, so repeated calls with the
    same seed (finite-difference checks) see the same negatives; so does a
    :meth:`copy`.

    References
    ----------
    Tieleman, T. (2008). Training restricted Boltzmann machines using
    approximations to the likelihood gradient. ICML.
    """

    def __init__(self, k=1, n_chains=100, sampler=None):
        self.k = check_int(k, "k", minimum=1)
        self.n_chains = check_int(n_chains, "n_chains", minimum=1)
        if sampler is not None and not callable(sampler):
            raise TypeError(f"`sampler` must be callable; got {type(sampler).__name__}.")
        self.sampler = sampler
        self.chains = None

    def _repr_fields(self):
        return {"k": self.k, "n_chains": self.n_chains, "sampler": getattr(self.sampler, "__name__", self.sampler)}

    def copy(self):
        """An independent copy (chains copied)."""
        new = _copy.copy(self)
        new.chains = None if self.chains is None else self.chains.copy()
        return new

    def reset(self):
        """Forget the persistent chains (the next call re-initialises them)."""
        self.chains = None

    def _start(self, x, seed):
        if self.chains is not None:
            if self.chains.shape[1] != x.shape[1]:
                raise ValueError(
                    f"`x` has {x.shape[1]} features but the persistent chains of PCD have "
                    f"{self.chains.shape[1]}; call reset() to start new chains."
                )
            return self.chains
        idx = _objective_rng(seed).integers(0, x.shape[0], size=self.n_chains)
        return x[idx].copy()

    def value_and_grad(self, model, x, seed=None, advance=True):
        r"""Surrogate loss and gradient (negatives fixed); see the class Notes.

        Parameters
        ----------
        model : EnergyModel
        x : array_like of shape (n, d) or (d,)
            Data states in the model's domain.
        seed : int, SeedSequence or Generator
            Seeds the sampler (and the first initialisation).
        advance : bool, default True
            Keep the new chain states in the object.

        Returns
        -------
        loss : float
        grads : dict
        """
        x2d = self._prepare(model, x)
        neg = self._step(model, x2d, seed, advance)
        loss, grads = _surrogate(model, x2d, neg)
        return float(loss), grads

    def value(self, model, x, seed=None, advance=False):
        """The surrogate loss; does not advance the chains unless asked."""
        return self.value_and_grad(model, x, seed, advance=advance)[0]

    def _step(self, model, x, seed, advance):
        start = self._start(x, seed)
        model.check_states(start, "chains")
        sampler = self.sampler if self.sampler is not None else _default_sampler(model, "PCD")
        neg = _run_sampler(sampler, model, start, self.k, _sampler_seed(seed), "PCD")
        if advance:
            self.chains = neg.copy()
        return neg

    def surrogate(self, model, x, negatives):
        """As :meth:`CD.surrogate`: loss and gradient for frozen negatives."""
        x2d = self._prepare(model, x)
        neg, _ = model.check_states(negatives, "negatives")
        return _surrogate(model, x2d, neg)
