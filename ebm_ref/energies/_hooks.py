r"""The optional hooks of :class:`~ebm_ref.energies.EnergyModel` that the
algorithm families call: the Numba form of the kernels, the AIS path, and
exact quantities in closed form.

Kept beside ``_base.py`` as a mixin of ``EnergyModel`` (one public method
per hook, each calling a private hook with a documented default, as
scipy.stats' ``pdf``/``_pdf``): samplers, AIS and ``ebm_ref.exact`` call
only the public methods, and a model overrides only the private hooks.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from .._numerics import softplus
from .._validation import check_like

class NumbaForm(NamedTuple):
    """A model's parameters packed for the Numba kernels (docs/models.md).

    Attributes
    ----------
    kind : int
        The model class's ``NUMBA_KIND``: the small integer on which the
        family dispatch of ``ebm_ref.energies.kernels`` branches.
    ip : ndarray of int64, shape (k,)
        Sizes and offsets, in the layout the model's own kernels read.
    fp : ndarray of float64, shape (m,)
        Every number the formulas need (derived quantities such as
        ``exp(log_scale)`` computed once per call).
    n_work : int
        Length of the per-chain float64 scratch buffer the kernels need.
    """

    kind: int
    ip: np.ndarray
    fp: np.ndarray
    n_work: int


# Formula hooks whose override in a subclass invalidates an inherited Numba
# form (the kernels would evaluate the parent's formula).
_FORMULA_HOOKS = ("_energy", "_grad_x", "_flip_energy_delta")
# Formula hooks that a shared score-matching pass stands in for.
_SM_HOOKS = ("_energy", "_grad_x", "_hessian_diag", "_grad_params_of_grad_x", "_grad_params_of_hessian_diag")


class ModelHooks:
    """Mixin of ``EnergyModel``: the kernel, AIS and exact-quantity hooks."""

    # ------------------------------------------------------ Numba form (hook)
    #: Small integer identifying the model's kernels in ``energies.kernels``
    #: (None: the model has no Numba form). Unique across model classes.
    NUMBA_KIND = None

    def numba_form(self):
        """The model packed for the Numba kernels, or ``None``.

        Samplers, AIS and exact enumeration call this (never a model's
        private attributes) and use the fast kernels when it returns a
        :class:`NumbaForm`, the generic NumPy path otherwise.

        Returns
        -------
        NumbaForm or None
            ``None`` when the class provides no form, and also for a
            subclass that overrides a formula hook (``_energy``,
            ``_grad_x``, ``_flip_energy_delta``) of the class that defined
            the form without redefining the form: the inherited kernels
            would evaluate the parent's formula, so such a subclass is
            sampled on the generic path (correct, slower).
        """
        cls = type(self)
        owner = next(c for c in cls.__mro__ if "_numba_form" in c.__dict__)
        if owner is ModelHooks or cls.NUMBA_KIND is None:
            return None
        for name in _FORMULA_HOOKS:
            if getattr(cls, name) is not getattr(owner, name):
                return None
        form = self._numba_form()
        if form is None:
            return None
        kind, ip, fp, n_work = form
        return NumbaForm(
            int(kind),
            np.ascontiguousarray(ip, dtype=np.int64),
            np.ascontiguousarray(fp, dtype=np.float64),
            int(n_work),
        )

    def _numba_form(self):
        """Hook: ``(kind, ip, fp, n_work)`` for the kernels (see :meth:`numba_form`)."""
        return None

    # ------------------------------------------- AIS path (tempered transitions)
    def tempered_form(self, base=None):
        r"""The annealing path of AIS packed for the tempered-transition driver.

        Used by :func:`ebm_ref.estimate.ais` and ``reverse_ais``. A path
        runs from a tractable base :math:`f_0` to the model. Models with a
        specialised path (RBM, GRBM, Ising) override the private hook
        ``_tempered_form(base)``; the default, for every other binary or spin
        model with a Numba form, anneals from the independent base
        :math:`f_0(x) = e^{g^\top x}`, :math:`\log f_\beta = -\beta E(x) +
        (1-\beta) g^\top x`, with single-site Gibbs sweeps as transitions.

        Parameters
        ----------
        base : None, "uniform" or array_like of states
            The base's field ``g``: the model's own default (zero for the
            generic path), zero, or the add-one smoothed log-odds of each
            unit in the given data states.

        Returns
        -------
        (NumbaForm, ndarray, float) or None
            The form the driver reads (its ``kind`` selects the model's
            tempered kernel), the base field ``g`` (float64, possibly
            empty) and :math:`\log Z_0`; ``None`` when the model has no AIS
            path (a continuous model without one).
        """
        out = self._tempered_form(base)
        if out is None:
            return None
        kind, ip, fp, n_work, g, log_z0 = out
        form = NumbaForm(
            int(kind), np.ascontiguousarray(ip, dtype=np.int64), np.ascontiguousarray(fp, dtype=np.float64), int(n_work)
        )
        return form, np.ascontiguousarray(g, dtype=np.float64), float(log_z0)

    def _tempered_form(self, base):
        """Hook: ``(kind, ip, fp, n_work, g, log Z_0)``; default: the generic binary path."""
        form = self.numba_form()
        if form is None or self.domain not in ("binary", "spin"):
            return None
        g = self._base_field(base, np.zeros(self.n_features))
        if self.domain == "spin":
            log_z0 = np.logaddexp(g, -g).sum()
        else:
            log_z0 = softplus(g).sum()
        return form.kind, form.ip, form.fp, form.n_work, g, log_z0

    def _base_field(self, base, default):
        """Field ``g`` of an independent base: ``default``, zero, or smoothed data log-odds."""
        if base is None:
            return np.array(default, dtype=np.float64)
        if isinstance(base, str):
            if base == "uniform":
                return np.zeros(self.n_features)
            raise ValueError(f"`base` must be None, 'uniform' or an array of data states; got {base!r}.")
        x2d, _ = self.check_states(base, "base")
        n = x2d.shape[0]
        ones = (x2d > 0).sum(axis=0)
        p = (ones + 1.0) / (n + 2.0)
        logit = np.log(p) - np.log1p(-p)
        # For spins, p(s_i = +1) = sigmoid(2 g_i).
        return 0.5 * logit if self.domain == "spin" else logit

    # ------------------------------------------------ optional: exact quantities
    def exact_log_partition(self):
        """Closed-form ``(log Z, error bound)``, or ``None`` when there is none.

        :func:`ebm_ref.exact.log_partition` calls this first; a model with
        a closed form (or an enumeration of its own, e.g. a GRBM's hidden
        layer) overrides the private hook ``_exact_log_partition()``.

        Returns
        -------
        (float, float) or None
        """
        out = self._exact_log_partition()
        return None if out is None else (float(out[0]), float(out[1]))

    def _exact_log_partition(self):
        """Hook: ``(log Z, bound)`` in closed form; ``None``: no closed form."""
        return None

    def exact_mean_grad_params(self):
        r"""Model expectation :math:`\mathbb{E}_p[\partial E/\partial\theta]`, or ``None``.

        :func:`ebm_ref.exact.mle_grad` calls this first (private hook
        ``_exact_mean_grad_params()``, default ``None``: no closed form).

        Returns
        -------
        dict of str to ndarray, or None
        """
        return self._exact_mean_grad_params()

    def _exact_mean_grad_params(self):
        """Hook: the expectation as a dict of arrays; ``None``: no closed form."""
        return None

    # ------------------------------------- score matching in one pass (hook)
    def score_matching_terms(self, x, c, v_fn):
        r"""``grad_x``, ``hessian_diag`` and the two mixed derivatives score matching needs.

        Returns ``(g, h, grads_v, grads_c)``: ``g = grad_x(x)``, ``h =
        hessian_diag(x)``, ``grads_v = grad_params_of_grad_x(x, v)`` with
        ``v[rows] = v_fn(g[rows], rows)`` (``rows`` a slice; ``v`` may
        depend on ``g`` row by row) and ``grads_c =
        grad_params_of_hessian_diag(x, c)``. The default calls those four
        methods; a model may share one forward pass among them (private
        hook ``_score_matching_terms``; ``MLPEnergy`` does). A subclass that
        overrides one of the four formula hooks of the class defining the
        shared pass gets the default (the shared pass would evaluate the
        parent's formulas). The score-matching objectives call
        :meth:`score_matching_grad`, which needs only the difference of the
        two gradients.
        """
        x2d, c2d = self._sm_inputs(x, c)
        g, h, gv, gc = self._sm_hook("_score_matching_terms")(x2d, c2d, v_fn)
        return g, h, self._zero_structural(gv), self._zero_structural(gc)

    def score_matching_grad(self, x, c, v_fn):
        r"""``(g, h, grads_v - grads_c)`` of :meth:`score_matching_terms`: what the objectives need.

        The difference ``d/dtheta sum_i (v_i . grad_x E(x_i) - c_i .
        hessian_diag(x_i))`` is linear in the adjoints, so a model with a
        shared pass can run one reverse pass for both terms instead of two
        (``MLPEnergy`` does: the adjoint of its input Jacobian starts at
        ``-v_k w_out``). ``v = v_fn(g[rows], rows)`` as in
        :meth:`score_matching_terms`, called on row blocks in an order of
        the model's choosing, possibly from several threads; ``v_fn`` must
        depend on row ``i`` of ``g`` only through row ``i`` and must not
        call this model's score-matching methods (the pass's buffers are in
        use). The default subtracts the two terms of
        :meth:`score_matching_terms`.
        """
        x2d, c2d = self._sm_inputs(x, c)
        g, h, grads = self._sm_hook("_score_matching_grad")(x2d, c2d, v_fn)
        return g, h, self._zero_structural(grads)

    def _sm_inputs(self, x, c):
        x2d, was_1d = self._check_x(x)
        return x2d, check_like(c, x2d, was_1d, "c")

    def _sm_hook(self, name):
        """The model's shared-pass hook ``name``, or ModelHooks's default where a
        subclass overrides a formula hook of the class defining the shared pass."""
        cls = type(self)
        owner = next(k for k in cls.__mro__ if name in k.__dict__)
        shared = owner is not ModelHooks and all(getattr(cls, h) is getattr(owner, h) for h in _SM_HOOKS)
        return getattr(self, name) if shared else functools.partial(getattr(ModelHooks, name), self)

    def _score_matching_terms(self, x, c, v_fn):
        """Hook: ``(g, h, grads_v, grads_c)`` (see :meth:`score_matching_terms`); default: the four formula hooks."""
        g = self._grad_x(x)
        v = np.asarray(v_fn(g, slice(None)), dtype=np.float64)
        return g, self._hessian_diag(x), self._grad_params_of_grad_x(x, v), self._grad_params_of_hessian_diag(x, c)

    def _score_matching_grad(self, x, c, v_fn):
        """Hook: ``(g, h, grads_v - grads_c)`` (see :meth:`score_matching_grad`).

        Default: the difference of ``_score_matching_terms``'s two gradients.
        """
        g, h, gv, gc = self._sm_hook("_score_matching_terms")(x, c, v_fn)
        return g, h, {k: gv[k] - gc[k] for k in gv}
