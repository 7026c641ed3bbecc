r"""The energy interface of docs/models.md (the "derivative algebra").

Public methods check their input and call private hooks that are pure
formula (scipy.stats' split): subclasses implement only

* ``_energy(x) -> (n,)``
* ``_grad_x(x) -> (n, d)``
* ``_hessian_diag(x) -> (n, d)``
* ``_grad_params(x, w) -> dict``: :math:`\sum_i w_i \partial E(x_i)/\partial\theta`
* ``_grad_params_of_grad_x(x, v) -> dict``:
  :math:`\sum_i \partial/\partial\theta\,[v_i\cdot\nabla_x E(x_i)]`
* ``_grad_params_of_hessian_diag(x, c) -> dict``:
  :math:`\sum_{i,k} c_{ik}\,\partial/\partial\theta\,[\partial^2 E/\partial x_k^2(x_i)]`

which may assume a C-contiguous float64 ``x`` of shape ``(n, d)`` with
finite entries (any real values, also for binary models: their energy
methods evaluate the continuous extension of the formula).

Parameters live in ``self._params`` (an insertion-ordered dict of read-only
float64 arrays); ``_check_constraints(params)`` raises for invalid values
(e.g. an asymmetric Ising ``J``); ``_post_init()`` derives caches. Models
with *structural zeros* (entries that are not parameters, like the diagonal
of the Ising ``J``) list them in ``structural_zeros()``; every parameter
derivative is zeroed there by the public methods.
"""

from __future__ import annotations

import abc
import numbers
from collections.abc import Mapping

import numpy as np

from .._validation import (
    check_batch,
    check_domain,
    check_like,
    check_param,
    check_weights,
)
from ._hooks import ModelHooks, NumbaForm

__all__ = ["EnergyModel", "NumbaForm"]


def merged_params(current, params, owner):
    """A copy of ``current`` updated with ``params``, after checking that ``params`` is a dict of known keys."""
    if not isinstance(params, Mapping):
        raise TypeError(f"`params` must be a dict of arrays; got {type(params).__name__}.")
    unknown = [k for k in params if k not in current]
    if unknown:
        raise ValueError(
            f"`params` has unknown key(s) {unknown} for {owner}; expected a subset of {list(current)}."
        )
    merged = dict(current)
    merged.update(params)
    return merged


