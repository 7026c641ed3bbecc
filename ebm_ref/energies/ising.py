r"""Ising model / fully visible Boltzmann machine with pairwise couplings.

Two storage forms share one class (see ``docs/lattices.md``):

* a dense ``J`` of shape ``(d, d)`` (``Ising(J, h)``, ``Ising.random``);
* the structure of a 2-D lattice (``Ising.lattice``): side lengths,
  ``beta``, ``coupling``, ``field`` and boundary, O(1) memory. The energy,
  its ``x`` derivatives and the conditionals are computed from neighbour
  sums in O(n d); the dense ``J`` is built only when asked for (``params``,
  ``with_params``, the parameter derivatives) and only up to
  :data:`MAX_DENSE_UNITS` units.
"""

from __future__ import annotations

import numpy as np

from .._numerics import sigmoid, softplus
from .._rng import as_seed_sequence
from .._validation import check_int
from ._base import EnergyModel
from .lattice import (
    MAX_DENSE_UNITS,
    LatticeSpec,
    LatticeStorage,
    _check_domain_name,
    _check_real,
    lattice_csr,
)

__all__ = ["Ising", "LatticeSpec", "MAX_DENSE_UNITS"]


def coupling_csr(model):
    """CSR arrays ``(indptr, indices, data)`` of the non-zero couplings of an Ising ``J``.

    Rows in unit order, columns ascending within a row; a lattice model's
    comes from :func:`lattice_csr` (no dense ``J``).
    """
    spec = model.lattice
    if spec is not None:
        return lattice_csr(spec)
    J = model.params["J"]
    rows, cols = np.nonzero(J)
    indptr = np.zeros(J.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=J.shape[0]), out=indptr[1:])
    return indptr, cols.astype(np.int64), np.ascontiguousarray(J[rows, cols], dtype=np.float64)


def ising_fields(model):
    """The fields ``h`` of an Ising model, C-contiguous float64 (no dense ``J`` for a lattice)."""
    spec = model.lattice
    if spec is not None:
        return np.full(spec.shape[0] * spec.shape[1], spec.beta * spec.field)
    return np.ascontiguousarray(model.params["h"])


