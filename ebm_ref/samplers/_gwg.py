r"""Gibbs-with-gradients (Grathwohl et al. 2021) for binary models."""

from __future__ import annotations

from ._binary import SUPPORTED
from ._flip import PROPOSE_GWG, run_flip_mh

__all__ = ["gwg"]


def gwg(model, x0, n_steps, seed, thin=0):
    r"""Gibbs-with-gradients: gradient-informed single-flip Metropolis-Hastings.

    Parameters
    ----------
    model : RBM, Ising, FVBM or any binary model with a Numba form
        RBM: the chain runs on the visible units with the free energy
        :math:`F(v)` as energy. Ising: either domain.
    x0 : ndarray of shape (n_chains, d) or (d,)
        Initial states in the model's domain (never modified).
    n_steps : int
        Number of proposed flips per chain (>= 0).
    seed : int, numpy.random.SeedSequence or numpy.random.Generator
        Chain ``c`` draws only from its own stream (docs/conventions.md).
    thin : int, default 0
        Save the states after steps ``thin, 2 thin, ...`` (0: no trace).

    Returns
    -------
    SampleResult
        ``acceptance_rate``: fraction of accepted flips per chain (NaN when
        ``n_steps == 0``); ``energies``: ``model.energy`` of the final states.

    Raises
    ------
    TypeError
        For a model without a binary-family Numba form (the message names the supported ones).
    ValueError
        For ``x0`` of the wrong shape or outside the domain, ``n_steps < 0``.

    Notes
    -----
    With :math:`g = \nabla_x E(x)` of the continuous extension of the energy
    and :math:`x^{(i)}` the state with unit ``i`` flipped, the first-order
    estimate of the flip's energy change is

    .. math::

        \widetilde{\Delta E}_i(x) = (x^{(i)}_i - x_i)\, g_i
        \quad(\{0,1\}: -(2x_i - 1) g_i;\ \text{spins}: -2 x_i g_i),

    and one step draws ``i`` from

    .. math::

        q(i | x) = \operatorname{softmax}_i\big(-\widetilde{\Delta E}(x) / 2\big)

    (inverse CDF of one uniform) and accepts :math:`x^{(i)}` iff

    .. math::

        \log u < \min\Big(0,\; E(x) - E(x^{(i)})
          + \log q(i | x^{(i)}) - \log q(i | x)\Big),

    with the exact energy change and the reverse proposal computed at the
    flipped state (log-sum-exp shifted by the maximum). Ising:
    :math:`g = -(Jx + h)`, and since ``E`` is linear in each unit the
    estimate is exact; local fields are updated incrementally on accepted
    flips. RBM: :math:`g = -b_v - W\,\sigma(b_h + W^\top v)`, exact change
    from the updated pre-activations (``O(V H)`` per step).

    References
    ----------
    Grathwohl, W., Swersky, K., Hashemi, M., Duvenaud, D. & Maddison, C. J.
    (2021). Oops I took a gradient: scalable sampling for discrete
    distributions. ICML.
    """
    return run_flip_mh(model, x0, n_steps, seed, thin, PROPOSE_GWG, "gwg", SUPPORTED)
