r"""Hamiltonian Monte Carlo (Duane et al. 1987; Neal 2011) for continuous energies.

The transition is ``MOVE_HMC`` of the continuous Metropolis driver
(``_continuous.metropolis_run``, leapfrog in ``_continuous.leapfrog_tile``)
for models with a Numba form, and of its NumPy twin (``_generic``) for the
others; this module validates the arguments.

Random numbers per step and chain: ``d`` normals (the momentum, unit order)
then one uniform (the accept test).
"""

from __future__ import annotations

import numpy as np

from .._validation import check_int
from . import _continuous as _k
from ._common import check_step_size, finish, prepare

__all__ = ["hmc"]


def _check_inverse_mass(inverse_mass, d):
    if inverse_mass is None:
        return np.ones(d)
    try:
        m = np.array(inverse_mass, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"`inverse_mass` must be None or an array of {d} positive numbers; "
            f"got {type(inverse_mass).__name__}."
        ) from None
    if m.shape != (d,):
        raise ValueError(f"`inverse_mass` must have shape ({d},) (the diagonal); got shape {m.shape}.")
    if not np.all(np.isfinite(m)) or np.any(m <= 0):
        raise ValueError(f"`inverse_mass` must be finite and > 0 entrywise; got {m!r}.")
    return np.ascontiguousarray(m)


def hmc(model, x0, n_steps, step_size, n_leapfrog, seed, thin=0, inverse_mass=None):
    r"""Hamiltonian Monte Carlo with a leapfrog integrator and a diagonal mass matrix.

    Parameters
    ----------
    model : EnergyModel
        A model with ``domain == "real"``. ``StudentT``, ``GaussianMixture``,
        ``GRBM`` (its free energy :math:`F(v)`) and ``MLPEnergy`` run in
        Numba kernels; any other real-domain model (``LatentEnergy``, ...)
        runs through its ``energy`` / ``grad_x`` on blocks of 128 chains.
    x0 : array_like of shape (n_chains, d) or (d,)
        Initial states, one row per chain; not modified.
    n_steps : int
        Number of HMC transitions per chain, ``>= 0``.
    step_size : float
        Leapfrog step :math:`\varepsilon > 0`.
    n_leapfrog : int
        Leapfrog steps per transition :math:`L \ge 1`.
    seed : int, numpy.random.SeedSequence or numpy.random.Generator
        Chain ``c`` uses its own stream derived from ``(seed, c)``
        (docs/conventions.md).
    thin : int, default 0
        ``> 0`` stores the states after transitions ``thin, 2 thin, ...``.
    inverse_mass : array_like of shape (d,), optional
        Diagonal of :math:`M^{-1}` (default: ones, the identity mass).

    Returns
    -------
    SampleResult
        ``acceptance_rate`` (accepted / ``n_steps`` per chain, NaN when
        ``n_steps == 0``), ``trace`` and ``energies`` (``E`` of the final
        states).

    Raises
    ------
    TypeError
        If ``model`` is not a real-domain ``EnergyModel`` (the message lists
        the supported ones) or an argument has the wrong type.
    ValueError
        For ``step_size <= 0``, ``n_leapfrog < 1``, ``n_steps < 0``,
        ``thin < 0``, an ``inverse_mass`` of the wrong shape or not
        positive, or an ``x0`` of the wrong shape or with NaN/inf.

    Notes
    -----
    With :math:`H(x, p) = E(x) + \tfrac12 p^\top M^{-1} p`, one transition
    draws :math:`p \sim \mathcal N(0, M)`, runs :math:`L` leapfrog steps

    .. math::

        p \leftarrow p - \tfrac{\varepsilon}{2}\nabla E(x),\quad
        x \leftarrow x + \varepsilon M^{-1} p,\quad
        p \leftarrow p - \tfrac{\varepsilon}{2}\nabla E(x),

    and accepts the end point :math:`(x', p')` iff :math:`\log u <
    H(x, p) - H(x', p')`. The leapfrog map is reversible (after a momentum
    flip) and volume-preserving, so this leaves :math:`p(x) \propto e^{-E}`
    invariant; the momentum flip itself is not applied since the momentum
    is redrawn at the next transition. An end point with :math:`E = +\infty`
    or a NaN Hamiltonian is rejected. A transition costs :math:`L`
    energy-and-gradient evaluations (the gradient at the current state is
    carried over). Step-size advice: docs/dula-and-hmc.md.

    Randomness: per transition, chain ``c`` draws ``d`` normals then one
    uniform from its own row of the per-chain streams; bit-identical for any
    number of threads and of chains (on the generic path this also requires
    the model's batch arithmetic to be row-wise).

    References
    ----------
    Duane, S., Kennedy, A. D., Pendleton, B. J. & Roweth, D. (1987). Hybrid
    Monte Carlo. Physics Letters B 195(2), 216-222.
    Neal, R. M. (2011). MCMC using Hamiltonian dynamics. In Handbook of
    Markov Chain Monte Carlo, chapter 5.

    Examples
    --------
    >>> import numpy as np
    >>> from ebm_ref.energies import StudentT
    >>> from ebm_ref.samplers import hmc
    >>> m = StudentT(np.zeros(2), np.zeros(2), np.log(np.full(2, 5.0)))
    >>> res = hmc(m, np.zeros((100, 2)), 20, 0.3, 5, seed=0)
    >>> res.x.shape, res.acceptance_rate.shape
    ((100, 2), (100,))
    """
    _k.check_real_model("hmc", model)
    eps = check_step_size(step_size)
    n_leap = check_int(n_leapfrog, "n_leapfrog", minimum=1)
    prep = prepare(model, x0, n_steps, seed, thin=thin)
    invm = _check_inverse_mass(inverse_mass, prep.x.shape[1])
    accepted, energies = _k.run(model, _k.MOVE_HMC, prep, eps, n_leap=n_leap, invm=invm)
    return finish(prep, energies, _k.acceptance_rate(accepted, prep.n_steps))
