r"""Gibbs-Langevin sampling for Gaussian-Bernoulli RBMs (Liao et al. 2022)."""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from .._jit import OFF, pjit
from .._numerics import nb_sigmoid
from .._rng import nb_normal, nb_uniform
from ..energies.grbm import nb_energy_grad
from ._common import check_step_size, finish, prepare, run_steps, trace_slot, unsupported
from ._continuous import acceptance_rate

__all__ = ["gibbs_langevin"]

SUPPORTED = ("GRBM",)


@pjit
def gibbs_langevin_run(ip, fp, x, t0, n_steps, eta, adjust, rng, thin, trace, accepted, energies):
    """Gibbs-Langevin steps ``t0 .. t0 + n_steps - 1`` for a packed GRBM (``GRBM.numba_form`` layout) on every chain.

    One step: ``h ~ p(h | v)`` exactly, then one Langevin proposal on ``v``
    under ``E(v, h)`` with ``h`` fixed, MH-corrected if ``adjust``. ``h``
    is redrawn at every step, so nothing but ``v`` and the RNG row carries
    over between chunks; ``accepted`` is added to.
    """
    n, V = x.shape
    H = ip[1]
    o_mu = V * H
    o_b = o_mu + V
    o_iv = o_b + H
    noise = math.sqrt(2.0 * eta)
    inv4eta = 1.0 / (4.0 * eta)
    for c in prange(n):
        s = rng[c]
        v = x[c]
        a = np.empty(H)
        h = np.empty(H)
        m = np.empty(V)
        vp = np.empty(V)
        acc = 0
        for t in range(t0, t0 + n_steps):
            # h | v: a = b_h + W^T (v / sigma^2)
            for j in range(H):
                a[j] = fp[o_b + j]
            for i in range(V):
                y = v[i] * fp[o_iv + i]
                row = i * H
                for j in range(H):
                    a[j] += y * fp[row + j]
            for j in range(H):
                h[j] = 1.0 if nb_uniform(s) < nb_sigmoid(a[j]) else 0.0
            # grad_v E(v, h) = (v - m) / sigma^2 with m = mu + W h
            for i in range(V):
                row = i * H
                t2 = fp[o_mu + i]
                for j in range(H):
                    t2 += fp[row + j] * h[j]
                m[i] = t2
            for i in range(V):
                vp[i] = v[i] - eta * (v[i] - m[i]) * fp[o_iv + i] + noise * nb_normal(s)
            if adjust:
                log_u = math.log(nb_uniform(s))
                # E(v', h) - E(v, h): only 1/2 sum (v - m)^2 / sigma^2 depends on v
                de = 0.0
                fwd = 0.0
                bwd = 0.0
                for i in range(V):
                    iv = fp[o_iv + i]
                    r_new = vp[i] - m[i]
                    r_old = v[i] - m[i]
                    de += 0.5 * (r_new * r_new - r_old * r_old) * iv
                    f = vp[i] - v[i] + eta * r_old * iv
                    b = v[i] - vp[i] + eta * r_new * iv
                    fwd += f * f
                    bwd += b * b
                log_alpha = -de + (fwd - bwd) * inv4eta
                if log_u < log_alpha:
                    acc += 1
                    for i in range(V):
                        v[i] = vp[i]
            else:
                for i in range(V):
                    v[i] = vp[i]
            k = trace_slot(t, thin)
            if k >= 0:
                for i in range(V):
                    trace[k, c, i] = v[i]
        accepted[c] += acc
        energies[c] = nb_energy_grad(ip, fp, v, vp, OFF, a)


