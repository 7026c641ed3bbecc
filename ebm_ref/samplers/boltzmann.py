r"""Auxiliary-variable (Gaussian-integral) Gibbs sampler for ``LowRankBoltzmann``."""

from __future__ import annotations

import numpy as np
from numba import prange

from .._jit import pjit
from .._numerics import nb_sigmoid
from .._rng import nb_uniform
from ..energies.boltzmann import nb_draw_auxiliary, nb_energy_rows
from ._common import finish, prepare, record, run_steps, unsupported

__all__ = ["boltzmann_auxiliary"]


def boltzmann_auxiliary(model, x0, n_steps, seed, thin=0, shift=None):
    r"""Exact two-block Gibbs sampler of :math:`(r, z)` for a ``LowRankBoltzmann``.

    Parameters
    ----------
    model : LowRankBoltzmann
        (A binary ``Ising`` model through ``LowRankBoltzmann.from_ising``.)
    x0 : ndarray of shape (n_chains, m) or (m,)
        Initial codes in {0,1}. Never modified.
    n_steps : int
        Number of steps (>= 0); one step draws :math:`r \mid z` then
        :math:`z \mid r`.
    seed : int, numpy.random.SeedSequence or numpy.random.Generator
        Chain ``c`` draws only from its own stream, so results are
        bit-identical at any thread count and for any prefix of the chains.
    thin : int, default 0
        Save the codes after steps ``thin, 2 thin, ...`` (0: no trace).
    shift : float or None, default None
        The diagonal shift :math:`c` of :meth:`LowRankBoltzmann.auxiliary`
        (default: the smallest admissible one, ``model.min_shift()``).

    Returns
    -------
    SampleResult
        ``x`` the final codes, ``acceptance_rate`` ``None`` (every draw is
        exact), ``energies`` :math:`E(z)` of the final codes. The auxiliary
        ``r`` is not returned.

    Raises
    ------
    TypeError
        For a model other than ``LowRankBoltzmann``.
    ValueError
        For ``x0`` of the wrong shape or outside {0,1}, ``n_steps < 0``,
        ``thin < 0``, or a ``shift`` below ``model.min_shift()``.

    Notes
    -----
    With :math:`\Sigma_c = \operatorname{diag}(d + c) + UU^\top` and
    :math:`a = \mu - c/2`, the joint density
    :math:`p(z, r) \propto \exp(z^\top r)\, N(r; a, \Sigma_c)` has the
    :math:`z`-marginal :math:`b(z)` (docs/boltzmann-posterior.md) and the
    exact conditionals

    .. math::

        r \mid z \sim N(a + \Sigma_c z, \Sigma_c), \qquad
        z \mid r \sim \prod_i \operatorname{Bernoulli}(\sigma(r_i)),

    the first because tilting a Gaussian by :math:`e^{z^\top r}` moves its
    mean by :math:`\Sigma_c z`. :math:`r` is drawn as
    :math:`a + (d+c)\odot z + \sqrt{d+c}\odot\varepsilon_1 + U(U^\top z +
    \varepsilon_2)`, O(mK) per step. Every transition probability of the
    :math:`z`-chain is positive, so it is ergodic with stationary law
    :math:`b`. Random numbers per step and chain, in this order: ``m``
    normals (:math:`\varepsilon_1`), ``K`` normals (:math:`\varepsilon_2`),
    ``m`` uniforms (:math:`z_i = [u_i < \sigma(r_i)]`).

    References
    ----------
    Zheng, L. & Su, Q. (2020). Generative semantic hashing enhanced via
    Boltzmann machines. ACL 2020.
    Zhang, Y., Sutton, C., Storkey, A. & Ghahramani, Z. (2012).
    Continuous relaxations for discrete Hamiltonian Monte Carlo. NeurIPS
    2012 (the same Gaussian-integral trick).
    """
    from ..energies.boltzmann import LowRankBoltzmann

    if not isinstance(model, LowRankBoltzmann):
        raise unsupported("boltzmann_auxiliary", model, ["LowRankBoltzmann"])
    aux = model.auxiliary(shift)
    prep = prepare(model, x0, n_steps, seed, thin)
    mean, diag, U = np.ascontiguousarray(aux.mean), np.ascontiguousarray(aux.diag), np.ascontiguousarray(aux.U)
    sqrt_diag = np.sqrt(aux.diag)
    run_steps(prep, lambda t0, count: _aux_gibbs_run(
        mean, diag, sqrt_diag, U, prep.x, prep.rng, t0, count, prep.thin, prep.trace), "boltzmann_auxiliary")
    energies = np.empty(prep.x.shape[0])
    p = model.params
    nb_energy_rows(p["d_diag"], np.ascontiguousarray(p["U"]), p["mu"], prep.x, energies)
    return finish(prep, energies)


@pjit
def _aux_gibbs_run(a, s, sqrt_s, U, x, rng, t0, n_steps, thin, trace):  # pragma: no cover - jitted
    """Run steps ``t0 .. t0 + n_steps - 1`` of every chain in place. No input checks.

    ``a`` (m,), ``s`` (m,) >= 0, ``sqrt_s = sqrt(s)``, ``U`` (m, K); chain
    ``c`` reads and writes only ``x[c]``, ``rng[c]``, ``trace[:, c]``.
    """
    n, m = x.shape
    k = U.shape[1]
    for c in prange(n):
        st = rng[c]
        z = x[c]
        t = np.empty(k)
        e1 = np.empty(m)
        r = np.empty(m)
        for step in range(t0, t0 + n_steps):
            nb_draw_auxiliary(a, s, sqrt_s, U, z, st, e1, t, r)
            for i in range(m):
                u = nb_uniform(st)
                z[i] = 1.0 if u < nb_sigmoid(r[i]) else 0.0
            record(trace, c, z, step, thin)

