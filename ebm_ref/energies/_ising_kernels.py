r"""The Ising model's Numba kernels (kind 6), beside ``ising.py``.

The formulas are those of :class:`ebm_ref.energies.Ising` (its class
docstring); ``energies.kernels`` dispatches to them. They live in their own
private module only to keep ``ising.py`` (the class, its two storage forms
and its NumPy primitives) readable.
"""

from __future__ import annotations

from numba import prange

from .._jit import jit_inline, pjit
from .._numerics import nb_flip_value, nb_sigmoid
from .._rng import nb_uniform

# --------------------------------------------------------------------------
# Binary-family kernels (kind 6; dispatched by ``energies.kernels``).
# Layout of ``numba_form``: ip = [d, spin, nnz, indptr (d + 1), indices (nnz)],
# fp = [data (nnz), h (d)] (the CSR of ``J``, rows in unit order). The
# per-chain cache is the local field ``f = J x + h`` (d).


@jit_inline
def nb_field(ip, fp, x, i):
    """``h_i + sum_j J_ij x_j`` of unit ``i``, summed from ``h_i`` in CSR order."""
    d, nnz = ip[0], ip[2]
    indices = ip[4 + d : 4 + d + nnz]  # a view: one offset, not one per term
    fi = fp[nnz + i]
    for k in range(ip[3 + i], ip[4 + i]):
        fi += fp[k] * x[indices[k]]
    return fi


@jit_inline
def nb_init_cache(ip, fp, x, f):
    """Local fields ``f_i = h_i + sum_j J_ij x_j`` of one state (CSR order)."""
    for i in range(ip[0]):
        f[i] = nb_field(ip, fp, x, i)


@jit_inline
def nb_flip_delta(ip, fp, x, f, i, fresh):
    r"""Exact ``E(x^{(i)}) - E(x) = -(x'_i - x_i) f_i`` (``J_ii = 0``: linear in ``x_i``).

    ``fresh``: ``f_i`` recomputed from the neighbours of ``i`` (no drift of
    a running sum; random-walk MH), else read from the cache ``f`` (GWG).
    """
    fi = nb_field(ip, fp, x, i) if fresh else f[i]
    return -(nb_flip_value(x[i], ip[1] != 0) - x[i]) * fi


@jit_inline
def nb_apply_flip(ip, fp, x, f, i):
    """Flip ``x_i`` and update the fields ``f_j += J_ij (x'_i - x_i)`` along row ``i``."""
    d = ip[0]
    new = nb_flip_value(x[i], ip[1] != 0)
    delta = new - x[i]
    for k in range(ip[3 + i], ip[4 + i]):
        f[ip[4 + d + k]] += fp[k] * delta
    x[i] = new


@jit_inline
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


@jit_inline
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


@jit_inline
def nb_energy(ip, fp, x, work):
    r"""``E = -1/2 x^T J x - h^T x`` of one state: ``nb_energy_grad`` with ``work`` (d) taking the gradient."""
    return nb_energy_grad(ip, fp, x, work, work)


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