def gibbs_langevin(grbm, x0, n_steps, step_size, seed, adjust=False, thin=0):
    r"""Gibbs-Langevin sampler of a GRBM's visible units.

    Parameters
    ----------
    grbm : GRBM
        The model (docs/models.md parameterisation: ``W``, ``mu``, ``b_h``,
        ``log_var``).
    x0 : array_like of shape (n_chains, V) or (V,)
        Initial visible states; not modified.
    n_steps : int
        Number of steps (each: one exact ``h | v`` draw and one Langevin
        proposal on ``v``), ``>= 0``.
    step_size : float
        :math:`\eta > 0`.
    seed : int, numpy.random.SeedSequence or numpy.random.Generator
        Chain ``c`` uses its own stream derived from ``(seed, c)``.
    adjust : bool, default False
        Add the Metropolis-Hastings correction of the Langevin move.
    thin : int, default 0
        ``> 0`` stores the visible states after steps ``thin, 2 thin, ...``.

    Returns
    -------
    SampleResult
        ``x`` (visible states, shape of ``x0``), ``acceptance_rate``
        (``(n_chains,)`` with ``adjust=True``, else ``None``), ``trace`` and
        ``energies`` (free energies :math:`F(v)` of the final states).

    Raises
    ------
    TypeError
        If ``grbm`` is not a ``GRBM``.
    ValueError
        For ``step_size <= 0``, ``n_steps < 0``, ``thin < 0``, or an ``x0``
        of the wrong shape or with NaN/inf.

    Notes
    -----
    With :math:`E(v, h) = \tfrac12\lVert (v-\mu)/\sigma\rVert^2 -
    (v/\sigma^2)^\top W h - b_h^\top h` one step is

    1. :math:`h_j \sim \mathrm{Bernoulli}(\sigma(b_{h,j} + (W^\top
       (v/\sigma^2))_j))`, an exact draw from :math:`p(h | v)`;
    2. with :math:`h` fixed, a Langevin proposal under :math:`E(\cdot, h)`,
       whose gradient is :math:`\nabla_v E(v, h) = (v - m)/\sigma^2`,
       :math:`m = \mu + W h`:

       .. math::

           v' = v - \eta\,(v - m)/\sigma^2 + \sqrt{2\eta}\,\varepsilon;

    3. ``adjust=True``: accept :math:`v'` iff :math:`\log u < \min(0,
       \log\alpha)` with

       .. math::

           \log\alpha = E(v, h) - E(v', h)
             + \frac{\lVert v' - v + \eta\nabla_v E(v,h)\rVert^2
                     - \lVert v - v' + \eta\nabla_v E(v',h)\rVert^2}{4\eta},

       where :math:`E(v', h) - E(v, h) = \tfrac12\sum_i ((v'_i-m_i)^2 -
       (v_i-m_i)^2)/\sigma_i^2` (the terms in :math:`h` alone cancel).

    What each move leaves invariant: step 1 is a Gibbs update, so it keeps
    the joint :math:`p(v, h) \propto e^{-E(v,h)}`. With ``adjust=True``
    step 2-3 is a Metropolis-Hastings kernel whose target is the
    conditional :math:`p(v | h) = \mathcal N(m, \mathrm{diag}\,\sigma^2)`;
    it keeps :math:`p(v|h)` and therefore the joint, so the composition
    keeps :math:`p(v, h)` and its visible marginal :math:`p(v) \propto
    e^{-F(v)}`. Without ``adjust`` step 2 keeps
    :math:`\mathcal N(m, \mathrm{diag}\,\sigma_i^2 / (1 - \eta/(2\sigma_i^2)))`
    instead of :math:`p(v|h)` (stable for :math:`\eta < 2\min_i\sigma_i^2`),
    so the chain is biased by :math:`O(\eta)`; for :math:`W = 0` its visible
    law is exactly that Gaussian around :math:`\mu`.

    ``acceptance_rate`` is accepted / ``n_steps`` (NaN when ``n_steps = 0``).
    Per step chain ``c`` draws ``H`` uniforms (hidden units in order), ``V``
    normals and, with ``adjust``, one uniform, all from its own RNG row.

    References
    ----------
    Liao, R., Kornblith, S., Ren, M., Fleet, D. J. and Hinton, G. (2022).
    Gaussian-Bernoulli RBMs without tears. arXiv:2210.10318.

    Examples
    --------
    >>> import numpy as np
    >>> from ebm_ref.energies import GRBM
    >>> from ebm_ref.samplers import gibbs_langevin
    >>> m = GRBM(np.ones((2, 3)) * 0.5, np.zeros(2), np.zeros(3), np.zeros(2))
    >>> res = gibbs_langevin(m, np.zeros((8, 2)), 20, 0.1, seed=0, adjust=True)
    >>> res.x.shape
    (8, 2)
    """
    from ..energies import GRBM

    if not isinstance(grbm, GRBM):
        raise unsupported("gibbs_langevin", grbm, SUPPORTED)
    eta = check_step_size(step_size)
    if not isinstance(adjust, (bool, np.bool_)):
        raise TypeError(f"`adjust` must be a bool; got {type(adjust).__name__}.")
    prep = prepare(grbm, x0, n_steps, seed, thin=thin)
    n = prep.x.shape[0]
    _, ip, fp, _ = grbm.numba_form()
    accepted = np.zeros(n, dtype=np.int64)
    energies = np.empty(n)
    adjust = bool(adjust)
    run_steps(prep, lambda t0, count: gibbs_langevin_run(
        ip, fp, prep.x, t0, count, eta, adjust, prep.rng, prep.thin, prep.trace, accepted, energies,
    ), "gibbs_langevin")
    rate = acceptance_rate(accepted, prep.n_steps) if adjust else None
    return finish(prep, energies, rate)
