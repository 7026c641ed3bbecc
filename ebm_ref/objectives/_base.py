r"""Shared machinery of the objectives (docs/objectives.md).

An objective is an object with

* ``value_and_grad(model, x, seed=None) -> (loss, grads)``: ``loss`` a
  Python float, ``grads`` a dict with the keys and shapes of
  ``model.params``, the exact gradient of ``loss`` with every random number
  of the call held fixed;
* ``value(model, x, seed=None) -> float``.

Gradients are assembled only from the six primitives of
:class:`~ebm_ref.energies._base.EnergyModel` (``energy``, ``grad_x``,
``hessian_diag``, ``grad_params``, ``grad_params_of_grad_x``,
``grad_params_of_hessian_diag``), so every model that has them gets every
objective that makes sense for its domain.

Randomness: ``seed`` (int, SeedSequence or Generator) is turned into a
SeedSequence ``ss`` by :func:`ebm_ref._rng.as_seed_sequence`; the objective's
own noise comes from ``default_rng(SeedSequence(ss.entropy,
spawn_key=ss.spawn_key + (STREAM_OBJECTIVE,)))``, and samplers called by an
objective receive ``SeedSequence(ss.entropy, spawn_key=ss.spawn_key +
(STREAM_OBJECTIVE, 1))``. The same seed therefore gives the same random
numbers whatever the parameters, which is what finite-difference checks of
a stochastic loss need.
"""

from __future__ import annotations

import numpy as np

from .._rng import STREAM_OBJECTIVE, as_seed_sequence
from ..energies import EnergyModel

__all__ = ["Objective"]


def _objective_rng(seed):
    """Generator for an objective's own noise (module docstring)."""
    ss = as_seed_sequence(seed)
    child = np.random.SeedSequence(ss.entropy, spawn_key=tuple(ss.spawn_key) + (STREAM_OBJECTIVE,))
    return np.random.default_rng(child)


def _sampler_seed(seed, index=1):
    """SeedSequence handed to a sampler called inside an objective."""
    ss = as_seed_sequence(seed)
    return np.random.SeedSequence(ss.entropy, spawn_key=tuple(ss.spawn_key) + (STREAM_OBJECTIVE, int(index)))


_DOMAIN_VALUES = {"binary": (0.0, 1.0), "spin": (-1.0, 1.0)}


def _sampler_states(out, model, x0, owner, sampler):
    """The final states a user-supplied ``sampler`` returned inside ``owner``, validated.

    One validator for every objective that calls a sampler (CD, PCD, ...):
    a sampler's bad output must be reported as the sampler's fault, naming
    it, not later as a bad ``x`` the user never passed. Accepts a
    :class:`~ebm_ref.samplers.SampleResult` (anything with ``.x``) or the
    states themselves.

    Raises
    ------
    ValueError
        If the states are not a real array of the shape of ``x0``, contain
        NaN/inf, or leave the model's binary/spin domain.
    """
    name = getattr(sampler, "__name__", None) or getattr(getattr(sampler, "func", None), "__name__", None)
    who = f"the `sampler` of {owner}" + (f" ({name})" if name else "")
    x = getattr(out, "x", out)
    try:
        arr = np.asarray(x)
    except Exception as exc:  # an object numpy cannot read at all
        raise ValueError(f"{who} returned something that is not an array of states: {exc}") from None
    if np.iscomplexobj(arr):
        raise ValueError(f"{who} returned complex states (dtype {arr.dtype}); states must be real.")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise ValueError(f"{who} returned states of dtype {arr.dtype}; expected a real numeric array.")
    arr = arr.astype(np.float64)
    if arr.shape != x0.shape:
        raise ValueError(f"{who} must return states of the shape of its start `x0`, {x0.shape}; got {arr.shape}.")
    bad = ~np.isfinite(arr)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(f"{who} returned non-finite states ({float(arr[i, j])!r} at row {i}, unit {j}).")
    allowed = _DOMAIN_VALUES.get(model.domain)
    if allowed is not None:
        bad = (arr != allowed[0]) & (arr != allowed[1])
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise ValueError(
                f"{who} returned states outside the model's {model.domain} domain {{{allowed[0]:g}, {allowed[1]:g}}} "
                f"({float(arr[i, j])!r} at row {i}, unit {j})."
            )
    return arr


def _check_model(model, owner):
    if not isinstance(model, EnergyModel):
        raise TypeError(
            f"`model` of {owner} must be an ebm_ref EnergyModel (with the six primitives of docs/models.md); "
            f"got {type(model).__name__}."
        )
    return model


def _require_domain(model, allowed, owner):
    if model.domain not in allowed:
        raise ValueError(
            f"{owner} needs a model with domain in {tuple(allowed)}; "
            f"got {type(model).__name__} with domain={model.domain!r}."
        )


def _flip_sign(x2d, domain):
    r"""``(x^{(i)} - x)_i`` for every unit: the change of unit i when flipped.

    ``1 - 2x`` on {0,1}, ``-2s`` on {-1,+1}.
    """
    if domain == "binary":
        return 1.0 - 2.0 * x2d
    return -2.0 * x2d


def _scaled(grads, factor):
    return {k: factor * v for k, v in grads.items()}


def _added(a, b, sign=1.0):
    return {k: a[k] + sign * b[k] for k in a}


class Objective:
    """Base class: validation and the ``value`` convenience.

    Subclasses implement ``_value_and_grad(model, x2d, seed)`` on a batch
    already validated by ``model.check_states`` and may set ``domains`` (the
    model domains they accept).
    """

    domains = ("real", "binary", "spin")

    def _prepare(self, model, x):
        owner = type(self).__name__
        _check_model(model, owner)
        _require_domain(model, self.domains, owner)
        x2d, _ = model.check_states(x, "x")
        return x2d

    def value_and_grad(self, model, x, seed=None):
        r"""Loss and its exact parameter gradient (random numbers held fixed).

        Parameters
        ----------
        model : EnergyModel
            Any model with the six primitives whose domain the objective
            accepts.
        x : array_like of shape (n, d) or (d,)
            Data states in the model's domain.
        seed : int, numpy.random.SeedSequence or numpy.random.Generator, optional
            Source of the objective's random numbers; required by the
            stochastic objectives, ignored by the deterministic ones.

        Returns
        -------
        loss : float
        grads : dict of str to ndarray
            Same keys and shapes as ``model.params``.

        Raises
        ------
        TypeError
            If ``model`` is not an :class:`~ebm_ref.energies.EnergyModel`,
            or a stochastic objective gets no usable ``seed``.
        ValueError
            For a model of a domain the objective cannot take, or ``x`` of
            the wrong shape / outside the domain.
        """
        x2d = self._prepare(model, x)
        loss, grads = self._value_and_grad(model, x2d, seed)
        return float(loss), grads

    def value(self, model, x, seed=None):
        """The loss alone (same arguments as :meth:`value_and_grad`)."""
        x2d = self._prepare(model, x)
        return float(self._value(model, x2d, seed))

    def _value(self, model, x2d, seed):
        return self._value_and_grad(model, x2d, seed)[0]

    def _value_and_grad(self, model, x2d, seed):  # pragma: no cover - abstract
        raise TypeError(f"{type(self).__name__} does not define a loss.")

    def __repr__(self):
        inner = ", ".join(f"{k}={v!r}" for k, v in self._repr_fields().items())
        return f"{type(self).__name__}({inner})"

    def _repr_fields(self):
        return {}
