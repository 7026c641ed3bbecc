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

# --------------------------------------------------------------------------
# continuous family: energy and gradient of one state / a tile of states
# (RW-MH, ULA, MALA, HMC, Gibbs-Langevin)


# --------------------------------------------------------------------------
# binary family: flip energy changes, conditionals, incremental caches
# (flip-proposal Metropolis: GWG and RW-MH; Gibbs sweeps; DULA)


# --------------------------------------------------------------------------
# tempered transitions (AIS and reverse AIS)
