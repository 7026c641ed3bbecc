r"""Unadjusted Langevin algorithm (ULA) and Metropolis-adjusted Langevin (MALA)."""

from __future__ import annotations

import numpy as np

from . import _continuous as _k
from ._common import check_step_size, finish, prepare

__all__ = ["langevin"]


def langevin(model, x0, n_steps, step_size, seed, adjust=False, thin=0):
    r"""Langevin dynamics on a continuous energy: ULA, or MALA with ``adjust=True``.

    Parameters
    ----------
    model : EnergyModel
        A model with ``domain == "real"``. ``StudentT``, ``GaussianMixture``,
        ``GRBM`` (its free energy :math:`F(v)`) and ``MLPEnergy`` run in
        Numba kernels; any other real-domain ``EnergyModel`` runs through
        its ``energy``/``grad_x`` methods on the whole batch (slower).
    x0 : array_like of shape (n_chains, d) or (d,)
        Initial states, one row per chain; not modified.
    n_steps : int
        Number of proposals per chain, ``>= 0``.
    step_size : float
        :math:`\eta > 0`.
    seed : int, numpy.random.SeedSequence or numpy.random.Generator
        Chain ``c`` uses its own stream derived from ``(seed, c)`` (docs/conventions.md).
    adjust : bool, default False
        ``False``: ULA (every proposal is taken). ``True``: MALA.
    thin : int, default 0
        ``> 0`` stores the states after steps ``thin, 2 thin, ...``.

    Returns
    -------
    SampleResult
        ``x`` (shape of ``x0``), ``acceptance_rate`` (``(n_chains,)`` for
        MALA, ``None`` for ULA), ``trace`` (``(n_steps // thin, n_chains,
        d)`` or ``None``) and ``energies`` (``E`` of the final states).

    Raises
    ------
    TypeError
        If ``model`` is not a real-domain ``EnergyModel`` (the message lists
        the supported models), or an argument has the wrong type.
    ValueError
        For ``step_size <= 0``, ``n_steps < 0``, ``thin < 0``, or an ``x0``
        of the wrong shape or with NaN/inf.

    Notes
    -----
    One step proposes

    .. math::

        x' = x - \eta \nabla E(x) + \sqrt{2\eta}\,\varepsilon, \qquad
        \varepsilon \sim \mathcal N(0, I),

    i.e. :math:`q(x' | x) = \mathcal N(x'; x - \eta\nabla E(x), 2\eta I)`.
    ULA takes :math:`x'` unconditionally; its stationary law is biased at
    finite :math:`\eta` (on :math:`\mathcal N(0, s^2)` its variance is
    :math:`s^2 / (1 - \eta / (2 s^2))`). MALA accepts :math:`x'` iff
    :math:`\log u < \min(0, \log\alpha)`, :math:`u \sim U(0, 1)`, with

    .. math::

        \log\alpha = E(x) - E(x')
            + \frac{\lVert x' - x + \eta\nabla E(x)\rVert^2
                    - \lVert x - x' + \eta\nabla E(x')\rVert^2}{4\eta},

    the exact Metropolis-Hastings ratio including the proposal ratio
    :math:`\log q(x|x') - \log q(x'|x)`, which leaves :math:`p \propto
    e^{-E}` invariant. A proposal with :math:`E(x') = +\infty` (or a
    non-finite state) is rejected. Energy and gradient of the current state
    are carried over, so a step costs one energy-and-gradient evaluation.

    ``acceptance_rate`` is accepted proposals / ``n_steps`` per chain; with
    ``n_steps = 0`` it is NaN (no proposal was made), as for the binary
    samplers.

    Randomness: per step, chain ``c`` draws ``d`` normals (Box-Muller, two
    uniforms each) and, for MALA, one uniform, all from its own row of
    :func:`ebm_ref._rng.chain_states` (stream ``STREAM_SAMPLE``). Results are
    bit-identical for any number of Numba threads and chain ``c`` does not
    depend on the number of chains (on the Numba path; on the generic path
    this also requires the model's batch arithmetic to be row-wise).

    References
    ----------
    Roberts, G. O. and Tweedie, R. L. (1996). Exponential convergence of
    Langevin distributions and their discrete approximations. Bernoulli
    2(4), 341-363.

    Examples
    --------
    >>> import numpy as np
    >>> from ebm_ref.energies import StudentT
    >>> from ebm_ref.samplers import langevin
    >>> m = StudentT(np.zeros(2), np.zeros(2), np.log(np.full(2, 5.0)))
    >>> res = langevin(m, np.zeros((100, 2)), 50, 0.1, seed=0, adjust=True)
    >>> res.x.shape, res.acceptance_rate.shape
    ((100, 2), (100,))
    """
    _k.check_real_model("langevin", model)
    eta = check_step_size(step_size)
    if not isinstance(adjust, (bool, np.bool_)):
        raise TypeError(f"`adjust` must be a bool; got {type(adjust).__name__}.")
    prep = prepare(model, x0, n_steps, seed, thin=thin)
    accepted, energies = _k.run(model, _k.MOVE_LANGEVIN, prep, eta, adjust=adjust)
    rate = _k.acceptance_rate(accepted, prep.n_steps) if adjust else None
    return finish(prep, energies, rate)
