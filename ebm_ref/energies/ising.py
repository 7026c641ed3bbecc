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

import numbers
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from numba import prange

from .._jit import jit, jit_inline, pjit
from .._numerics import nb_flip_value, nb_sigmoid, sigmoid, softplus
from .._rng import as_seed_sequence, nb_uniform
from .._validation import check_int
from ._base import EnergyModel

__all__ = ["Ising", "LatticeSpec", "MAX_DENSE_UNITS"]

_STATE_DOMAINS = ("spin", "binary")
_BOUNDARIES = ("periodic", "free")

#: Largest number of units ``d`` for which a lattice model builds its dense
#: ``J`` (``d^2`` float64 entries: 134 MB at ``d = 4096``, a 64 x 64 lattice).
MAX_DENSE_UNITS = 4096


class LatticeSpec(NamedTuple):
    """Structure of a 2-D Ising lattice (``Ising.lattice``); immutable.

    Attributes
    ----------
    shape : tuple of int
        ``(L1, L2)``: rows and columns; site ``(r, c)`` is unit ``r * L2 + c``.
    beta : float
        Inverse temperature.
    coupling : float
        Bond strength of the physics Hamiltonian.
    field : float
        External field of the physics Hamiltonian.
    boundary : str
        ``"periodic"`` (a torus) or ``"free"`` (open edges).
    """

    shape: tuple
    beta: float
    coupling: float
    field: float
    boundary: str


def _check_domain_name(domain):
    if not isinstance(domain, str) or domain not in _STATE_DOMAINS:
        raise ValueError(f"`domain` of Ising must be one of {_STATE_DOMAINS}; got {domain!r}.")
    return domain


def _check_real(value, name, minimum=None):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number; got {type(value).__name__}.")
    v = float(value)
    if not np.isfinite(v):
        raise ValueError(f"`{name}` must be finite; got {value!r}.")
    if minimum is not None and v < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}; got {value!r}.")
    return v


def _check_shape(L):
    """``L`` (an int) or ``(L1, L2)`` -> ``(L1, L2)``, every side ``>= 2``."""
    if isinstance(L, (tuple, list)):
        if len(L) != 2:
            raise ValueError(f"`L` must be an int or a pair (L1, L2); got a sequence of length {len(L)}.")
        shape = (check_int(L[0], "L", minimum=2), check_int(L[1], "L", minimum=2))
    else:
        side = check_int(L, "L", minimum=2)
        shape = (side, side)
    # site indices are int64 and one float64 state of 2**40 sites is 8 TiB: a
    # larger lattice can never be sampled, so it is refused when built
    if shape[0] * shape[1] > _MAX_SITES:
        raise ValueError(
            f"`L` gives {shape[0]} x {shape[1]} sites; at most 2**40 sites are supported "
            f"(one float64 state of 2**40 sites is 8 TiB)."
        )
    return shape


_MAX_SITES = 2**40


def _lattice_bonds(spec):
    """``(i, j)`` int64 arrays of every bond, one entry per bond (right, then down).

    Each site is joined to its right and lower neighbour, with wrap-around
    for a periodic boundary. On a periodic side of length 2 the two bonds
    of a neighbour pair both appear (as ``(a, b)`` and ``(b, a)``).
    """
    L1, L2 = spec.shape
    r, c = np.divmod(np.arange(L1 * L2, dtype=np.int64), L2)
    if spec.boundary == "periodic":
        right = (r * L2 + (c + 1) % L2, np.ones(r.size, dtype=bool))
        down = (((r + 1) % L1) * L2 + c, np.ones(r.size, dtype=bool))
    else:
        right = (r * L2 + c + 1, c + 1 < L2)
        down = ((r + 1) * L2 + c, r + 1 < L1)
    site = np.arange(L1 * L2, dtype=np.int64)
    i = np.concatenate([site[right[1]], site[down[1]]])
    j = np.concatenate([right[0][right[1]], down[0][down[1]]])
    return i, j


