r"""Site-by-site Gibbs sweeps and random-walk MH for every binary model.

Layout (QuantEcon's wrapper -> kernel split): the public functions validate
and allocate through ``_common.prepare``; the ``@pjit`` drivers run
``prange`` over chains, chain ``c`` reading and writing only row ``c`` of
``x``, ``rng`` and ``trace``. The drivers call the binary family of
``energies.kernels`` with the model's ``NumbaForm`` and know no model.
Homogeneous lattices have faster kernels with the same decisions
(``_lattice``); the flip-proposal Metropolis driver is in ``_flip``.

Random numbers consumed per step (fixed, whatever is accepted):

* Gibbs sweep: one uniform per site, in sweep order;
* binary random-walk MH: one uniform for the unit, one for the accept test.
"""

from __future__ import annotations

from numba import prange

from .._jit import pjit
from .._numerics import nb_bernoulli_logit
from .._rng import nb_uniform
from ..energies import kernels as K
from ._common import BLOCK, record, rows_blockwise
from ._flip import PROPOSE_UNIFORM, chain_cache, run_flip_mh

__all__ = ["rwmh_binary", "site_gibbs_run", "rows_blockwise", "BLOCK"]

SUPPORTED = ["RBM", "Ising", "FVBM", "any binary model with a Numba form"]


@pjit
def site_gibbs_run(kind, ip, fp, down, order, x, cache, t0, n_steps, thin, rng, trace):
    r"""``n_steps`` heat-bath sweeps visiting units in ``order``. No input checks.

    Unit ``i`` is redrawn from its exact conditional, ``p(up | rest) =
    sigmoid(bin_cond_logit)``, decided as ``u e^{-a} < 1 - u``; its other
    value is ``down`` (0, or -1 for spins). For a model whose fresh flip
    change reads its cache (``bin_fresh_uses_cache``), a change goes
    through ``bin_apply_flip``, which keeps row ``c`` of ``cache`` (filled
    from ``x`` when ``t0 == 0``) current; otherwise the new value is
    stored whether it changed or not and the cache is not touched.
    ``t0``: sweeps already done (the trace index of a chunked run).
    """
    n = x.shape[0]
    live = K.bin_fresh_uses_cache(kind)
    for c in prange(n):
        xc = x[c]
        s = rng[c]
        f = chain_cache(kind, ip, fp, x, cache, c, t0, live)
        for t in range(t0, t0 + n_steps):
            for o in range(order.shape[0]):
                i = order[o]
                a = K.bin_cond_logit(kind, ip, fp, xc, f, i)
                new = 1.0 if nb_bernoulli_logit(nb_uniform(s), a) else down
                if live:
                    if new != xc[i]:
                        K.bin_apply_flip(kind, ip, fp, xc, f, i)
                else:
                    # unconditional store: a branch on "changed" is taken about
                    # half the time at random and mispredicted as often
                    # (measured: dense Ising d=100 sweeps 88k -> 106k/s, 1 thread)
                    xc[i] = new
            record(trace, c, xc, t, thin)
        cache[c] = f


def rwmh_binary(model, x0, n_steps, seed, thin=0):
    r"""Random-walk Metropolis-Hastings with a uniform single-unit flip.

    Parameters
    ----------
    model : RBM, Ising, FVBM or any binary model with a Numba form
        For an RBM the chain runs on the visible units with the free energy.
    x0 : ndarray of shape (n_chains, d) or (d,)
        Initial states in the model's domain (never modified).
    n_steps : int
        Number of proposals per chain (>= 0).
    seed : int, numpy.random.SeedSequence or numpy.random.Generator
        Chain ``c`` uses its own stream (see ``docs/conventions.md``).
    thin : int, default 0
        Save the state after every ``thin`` steps (0: no trace).

    Returns
    -------
    SampleResult
        ``acceptance_rate`` is the fraction of accepted flips (NaN when
        ``n_steps == 0``).

    Raises
    ------
    TypeError
        For a model without a binary-family Numba form (``numba_form()``).
    ValueError
        For ``x0`` of the wrong shape or outside the domain, ``n_steps < 0``.

    Notes
    -----
    One step proposes flipping a unit ``i`` drawn uniformly from ``{0, ...,
    d-1}`` (a symmetric proposal) and accepts with

    .. math::

        \log u < \min(0, -[E(x^{(i)}) - E(x)]),

    with the exact energy change from the model's kernels, e.g. Ising :math:`-(x'_i - x_i) f_i`,
    :math:`f = Jx + h`; RBM :math:`-b_{v,i}(v'_i - v_i) - \sum_j
    [\operatorname{softplus}(a_j + (v'_i - v_i) W_{ij}) -
    \operatorname{softplus}(a_j)]`, :math:`a = b_h + W^\top v`.

    References
    ----------
    Metropolis, N. et al. (1953). Equation of state calculations by fast
    computing machines. J. Chem. Phys. 21(6).
    """
    return run_flip_mh(model, x0, n_steps, seed, thin, PROPOSE_UNIFORM, "rwmh (binary)", SUPPORTED)

