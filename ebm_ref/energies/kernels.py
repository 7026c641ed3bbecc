r"""The models' Numba kernels, dispatched by family (the registration).

Each energy class packs itself with :meth:`EnergyModel.numba_form`
(``NumbaForm(kind, ip, fp, n_work)``) and defines its jitted scalar
functions in its own module. This module is the only place that maps a
``kind`` to those functions: one dispatch function per operation, each an
``if kind == ...`` chain over the registered models. The drivers of each
algorithm family (samplers, AIS, enumeration) call these functions and
nothing model-specific, so

* every driver has one signature whatever the model, and ``cache=True``
  compiles it once per machine (jitted functions passed as arguments would
  miss Numba's on-disk cache in every new process; docs/threads.md);
* adding a model means its own module plus a branch in each dispatch
  function of the families it joins (docs/models.md, "Adding a model").

Kinds (``NUMBA_KIND`` of each class): 1 StudentT, 2 GaussianMixture,
3 GRBM, 4 MLPEnergy, 5 RBM, 6 Ising, 7 FVBM.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from .._jit import ON, jit, jit_inline, pjit
from . import fvbm as _fvbm
from . import grbm as _grbm
from . import _ising_kernels as _ising
from . import mixture as _mixture
from . import mlp as _mlp
from . import rbm as _rbm
from . import student_t as _student_t
from ._mlp_kernel import TILE as _MLP_TILE
from ._mlp_kernel import nb_energy_grad_tile as _mlp_tile

# --------------------------------------------------------------------------
# continuous family: energy and gradient of one state / a tile of states
# (RW-MH, ULA, MALA, HMC, Gibbs-Langevin)
KIND_STUDENT_T = _student_t.StudentT.NUMBA_KIND
KIND_MIXTURE = _mixture.GaussianMixture.NUMBA_KIND
KIND_GRBM = _grbm.GRBM.NUMBA_KIND
KIND_MLP = _mlp.MLPEnergy.NUMBA_KIND
CONTINUOUS_KINDS = (KIND_STUDENT_T, KIND_MIXTURE, KIND_GRBM, KIND_MLP)
#: Kinds whose kernels call BLAS (drivers run them with one OpenBLAS thread:
#: each Numba thread makes its own single-threaded products).
BLAS_KINDS = (KIND_MLP,)
#: Chains per tile the tiled kernels work on (the MLP's padded BLAS tile):
#: drivers hand over tiles of at most this many chains.
TILE_ROWS = _MLP_TILE


@jit
def continuous_eval(kind, ip, fp, x, g, need_grad, work):
    """Energy of one state ``x``; writes ``dE/dx`` into ``g`` if ``need_grad``.

    ``work`` is a ``(1, n_work)`` scratch array.
    """
    if kind == KIND_STUDENT_T:
        return _student_t.nb_energy_grad(ip, fp, x, g, need_grad, work[0])
    if kind == KIND_MIXTURE:
        return _mixture.nb_energy_grad(ip, fp, x, g, need_grad, work[0])
    if kind == KIND_GRBM:
        return _grbm.nb_energy_grad(ip, fp, x, g, need_grad, work[0])
    e = np.empty(1)
    _mlp_tile(ip, fp, x.reshape((1, x.shape[0])), g.reshape((1, g.shape[0])), e, need_grad, work, ON)
    return e[0]


@jit
def continuous_eval_tile(kind, ip, fp, X, G, E, need_grad, work, need_e):
    """``continuous_eval`` on every row of a tile (``work``: at least ``(T, n_work)``;
    ``(TILE_ROWS, n_work)`` lets a tiled kernel use it as its whole padded tile).

    Tiled kernels (the MLP's) make one matrix product per layer for the
    whole tile; every row's result depends on that row only. ``need_e=False`` allows
    a kernel to leave ``E`` undefined (NaN) when that saves work (the MLP's
    top-layer softplus during ULA steps).
    """
    if kind == KIND_MLP:
        _mlp_tile(ip, fp, X, G, E, need_grad, work, need_e)
    else:
        for b in range(X.shape[0]):
            E[b] = continuous_eval(kind, ip, fp, X[b], G[b], need_grad, work[b: b + 1])


@pjit
def continuous_eval_batch(kind, ip, fp, x, n_work, need_grad):
    """Energies ``(n,)`` and gradients ``(n, d)`` of a batch, chain by chain."""
    n, d = x.shape
    e = np.empty(n)
    g = np.zeros((n, d))
    for c in prange(n):
        work = np.empty((1, max(n_work, 1)))
        e[c] = continuous_eval(kind, ip, fp, x[c], g[c], need_grad, work)
    return e, g


# --------------------------------------------------------------------------
# binary family: flip energy changes, conditionals, incremental caches
# (flip-proposal Metropolis: GWG and RW-MH; Gibbs sweeps; DULA; tempered
# transitions on binary models)
#
# A state ``x`` is one chain's row (float64, d units, values in the model's
# domain: {0, 1}, or {-1, +1} for spins). Each model keeps a per-chain
# float64 ``cache`` of length ``n_work`` (RBM: hidden pre-activations
# ``a = b_h + W^T v``; Ising: local fields ``f = J x + h``; FVBM: fields
# ``J x + b``) that the drivers never read, only hand back; ``work`` is a
# second scratch buffer of length ``n_work``. Operations:
#
#   bin_init_cache(kind, ip, fp, x, cache)              cache from x
#   bin_flip_delta(kind, ip, fp, x, cache, i, fresh)    E(x with unit i flipped) - E(x), exact;
#                                                       fresh=True: a model may recompute from x
#                                                       instead of its cache (no running-sum drift)
#   bin_apply_flip(kind, ip, fp, x, cache, i)           flip x[i], update cache
#   bin_flip_logits(kind, ip, fp, x, cache, work, lg)   lg[j] = -(x'_j - x_j) dE/dx_j / 2 (GWG)
#   bin_fresh_uses_cache(kind)                          does fresh=True read the cache?
#   bin_cond_logit(kind, ip, fp, x, cache, i)           log p(x_i = up | x_-i) / p(down | x_-i)
#   bin_energy(kind, ip, fp, x, work)                   E(x)
#   bin_energy_grad(kind, ip, fp, x, work, g)           E(x), g = dE/dx (continuous extension);
#                                                       ``work`` ends in a model-defined state
#
# A model registers by one branch in each function below (its functions live
# in its own module, not in ``__all__``). A kind without a branch returns
# NaN / leaves outputs untouched: the Python wrappers only call these for a
# model whose ``numba_form()`` is not None and whose kind is in BINARY_KINDS.

#: Kinds registered in the binary family.
BINARY_KINDS = (5, 6, 7)
#: Binary kinds whose samplers report final energies from ``bin_energy``
#: chain by chain (O(nnz) for a sparse Ising, bit-identical for a lattice);
#: the others from ``model.energy`` on fixed-size blocks (BLAS, for dense
#: weights such as an RBM's).
ROW_ENERGY_KINDS = (6, 7)


@jit_inline
def bin_init_cache(kind, ip, fp, x, cache):
    """Fill the per-chain ``cache`` from the state ``x``."""
    if kind == 5:
        _rbm.nb_init_cache(ip, fp, x, cache)
    elif kind == 6:
        _ising.nb_init_cache(ip, fp, x, cache)
    elif kind == 7:
        _fvbm.nb_init_cache(ip, fp, x, cache)


@jit_inline
def bin_flip_delta(kind, ip, fp, x, cache, i, fresh):
    """Exact energy change of flipping unit ``i`` (``x`` and ``cache`` unchanged)."""
    if kind == 5:
        return _rbm.nb_flip_delta(ip, fp, x, cache, i)
    if kind == 6:
        return _ising.nb_flip_delta(ip, fp, x, cache, i, fresh)
    if kind == 7:
        return _fvbm.nb_flip_delta(ip, fp, x, cache, i, fresh)
    return np.nan


@jit_inline
def bin_apply_flip(kind, ip, fp, x, cache, i):
    """Flip unit ``i`` of ``x`` and bring ``cache`` up to date."""
    if kind == 5:
        _rbm.nb_apply_flip(ip, fp, x, cache, i)
    elif kind == 6:
        _ising.nb_apply_flip(ip, fp, x, cache, i)
    elif kind == 7:
        _fvbm.nb_apply_flip(ip, fp, x, cache, i)


@jit_inline
def bin_flip_logits(kind, ip, fp, x, cache, work, lg):
    """Gibbs-with-gradients logits of every unit from the state and its cache."""
    if kind == 5:
        _rbm.nb_flip_logits(ip, fp, x, cache, work, lg)
    elif kind == 6:
        _ising.nb_flip_logits(ip, fp, x, cache, work, lg)
    elif kind == 7:
        _fvbm.nb_flip_logits(ip, fp, x, cache, work, lg)


@jit_inline
def bin_fresh_uses_cache(kind):
    """Whether ``bin_flip_delta(..., fresh=True)`` reads the cache.

    When it does not (Ising, FVBM: the field of the unit is recomputed),
    drivers that only use fresh changes (random-walk MH, site sweeps)
    neither fill nor update the cache: a flip is just the new value of the
    unit.
    """
    return kind == 5


@jit_inline
def bin_cond_logit(kind, ip, fp, x, cache, i):
    r"""Logit of the up state of unit ``i`` given the others: ``E(down) - E(up)``.

    From the exact flip change (``fresh``): ``+dE`` when ``x_i`` is up (1),
    ``-dE`` when it is down (0 or -1). Exact in floating point for a
    quadratic energy (``dE = -(+-1 or +-2) f_i``).
    """
    de = bin_flip_delta(kind, ip, fp, x, cache, i, True)
    return de if x[i] > 0.5 else -de


@jit_inline
def bin_energy(kind, ip, fp, x, work):
    """Energy of one state (``work``: the model's scratch, length ``n_work``)."""
    if kind == 5:
        return _rbm.nb_energy(ip, fp, x, work)
    if kind == 6:
        return _ising.nb_energy(ip, fp, x, work)
    if kind == 7:
        return _fvbm.nb_energy(ip, fp, x, work)
    return np.nan


@jit_inline
def bin_energy_grad(kind, ip, fp, x, work, g):
    """Energy of one state and its gradient ``g`` (continuous extension; DULA)."""
    if kind == 5:
        return _rbm.nb_energy_grad(ip, fp, x, work, g)
    if kind == 6:
        return _ising.nb_energy_grad(ip, fp, x, work, g)
    if kind == 7:
        return _fvbm.nb_energy_grad(ip, fp, x, work, g)
    return np.nan


@pjit
def bin_energy_rows(kind, ip, fp, n_work, x, out):
    """``out[c] = bin_energy`` of row ``c`` of ``x``, chain by chain. No input checks."""
    for c in prange(x.shape[0]):
        out[c] = bin_energy(kind, ip, fp, x[c], np.empty(n_work))


# --------------------------------------------------------------------------
# tempered transitions (AIS and reverse AIS)
#
# One AIS step sequence along a path of inverse temperatures, forward or
# reverse, for the models with a specialised path (their own annealing
# family and transition; ``EnergyModel.tempered_form`` packs them). Every
# other binary model is annealed by the generic driver of
# ``ebm_ref.estimate`` on the binary-family functions above.
#
#   tempered_run(kind, ip, fp, g, spin, path, x, rng, logw, from_base,
#                finish, n_threads)
#       logw[c] += sum_k log f_{path[k]}(x_c) - log f_{path[k-1]}(x_c), with a
#       transition at path[k] after each weight update but the last (after
#       the last too when ``finish`` is false, so a path can be cut into
#       consecutive calls); ``g`` the base field, ``from_base``: draw x from
#       the base first; ``n_threads`` only groups chains into blocks.

#: Kinds with a specialised tempered path: GRBM, RBM, Ising.
TEMPERED_KINDS = (3, 5, 6)


@jit
def tempered_run(kind, ip, fp, g, spin, path, x, rng, logw, from_base, finish, n_threads):
    """Run the specialised AIS path of ``kind`` (see above). No input checks."""
    if kind == 5:
        _rbm.nb_tempered_run(ip, fp, g, path, x, rng, logw, from_base, finish, n_threads)
    elif kind == 3:
        _grbm.nb_tempered_run(ip, fp, g, path, x, rng, logw, from_base, finish, n_threads)
    elif kind == 6:
        _ising.nb_tempered_run(ip, fp, g, spin, path, x, rng, logw, from_base, finish)

