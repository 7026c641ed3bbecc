r"""One flip-proposal Metropolis driver for every binary model (GWG and RW-MH).

The driver knows no model: it calls the binary family of
``energies.kernels`` with the model's ``NumbaForm`` (``kind``, ``ip``,
``fp``; the per-chain ``cache`` has the form's ``n_work`` entries). One
compiled, cached driver serves RBM, Ising, FVBM and every model registered
later.

Chain ``c`` reads and writes only row ``c`` of ``x``, ``cache``, ``rng``,
``trace`` and ``accepted``; every per-chain sum runs in a fixed order, so
results do not depend on the number of threads nor of chains.

Chunks: all per-chain state lives in the arrays passed in (the model's
cache included), the proposal distribution of GWG is a deterministic
function of ``(x, cache)``, ``t0`` offsets the trace index and
``accepted`` is accumulated. Calling the driver on steps ``[0, k)`` with
``t0 = 0`` and then on ``[k, n)`` with ``t0 = k`` gives the bits of one
call on ``[0, n)``. The cache is filled from ``x`` only when ``t0 == 0``.

Random numbers per step (fixed, whatever is accepted): one uniform for the
unit (inverse CDF for GWG, ``nb_randint`` for RW-MH), one for the test.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from .._jit import jit, jit_inline, pjit
from .._numerics import nb_flip_value
from .._rng import nb_randint, nb_uniform
from ..energies import EnergyModel
from ..energies import kernels as K
from ._common import finish, mh_accept, prepare, record, rows_blockwise, run_steps, unsupported

__all__ = ["flip_mh_run", "run_flip_mh", "binary_form", "final_energies", "acceptance", "PROPOSE_GWG", "PROPOSE_UNIFORM"]

# proposal of ``flip_mh_run``
PROPOSE_UNIFORM = 0  # unit drawn uniformly (random-walk MH)
PROPOSE_GWG = 1  # unit drawn from softmax of the gradient logits (Grathwohl et al. 2021)


@jit
def categorical(w, total, u):
    """Index ``j`` with probability ``w_j / total`` by inverse CDF of ``u``. No input checks."""
    target = u * total
    cum = 0.0
    last = 0
    for j in range(w.shape[0]):
        if w[j] > 0.0:
            last = j
            cum += w[j]
            if target < cum:
                return j
    # Rounding may leave target just above the running sum: the last unit
    # with positive weight is the one the exact inverse CDF would pick.
    return last


@jit
def normalise_logits(lg, w):
    r"""Fill ``w = exp(lg - max lg)`` and return ``(total, log_sum_exp)``."""
    m = -np.inf
    for j in range(lg.shape[0]):
        if lg[j] > m:
            m = lg[j]
    total = 0.0
    for j in range(lg.shape[0]):
        w[j] = math.exp(lg[j] - m)
        total += w[j]
    return total, m + math.log(total)


@jit_inline
def chain_cache(kind, ip, fp, x, cache, c, t0, live):
    """Chain ``c``'s cache as a local copy of ``cache[c]`` (write it back at the end), filled from ``x[c]`` at ``t0 == 0``.

    ``live`` False (a driver that never reads the cache): left untouched.
    """
    f = cache[c].copy()
    if t0 == 0 and live:
        K.bin_init_cache(kind, ip, fp, x[c], f)
    return f


@pjit
def flip_mh_run(kind, ip, fp, spin, propose, x, cache, t0, n_steps, thin, rng, trace, accepted):
    r"""``n_steps`` single-flip Metropolis-Hastings steps per chain. No input checks.

    ``propose == PROPOSE_UNIFORM``: flip a uniform unit, accept with the
    exact energy change recomputed from the state where the model can
    (``fresh``; the cache is kept only for a model whose fresh change reads
    it). ``PROPOSE_GWG``: draw the unit from the gradient logits, build the
    flipped state's cache and logits, accept with ``-dE + log q(i | x') -
    log q(i | x)``; cache, logits and weights are swapped with the flipped
    state's on acceptance (no recomputation). ``spin``: the units' other
    value is ``-x`` (else ``1 - x``).
    """
    n, d = x.shape
    nw = cache.shape[1]
    gwg = propose == PROPOSE_GWG
    live = gwg or K.bin_fresh_uses_cache(kind)
    for c in prange(n):
        xc = x[c]
        s = rng[c]
        f = chain_cache(kind, ip, fp, x, cache, c, t0, live)
        fn = np.empty(nw)
        work = np.empty(nw)
        lg = np.empty(d if gwg else 0)
        lgn = np.empty(d if gwg else 0)
        w = np.empty(d if gwg else 0)
        wn = np.empty(d if gwg else 0)
        total = lse = 0.0
        if gwg:
            K.bin_flip_logits(kind, ip, fp, xc, f, work, lg)
            total, lse = normalise_logits(lg, w)
        n_acc = 0
        for t in range(t0, t0 + n_steps):
            if gwg:
                i = categorical(w, total, nb_uniform(s))
                u = nb_uniform(s)
                old = xc[i]
                d_energy = K.bin_flip_delta(kind, ip, fp, xc, f, i, False)
                for j in range(nw):
                    fn[j] = f[j]
                K.bin_apply_flip(kind, ip, fp, xc, fn, i)
                K.bin_flip_logits(kind, ip, fp, xc, fn, work, lgn)
                total_n, lse_n = normalise_logits(lgn, wn)
                if mh_accept(u, -d_energy + (lgn[i] - lse_n) - (lg[i] - lse)):
                    # the flipped state's cache, logits and weights become current
                    f, fn = fn, f
                    lg, lgn = lgn, lg
                    w, wn = wn, w
                    total, lse = total_n, lse_n
                    n_acc += 1
                else:
                    xc[i] = old
            else:
                i = nb_randint(s, d)
                u = nb_uniform(s)
                if mh_accept(u, -K.bin_flip_delta(kind, ip, fp, xc, f, i, True)):
                    if live:
                        K.bin_apply_flip(kind, ip, fp, xc, f, i)
                    else:
                        xc[i] = nb_flip_value(xc[i], spin)
                    n_acc += 1
            record(trace, c, xc, t, thin)
        cache[c] = f
        accepted[c] += n_acc


def binary_form(model, sampler, supported):
    """The model's ``NumbaForm`` when it is registered in the binary family, else ``TypeError``."""
    form = model.numba_form() if isinstance(model, EnergyModel) else None
    if form is None or form.kind not in K.BINARY_KINDS:
        raise unsupported(sampler, model, supported)
    return form


