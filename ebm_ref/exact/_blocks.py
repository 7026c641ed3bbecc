r"""Enumeration of any small binary model through its public ``energy``.

The route for binary and spin models without a specialised Gray-code
kernel (for example ``LowRankBoltzmann``, or a subclass that redefines a
formula of a model that has one): the :math:`2^d` states come in blocks
from :mod:`ebm_ref._states`, each block's log-weights :math:`-E(x)` from
``model.energy``, and a running-max log-sum-exp combines the blocks in
order (so the result does not depend on the block size beyond rounding,
and memory stays at one block).

Error estimate: ``model.energy`` is a black box here, so no rigorous bound
exists; the reported figure assumes each energy is correct to a few ulps of
the largest :math:`|E|` times the number of units (the cost of a dot
product of length ``d``) plus the rounding of the ``2^d`` terms of the sum.
"""

from __future__ import annotations

import math

import numpy as np

from .._states import all_states, state_blocks

_EPS = 2.0**-53


def enumerated_log_weights(model):
    """``-E(x)`` of every state in lexicographic order (callers bound ``d``)."""
    return -model.energy(all_states(model.n_features, model.domain))


def log_partition_blocks(model):
    """``(log Z, error estimate)`` of a binary model by blocks of states."""
    d = model.n_features
    top = -math.inf
    acc = 0.0
    emax = 0.0
    for _, states in state_blocks(d, model.domain):
        lw = -model.energy(states)
        m = float(np.max(lw))
        emax = max(emax, float(np.max(np.abs(lw))))
        if m > top:
            acc = acc * math.exp(top - m) if top > -math.inf else 0.0
            top = m
        acc += float(np.sum(np.exp(lw - top)))
    value = top + math.log(acc)
    err = 4.0 * _EPS * (d + 2) * emax + 4.0 * _EPS * (1 << d)
    return value, err


def moments_blocks(model, log_z):
    """``E_p[dE/dtheta]`` by blocks: ``model.grad_params`` weighted by ``p``."""
    total = None
    for _, states in state_blocks(model.n_features, model.domain):
        w = np.exp(-model.energy(states) - log_z)
        g = model.grad_params(states, w)
        total = g if total is None else {k: total[k] + g[k] for k in total}
    return total
