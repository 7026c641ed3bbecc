r"""The one tempered-transition driver of AIS and reverse AIS.

:func:`run_path` runs every chain along a sequence of inverse temperatures
``path`` (increasing for forward AIS, decreasing for reverse AIS) and adds
to ``logw[c]`` the log importance weight of chain ``c``:

.. math::

    \log w \mathrel{+}= \log f_{\beta_k}(x) - \log f_{\beta_{k-1}}(x),
    \qquad k = 1, \dots, K,

each followed (but the last, unless ``finish`` is false) by one transition
that leaves :math:`p_{\beta_k}` invariant. A model with a specialised path
(``kind`` in ``kernels.TEMPERED_KINDS``: RBM, GRBM, Ising, whose kernels
live in their own modules) is run by ``kernels.tempered_run``; every other
binary model by :func:`binary_run` on the binary-family interface of
:mod:`ebm_ref.energies.kernels`, with

.. math::

    \log f_\beta(x) = -\beta E(x) + (1-\beta)\, g^\top x

(an independent base with field ``g``) and a systematic single-site Gibbs
sweep at :math:`\beta` as the transition: the logit of unit ``i`` being up
is :math:`\beta\,[E(x_{i\downarrow}) - E(x_{i\uparrow})] + (1-\beta)\,
s\, g_i` with ``s = 2`` for spins and 1 for {0,1}.

Chunks: every per-chain quantity carried between steps is recomputed from
``x`` and the chain's RNG row at the start of a call, so running
``path[0:m+1]`` with ``finish=False`` and then ``path[m:]`` with
``from_base=False`` adds the same bits to ``logw`` as one call.

Reproducibility: chain ``c`` reads and advances only ``rng[c]`` and writes
only row ``c`` of ``x`` and ``logw[c]``.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from .._jit import pjit
from .._numerics import nb_sigmoid
from .._rng import nb_uniform
from ..energies import kernels


@pjit
def binary_run(kind, ip, fp, n_work, g, spin, path, x, rng, logw, from_base, finish):
    """The generic binary path (see the module docstring). No input checks."""
    n, d = x.shape
    K = path.shape[0] - 1
    lo = -1.0 if spin else 0.0
    scale = 2.0 if spin else 1.0
    for c in prange(n):
        s = rng[c]
        xc = x[c]
        cache = np.empty(max(n_work, 1))
        work = np.empty(max(n_work, 1))
        if from_base:
            for i in range(d):
                xc[i] = 1.0 if nb_uniform(s) < nb_sigmoid(scale * g[i]) else lo
        kernels.bin_init_cache(kind, ip, fp, xc, cache)
        for k in range(1, K + 1):
            beta0 = path[k - 1]
            beta1 = path[k]
            lin = 0.0
            for i in range(d):
                lin += g[i] * xc[i]
            logw[c] += (beta1 - beta0) * (-kernels.bin_energy(kind, ip, fp, xc, work) - lin)
            if k == K and finish:
                break
            one_m = 1.0 - beta1
            for i in range(d):
                logit = beta1 * kernels.bin_cond_logit(kind, ip, fp, xc, cache, i) + one_m * scale * g[i]
                up = nb_uniform(s) < nb_sigmoid(logit)
                if up != (xc[i] > 0.5):
                    kernels.bin_apply_flip(kind, ip, fp, xc, cache, i)


def run_path(form, g, spin, path, x, rng, logw, from_base, finish, n_threads):
    """Advance every chain along ``path``: the specialised or the generic binary kernel.

    ``form`` is the :class:`~ebm_ref.energies.NumbaForm` of
    ``model.tempered_form``; the other arguments as in the module docstring
    (``n_threads``: ``numba.get_num_threads()``, only the block grouping of
    the RBM/GRBM kernels). Whether a kind has a specialised path is a
    Python-level choice so that each compiled kernel has one signature.
    """
    if form.kind in kernels.TEMPERED_KINDS:
        kernels.tempered_run(form.kind, form.ip, form.fp, g, spin, path, x, rng, logw, from_base, finish, n_threads)
    else:
        binary_run(form.kind, form.ip, form.fp, form.n_work, g, spin, path, x, rng, logw, from_base, finish)