def _lattice_edges(spec):
    """``(i, j, w)`` of the coupled pairs ``i < j``, ordered by ``(i, j)``, ``w = J_ij``."""
    K = spec.beta * spec.coupling
    a, b = _lattice_bonds(spec)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    d = spec.shape[0] * spec.shape[1]
    key, count = np.unique(lo * d + hi, return_counts=True)
    if K == 0.0:  # no coupled pair (J = 0)
        key, count = key[:0], count[:0]
    i, j = np.divmod(key, d)
    # K * count, as in the dense J = (beta * coupling) * (number of bonds)
    return i.astype(np.int64), j.astype(np.int64), K * count.astype(np.float64)


def lattice_csr(spec):
    """CSR arrays ``(indptr, indices, data)`` of the couplings of a :class:`LatticeSpec`.

    Built from the structure in O(d log d) (no dense ``J``); equal, bit for
    bit, to the CSR of the dense ``J`` (rows in unit order, columns
    ascending within a row).
    """
    d = spec.shape[0] * spec.shape[1]
    i, j, w = _lattice_edges(spec)
    rows = np.concatenate([i, j])
    cols = np.concatenate([j, i])
    data = np.concatenate([w, w])
    order = np.lexsort((cols, rows))
    indptr = np.zeros(d + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=d), out=indptr[1:])
    return indptr, np.ascontiguousarray(cols[order]), np.ascontiguousarray(data[order])


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


def _dense_size_error(spec, what):
    d = spec.shape[0] * spec.shape[1]
    return ValueError(
        f"{what} of Ising.lattice with shape {spec.shape} needs its dense `J`: d^2 = {d * d} float64 "
        f"entries ({d * d * 8 / 1e6:.1f} MB) for d = {d} units; a lattice model builds it only for "
        f"d <= {MAX_DENSE_UNITS} ({MAX_DENSE_UNITS ** 2 * 8 / 1e6:.1f} MB). Use the structure instead "
        f"(`model.lattice`, `model.edges()`, energy, grad_x, conditionals, gibbs)."
    )


class _ClassOrInstance:
    """``Ising.lattice(...)`` builds a lattice; ``model.lattice`` is the model's :class:`LatticeSpec`.

    On the class the descriptor gives the builder (a class method); on an
    instance, the read-only structure (``None`` for a dense model).
    """

    def __init__(self, builder):
        self._builder = builder
        self.__doc__ = builder.__doc__
        self.__wrapped__ = builder

    def __get__(self, obj, owner=None):
        if obj is None:
            return self._builder.__get__(owner, type(owner))
        return obj.__dict__.get("_lattice_spec")

    def __set__(self, obj, value):
        raise AttributeError("`lattice` of an Ising model is read-only (models are immutable).")


