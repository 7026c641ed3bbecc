r"""Exact quantities of small models (docs/exact.md).

* :func:`log_partition` — exact :math:`\log Z` and a bound on its error;
* :func:`probabilities` — every state of a small binary model and its
  probability;
* :func:`log_likelihood` — :math:`\log p(x) = -E(x) - \log Z`;
* :func:`mle_grad` — the exact gradient of the average log-likelihood;
* :func:`ising_log_partition_2d` — Kaufman's (1949) closed form for the
  periodic square lattice, any size, with the exact energy and specific heat
  (:func:`ising_energy_2d`, :func:`ising_specific_heat_2d`).

Binary models (``RBM``, ``Ising``) are enumerated in Gray-code order by the
Numba kernels of :mod:`ebm_ref.exact._enumerate`, bit-identically for any
number of threads. Size limits (ValueError past them, with the size):

==========================  =======================================
``log_partition``           :data:`MAX_ENUM_BITS` = 30 enumerated units
``mle_grad``                :data:`MAX_MOMENT_BITS` = 24 enumerated units
``probabilities``           :data:`MAX_PROB_BITS` = 20 units
==========================  =======================================

(an RBM enumerates its smaller layer, so e.g. 1000 visible x 20 hidden
units is fine for ``log_partition`` and ``mle_grad``). Measured speeds
(``python -m ebm_ref bench exact``: about 2e7 to 5e7 lattice states and
1e6 to 8e6 RBM states of 64 summed-out units per second and core) put
2^30 states at minutes, not hours.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .._interrupt import PROGRESS_DELAY, run_chunked
from .._states import all_states
from .._validation import check_memory
from ..energies import EnergyModel, Ising, RBM
from . import _blocks, _bounds
from . import _enumerate as _en
from ._kaufman import ising_energy_2d, ising_log_partition_2d, ising_specific_heat_2d

__all__ = [
    "log_partition",
    "probabilities",
    "log_likelihood",
    "mle_grad",
    "ising_log_partition_2d",
    "ising_energy_2d",
    "ising_specific_heat_2d",
    "MAX_ENUM_BITS",
    "MAX_MOMENT_BITS",
    "MAX_PROB_BITS",
    "MAX_GENERIC_BITS",
]

#: Most enumerated binary units (2^30 states) that :func:`log_partition` accepts.
MAX_ENUM_BITS = 30
#: Most enumerated binary units for :func:`mle_grad` (its per-state cost is
#: width^2 for an Ising model, width x other layer for an RBM).
MAX_MOMENT_BITS = 24
#: Most units for :func:`probabilities` (it returns all 2^d states).
MAX_PROB_BITS = 20
#: Most units that :func:`log_partition` and :func:`mle_grad` enumerate
#: through ``model.energy`` (binary models without a Gray-code kernel:
#: about 1 us per state and unit, so 2^24 states of 24 units take minutes).
MAX_GENERIC_BITS = 24

_E1 = np.empty(0)
_E2 = np.empty((0, 0))
_E3 = np.empty((0, 0, 0))


def _check_model(model):
    if not isinstance(model, EnergyModel):
        raise TypeError(f"`model` must be an ebm_ref energy model (EnergyModel); got {type(model).__name__}.")


def _check_bits(n, limit, what, func, model):
    if n > limit:
        raise ValueError(
            f"`model` ({model._describe()}) needs 2^{n} = {2**n} states enumerated ({what}); "
            f"{func} refuses more than 2^{limit} = {2**limit} (limit {limit} units)."
        )


def _fast_route(model):
    """``"rbm"``, ``"ising"`` or ``None``: which Gray-code kernel enumerates ``model``.

    Keyed on the model's Numba form (``numba_form().kind``), never on its
    class: a subclass that redefines a formula has no form (see
    ``EnergyModel.numba_form``) and is enumerated through its own
    ``energy`` instead of the parent's kernel.
    """
    form = model.numba_form()
    if form is None:
        return None
    if form.kind == RBM.NUMBA_KIND:
        return "rbm"
    if form.kind == Ising.NUMBA_KIND:
        return "ising"
    return None


def _enumerable(model):
    return model.domain in ("binary", "spin")


def _walk_chunks(walk, chunk_bits):
    """Call ``walk(lo, hi)`` over the ``2^chunk_bits`` chunks of a Gray-code walk, a few at a time.

    Each call lasts about 0.25 s, so Ctrl-C stops ``log_partition`` within
    about a second (``ebm_ref._interrupt``); per-chunk results do not depend
    on the grouping. The first call takes one chunk per thread.
    """
    run_chunked(lambda lo, count: walk(lo, lo + count), 1 << chunk_bits, progress="log_partition",
                first_chunk=max(1, numba.get_num_threads()), progress_delay=PROGRESS_DELAY)


def _rbm_log_z(model, c, b, M, path="auto"):
    """``(log Z, bound)``; ``path`` "auto" takes the multiplicative kernel when safe."""
    n, m = M.shape
    cb = min(n, _en.CHUNK_BITS)
    mx = np.empty(1 << cb)
    sm = np.empty(1 << cb)
    plan = _en.rbm_mult_plan(b, M) if path in ("auto", "mult") else None
    if path == "mult" and plan is None:
        raise ValueError("the multiplicative path does not apply to this model (pre-activations out of range).")
    if plan is not None:
        T, Tinv, gstart = plan
        _walk_chunks(lambda lo, hi: _en.rbm_lse_mult(c, b, M, T, Tinv, gstart, cb, lo, hi, mx, sm), cb)
    else:
        groups = _en.softplus_groups(m)
        _walk_chunks(lambda lo, hi: _en.rbm_walk(c, b, M, groups, cb, lo, hi, _en.MODE_LSE, 0.0, mx, sm, _E1, _E2,
                                                 _E2, _E3), cb)
    value = _bounds.combine_chunks(mx, sm)
    err = _bounds.rbm_value_error(c, b, M) + _bounds.sum_error(1 << n, 1 << cb, value)
    return value, err


def _ising_log_z(arrays, use_symmetry=True):
    """``(log Z, bound)``; a spin model without field walks half the states."""
    lo, h, indptr, indices, data, const, S = arrays
    n = h.shape[0]
    half = use_symmetry and lo == -1.0 and not np.any(h)
    n_walk = n - 1 if half else n
    cb = min(n_walk, _en.CHUNK_BITS)
    mx = np.empty(1 << cb)
    sm = np.empty(1 << cb)
    _walk_chunks(lambda c0, c1: _en.ising_walk(lo, h, indptr, indices, data, const, n_walk, cb, c0, c1, _en.MODE_LSE,
                                               0.0, mx, sm, _E1, _E2, _E3), cb)
    value = _bounds.combine_chunks(mx, sm) + (math.log(2.0) if half else 0.0)
    err = _bounds.ising_value_error(S, h, const) + _bounds.sum_error(1 << n_walk, 1 << cb, value)
    return value, err


def log_partition(model, return_error=False):
    r"""Exact log partition function :math:`\log Z = \log \sum_x e^{-E(x)}`.

    Parameters
    ----------
    model : EnergyModel
        A binary or spin model (enumeration), a model whose
        ``exact_log_partition()`` is not ``None`` (closed form), or a
        real-valued model with at most 2 features (quadrature).
    return_error : bool, default False
        Also return a bound on the absolute error.

    Returns
    -------
    float, or (float, float)
        ``log Z``; with ``return_error=True`` the pair ``(log Z, bound)``,
        the bound finite and non-negative.

    Raises
    ------
    TypeError
        If ``model`` is not an energy model.
    ValueError
        If no exact method applies, or enumeration would exceed
        2^:data:`MAX_ENUM_BITS` states.

    Notes
    -----
    Dispatch (public methods only): (1) ``model.exact_log_partition()``
    when it is not ``None``;
    (2) ``RBM``: enumerate the smaller layer ``z`` (the hidden layer when
    ``H <= V``) and sum the other, ``y``, analytically,

    .. math::

        \log Z = \operatorname{logsumexp}_z \Big[c^\top z
            + \sum_j \operatorname{softplus}(b_j + (M^\top z)_j)\Big],

    with ``(c, b, M) = (b_h, b_v, W^T)`` or ``(b_v, b_h, W)``; ``Ising``
    (either domain): all :math:`2^d` states of
    :math:`\tfrac12 x^\top J x + h^\top x` (half of them for a spin model
    without field, whose weights are invariant under :math:`x \to -x`: then
    :math:`\log Z` is that half's plus :math:`\log 2`). Both walk the states
    in Gray-code order in parallel chunks with a running-max log-sum-exp
    (module :mod:`ebm_ref.exact._enumerate`); an RBM whose pre-activations
    stay within +-600 keeps :math:`e^{a_j}` multiplicatively instead of
    evaluating softplus per unit. (3) A ``"real"``-domain model with
    ``n_features <= 2``: ``quadrature_log_partition(model)`` of
    ``ebm_ref.exact._quadrature``. Between (2) and (3): any other binary or
    spin model (no Gray-code kernel, or a subclass that redefines a
    formula and so has no Numba form) is enumerated through its own
    ``energy`` in blocks of states (``ebm_ref.exact._blocks``), at most
    :data:`MAX_GENERIC_BITS` units.

    Error bound for enumeration: :math:`\delta + \epsilon`, where
    :math:`\delta` bounds the rounding of every state's log-weight
    (``rbm_value_error`` / ``ising_value_error``) and :math:`\epsilon` that
    of the shifted sums (``sum_error``): if every log-weight is off by at
    most :math:`\delta` then so is their log-sum-exp. Typically ~1e-10 or
    less.

    References
    ----------
    Salakhutdinov, R. & Murray, I. (2008). On the quantitative analysis of
    deep belief networks. ICML.
    """
    _check_model(model)
    closed = model.exact_log_partition()
    route = _fast_route(model) if closed is None else None
    if closed is not None:
        value, err = closed
    elif route == "rbm":
        c, b, M, hidden = _en.rbm_layers(model)
        layer = f"smaller layer: {M.shape[0]} {'hidden' if hidden else 'visible'} units"
        _check_bits(M.shape[0], MAX_ENUM_BITS, layer, "log_partition", model)
        value, err = _rbm_log_z(model, c, b, M)
    elif route == "ising":
        _check_bits(model.n_features, MAX_ENUM_BITS, "all units", "log_partition", model)
        value, err = _ising_log_z(_en.ising_arrays(model))
    elif _enumerable(model):
        _check_bits(model.n_features, MAX_GENERIC_BITS, "all units, through model.energy", "log_partition", model)
        value, err = _blocks.log_partition_blocks(model)
    elif model.domain == "real" and model.n_features <= 2:
        from ._quadrature import quadrature_log_partition

        value, err = quadrature_log_partition(model)
    else:
        raise ValueError(
            f"`model` ({model._describe()}, domain {model.domain!r}) has no exact log partition function: "
            "expected a binary or spin model, a model with a closed form, or a real-valued model "
            "with at most 2 features."
        )
    value = float(value)
    err = float(err)
    return (value, err) if return_error else value


def probabilities(model):
    r"""Every state of a small binary model and its probability.

    Parameters
    ----------
    model : RBM or Ising
        At most :data:`MAX_PROB_BITS` = 20 units (visible units for an RBM).

    Returns
    -------
    states : ndarray of shape (2^d, d)
        In lexicographic order with unit 0 the most significant: row ``k``
        is the binary expansion of ``k`` (for spins -1 plays the role of 0,
        so the first state is all -1).
    probs : ndarray of shape (2^d,)
        :math:`p(x) = e^{-E(x)} / Z`; for an RBM the visible marginal
        :math:`e^{-F(v)}/Z`. Normalised with the log-sum-exp of the
        enumerated log-weights.

    Raises
    ------
    TypeError
        If ``model`` is not an energy model.
    ValueError
        For another kind of model or more than 20 units.

    Notes
    -----
    The log-weights are computed by the Gray-code kernels (an RBM walks its
    visible layer, summing the hidden one out: :math:`-F(v)`) and written at
    the lexicographic index of each state.

    References
    ----------
    Knuth, D. E. (2011). The Art of Computer Programming, Vol. 4A, §7.2.1.1
    (Gray codes).
    """
    _check_model(model)
    if _enumerable(model) and model.n_features <= MAX_PROB_BITS:
        d = model.n_features
        # the states, their log-weights and probabilities (and, through
        # model.energy, one temporary of the states' size)
        check_memory(8 * (2 * d + 3) << d, f"probabilities of 2^{d} states", "use a model with fewer units")
    route = _fast_route(model)
    if route == "rbm":
        p = model.params
        n = model.n_visible
        _check_bits(n, MAX_PROB_BITS, "visible units", "probabilities", model)
        cb = min(n, _en.CHUNK_BITS)
        vals = np.empty(1 << n)
        _en.rbm_walk(
            p["b_v"], p["b_h"], np.ascontiguousarray(p["W"]), _en.softplus_groups(model.n_hidden), cb, 0, 1 << cb,
            _en.MODE_VALUES, 0.0,
            np.empty(1 << cb), np.empty(1 << cb), vals, _E2, _E2, _E3,
        )
    elif route == "ising":
        n = model.n_features
        _check_bits(n, MAX_PROB_BITS, "all units", "probabilities", model)
        lo, h, indptr, indices, data, const, _ = _en.ising_arrays(model)
        cb = min(n, _en.CHUNK_BITS)
        vals = np.empty(1 << n)
        _en.ising_walk(
            lo, h, indptr, indices, data, const, n, cb, 0, 1 << cb, _en.MODE_VALUES, 0.0,
            np.empty(1 << cb), np.empty(1 << cb), vals, _E2, _E3,
        )
    elif _enumerable(model):
        n = model.n_features
        _check_bits(n, MAX_PROB_BITS, "all units", "probabilities", model)
        vals = _blocks.enumerated_log_weights(model)
    else:
        raise ValueError(
            f"`model` must be a binary or spin model for probabilities; got {model._describe()}."
        )
    top = float(np.max(vals))
    log_z = top + math.log(float(np.sum(np.exp(vals - top))))
    return all_states(n, model.domain), np.exp(vals - log_z)


def log_likelihood(model, x):
    r"""Exact per-sample log-likelihood :math:`\log p(x) = -E(x) - \log Z`.

    Parameters
    ----------
    model : EnergyModel
        Any model that :func:`log_partition` handles.
    x : array_like of shape (n, d) or (d,)
        States of the model's domain (checked: {0,1}, {-1,+1} or real).

    Returns
    -------
    ndarray of shape (n,) (0-d for a single state)

    Raises
    ------
    ValueError
        For states outside the domain, a wrong shape, NaN/inf, or a model
        without an exact ``log Z``.

    Notes
    -----
    For an RBM :math:`E` is the free energy :math:`F(v)`, so this is the
    visible marginal.

    References
    ----------
    Salakhutdinov, R. & Murray, I. (2008). On the quantitative analysis of
    deep belief networks. ICML.
    """
    _check_model(model)
    x2, was_1d = model.check_states(x)
    ll = -model.energy(x2) - log_partition(model)
    return ll[0] if was_1d else ll


def _rbm_moments(model):
    c, b, M, hidden = _en.rbm_layers(model)
    n, m = M.shape
    layer = f"smaller layer: {n} {'hidden' if hidden else 'visible'} units"
    _check_bits(n, MAX_MOMENT_BITS, layer, "mle_grad", model)
    log_z, _ = _rbm_log_z(model, c, b, M)
    cb = min(n, _en.MOMENT_CHUNK_BITS)
    C = 1 << cb
    oz, oy, ozy = np.zeros((C, n)), np.zeros((C, m)), np.zeros((C, n, m))
    _en.rbm_walk(
        c, b, M, _en.softplus_groups(m), cb, 0, C, _en.MODE_MOMENTS, log_z, np.empty(C), np.empty(C), _E1, oz, oy, ozy
    )
    Ez, Ey, Ezy = oz.sum(axis=0), oy.sum(axis=0), ozy.sum(axis=0)
    if hidden:  # z = h, y = E[v | h]
        E_h, E_v, E_vh = Ez, Ey, Ezy.T
    else:  # z = v, y = E[h | v]
        E_v, E_h, E_vh = Ez, Ey, Ezy
    return {"W": -E_vh, "b_v": -E_v, "b_h": -E_h}


def _ising_moments(model):
    n = model.n_features
    _check_bits(n, MAX_MOMENT_BITS, "all units", "mle_grad", model)
    arrays = _en.ising_arrays(model)
    lo, h, indptr, indices, data, const, _ = arrays
    log_z, _ = _ising_log_z(arrays)
    cb = min(n, _en.MOMENT_CHUNK_BITS)
    C = 1 << cb
    m1, m2 = np.zeros((C, n)), np.zeros((C, n, n))
    _en.ising_walk(
        lo, h, indptr, indices, data, const, n, cb, 0, C, _en.MODE_MOMENTS, log_z, np.empty(C), np.empty(C), _E1, m1, m2
    )
    E1 = m1.sum(axis=0)
    upper = np.triu(m2.sum(axis=0))
    E2 = upper + np.triu(upper, 1).T
    gJ = -0.5 * E2
    np.fill_diagonal(gJ, 0.0)
    return {"J": gJ, "h": -E1}


def _enumerated_moments(model):
    """``E_p[dE/dtheta]`` by enumeration: a Gray-code kernel or ``model.grad_params`` by blocks."""
    route = _fast_route(model)
    if route == "rbm":
        return _rbm_moments(model)
    if route == "ising":
        return _ising_moments(model)
    if _enumerable(model):
        _check_bits(model.n_features, MAX_GENERIC_BITS, "all units, through model.energy", "mle_grad", model)
        return _blocks.moments_blocks(model, log_partition(model))
    raise ValueError(
        f"`model` ({model._describe()}) has no exact model expectation for mle_grad: expected a binary "
        "or spin model, or a model whose exact_mean_grad_params() is not None."
    )


def mle_grad(model, x):
    r"""Exact gradient of the average log-likelihood (an ascent direction).

    Parameters
    ----------
    model : EnergyModel
        A binary or spin model (enumeration), or a model whose
        ``exact_mean_grad_params()`` returns the model expectation of
        :math:`\partial E/\partial\theta` as a dict.
    x : array_like of shape (n, d) or (d,)
        Data states of the model's domain.

    Returns
    -------
    dict of str to ndarray
        Same keys and shapes as ``model.params``; structural zeros (the
        diagonal of an Ising ``J``) are exactly zero.

    Raises
    ------
    ValueError
        For bad states, a model with no exact expectation, or more than
        2^:data:`MAX_MOMENT_BITS` enumerated states.

    Notes
    -----
    .. math::

        \nabla_\theta \frac1n \sum_i \log p(x_i)
        = \mathbb{E}_{p}\big[\partial_\theta E\big]
          - \frac1n \sum_i \partial_\theta E(x_i).

    The data term is ``model.grad_params(x)``. The model term is enumerated:
    Ising: :math:`\partial E/\partial J_{ij} = -\tfrac12 x_i x_j`,
    :math:`\partial E/\partial h = -x`; RBM (free energy, with the smaller
    layer ``z`` enumerated and the other one's conditional mean
    :math:`\sigma(b + M^\top z)` used analytically):
    :math:`\mathbb{E}[\partial F/\partial W] = -\mathbb{E}[v h^\top]`,
    :math:`-\mathbb{E}[v]`, :math:`-\mathbb{E}[h]`.

    References
    ----------
    Ackley, D. H., Hinton, G. E. & Sejnowski, T. J. (1985). A learning
    algorithm for Boltzmann machines. Cognitive Science 9(1).
    """
    _check_model(model)
    x2, _ = model.check_states(x)
    model_term = model.exact_mean_grad_params()
    if model_term is None:
        model_term = _enumerated_moments(model)
    data_term = model.grad_params(x2)
    out = {k: np.asarray(model_term[k], dtype=np.float64) - data_term[k] for k in data_term}
    for name, mask in model.structural_zeros().items():
        out[name][mask] = 0.0
    return out