class Ising(LatticeStorage, EnergyModel):
    r"""Ising model (spins) or fully visible Boltzmann machine (0/1 units).

    Parameters
    ----------
    J : array_like of shape (d, d)
        Couplings; must be exactly symmetric with an exactly zero diagonal.
    h : array_like of shape (d,)
        Fields (biases).
    domain : {"spin", "binary"}, default "spin"
        State space: {-1, +1}^d or {0, 1}^d. The same formula is used for
        both, with no change of variables.

    Attributes
    ----------
    lattice : LatticeSpec or None
        The structure of a model built by :meth:`lattice` (which stores no
        dense ``J``); ``None`` for a model built from a dense ``J``.
    lattice_size : int or None
        ``L`` for a periodic ``L x L`` lattice: a model built by
        :meth:`lattice` with a square periodic shape, or a dense model
        derived from one (``with_params``, ``tempered``) whose non-zero
        couplings still lie on the lattice's bonds (rechecked whenever the
        parameters change); ``None`` otherwise. Samplers use it to update
        sites by colour.

    Notes
    -----
    The energy, for any real ``x`` (its continuous extension):

    .. math::

        E(x) = -\tfrac12 x^\top J x - h^\top x .

    For real ``x`` so large that products :math:`x_i x_j` overflow (e.g.
    ``x ~ 1e200``) the energy is ``+inf`` or ``-inf`` with the sign of the
    exact value, never NaN: such rows are recomputed as
    :math:`E(s u) = s^2 Q(u) + s L(u)` with :math:`s = \max_i |x_i|`,
    :math:`Q(u) = (E(u) + E(-u))/2`, :math:`L(u) = (E(u) - E(-u))/2`.

    Derivatives are those of this formula with *every* entry of ``J`` an
    independent variable (see ``docs/conventions.md``), valid also for a
    non-symmetric ``J`` (finite-difference checks move a single entry):

    .. math::

        \nabla_x E = -\tfrac12 (J + J^\top) x - h, \qquad
        \partial^2 E/\partial x_k^2 = -J_{kk}\ (= 0 \text{ for a valid model}),

        \partial E/\partial J_{ij} = -\tfrac12 x_i x_j, \qquad
        \partial E/\partial h = -x .

    Mixed derivatives (``u`` and ``c`` held constant):

    .. math::

        \partial_{J_{ij}} \big[u^\top \nabla_x E\big]
            = -\tfrac12 (u_i x_j + x_i u_j), \quad
        \partial_h \big[u^\top \nabla_x E\big] = -u,

        \partial_{J_{ij}} \Big[\textstyle\sum_k c_k \partial^2_{x_k} E\Big]
            = -c_i\,\delta_{ij}, \quad
        \partial_h [\cdot] = 0 .

    The diagonal of ``J`` is a structural zero (not a parameter): every
    public ``J`` derivative has a zero diagonal, so the last one is zero.
    Single-site conditionals of a valid model (zero diagonal, symmetric):

    .. math::

        \operatorname{logit} p(x_i = 1 \mid x_{-i})
            = E(x^{i \leftarrow 0}) - E(x^{i \leftarrow 1})
            = \kappa\,\big(\textstyle\sum_{j \ne i} J_{ij} x_j + h_i\big),

    with :math:`\kappa = 1` for {0,1} and :math:`\kappa = 2` for spins
    (where -1 plays the role of 0).

    **Costs.** Dense model: O(n d^2) for the energy, ``grad_x`` and the
    conditionals. Lattice model (:meth:`lattice`): O(n d) for ``energy``,
    ``grad_x``, ``hessian_diag`` and the conditionals (neighbour sums);
    ``params``, ``with_params``, ``structural_zeros``, ``grad_params`` and
    the two mixed parameter derivatives return or build ``(d, d)`` arrays
    (O(d^2) memory, O(n d^2) time) and raise ``ValueError`` above
    :data:`MAX_DENSE_UNITS` units; ``params`` caches the dense ``J`` on the
    model after the first call.

    References
    ----------
    Ackley, D. H., Hinton, G. E. & Sejnowski, T. J. (1985). A learning
    algorithm for Boltzmann machines. Cognitive Science 9(1).
    """

    def __init__(self, J, h, domain="spin"):
        self.domain = _check_domain_name(domain)
        J_arr = np.asarray(J)
        if J_arr.ndim != 2 or J_arr.shape[0] != J_arr.shape[1] or J_arr.shape[0] < 1:
            raise ValueError(f"`J` of Ising must be a square 2-D array of shape (d, d), d >= 1; got shape {J_arr.shape}.")
        d = J_arr.shape[0]
        self._lattice_spec = None
        self._lattice_candidate = None
        self._set_params({"J": J, "h": h}, {"J": (d, d), "h": (d,)})

    # ------------------------------------------------------------ builders


    @classmethod
    def random(cls, d, scale, seed, domain="spin"):
        r"""Random couplings and fields (Sherrington-Kirkpatrick style).

        Parameters
        ----------
        d : int
            Number of units, ``d >= 1``.
        scale : float
            Finite, ``>= 0``: ``J_ij = J_ji ~ N(0, scale^2/d)`` for
            ``i < j`` (zero diagonal) and ``h_i ~ N(0, scale^2/d)``.
        seed : int, numpy.random.SeedSequence or numpy.random.Generator
        domain : {"spin", "binary"}, default "spin"

        Returns
        -------
        Ising

        Notes
        -----
        Draw order: the upper-triangle couplings in row-major order
        (``np.triu_indices(d, 1)``), then ``h``, from
        ``np.random.default_rng(as_seed_sequence(seed))``.
        """
        d = check_int(d, "d", minimum=1)
        scale = _check_real(scale, "scale", minimum=0.0)
        domain = _check_domain_name(domain)
        rng = np.random.default_rng(as_seed_sequence(seed))
        sd = scale / np.sqrt(d)
        iu = np.triu_indices(d, 1)
        J = np.zeros((d, d))
        J[iu] = rng.normal(0.0, 1.0, size=iu[0].size) * sd
        J = J + J.T
        h = rng.normal(0.0, 1.0, size=d) * sd
        return cls(J, h, domain=domain)

    # ------------------------------------------------------------ structure

    def tempered(self, beta):
        r"""The model with energy ``beta * E(x)``: ``p_beta(x) ∝ p(x)^beta``.

        Parameters
        ----------
        beta : float
            Finite and ``>= 0`` (0 gives the uniform distribution).

        Returns
        -------
        Ising
            Same ``domain``. A lattice model stays a lattice with
            ``lattice.beta`` multiplied by ``beta`` (same ``coupling``,
            ``field``, shape and boundary; O(1)); a dense model gets
            ``beta * J`` and ``beta * h``.

        Raises
        ------
        TypeError
            If ``beta`` is not a real number.
        ValueError
            If ``beta`` is negative or not finite, or the tempered weights overflow.

        See Also
        --------
        EnergyModel.tempered : the contract, and the papers on tempering.
        """
        b = self._check_beta(beta)
        if self.lattice is not None:
            spec = self.lattice
            new_beta = spec.beta * b
            if not (np.isfinite(new_beta * spec.coupling) and np.isfinite(new_beta * spec.field)):
                raise ValueError(
                    f"`beta` = {b!r} makes the tempered weights non-finite (lattice beta {spec.beta!r}, "
                    f"coupling {spec.coupling!r}, field {spec.field!r})."
                )
            return type(self)._from_spec(spec._replace(beta=new_beta), self.domain)
        with np.errstate(over="ignore"):
            finite = np.all(np.isfinite(b * self._params["J"])) and np.all(np.isfinite(b * self._params["h"]))
        if not finite:
            raise ValueError(f"`beta` = {b!r} makes the tempered weights b * J, b * h non-finite.")
        return self._replace_params({"J": b * self._params["J"], "h": b * self._params["h"]}, check_constraints=True)


    def _check_constraints(self, params):
        J = params["J"]
        diag = np.diag(J)
        if np.any(diag != 0.0):
            k = int(np.flatnonzero(diag != 0.0)[0])
            raise ValueError(f"`J` of Ising must have a zero diagonal; got J[{k}, {k}] = {diag[k]!r}.")
        asym = J != J.T
        if np.any(asym):
            i, j = (int(t) for t in np.argwhere(asym)[0])
            raise ValueError(
                f"`J` of Ising must be symmetric; got J[{i}, {j}] = {J[i, j]!r} but J[{j}, {i}] = {J[j, i]!r} "
                f"(use (J + J.T) / 2)."
            )


    def structural_zeros(self):
        """``{"J": identity mask}``: the diagonal of ``J`` is not a parameter (``(d, d)``; size-limited for lattices)."""
        self._check_dense_size("`structural_zeros`")
        return {"J": np.eye(self.n_features, dtype=bool)}

    def _zero_structural(self, grads):
        np.fill_diagonal(grads["J"], 0.0)
        return grads

    def _zeros_like_params(self):
        self._check_dense_size("a zero parameter gradient")
        d = self.n_features
        return {"J": np.zeros((d, d)), "h": np.zeros(d)}


    # ------------------------------------------------------- lattice sums


    # ---------------------------------------------------------- conditionals
    def conditional_logit(self, x):
        r"""``logit p(x_i = 1 | x_{-i})`` for every unit, shape ``(n, d)``.

        Parameters
        ----------
        x : array_like of shape (n, d) or (d,)
            Any real values (only ``x_{-i}`` enters entry ``i``).

        Returns
        -------
        ndarray of shape (n, d) (``(d,)`` for a single state)

        Notes
        -----
        :math:`E(x^{i\leftarrow 0}) - E(x^{i\leftarrow 1}) =
        \kappa (\sum_{j\ne i} J_{ij} x_j + h_i)` with :math:`\kappa = 1`
        (binary) or 2 (spin, where -1 plays the role of 0); the diagonal of a
        valid ``J`` is zero, so :math:`\sum_{j\ne i} J_{ij} x_j = (Jx)_i`.
        O(n d) for a lattice (neighbour sums), O(n d^2) for a dense ``J``.
        """
        x2, was_1d = self._check_x(x)
        kappa = 2.0 if self.domain == "spin" else 1.0
        z = kappa * (self._coupling_sum(x2) + self._field())
        return z[0] if was_1d else z

    def conditional_prob(self, x):
        r"""``p(x_i = 1 | x_{-i})`` (``+1`` for spins) for every unit.

        :math:`\sigma` of :meth:`conditional_logit`, evaluated stably; same
        ``x`` and output shape (``(n, d)``, or ``(d,)`` for a single state).
        """
        return sigmoid(self.conditional_logit(x))

    # ----------------------------------------------------------------- hooks
    NUMBA_KIND = 6

    def _numba_form(self):
        # ip: [d, spin, nnz, indptr (d + 1), indices (nnz)]; fp: [data (nnz), h (d)]
        indptr, indices, data = coupling_csr(self)
        d = indptr.shape[0] - 1
        ip = np.concatenate([[d, int(self.domain == "spin"), indices.shape[0]], indptr, indices])
        return self.NUMBA_KIND, ip, np.concatenate([data, ising_fields(self)]), d

    def _tempered_form(self, base):
        # ip: [d, nnz, indptr (d + 1), indices (nnz)]; fp: [data (nnz), h (d)]
        # from the nonzeros of the dense J in row order; g: the base's field
        # (default h)
        p = self.params  # dense J and h, also for a lattice
        J, h = p["J"], p["h"]
        g = self._base_field(base, h)
        rows, cols = np.nonzero(J)
        indptr = np.searchsorted(rows, np.arange(J.shape[0] + 1))
        ip = np.concatenate([[J.shape[0], cols.shape[0]], indptr, cols])
        if self.domain == "spin":
            log_z0 = float(np.logaddexp(g, -g).sum())
        else:
            log_z0 = float(softplus(g).sum())
        return self.NUMBA_KIND, ip, np.concatenate([J[rows, cols], h]), 0, g, log_z0

    def _energy(self, x):
        with np.errstate(over="ignore", invalid="ignore"):
            e = self._energy_formula(x)
        big = ~np.isfinite(e)
        if big.any():  # x_i x_j overflowed (inf - inf = NaN): scale out s = max|x| (class Notes)
            s = np.max(np.abs(x[big]), axis=1)
            ep, em = self._energy_formula(x[big] / s[:, None]), self._energy_formula(-x[big] / s[:, None])
            with np.errstate(over="ignore"):
                e[big] = s * (s * (0.5 * (ep + em)) + 0.5 * (ep - em))
        return e

    def _energy_formula(self, x):
        if self.lattice is not None:
            return self._lattice_energy(x)
        J, h = self._params["J"], self._params["h"]
        return -0.5 * np.einsum("ni,ij,nj->n", x, J, x) - x @ h

    def _grad_x(self, x):
        if self.lattice is not None:
            return -self._coupling_sum(x) - self._field()
        J, h = self._params["J"], self._params["h"]
        return -0.5 * (x @ J.T + x @ J) - h

    def _hessian_diag(self, x):
        if self.lattice is not None:
            return np.zeros_like(x)  # J_kk = 0 on every lattice
        return np.broadcast_to(-np.diag(self._params["J"]), x.shape).copy()

    def _grad_params(self, x, w):
        self._check_dense_size("`grad_params`")
        # BLAS may sum entries (i, j) and (j, i) in different orders; averaging
        # with the transpose makes the result exactly symmetric, so that a
        # gradient step keeps J symmetric (docs/conventions.md)
        A = (x * w[:, None]).T @ x
        return {"J": -0.25 * (A + A.T), "h": -(w @ x)}

    def _grad_params_of_grad_x(self, x, u):
        self._check_dense_size("`grad_params_of_grad_x`")
        A = u.T @ x
        return {"J": -0.5 * (A + A.T), "h": -u.sum(axis=0)}

    def _grad_params_of_hessian_diag(self, x, c):
        self._check_dense_size("`grad_params_of_hessian_diag`")
        return {"J": -np.diag(c.sum(axis=0)), "h": np.zeros(self.n_features)}

    # ----------------------------------------------- pseudo-likelihood hook
    def _flip_energy_delta(self, x):
        r"""Energy change of flipping each unit, :math:`E(x^{(k)}) - E(x)`: ``(n, d)``.

        Returns
        -------
        ndarray of shape (n, d) (``(d,)`` for a single state)
            The energy is quadratic, so the change is exactly
            :math:`\Delta_k = \delta_k\,\partial_k E(x) + \tfrac12\delta_k^2\,
            \partial_k^2 E(x) = -\delta_k\big(\tfrac12((J + J^\top)x)_k + h_k\big)
            - \tfrac12 \delta_k^2 J_{kk}`; for a valid model
            :math:`-\delta_k((Jx)_k + h_k)`, i.e. :math:`\pm` the
            :meth:`conditional_logit`. Used by
            :class:`~ebm_ref.objectives.PseudoLikelihood`.

        Notes
        -----
        Built on ``grad_x`` and ``hessian_diag``: O(n d) for a lattice
        model (neighbour sums), O(n d^2) for a dense ``J``.
        """
        delta = self._flip_step(x)
        return delta * self._grad_x(x) + 0.5 * delta * delta * self._hessian_diag(x)

    def _grad_params_of_flip_energy_delta(self, x, c):
        r"""``sum_i sum_k c_ik d/dtheta [Delta_k(x_i)]`` (dict), ``c`` of shape ``(n, d)``.

        Returns
        -------
        dict
            :math:`\Delta_k` is linear in the parameters, so this is
            ``grad_params_of_grad_x(x, c * delta) +
            grad_params_of_hessian_diag(x, c * delta**2 / 2)``:
            ``J``: :math:`-\tfrac12(A + A^\top)` with :math:`A = (c\odot\delta)^\top x`
            (zero diagonal: a structural zero), ``h``: :math:`-\sum_i c_{ik}\delta_{ik}`.
            A ``(d, d)`` array, size-limited for lattices like every ``J``
            derivative.
        """
        self._check_dense_size("`grad_params_of_flip_energy_delta`")
        delta = self._flip_step(x)
        g1 = self._grad_params_of_grad_x(x, c * delta)
        g2 = self._grad_params_of_hessian_diag(x, 0.5 * c * delta * delta)
        return {k: g1[k] + g2[k] for k in g1}
