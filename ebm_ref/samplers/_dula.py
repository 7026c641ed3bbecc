r"""Discrete Langevin samplers (DULA, DMALA; Zhang, Liu & Liu 2022) for binary models.

Layout: the public ``dula`` validates and allocates through
``_common.prepare``; the ``@pjit`` drivers below run ``prange`` over chains,
chain ``c`` reading and writing only row ``c`` of ``x``, ``rng``, ``trace``
and ``accepted``, with every per-chain sum in a fixed order, so results do
not depend on the thread count nor on the number of chains. Ising models
and every other model registered in the binary family reach the one
driver ``dula_run`` through ``energies.kernels.bin_energy_grad`` (their
``numba_form()``). Any other binary ``EnergyModel`` runs through its
``energy`` / ``grad_x`` on fixed-size blocks of chains
(``_common.rows_blockwise``), drawing the same random numbers in the same
order. No input checks in the kernels.

Random numbers per step and chain: one uniform per unit in unit order (the
factorised proposal), then, for DMALA, one uniform for the accept test.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from .._jit import jit, pjit
from .._numerics import nb_bernoulli_logit, nb_flip_value, nb_log_sigmoid
from .._rng import nb_uniform, np_uniforms
from ..energies import EnergyModel
from ..energies import kernels as K
from ._common import check_step_size, finish, prepare, record, rows_blockwise, run_steps, unsupported
from ._flip import acceptance, final_energies

__all__ = ["dula"]

SUPPORTED = ("RBM", "Ising (dense or lattice)", "any EnergyModel with domain 'binary' or 'spin'")


@jit
def _propose(xc, g, spin, inv2a, rng_row, xn):
    r"""Draw ``xn`` from the factorised proposal at ``xc`` (gradient ``g``); return ``log q(xn | xc)``.

    Unit ``i`` moves by ``delta_i`` (its only possible move) with logit
    ``l_i = -g_i delta_i / 2 - delta_i^2 / (2 alpha)``: probability
    ``sigmoid(l_i)``, decided as ``u e^{-l} < 1 - u`` (no overflow).
    """
    lq = 0.0
    for i in range(xc.shape[0]):
        delta = nb_flip_value(xc[i], spin) - xc[i]
        lg = -0.5 * g[i] * delta - delta * delta * inv2a
        u = nb_uniform(rng_row)
        if nb_bernoulli_logit(u, lg):
            xn[i] = xc[i] + delta
            lq += nb_log_sigmoid(lg)
        else:
            xn[i] = xc[i]
            lq += nb_log_sigmoid(-lg)
    return lq


@jit
def _log_q(xfrom, g, xto, spin, inv2a):
    """``log q(xto | xfrom)`` of the factorised proposal with gradient ``g`` at ``xfrom``."""
    lq = 0.0
    for i in range(xfrom.shape[0]):
        delta = nb_flip_value(xfrom[i], spin) - xfrom[i]
        lg = -0.5 * g[i] * delta - delta * delta * inv2a
        if xto[i] != xfrom[i]:
            lq += nb_log_sigmoid(lg)
        else:
            lq += nb_log_sigmoid(-lg)
    return lq


@pjit
def dula_run(kind, ip, fp, n_work, spin, x, t0, n_steps, inv2a, adjust, thin, rng, trace, accepted):
    """DULA / DMALA on any binary-family model through ``kernels.bin_energy_grad``. No input checks.

    Energy and gradient are recomputed from the state at every step (no
    running sums), so a run split into chunks (``t0``: steps already done;
    ``accepted`` accumulates) gives the bits of one call.
    """
    n, d = x.shape
    for c in prange(n):
        xc = x[c]
        s = rng[c]
        work = np.empty(n_work)
        g = np.empty(d)
        gn = np.empty(d)
        xn = np.empty(d)
        e = K.bin_energy_grad(kind, ip, fp, xc, work, g)
        n_acc = 0
        for t in range(t0, t0 + n_steps):
            lq_fwd = _propose(xc, g, spin, inv2a, s, xn)
            en = K.bin_energy_grad(kind, ip, fp, xn, work, gn)
            ok = True
            if adjust:
                log_u = math.log(nb_uniform(s))
                ok = log_u < e - en + _log_q(xn, gn, xc, spin, inv2a) - lq_fwd
            if ok:
                n_acc += 1
                for i in range(d):
                    xc[i] = xn[i]
                g, gn = gn, g
                e = en
            record(trace, c, xc, t, thin)
        accepted[c] += n_acc


def _np_log_sigmoid(z):
    return -np.logaddexp(0.0, -z)


def _generic_run(model, x, t0, n_steps, inv2a, adjust, thin, rng, trace, accepted):
    """DULA / DMALA through ``model.energy`` / ``model.grad_x`` (same draws as the kernels).

    Steps ``t0 .. t0 + n_steps - 1``; energy and gradient recomputed from
    ``x`` at the start (a pure function of it), so chunks give one call's bits.
    """
    spin = model.domain == "spin"
    fill = -1.0 if spin else 0.0

    def state(z):
        e = np.asarray(rows_blockwise(model.energy, z, fill=fill), dtype=np.float64)
        g = np.asarray(rows_blockwise(model.grad_x, z, fill=fill), dtype=np.float64)
        return e.reshape(-1), g.reshape(z.shape)

    def logits(z, g):
        delta = (-2.0 * z) if spin else (1.0 - 2.0 * z)
        return delta, -0.5 * g * delta - delta * delta * inv2a

    n, d = x.shape
    e, g = state(x)
    u = np.empty((n, d))
    for t in range(n_steps):
        delta, lg = logits(x, g)
        for i in range(d):
            u[:, i] = np_uniforms(rng)
        with np.errstate(over="ignore"):
            move = u * np.exp(-lg) < 1.0 - u
        xn = np.where(move, x + delta, x)
        en, gn = state(xn)
        if adjust:
            log_u = np.log(np_uniforms(rng))
            lq_fwd = np.where(move, _np_log_sigmoid(lg), _np_log_sigmoid(-lg)).sum(axis=1)
            _, lgn = logits(xn, gn)
            lq_rev = np.where(move, _np_log_sigmoid(lgn), _np_log_sigmoid(-lgn)).sum(axis=1)
            with np.errstate(invalid="ignore"):
                ok = log_u < e - en + lq_rev - lq_fwd
        else:
            ok = np.ones(n, dtype=bool)
        x[ok] = xn[ok]
        g[ok] = gn[ok]
        e[ok] = en[ok]
        accepted += ok
        if thin > 0 and (t0 + t + 1) % thin == 0:
            trace[(t0 + t + 1) // thin - 1] = x


def dula(model, x0, n_steps, step_size, seed, adjust=False, thin=0):
    r"""Discrete Langevin sampler (DULA), or its Metropolis-adjusted form DMALA.

    Parameters
    ----------
    model : RBM, Ising or binary EnergyModel
        RBM: the chain runs on the visible units with the free energy
        :math:`F(v)` as energy. Ising: dense or ``Ising.lattice``, either
        domain. Any other ``EnergyModel`` with ``domain`` ``"binary"`` or
        ``"spin"`` runs through its ``energy`` and ``grad_x`` (slower).
    x0 : array_like of shape (n_chains, d) or (d,)
        Initial states in the model's domain (never modified).
    n_steps : int
        Number of parallel proposals per chain (>= 0).
    step_size : float
        :math:`\alpha > 0`. Small values move few units per step (and make
        DULA's stationary bias small); large values move many.
    seed : int, numpy.random.SeedSequence or numpy.random.Generator
        Chain ``c`` draws only from its own stream (docs/conventions.md).
    adjust : bool, default False
        ``False``: DULA, every proposal is taken (biased at finite
        ``step_size``). ``True``: DMALA, exact Metropolis-Hastings test.
    thin : int, default 0
        Save the states after steps ``thin, 2 thin, ...`` (0: no trace).

    Returns
    -------
    SampleResult
        ``acceptance_rate``: ``None`` for DULA; for DMALA the fraction of
        accepted proposals per chain (NaN when ``n_steps == 0``).
        ``energies``: ``model.energy`` of the final states.

    Raises
    ------
    TypeError
        For a model that is not a binary ``EnergyModel`` (the message lists
        the supported ones), a non-bool ``adjust`` or a wrongly typed
        number.
    ValueError
        For ``step_size <= 0`` (or NaN/inf), ``n_steps < 0``, ``thin < 0``,
        or ``x0`` of the wrong shape or outside the domain.

    Notes
    -----
    With :math:`g = \nabla_x E(x)` of the continuous extension of the
    energy (:math:`p \propto e^{-E}`), the paper's proposal
    :math:`q(x'|x) \propto \exp(\tfrac12 \nabla U(x)^\top (x'-x) -
    \lVert x'-x\rVert^2/(2\alpha))` with :math:`U = -E` factorises over
    units. Unit :math:`i` can only move to its other value, by
    :math:`\delta_i = \bar x_i - x_i` (:math:`1 - 2x_i` for {0,1},
    :math:`-2x_i` for spins), and does so independently with probability

    .. math::

        P(x'_i \ne x_i \mid x) = \sigma(\ell_i), \qquad
        \ell_i = -\tfrac12 g_i \delta_i - \frac{\delta_i^2}{2\alpha}.

    One step draws every unit at once. DULA takes the proposal; DMALA
    accepts :math:`x'` iff

    .. math::

        \log u < E(x) - E(x') + \log q(x | x') - \log q(x' | x),

    with the reverse proposal built from :math:`\nabla E(x')` at
    :math:`x'` (same units flipped back), which leaves :math:`p` invariant
    exactly. Log-probabilities use :math:`\log\sigma(z) =
    -\operatorname{softplus}(-z)`, finite at any weight scale. A step costs
    one energy-and-gradient evaluation: ``O(nnz(J))`` for Ising, ``O(V H)``
    for an RBM. For Ising the first-order term is the exact flip energy
    change, so DULA's bias vanishes as :math:`\alpha \to 0`; for an RBM it
    does not in general. ``step_size`` advice and costs: docs/dula-and-hmc.md.

    Randomness: per step, chain ``c`` draws one uniform per unit (unit
    order), then DMALA one more for the accept test, from its own row
    (stream ``STREAM_SAMPLE``): bit-identical for any number of threads and
    of chains.

    References
    ----------
    Zhang, R., Liu, X. & Liu, Q. (2022). A Langevin-like sampler for
    discrete distributions. ICML.

    Examples
    --------
    >>> import numpy as np
    >>> from ebm_ref.energies import Ising
    >>> from ebm_ref.samplers import dula
    >>> m = Ising.random(8, 0.5, seed=0)
    >>> res = dula(m, np.ones((100, 8)), 20, 0.3, seed=0, adjust=True)
    >>> res.x.shape, res.acceptance_rate.shape
    ((100, 8), (100,))
    """
    if not isinstance(model, EnergyModel) or getattr(model, "domain", None) not in ("binary", "spin"):
        raise unsupported("dula", model, SUPPORTED)
    alpha = check_step_size(step_size)
    if not isinstance(adjust, (bool, np.bool_)):
        raise TypeError(f"`adjust` must be a bool; got {type(adjust).__name__}.")
    adjust = bool(adjust)
    prep = prepare(model, x0, n_steps, seed, thin)
    inv2a = 0.5 / alpha
    accepted = np.zeros(prep.x.shape[0], dtype=np.int64)
    form = model.numba_form()
    if form is not None and form.kind in K.BINARY_KINDS:
        def chunk(t0, count):
            dula_run(form.kind, form.ip, form.fp, form.n_work, model.domain == "spin", prep.x, t0, count,
                     inv2a, adjust, prep.thin, prep.rng, prep.trace, accepted)
    else:
        def chunk(t0, count):
            _generic_run(model, prep.x, t0, count, inv2a, adjust, prep.thin, prep.rng, prep.trace, accepted)
    run_steps(prep, chunk, "dula")
    rate = acceptance(accepted, prep.n_steps) if adjust else None
    return finish(prep, final_energies(model, prep.x), rate)
