r"""2-D lattices of the Ising model: their structure and its storage.

``LatticeSpec`` describes a lattice (side lengths, ``beta``, ``coupling``,
``field``, boundary); :class:`LatticeStorage` is the part of ``Ising`` that
stores a model either by a dense ``J`` or by that structure (O(1) memory):
the ``Ising.lattice`` builder, neighbour sums in O(n d), the dense ``J`` built
only on demand (up to :data:`MAX_DENSE_UNITS` units), and the lattice's CSR
built from the structure (``lattice_csr``). See ``docs/lattices.md``.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from .._validation import check_int

__all__ = ["LatticeSpec", "LatticeStorage", "lattice_csr", "csr_from_edges", "MAX_DENSE_UNITS"]

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


def csr_from_edges(i, j, w, d):
    """Symmetric CSR ``(indptr, indices, data)`` of the pairs ``(i, j)`` with weights ``w``.

    Rows in unit order, columns ascending within a row, each pair stored in
    both rows: the layout of the CSR of a dense symmetric ``J``.
    """
    rows = np.concatenate([i, j])
    cols = np.concatenate([j, i])
    data = np.concatenate([w, w])
    order = np.lexsort((cols, rows))
    indptr = np.zeros(d + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=d), out=indptr[1:])
    return (indptr, np.ascontiguousarray(cols[order], dtype=np.int64),
            np.ascontiguousarray(data[order], dtype=np.float64))


def lattice_csr(spec):
    """CSR arrays ``(indptr, indices, data)`` of the couplings of a :class:`LatticeSpec`.

    Built from the structure in O(d log d) (no dense ``J``); equal, bit for
    bit, to the CSR of the dense ``J`` (rows in unit order, columns
    ascending within a row).
    """
    return csr_from_edges(*_lattice_edges(spec), spec.shape[0] * spec.shape[1])


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


class LatticeStorage:
    """Mixin of ``Ising``: dense-``J`` or lattice-structure storage of the couplings.

    Attributes set by the model: ``domain``, ``_lattice_spec`` (a
    :class:`LatticeSpec` or None), ``_lattice_candidate``, ``_params``.
    """

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

    def _lattice_energy(self, x):
        """``E(x)`` of a lattice model from its bonds, each counted once (O(n d))."""
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
