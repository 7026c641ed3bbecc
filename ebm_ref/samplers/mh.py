r"""Random-walk Metropolis: Gaussian proposals for continuous models, single
uniform flips for binary/spin models (delegated to the binary kernels)."""

from __future__ import annotations

import importlib

from .._validation import check_positive
from ..energies import EnergyModel
from . import _continuous as _k
from ._common import finish, prepare

__all__ = ["rwmh"]

SUPPORTED = (*_k.SUPPORTED, "binary/spin models (RBM, Ising: single uniform flips)")


def rwmh(model, x0, n_steps, scale, seed, thin=0):
    r"""Random-walk Metropolis-Hastings.

    Parameters
    ----------
    model : EnergyModel
        Continuous (``domain == "real"``): Gaussian random-walk proposals;
        ``StudentT``, ``GaussianMixture``, ``GRBM`` (free energy over ``v``)
        and ``MLPEnergy`` run in Numba kernels, any other real-domain model
        through its ``energy`` method on the whole batch. Binary or spin
        models (``RBM``, ``Ising``): one uniformly chosen unit is proposed
        for a flip per step (delegated to
        ``ebm_ref.samplers._binary.rwmh_binary``).
    x0 : array_like of shape (n_chains, d) or (d,)
        Initial states in the model's domain; not modified.
    n_steps : int
        Number of proposals per chain, ``>= 0``.
    scale : float
        Standard deviation of the Gaussian proposal, ``> 0``, for continuous
        models. Binary/spin models do not use it and accept any value
        (docs/samplers.md: binary ``rwmh`` flips one uniform unit).
    seed : int, numpy.random.SeedSequence or numpy.random.Generator
        Chain ``c`` uses its own stream derived from ``(seed, c)``.
    thin : int, default 0
        ``> 0`` stores the states after steps ``thin, 2 thin, ...``.

    Returns
    -------
    SampleResult
        ``x``, ``acceptance_rate`` (``(n_chains,)``), ``trace`` and
        ``energies`` (``E`` of the final states).

    Raises
    ------
    TypeError
        If ``model`` is not an ``EnergyModel`` (the message lists what is
        supported) or an argument has the wrong type.
    ValueError
        For ``scale <= 0`` (continuous models), ``n_steps < 0``, ``thin <
        0``, or an ``x0`` of the wrong shape, with NaN/inf, or outside the
        model's domain.

    Notes
    -----
    Continuous models: propose :math:`x' = x + \text{scale}\,\varepsilon`,
    :math:`\varepsilon \sim \mathcal N(0, I)` (symmetric, so no proposal
    ratio), and accept iff :math:`\log u < \min(0, E(x) - E(x'))`;
    :math:`E(x') = +\infty` is a rejection. This leaves
    :math:`p \propto e^{-E}` invariant (Metropolis et al. 1953).
    ``acceptance_rate`` is accepted / ``n_steps`` per chain, NaN when
    ``n_steps = 0`` (nothing proposed). Per step chain ``c`` draws ``d`` normals then one
    uniform from its own RNG row, so results do not depend on the number of
    threads or of chains.

    References
    ----------
    Metropolis, N., Rosenbluth, A. W., Rosenbluth, M. N., Teller, A. H. and
    Teller, E. (1953). Equation of state calculations by fast computing
    machines. J. Chem. Phys. 21(6), 1087-1092.
    Hastings, W. K. (1970). Monte Carlo sampling methods using Markov chains
    and their applications. Biometrika 57(1), 97-109.

    Examples
    --------
    >>> import numpy as np
    >>> from ebm_ref.energies import StudentT
    >>> from ebm_ref.samplers import rwmh
    >>> m = StudentT(np.zeros(1), np.zeros(1), np.log([4.0]))
    >>> res = rwmh(m, np.zeros((10, 1)), 100, scale=1.0, seed=1)
    >>> res.acceptance_rate.shape
    (10,)
    """
    if isinstance(model, EnergyModel) and getattr(model, "domain", None) in ("binary", "spin"):
        binary = importlib.import_module("._binary", __package__)
        return binary.rwmh_binary(model, x0, n_steps, seed, thin=thin)
    _k.check_real_model("rwmh", model, SUPPORTED)
    scale = check_positive(scale, "scale")
    prep = prepare(model, x0, n_steps, seed, thin=thin)
    accepted, energies = _k.run(model, _k.MOVE_RWMH, prep, scale)
    return finish(prep, energies, _k.acceptance_rate(accepted, prep.n_steps))