def final_energies(model, x):
    """Per-chain energies of the final states, independent of the batch size.

    Models in ``kernels.ROW_ENERGY_KINDS``: ``bin_energy`` chain by chain
    (O(nnz) for a sparse or lattice Ising, where the dense ``x J x`` would
    cost O(d^2)). Others: ``model.energy`` on fixed-shape blocks
    (``rows_blockwise``).
    """
    form = model.numba_form() if isinstance(model, EnergyModel) else None
    if form is not None and form.kind in K.ROW_ENERGY_KINDS:
        out = np.empty(x.shape[0])
        K.bin_energy_rows(form.kind, form.ip, form.fp, form.n_work, x, out)
        return out
    fill = -1.0 if model.domain == "spin" else 0.0
    return np.ascontiguousarray(rows_blockwise(model.energy, x, fill=fill))


def acceptance(accepted, n_steps):
    """Fraction of accepted proposals; NaN per chain when ``n_steps == 0`` (nothing proposed)."""
    if n_steps == 0:
        return np.full(accepted.shape[0], np.nan)
    return accepted / float(n_steps)


def run_flip_mh(model, x0, n_steps, seed, thin, propose, sampler, supported):
    """Validate, run :func:`flip_mh_run` in chunks of steps (``run_steps``), and build the result.

    The per-chain cache is written back at the end of every chunk and read
    at the start of the next (filled from the state only at ``t0 == 0``),
    so the chunks give one call's bits.
    """
    form = binary_form(model, sampler, supported)
    prep = prepare(model, x0, n_steps, seed, thin)
    accepted = np.zeros(prep.x.shape[0], dtype=np.int64)
    cache = np.empty((prep.x.shape[0], form.n_work))
    spin = model.domain == "spin"

    def chunk(t0, count):
        flip_mh_run(form.kind, form.ip, form.fp, spin, propose, prep.x, cache, t0, count,
                    prep.thin, prep.rng, prep.trace, accepted)

    run_steps(prep, chunk, sampler)
    return finish(prep, final_energies(model, prep.x), acceptance(accepted, prep.n_steps))
