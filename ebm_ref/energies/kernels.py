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
3 GRBM, 4 MLPEnergy, 5 RBM, 6 Ising.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from .._jit import jit, pjit
from . import grbm as _grbm
from . import mlp as _mlp
from . import mixture as _mixture
from . import student_t as _student_t
from ._mlp_kernel import nb_energy_grad_tile as _mlp_tile

# --------------------------------------------------------------------------
# continuous family: energy and gradient of one state / a tile of states
# (RW-MH, ULA, MALA, HMC, Gibbs-Langevin)
KIND_STUDENT_T = _student_t.StudentT.NUMBA_KIND
KIND_MIXTURE = _mixture.GaussianMixture.NUMBA_KIND
KIND_GRBM = _grbm.GRBM.NUMBA_KIND
KIND_MLP = _mlp.MLPEnergy.NUMBA_KIND
CONTINUOUS_KINDS = (KIND_STUDENT_T, KIND_MIXTURE, KIND_GRBM, KIND_MLP)


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
    _mlp_tile(ip, fp, x.reshape((1, x.shape[0])), g.reshape((1, g.shape[0])), e, need_grad, work, True)
    return e[0]


@jit
def continuous_eval_tile(kind, ip, fp, X, G, E, need_grad, work, need_e):
    """``continuous_eval`` on every row of a tile (``work`` is ``(T, n_work)``).

    Tiled kernels (the MLP's) load each weight row once for the whole tile;
    every row's arithmetic is that of a tile of one. ``need_e=False`` allows
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
# (flip-proposal Metropolis: GWG and RW-MH; Gibbs sweeps; DULA)


# --------------------------------------------------------------------------
# tempered transitions (AIS and reverse AIS)
