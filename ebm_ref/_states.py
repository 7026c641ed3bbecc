r"""The one enumeration of binary and spin states, in blocks.

Every exhaustive computation on a small binary model (exact probabilities,
the exact distribution a sampler test compares against, enumeration of a
model without a specialised kernel) lists the :math:`2^d` states through
this module, so that all of them agree on one order: lexicographic with
unit 0 the most significant bit. Row ``k`` is the binary expansion of
``k``; for spins ``-1`` plays the role of ``0`` (the first state is all
``-1``).

States are produced in blocks of consecutive indices so that a caller never
holds more than one block (``2^d`` rows of ``d`` float64 values are 8 GiB
at ``d = 27``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["state_block", "state_blocks", "all_states", "STATE_BLOCK"]

#: Rows per block of :func:`state_blocks` (2^16 states of up to 30 units:
#: at most 15 MiB per block).
STATE_BLOCK = 1 << 16


def state_block(d, domain, start, stop):
    """States ``start .. stop - 1`` of the lexicographic order of ``{0,1}^d``.

    Parameters
    ----------
    d : int
        Number of units (``0 <= d <= 62``).
    domain : {"binary", "spin"}
        ``"spin"`` maps bit 0 to ``-1``.
    start, stop : int
        Half-open range of state indices, ``0 <= start <= stop <= 2^d``.

    Returns
    -------
    ndarray of shape (stop - start, d), float64
    """
    idx = np.arange(start, stop, dtype=np.int64)
    shifts = np.arange(d - 1, -1, -1, dtype=np.int64)
    bits = ((idx[:, None] >> shifts[None, :]) & 1).astype(np.float64)
    return 2.0 * bits - 1.0 if domain == "spin" else bits


def state_blocks(d, domain, block=STATE_BLOCK):
    """Iterate over all ``2^d`` states in blocks of at most ``block`` rows.

    Yields ``(start, states)`` with ``states`` as :func:`state_block`
    returns for ``start .. start + len(states) - 1``.
    """
    n = 1 << d
    for start in range(0, n, block):
        yield start, state_block(d, domain, start, min(n, start + block))


def all_states(d, domain):
    """All ``2^d`` states at once (callers bound ``d`` first)."""
    return state_block(d, domain, 0, 1 << d)