class EnergyModel(ModelHooks, abc.ABC):
    """Base class of every energy model (see the module docstring).

    Attributes
    ----------
    domain : {"binary", "spin", "real"}
        The state space that samplers, exact functions and objectives accept.
    n_features : int
        Dimension ``d`` of a state.
    params : dict of str to ndarray
        Insertion-ordered, read-only arrays (a fresh dict on each access).
    PRIMITIVES : tuple of str
        The six public derivative methods every model implements, in the
        order every report, adapter and reference file lists them.
    """

    domain = "real"
    PRIMITIVES = (
        "energy",
        "grad_x",
        "hessian_diag",
        "grad_params",
        "grad_params_of_grad_x",
        "grad_params_of_hessian_diag",
    )

    # ------------------------------------------------------------------ state
    def _set_params(self, params, shapes, check_constraints=True):
        """Validate and store ``params`` (dict name -> array) against ``shapes``."""
        owner = type(self).__name__
        out = {}
        for name, shape in shapes.items():
            out[name] = check_param(params[name], name, shape, owner)
        if check_constraints:
            self._check_constraints(out)
        for arr in out.values():
            arr.flags.writeable = False
        self._params = out
        self._post_init()

    def _check_constraints(self, params):
        """Raise ``ValueError`` if ``params`` violate a model constraint (hook)."""
        return None

    def _post_init(self):
        """Derive caches from ``self._params`` (hook)."""
        return None

    @property
    def params(self):
        """Insertion-ordered dict ``name -> ndarray`` (read-only arrays)."""
        return dict(self._params)

    @property
    @abc.abstractmethod
    def n_features(self):
        """Dimension ``d`` of a state."""

    def structural_zeros(self):
        """Dict ``name -> bool mask`` of entries that are not parameters.

        Derivatives are exactly zero there (docs/conventions.md). Empty for most models.
        """
        return {}

    def _describe(self):
        """Short description used in error messages."""
        return f"{type(self).__name__} with {self.n_features} features"

    def with_params(self, params):
        """Return a new model with some or all parameters replaced.

        Parameters
        ----------
        params : mapping of str to array_like
            Any subset of the keys of ``self.params``; each value must have
            the shape of the current one. Other entries are kept.

        Returns
        -------
        EnergyModel
            A new object of the same class; ``self`` is unchanged.

        Raises
        ------
        TypeError
            If ``params`` is not a mapping.
        ValueError
            For an unknown key, a wrong shape, NaN/inf, or a violated
            constraint.
        """
        return self._replace_params(params, check_constraints=True)

    def _with_params_unchecked(self, params):
        """``with_params`` without the model constraints (shapes still checked).

        For finite-difference checks only: it lets a single entry of a
        symmetric matrix move, so that every entry is treated as an
        independent variable as docs/conventions.md requires.
        """
        return self._replace_params(params, check_constraints=False)

    def _replace_params(self, params, check_constraints):
        merged = merged_params(self._params, params, type(self).__name__)
        shapes = {k: v.shape for k, v in self._params.items()}
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new._set_params(merged, shapes, check_constraints=check_constraints)
        return new

    def __repr__(self):
        inner = ", ".join(f"{k}={v.shape}" for k, v in self._params.items())
        return f"{type(self).__name__}({inner})"

    # -------------------------------------------------------------- tempering
    def tempered(self, beta):
        r"""The model at inverse temperature ``beta``: density :math:`\propto e^{-\beta E}`.

        For latent-variable models the *joint* energy is scaled, so the
        returned model's ``energy`` is the free energy of :math:`\beta
        E(v, h)`, which in general is not :math:`\beta F(v)`. Replica
        exchange (``ebm_ref.samplers.parallel_tempering``) runs one such
        model per temperature; see ``docs/parallel-tempering.md``.

        Parameters
        ----------
        beta : float
            Finite and ``>= 0`` (``0`` gives the uniform distribution of a
            model whose energy is linear in its parameters).

        Returns
        -------
        EnergyModel
            A new model of the same class; ``self`` is unchanged.

        Raises
        ------
        ValueError
            Here, always: the base class does not know how to scale an
            energy. Models that support tempering (``RBM``, ``Ising``,
            ``FVBM``) override this method.

        References
        ----------
        Hukushima, K. & Nemoto, K. (1996). Exchange Monte Carlo method and
        application to spin glass simulations. J. Phys. Soc. Jpn. 65(6),
        1604-1608.
        Neal, R. M. (2001). Annealed importance sampling. Statistics and
        Computing 11(2), 125-139.
        """
        raise ValueError(
            f"{type(self).__name__} does not support tempering: `tempered(beta)` is implemented "
            f"for RBM, Ising and FVBM only; got a request for beta={beta!r}."
        )

    @staticmethod
    def _check_beta(beta):
        """``beta`` of ``tempered``: a real number, finite and >= 0."""
        if isinstance(beta, (bool, np.bool_)) or not isinstance(beta, numbers.Real):
            raise TypeError(f"`beta` must be a real number; got {type(beta).__name__}.")
        b = float(beta)
        if not np.isfinite(b) or b < 0.0:
            raise ValueError(f"`beta` must be finite and >= 0; got {beta!r}.")
        return b

    # ------------------------------------------------------------ validation
    def _check_x(self, x, name="x"):
        """Any real batch (the continuous extension for binary models)."""
        return check_batch(x, self.n_features, name, self._describe())

    def check_states(self, x, name="x"):
        """Validate states of the model's domain: returns ``(x2d, was_1d)``.

        Used by everything that consumes *states* (samplers, exact functions,
        objectives, training); see docs/conventions.md.
        """
        x2d, was_1d = check_batch(x, self.n_features, name, self._describe())
        check_domain(x2d, self.domain, name)
        return x2d, was_1d

    def _zero_structural(self, grads):
        for name, mask in self.structural_zeros().items():
            grads[name][mask] = 0.0
        return grads

    # ------------------------------------------------------- public primitives
    def energy(self, x):
        """Energy ``E(x)``.

        Parameters
        ----------
        x : array_like of shape (n, d) or (d,)

        Returns
        -------
        ndarray of shape (n,), or a 0-d array for a single state.
        """
        x2d, was_1d = self._check_x(x)
        e = self._energy(x2d)
        return e[0] if was_1d else e

    def grad_x(self, x):
        """Gradient ``dE/dx``, shape ``(n, d)`` (``(d,)`` for a single state)."""
        x2d, was_1d = self._check_x(x)
        g = self._grad_x(x2d)
        return g[0] if was_1d else g

    def hessian_diag(self, x):
        """Diagonal ``d^2 E / dx_k^2`` of the Hessian in x, shape ``(n, d)``."""
        x2d, was_1d = self._check_x(x)
        h = self._hessian_diag(x2d)
        return h[0] if was_1d else h

    def hessian_trace(self, x):
        """``tr d^2E/dx^2 = hessian_diag(x).sum(-1)``, shape ``(n,)``."""
        return self.hessian_diag(x).sum(-1)

    def grad_params(self, x, weights=None):
        """``sum_i w_i dE(x_i)/dtheta`` as a dict (default ``w_i = 1/n``)."""
        x2d, was_1d = self._check_x(x)
        w = check_weights(weights, x2d.shape[0], was_1d)
        return self._zero_structural(self._grad_params(x2d, w))

    def grad_params_of_grad_x(self, x, v):
        """``sum_i d/dtheta [v_i . dE/dx(x_i)]`` with ``v`` held constant."""
        x2d, was_1d = self._check_x(x)
        v2d = check_like(v, x2d, was_1d, "v")
        return self._zero_structural(self._grad_params_of_grad_x(x2d, v2d))

    def grad_params_of_hessian_diag(self, x, c):
        """``sum_i sum_k c_ik d/dtheta [d^2E/dx_k^2 (x_i)]``."""
        x2d, was_1d = self._check_x(x)
        c2d = check_like(c, x2d, was_1d, "c")
        return self._zero_structural(self._grad_params_of_hessian_diag(x2d, c2d))

    # --------------------------------------- binary models: single-unit flips
    def flip_energy_delta(self, x):
        r"""Energy change of flipping each unit, :math:`\Delta_k(x) = E(x^{(k)}) - E(x)`: ``(n, d)``.

        :math:`x^{(k)}` is :math:`x` with unit :math:`k` moved by
        :math:`\delta_k = 1 - 2x_k` (``domain="binary"``) or :math:`-2x_k`
        (``"spin"``); on states that is the flip of unit :math:`k`, and
        :math:`\log p(x_k \mid x_{-k}) = \log\sigma(\Delta_k(x))`. Any real
        ``x`` is accepted (the continuous extension). ``RBM`` and ``Ising``
        have closed forms; any other binary model gets the ``n (d + 1)``
        energies of the flipped states. Used by
        :class:`~ebm_ref.objectives.PseudoLikelihood`.

        Parameters
        ----------
        x : array_like of shape (n, d) or (d,)

        Returns
        -------
        ndarray of shape (n, d) (``(d,)`` for a single state)

        Raises
        ------
        TypeError
            For a model on real-valued states (``domain="real"``).

        References
        ----------
        Besag, J. (1975). Statistical analysis of non-lattice data. Journal of the
        Royal Statistical Society D (The Statistician) 24(3), 179-195.
        """
        x2d, was_1d = self._check_x(x)
        self._require_flips("flip_energy_delta")
        out = self._flip_energy_delta(x2d)
        return out[0] if was_1d else out

    def grad_params_of_flip_energy_delta(self, x, c):
        r"""``sum_i sum_k c_ik d/dtheta [Delta_k(x_i)]`` (dict), ``c`` of shape ``(n, d)`` held constant.

        Parameters
        ----------
        x : array_like of shape (n, d) or (d,)
        c : array_like of the shape of ``x``

        Returns
        -------
        dict of str to ndarray
            Same keys and shapes as ``params`` (structural zeros exactly
            zero). Without a closed form it is
            ``sum_ik c_ik dE(x_i^(k))/dtheta - sum_i (sum_k c_ik) dE(x_i)/dtheta``,
            one weighted ``grad_params`` over the flipped states.

        References
        ----------
        Besag, J. (1975). Statistical analysis of non-lattice data. Journal of the
        Royal Statistical Society D (The Statistician) 24(3), 179-195.
        """
        x2d, was_1d = self._check_x(x)
        c2d = check_like(c, x2d, was_1d, "c")
        self._require_flips("grad_params_of_flip_energy_delta")
        return self._zero_structural(self._grad_params_of_flip_energy_delta(x2d, c2d))

    def _require_flips(self, what):
        if self.domain not in ("binary", "spin"):
            raise TypeError(f"`{what}` needs a binary or spin model; {type(self).__name__} has domain {self.domain!r}.")

    def _flip_step(self, x):
        """``delta_k``: the move of unit k when flipped (``1 - 2x`` on {0,1}, ``-2x`` on spins)."""
        return -2.0 * x if self.domain == "spin" else 1.0 - 2.0 * x

    def _flipped_rows(self, x):
        """``(n d, d)``: row ``i d + k`` is ``x_i`` with unit ``k`` flipped."""
        n, d = x.shape
        xf = np.repeat(x[:, None, :], d, axis=1)
        idx = np.arange(d)
        xf[:, idx, idx] += self._flip_step(x)
        return xf.reshape(n * d, d)

    def _flip_energy_delta(self, x):
        n, d = x.shape
        return self._energy(self._flipped_rows(x)).reshape(n, d) - self._energy(x)[:, None]

    def _grad_params_of_flip_energy_delta(self, x, c):
        both = np.concatenate([self._flipped_rows(x), x])
        return self._grad_params(both, np.concatenate([c.ravel(), -c.sum(axis=1)]))

    # ------------------------------------------- optional: Hessian-vector products
    @property
    def has_hvp(self):
        """Whether the model implements :meth:`hvp` and :meth:`grad_params_of_hvp`.

        ``StudentT``, ``GaussianMixture``, ``GRBM`` (free energy) and
        ``MLPEnergy`` do; they are what
        :class:`~ebm_ref.objectives.SlicedScoreMatching` needs.
        """
        return type(self)._hvp is not EnergyModel._hvp

    def hvp(self, x, v):
        r"""Hessian-vector product :math:`H(x_i)\,v_i` in ``x``, shape ``(n, d)``.

        :math:`H(x) = \nabla_x^2 E(x)`; exact (closed forms, or a forward
        pass of the direction through the network), no finite differences.
        Only models with :attr:`has_hvp`; others raise ``TypeError``.

        Parameters
        ----------
        x : array_like of shape (n, d) or (d,)
            Finite states.
        v : array_like of the shape of ``x``
            Finite directions.

        Returns
        -------
        ndarray of shape (n, d) (``(d,)`` for a single state)

        References
        ----------
        Pearlmutter, B. A. (1994). Fast exact multiplication by the Hessian.
        Neural Computation 6(1), 147-160.
        Song, Y., Garg, S., Shi, J. & Ermon, S. (2019). Sliced score matching: a
        scalable approach to density and score estimation. UAI.
        """
        x2d, was_1d = self._check_x(x)
        v2d = check_like(v, x2d, was_1d, "v")
        out = self._hvp(x2d, v2d)
        return out[0] if was_1d else out

    def grad_params_of_hvp(self, x, v, u):
        r"""``sum_i d/dtheta [u_i . H(x_i) v_i]`` (dict); ``v`` and ``u`` held constant.

        The mixed derivative that sliced score matching's gradient needs
        (:math:`u = v` there). Only models with :attr:`has_hvp`; others
        raise ``TypeError``.

        Parameters
        ----------
        x : array_like of shape (n, d) or (d,)
            Finite states.
        v, u : array_like, same shape as ``x``
            Finite directions, held constant.

        Returns
        -------
        dict of str to ndarray
            Same keys and shapes as ``params``:
            :math:`\sum_i \partial_\theta\,[u_i^\top \nabla_x^2 E(x_i)\, v_i]`
            (structural zeros exactly zero).

        References
        ----------
        Song, Y., Garg, S., Shi, J. & Ermon, S. (2019). Sliced score matching: a
        scalable approach to density and score estimation. UAI.
        """
        x2d, was_1d = self._check_x(x)
        v2d = check_like(v, x2d, was_1d, "v")
        u2d = check_like(u, x2d, was_1d, "u")
        return self._zero_structural(self._grad_params_of_hvp(x2d, v2d, u2d))

    def _hvp(self, x, v):
        raise TypeError(
            f"{type(self).__name__} has no Hessian-vector product hvp(x, v); the models with one "
            f"(has_hvp) are StudentT, GaussianMixture, GRBM and MLPEnergy."
        )

    def _grad_params_of_hvp(self, x, v, u):
        raise TypeError(
            f"{type(self).__name__} has no grad_params_of_hvp(x, v, u); the models with one "
            f"(has_hvp) are StudentT, GaussianMixture, GRBM and MLPEnergy."
        )

    # ----------------------------------------------------------- private hooks
    @abc.abstractmethod
    def _energy(self, x):
        """Energies of a validated batch, ``(n,)``."""

    @abc.abstractmethod
    def _grad_x(self, x):
        """``dE/dx`` of a validated batch, ``(n, d)``."""

    @abc.abstractmethod
    def _hessian_diag(self, x):
        """Hessian diagonal of a validated batch, ``(n, d)``."""

    @abc.abstractmethod
    def _grad_params(self, x, w):
        """Weighted parameter gradient (dict)."""

    @abc.abstractmethod
    def _grad_params_of_grad_x(self, x, v):
        """Mixed vector-Jacobian product (dict)."""

    @abc.abstractmethod
    def _grad_params_of_hessian_diag(self, x, c):
        """Parameter gradient of the c-weighted Hessian diagonal (dict)."""

    def _zeros_like_params(self):
        return {k: np.zeros(v.shape) for k, v in self._params.items()}
