r"""Rounding-error bounds of the Gray-code enumeration kernels, and the
serial, thread-independent combination of their per-chunk sums.

The kernels are in :mod:`ebm_ref.exact._enumerate`; ``RESYNC`` (how often
a walk recomputes its running state from scratch) enters every bound.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["UNIT_ROUNDOFF", "RESYNC", "combine_chunks", "sum_error", "rbm_value_error", "ising_value_error"]

#: Unit roundoff of float64, 2^-53.
UNIT_ROUNDOFF = 2.0**-53
#: Recompute the running state from scratch every RESYNC steps (power of 2).
RESYNC = 128


def rbm_value_error(c, b, M):
    r"""Bound on ``|l~(z) - l(z)|`` for every state of :func:`rbm_walk`.

    Each ``a_j`` is a recursive sum of at most ``RESYNC + n`` terms whose
    partial sums are bounded by :math:`A_j = |b_j| + \sum_k |M_{kj}|`, so its
    error is at most ``(RESYNC + n + 1) u A_j`` (Higham 2002, eq. 4.4);
    softplus is 1-Lipschitz and evaluated to 4u relative, with
    :math:`0 \le \operatorname{softplus}(a_j) \le A_j + \ln 2`; the final sum of
    ``m + 1`` terms adds ``(m + 1) u`` times the sum of their magnitudes.
    The product forms add, per unit, at most ``3u`` (``1 + e^{-|a|}``: exp,
    add and product roundings, each factor in (1, 2]) or, on the
    multiplicative path, the ``(2R + 1) u`` relative drift of
    :math:`E_j = e^{a_j}` after at most ``R`` multiplications by rounded
    :math:`e^{\pm M_{kj}}` (an absolute error of :math:`\log(1 + E_j)`,
    whose derivative in :math:`\log E_j` is below 1), plus ``4u``.
    Doubled for safety:

    .. math::

        \delta = 2u\,\Big[(R + n + m + 6)\,\Big(\sum_j A_j + \sum_k |c_k| + m \ln 2\Big)
                 + (2R + 5)\, m\Big].
    """
    n, m = M.shape
    A = np.abs(b) + np.abs(M).sum(axis=0)
    scale = A.sum() + np.abs(c).sum() + m * math.log(2.0)
    return 2.0 * UNIT_ROUNDOFF * ((RESYNC + n + m + 6) * scale + (2 * RESYNC + 5) * m)


def ising_value_error(S, h_eff, const):
    r"""Bound on ``|l~(z) - l(z)|`` for every state of :func:`ising_walk`.

    With :math:`A = \max_k \sum_j |S_{kj}|`, :math:`B = \tfrac12\sum_{kj}
    |S_{kj}| + \sum_k |h_k| + |const|` (bounds of every local field and of every
    partial sum of ``l``, since :math:`|z_k| \le 1`): a fresh ``f_k`` is off
    by at most ``n u A``, and each of at most ``R`` updates adds ``u A``; a
    fresh ``l`` is off by ``(2n + 2) u B``, and each update (``|dz| <= 2``)
    adds ``2 err(f_k) + 2u (A + max|h|) + u B``. Doubled for safety:

    .. math::

        \delta = 2u\,\big[(2n + R + 2) B + 2R (R + n + 2)(A + \max_k |h_k|)\big].
    """
    n = h_eff.shape[0]
    absS = np.abs(S)
    A = float(absS.sum(axis=1).max()) if n else 0.0
    B = 0.5 * float(absS.sum()) + float(np.abs(h_eff).sum()) + abs(const)
    hmax = float(np.abs(h_eff).max()) if n else 0.0
    R = RESYNC
    return 2.0 * UNIT_ROUNDOFF * ((2 * n + R + 2) * B + 2 * R * (R + n + 2) * (A + hmax))


def combine_chunks(out_max, out_sum):
    """``log sum_c s_c e^{m_c}``, serially in chunk order (thread-independent)."""
    top = float(np.max(out_max))
    total = math.fsum(float(s) * math.exp(float(m) - top) for m, s in zip(out_max, out_sum))
    return top + math.log(total)


def sum_error(n_states, n_chunks, log_z):
    r"""Bound on the error of the shifted sums and their combination.

    In a chunk of ``M`` states every term :math:`e^{l - m} \le 1` is formed
    with relative error :math:`\le 2u` plus :math:`u\,|l - m| e^{l - m}
    \le u/e`, a rescale multiplies by a factor with error ``2u`` (at most
    ``M`` times) and recursive summation adds ``(M - 1) u`` relative
    (Higham 2002, §4.2); the sum is at least 1 (its largest term), so the
    relative error is an absolute error of its log. Combining ``C`` chunks
    (``fsum`` of products: 2u each) and the final ``log`` (u relative)
    add :math:`(C + 2) u + u |\log Z|`. Doubled for safety:

    .. math::

        \epsilon = 2u\,\big(5M + C + 4 + |\log Z|\big).
    """
    M = n_states // n_chunks
    return 2.0 * UNIT_ROUNDOFF * (5 * M + n_chunks + 4 + abs(log_z))
