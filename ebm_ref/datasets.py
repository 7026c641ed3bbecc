r"""The data sets of the examples and figures.

* :func:`ellipse_data`, :func:`conditional_ellipse_data`, :func:`ellipse_radii`:
  noisy points on the ellipse of the latent-variable lecture (fitted by
  :class:`~ebm_ref.energies.LatentEnergy` and
  :class:`~ebm_ref.energies.ConditionalLatentEnergy`);
* :func:`bars_and_stripes`: the binary bars-and-stripes images (RBM
  learning curves).

Each generator draws from ``numpy.random.default_rng(as_seed_sequence(seed))``
in the order its docstring states, so a seed gives the same data on every
machine.
"""

from __future__ import annotations

import numpy as np

from ._rng import as_seed_sequence
from ._validation import as_float_array, check_finite, check_int

__all__ = ["ellipse_radii", "ellipse_data", "conditional_ellipse_data", "bars_and_stripes"]

ELLIPSE_ALPHA = 1.5
ELLIPSE_BETA = 2.0
ELLIPSE_NOISE_SD = 1.0 / 20.0


def ellipse_radii(x):
    r"""Radii :math:`\rho(x) = [\alpha x + \beta(1-x),\ \beta x + \alpha(1-x)]\, e^{2x}`.

    ``alpha = 1.5``, ``beta = 2``; at ``x = 0`` the unconditional ellipse
    with semi-axes (2, 1.5). ``x`` of shape (n,) gives (n, 2), a scalar (2,).
    """
    scalar = np.ndim(x) == 0
    x = as_float_array(x, "x")
    if scalar:
        x = x.reshape(())
    check_finite(x, "x")
    a, b = ELLIPSE_ALPHA, ELLIPSE_BETA
    scale = np.exp(2.0 * x)
    return np.stack([(a * x + b * (1.0 - x)) * scale, (b * x + a * (1.0 - x)) * scale], axis=-1)


def ellipse_data(n, seed, x=None):
    r"""Noisy points on the lecture's ellipse, shape ``(n, 2)``.

    .. math::

        y = \rho(x) \odot (\cos\theta, \sin\theta) + \varepsilon,\quad
        \theta \sim U(0, 2\pi),\; \varepsilon \sim N(0, (1/20)^2 I_2).

    Parameters
    ----------
    n : int
        Number of points (>= 1).
    seed : int, SeedSequence or Generator
    x : float or array_like of shape (n,), optional
        Conditioning value(s); ``None`` is the unconditional case of the
        lecture (``x = 0``: semi-axes 2 and 1.5).

    Notes
    -----
    Draw order from ``numpy.random.default_rng(as_seed_sequence(seed))``:
    ``theta`` (n uniforms), then the noise (n x 2 normals).
    """
    n = check_int(n, "n", minimum=1)
    if x is None:
        xs = np.zeros(n)
    else:
        xs = as_float_array(x, "x")
        if xs.ndim == 0:
            xs = np.full(n, float(xs))
        elif xs.shape != (n,):
            raise ValueError(f"`x` must be a scalar or have shape ({n},); got {xs.shape}.")
    rho = ellipse_radii(xs)
    rng = np.random.default_rng(as_seed_sequence(seed))
    theta = rng.uniform(0.0, 2.0 * np.pi, size=n)
    noise = rng.normal(0.0, ELLIPSE_NOISE_SD, size=(n, 2))
    return rho * np.stack([np.cos(theta), np.sin(theta)], axis=1) + noise


def conditional_ellipse_data(n, seed):
    r"""Pairs ``(x, y)`` of the conditional case: ``x ~ U(0, 1)``, shape (n, 1).

    ``x`` is drawn first from ``default_rng(as_seed_sequence(seed))``; that
    generator then seeds ``ellipse_data(n, generator, x)`` (``theta``, then
    noise).
    """
    n = check_int(n, "n", minimum=1)
    rng = np.random.default_rng(as_seed_sequence(seed))
    x = rng.uniform(0.0, 1.0, size=n)
    y = ellipse_data(n, rng, x=x)
    return x[:, None], y


def bars_and_stripes(side=4):
    r"""The distinct ``side x side`` bars-and-stripes images, rows of shape ``(side**2,)``.

    Every image has whole rows on (bars) or whole columns on (stripes); the
    all-off and all-on images are both, so there are ``2 * 2**side - 2``
    distinct ones.

    Parameters
    ----------
    side : int, default 4
        Image side, ``>= 1``.

    Returns
    -------
    ndarray of shape (2**(side + 1) - 2, side**2)
        {0, 1} float64 images, unit ``r*side + c`` is pixel ``(r, c)``; sorted
        lexicographically (``numpy.unique`` order).
    """
    side = check_int(side, "side", minimum=1)
    codes = np.arange(2**side)
    bits = (codes[:, None] >> np.arange(side - 1, -1, -1)[None, :]) & 1
    rows_on = np.repeat(bits[:, :, None], side, axis=2).reshape(len(codes), -1)
    cols_on = np.repeat(bits[:, None, :], side, axis=1).reshape(len(codes), -1)
    return np.unique(np.concatenate([rows_on, cols_on]).astype(np.float64), axis=0)