class Ising(EnergyModel):
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
    @_ClassOrInstance
    def lattice(cls, L, beta, coupling=1.0, field=0.0, domain="spin", boundary="periodic"):
        r"""2-D Ising lattice at inverse temperature ``beta``, stored by its structure.

        Parameters
        ----------
        L : int or tuple of two ints
            Side ``L`` of a square lattice, or ``(L1, L2)`` rows and
            columns; every side ``>= 2``. Site ``(r, c)`` is unit
            ``r * L2 + c``.
        beta : float
            Inverse temperature, finite and ``>= 0`` (antiferromagnets
            through ``coupling < 0``).
        coupling : float, default 1.0
            Bond strength of :math:`H = -\text{coupling}\sum_{\langle ij\rangle}
            s_i s_j - \text{field}\sum_i s_i`.
        field : float, default 0.0
        domain : {"spin", "binary"}, default "spin"
            ``"binary"`` uses the same ``J`` and ``h`` literally on {0,1}.
        boundary : {"periodic", "free"}, default "periodic"
            ``"periodic"``: a torus (each site has four bond slots);
            ``"free"``: open edges (no wrap-around bonds).

        Returns
        -------
        Ising
            The model with ``J_ij = beta * coupling * (number of bonds
            between i and j)`` and ``h_i = beta * field``. Each site is
            bonded to its right and lower neighbour (with wrap-around when
            periodic); on a periodic side of length 2 the left and right
            (or upper and lower) neighbours coincide, so such a pair
            carries two bonds. ``model.lattice`` holds the
            :class:`LatticeSpec`; no dense ``J`` is stored (O(1) memory
            and time; see the class Notes for the cost of each method).

        Raises
        ------
        TypeError
            For a non-integer side or a non-real ``beta``, ``coupling``,
            ``field``.
        ValueError
            For a side < 2, ``beta < 0``, a non-finite number, or an
            unknown ``domain`` or ``boundary``.

        References
        ----------
        Onsager, L. (1944). Crystal statistics. I. A two-dimensional model with an
        order-disorder transition. Physical Review 65(3-4), 117-149.
        """
        shape = _check_shape(L)
        beta = _check_real(beta, "beta", minimum=0.0)
        coupling = _check_real(coupling, "coupling")
        field = _check_real(field, "field")
        if not (np.isfinite(beta * coupling) and np.isfinite(beta * field)):
            raise ValueError(
                f"`beta` times `coupling` and `field` must be finite (they are the model's weights); "
                f"got beta={beta!r}, coupling={coupling!r}, field={field!r}."
            )
        domain = _check_domain_name(domain)
        if not isinstance(boundary, str) or boundary not in _BOUNDARIES:
            raise ValueError(f"`boundary` of Ising.lattice must be one of {_BOUNDARIES}; got {boundary!r}.")
        return cls._from_spec(LatticeSpec(shape, beta, coupling, field, boundary), domain)

    @classmethod
    def _from_spec(cls, spec, domain):
        model = cls.__new__(cls)
        model.domain = domain
        model._lattice_spec = spec
        square_torus = spec.boundary == "periodic" and spec.shape[0] == spec.shape[1]
        model.lattice_size = spec.shape[0] if square_torus else None
        model._lattice_candidate = model.lattice_size
        model._params = None
        model._dense_cache = None
        return model

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
    def edges(self):
        r"""Every coupled pair: ``(i, j, w)`` with ``i < j`` and ``w = J_ij != 0``.

        Returns
        -------
        i, j : ndarray of int64, shape (m,)
            The pairs, ordered by ``(i, j)`` (row-major upper triangle).
        w : ndarray of float64, shape (m,)
            ``J_ij``: ``beta * coupling * (number of bonds)`` for a lattice
            (twice the bond weight on a periodic side of length 2).

        Notes
        -----
        A pair with ``J_ij = 0`` is not coupled and is left out (so a
        lattice at ``beta = 0`` or ``coupling = 0`` has no edges), the same
        for both storage forms: the edges of a lattice model equal those of
        the dense model with the same ``J``. Cost: O(d log d) from the
        structure of a lattice (no dense ``J``), O(d^2) for a dense model.
        """
        if self.lattice is not None:
            return _lattice_edges(self.lattice)
        J = self._params["J"]
        i, j = np.nonzero(np.triu(J, 1))
        return i.astype(np.int64), j.astype(np.int64), np.ascontiguousarray(J[i, j], dtype=np.float64)

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

        References
        ----------
        Hukushima, K. & Nemoto, K. (1996). Exchange Monte Carlo method and
        application to spin glass simulations. J. Phys. Soc. Jpn. 65(6),
        1604-1608.
        Neal, R. M. (2001). Annealed importance sampling. Statistics and
        Computing 11(2), 125-139.
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

    def _dense(self, what):
        """The dense ``{"J", "h"}`` of a lattice model (built once, cached), or the size error."""
        cache = self._dense_cache
        if cache is None:
            spec = self.lattice
            d = self.n_features
            if d > MAX_DENSE_UNITS:
                raise _dense_size_error(spec, what)
            i, j, w = _lattice_edges(spec)
            J = np.zeros((d, d))
            J[i, j] = w
            J[j, i] = w
            h = np.full(d, spec.beta * spec.field)
            J.flags.writeable = False
            h.flags.writeable = False
            cache = self._dense_cache = {"J": J, "h": h}
        return cache

    def __getstate__(self):
        # a lattice's dense J is a cache (up to 134 MB): rebuilt on demand,
        # never pickled (models travel to worker processes in sweeps)
        state = dict(self.__dict__)
        if state.get("_dense_cache") is not None:
            state["_dense_cache"] = None
        return state

    def _check_dense_size(self, what):
        if self.lattice is not None and self.n_features > MAX_DENSE_UNITS:
            raise _dense_size_error(self.lattice, what)

    @property
    def params(self):
        """``{"J": (d, d), "h": (d,)}`` (read-only arrays, a fresh dict on each access).

        For a lattice model the dense ``J`` is built on the first access
        (O(d^2) memory, cached on the model) and refused with ``ValueError``
        above :data:`MAX_DENSE_UNITS` units.
        """
        if self.lattice is not None:
            return dict(self._dense("`params`"))
        return dict(self._params)

    def _replace_params(self, params, check_constraints):
        # A lattice model becomes a dense one (any J is allowed), built from
        # its dense J; it keeps `lattice_size` while J stays on the bonds.
        if self.lattice is not None:
            if not isinstance(params, Mapping):
                raise TypeError(f"`params` must be a dict of arrays; got {type(params).__name__}.")
            dense = self._dense("`with_params`")
            base = object.__new__(type(self))
            base.domain = self.domain
            base._lattice_spec = None
            base._lattice_candidate = self.lattice_size
            base._set_params(dense, {"J": dense["J"].shape, "h": dense["h"].shape}, check_constraints=False)
            return base._replace_params(params, check_constraints)
        return super()._replace_params(params, check_constraints)

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

    def _post_init(self):
        L = getattr(self, "_lattice_candidate", None)
        self.lattice_size = None
        if L is not None and self._params["J"].shape[0] == L * L:
            pattern = np.zeros((L * L, L * L), dtype=bool)
            i, j = _lattice_bonds(LatticeSpec((L, L), 1.0, 1.0, 0.0, "periodic"))
            pattern[i, j] = pattern[j, i] = True
            if not np.any(~pattern & (self._params["J"] != 0.0)):
                self.lattice_size = L

    @property
    def n_features(self):
        if self.lattice is not None:
            return self.lattice.shape[0] * self.lattice.shape[1]
        return self._params["J"].shape[0]

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

    def _describe(self):
        if self.lattice is not None:
            return f"Ising ({self.domain}) lattice of shape {self.lattice.shape} with {self.n_features} units"
        return f"Ising ({self.domain}) with {self.n_features} units"

    def __repr__(self):
        if self.lattice is not None:
            s = self.lattice
            return (
                f"Ising.lattice(L={s.shape}, beta={s.beta!r}, coupling={s.coupling!r}, field={s.field!r}, "
                f"domain={self.domain!r}, boundary={s.boundary!r})"
            )
        return f"Ising(J={self._params['J'].shape}, h={self._params['h'].shape}, domain={self.domain!r})"

    # ------------------------------------------------------- lattice sums
    def _coupling_sum(self, x):
        r"""``x J`` (= ``J x`` per row) for a batch ``(n, d)``; neighbour sums for a lattice."""
        if self.lattice is None:
            return x @ self._params["J"]
        s = self.lattice
        L1, L2 = s.shape
        g = x.reshape(x.shape[0], L1, L2)
        nsum = np.zeros_like(g)
        if s.boundary == "periodic":
            # on a side of length 2 both rolls give the same neighbour: the
            # pair's two bonds
            nsum += np.roll(g, 1, axis=1)
            nsum += np.roll(g, -1, axis=1)
            nsum += np.roll(g, 1, axis=2)
            nsum += np.roll(g, -1, axis=2)
        else:
            nsum[:, 1:, :] += g[:, :-1, :]
            nsum[:, :-1, :] += g[:, 1:, :]
            nsum[:, :, 1:] += g[:, :, :-1]
            nsum[:, :, :-1] += g[:, :, 1:]
        return (s.beta * s.coupling) * nsum.reshape(x.shape)

    def _field(self):
        """``h``: an array for a dense model, the scalar ``beta * field`` for a lattice."""
        if self.lattice is None:
            return self._params["h"]
        return self.lattice.beta * self.lattice.field

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
        r"""``p(x_i = 1 | x_{-i})`` (``+1`` for spins) for every unit, ``(n, d)``.

        Parameters
        ----------
        x : array_like of shape (n, d) or (d,)

        Returns
        -------
        ndarray of shape (n, d) (``(d,)`` for a single state)

        Notes
        -----
        :math:`\sigma` of :meth:`conditional_logit`, evaluated stably.
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
            # -1/2 x^T J x = -K * (sum over bonds of x_i x_j), each bond once
            s = self.lattice
            L1, L2 = s.shape
            g = x.reshape(x.shape[0], L1, L2)
            if s.boundary == "periodic":
                bonds = g * np.roll(g, -1, axis=2) + g * np.roll(g, -1, axis=1)
                pair_sum = bonds.sum(axis=(1, 2))
            else:
                pair_sum = (g[:, :, :-1] * g[:, :, 1:]).sum(axis=(1, 2)) + (g[:, :-1, :] * g[:, 1:, :]).sum(axis=(1, 2))
            return -(s.beta * s.coupling) * pair_sum - (s.beta * s.field) * x.sum(axis=1)
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



# --------------------------------------------------------------------------
# Binary-family kernels (kind 6; dispatched by ``energies.kernels``).
# Layout of ``numba_form``: ip = [d, spin, nnz, indptr (d + 1), indices (nnz)],
# fp = [data (nnz), h (d)] (the CSR of ``J``, rows in unit order). The
# per-chain cache is the local field ``f = J x + h`` (d).


@jit
def nb_field(ip, fp, x, i):
    """``h_i + sum_j J_ij x_j`` of unit ``i``, summed from ``h_i`` in CSR order."""
    d, nnz = ip[0], ip[2]
    fi = fp[nnz + i]
    for k in range(ip[3 + i], ip[4 + i]):
        fi += fp[k] * x[ip[4 + d + k]]
    return fi


@jit
def nb_init_cache(ip, fp, x, f):
    """Local fields ``f_i = h_i + sum_j J_ij x_j`` of one state (CSR order)."""
    for i in range(ip[0]):
        f[i] = nb_field(ip, fp, x, i)


@jit
def nb_flip_delta(ip, fp, x, f, i, fresh):
    r"""Exact ``E(x^{(i)}) - E(x) = -(x'_i - x_i) f_i`` (``J_ii = 0``: linear in ``x_i``).

    ``fresh``: ``f_i`` recomputed from the neighbours of ``i`` (no drift of
    a running sum; random-walk MH), else read from the cache ``f`` (GWG).
    """
    fi = nb_field(ip, fp, x, i) if fresh else f[i]
    return -(nb_flip_value(x[i], ip[1] != 0) - x[i]) * fi


@jit
def nb_apply_flip(ip, fp, x, f, i):
    """Flip ``x_i`` and update the fields ``f_j += J_ij (x'_i - x_i)`` along row ``i``."""
    d = ip[0]
    new = nb_flip_value(x[i], ip[1] != 0)
    delta = new - x[i]
    for k in range(ip[3 + i], ip[4 + i]):
        f[ip[4 + d + k]] += fp[k] * delta
    x[i] = new


@jit
def nb_flip_logits(ip, fp, x, f, work, lg):
    r"""GWG logits ``-dE~_j / 2`` from the fields (``grad_x E = -f``; ``work`` unused).

    ``dE~_j = (x'_j - x_j) grad_j``: spins ``2 x_j f_j``, 0/1 units
    ``-(1 - 2 x_j) f_j``.
    """
    spin = ip[1] != 0
    for j in range(ip[0]):
        if spin:
            lg[j] = -x[j] * f[j]
        else:
            lg[j] = 0.5 * (1.0 - 2.0 * x[j]) * f[j]


@jit
def nb_energy_grad(ip, fp, x, work, g):
    r"""``E = -1/2 x^T J x - h^T x`` and ``g = dE/dx = -(h + J x)`` (CSR order; ``work`` unused)."""
    d, nnz = ip[0], ip[2]
    e = 0.0
    for i in range(d):
        fi = 0.0
        for k in range(ip[3 + i], ip[4 + i]):
            fi += fp[k] * x[ip[4 + d + k]]
        h = fp[nnz + i]
        e -= x[i] * (0.5 * fi + h)
        g[i] = -(h + fi)
    return e


@jit
def nb_energy(ip, fp, x, work):
    r"""``E = -1/2 x^T J x - h^T x`` of one state (CSR order, as ``nb_energy_grad``; ``work`` unused)."""
    d, nnz = ip[0], ip[2]
    e = 0.0
    for i in range(d):
        fi = 0.0
        for k in range(ip[3 + i], ip[4 + i]):
            fi += fp[k] * x[ip[4 + d + k]]
        e -= x[i] * (0.5 * fi + fp[nnz + i])
    return e


# --------------------------------------------------------------------------
# AIS: tempered transitions (dispatched by energies.kernels.tempered_run)
@jit_inline
def _tempered_local(indptr, indices, data, x, c, i):
    """``(J x)_i`` from the CSR rows of J (neighbours in increasing order)."""
    f = 0.0
    for p in range(indptr[i], indptr[i + 1]):
        f += data[p] * x[c, indices[p]]
    return f


@pjit
def nb_tempered_run(ip, fp, g, spin, path, x, rng, logw, from_base, finish):
    r"""AIS along ``path`` for the Ising model with an independent base.

    .. math::

        \log f_\beta(s) = \beta\,(\tfrac12 s^\top J s + h^\top s) + (1-\beta)\, g^\top s;

    transition: one systematic single-site Gibbs sweep ``i = 0 .. d-1`` with
    local field :math:`\phi_i = \beta((Js)_i + h_i) + (1-\beta) g_i`:
    :math:`p(s_i = +1) = \sigma(2\phi_i)` for spins, :math:`p(x_i = 1) =
    \sigma(\phi_i)` for {0,1} (J has a zero diagonal). With ``from_base`` the
    initial state is drawn from the independent base with field ``g``;
    ``finish=False`` also makes the transition after the last weight (so a
    path can be run in consecutive pieces). No input checks.
    """
    d = ip[0]
    nnz = ip[1]
    indptr = ip[2 : d + 3]
    indices = ip[d + 3 : d + 3 + nnz]
    data = fp[:nnz]
    h = fp[nnz : nnz + d]
    n = x.shape[0]
    K = path.shape[0] - 1
    lo = -1.0 if spin else 0.0
    scale = 2.0 if spin else 1.0
    for c in prange(n):
        s = rng[c]
        if from_base:
            for i in range(d):
                x[c, i] = 1.0 if nb_uniform(s) < nb_sigmoid(scale * g[i]) else lo
        for k in range(1, K + 1):
            beta0 = path[k - 1]
            beta1 = path[k]
            quad = 0.0
            lin = 0.0
            for i in range(d):
                quad += x[c, i] * _tempered_local(indptr, indices, data, x, c, i)
                lin += (h[i] - g[i]) * x[c, i]
            logw[c] += (beta1 - beta0) * (0.5 * quad + lin)
            if k == K and finish:
                break
            one_m = 1.0 - beta1
            for i in range(d):
                phi = beta1 * (_tempered_local(indptr, indices, data, x, c, i) + h[i]) + one_m * g[i]
                x[c, i] = 1.0 if nb_uniform(s) < nb_sigmoid(scale * phi) else lo
