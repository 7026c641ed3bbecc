r"""Minibatch training of an energy model with any objective (docs/training.md).

``fit(model, data, objective, optimizer, n_steps, batch_size, seed)``
returns ``(trained_model, history)``. Optimisers act on parameter dicts
(descent on the loss) and keep structural zeros at zero.
"""

from __future__ import annotations

import math
import numbers
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from ._rng import as_seed_sequence
from ._validation import check_int, check_nonneg_int, check_positive
from ._progress import ProgressLine
from .energies import EnergyModel

__all__ = ["SGD", "Adam", "History", "fit"]

# Purposes of the seed inside ``fit`` (beyond ebm_ref._rng's streams so that
# they never coincide with a sampler's or an objective's own draws).
_STREAM_BATCH = 100
_STREAM_STEP = 101


class _Optimizer:
    """Common part: per-name state, structural zeros, ``reset``."""

    def __init__(self):
        self._state = {}
        self._shapes = None
        self.t = 0

    def reset(self):
        """Forget the optimiser state (moments, step counter, the parameter shapes it is bound to)."""
        self._state = {}
        self._shapes = None
        self.t = 0

    def step(self, params, grads, zero_mask=None):
        r"""One descent step: new parameter dict (inputs are not modified).

        Parameters
        ----------
        params : dict of str to ndarray
        grads : dict of str to ndarray
            Same keys and shapes as ``params``.
        zero_mask : dict of str to bool ndarray, optional
            Structural zeros, left exactly as they are in ``params``.

        Returns
        -------
        dict of str to ndarray

        Raises
        ------
        ValueError
            For mismatched keys or shapes, or when the optimiser carries
            state (momentum, Adam moments) built for parameters of other
            shapes (``reset()`` first).
        """
        if set(grads) != set(params):
            raise ValueError(f"`grads` keys {sorted(grads)} do not match `params` keys {sorted(params)}.")
        shapes = {name: np.shape(p) for name, p in params.items()}
        if self._state and self._shapes != shapes:
            # moments of one model applied to another would be silently
            # broadcast (or fail deep inside numpy): refuse, naming both
            raise ValueError(
                f"this {type(self).__name__} optimiser's state was built for parameters of shapes {self._shapes}; "
                f"got {shapes}. Call `optimizer.reset()` or use a new optimiser for another model."
            )
        self._shapes = shapes
        self.t += 1
        out = {}
        for name, p in params.items():
            p = np.asarray(p, dtype=np.float64)
            g = np.asarray(grads[name], dtype=np.float64)
            if g.shape != p.shape:
                raise ValueError(f"gradient of `{name}` has shape {g.shape}; expected {p.shape}.")
            new = p - self._update(name, g)
            if zero_mask and name in zero_mask:
                new = np.where(zero_mask[name], p, new)
            out[name] = new
        return out


class SGD(_Optimizer):
    r"""Stochastic gradient descent with (heavy-ball) momentum.

    Parameters
    ----------
    lr : float
        Learning rate (> 0).
    momentum : float, default 0.0
        In [0, 1).

    Notes
    -----
    :math:`v \leftarrow \mu v + g`, :math:`\theta \leftarrow \theta - \eta
    v` (the PyTorch convention; :math:`\mu = 0` is plain SGD).

    References
    ----------
    Polyak, B. T. (1964). Some methods of speeding up the convergence of
    iteration methods. USSR Comp. Math. and Math. Physics 4(5).
    """

    def __init__(self, lr, momentum=0.0):
        super().__init__()
        self.lr = check_positive(lr, "lr")
        if isinstance(momentum, (bool, np.bool_)) or not isinstance(momentum, numbers.Real):
            raise TypeError(f"`momentum` must be a real number in [0, 1); got {type(momentum).__name__}.")
        if not (0.0 <= momentum < 1.0):
            raise ValueError(f"`momentum` must be in [0, 1); got {momentum!r}.")
        self.momentum = float(momentum)

    def _update(self, name, g):
        if self.momentum == 0.0:
            return self.lr * g
        v = self._state.get(name)
        v = g.copy() if v is None else self.momentum * v + g
        self._state[name] = v
        return self.lr * v

    def __repr__(self):
        return f"SGD(lr={self.lr!r}, momentum={self.momentum!r})"


class Adam(_Optimizer):
    r"""Adam (Kingma & Ba 2015) with bias correction.

    Parameters
    ----------
    lr : float
        Step size (> 0).
    betas : tuple of two floats, default (0.9, 0.999)
        Decay rates of the first and second moments, each in [0, 1).
    eps : float, default 1e-8
        Added to the root second moment (> 0).

    Notes
    -----
    .. math::

        m \leftarrow \beta_1 m + (1-\beta_1) g, \quad
        v \leftarrow \beta_2 v + (1-\beta_2) g^2, \quad
        \theta \leftarrow \theta - \eta\,\frac{m/(1-\beta_1^t)}
        {\sqrt{v/(1-\beta_2^t)} + \epsilon}.

    An entry whose gradient is always 0 (a structural zero) never moves.

    References
    ----------
    Kingma, D. P., Ba, J. (2015). Adam: a method for stochastic
    optimization. ICLR.
    """

    def __init__(self, lr, betas=(0.9, 0.999), eps=1e-8):
        super().__init__()
        self.lr = check_positive(lr, "lr")
        try:
            b1, b2 = (float(b) for b in betas)
        except (TypeError, ValueError):
            raise TypeError(f"`betas` must be a pair of floats; got {betas!r}.") from None
        for b, nm in ((b1, "betas[0]"), (b2, "betas[1]")):
            if not (0.0 <= b < 1.0):
                raise ValueError(f"`{nm}` must be in [0, 1); got {b!r}.")
        self.betas = (b1, b2)
        self.eps = check_positive(eps, "eps")

    def _update(self, name, g):
        b1, b2 = self.betas
        m, v = self._state.get(name, (np.zeros_like(g), np.zeros_like(g)))
        m = b1 * m + (1.0 - b1) * g
        v = b2 * v + (1.0 - b2) * g * g
        self._state[name] = (m, v)
        m_hat = m / (1.0 - b1**self.t)
        v_hat = v / (1.0 - b2**self.t)
        return self.lr * m_hat / (np.sqrt(v_hat) + self.eps)

    def __repr__(self):
        return f"Adam(lr={self.lr!r}, betas={self.betas!r}, eps={self.eps!r})"


@dataclass
class History:
    """What :func:`fit` records.

    Attributes
    ----------
    loss : ndarray of shape (n_steps,)
        The minibatch loss at each step, evaluated *before* that step's
        update.
    wall_time : float
        Seconds spent in :func:`fit`.
    n_steps : int
        Steps taken.
    """

    loss: np.ndarray = field(default_factory=lambda: np.empty(0))
    wall_time: float = 0.0
    n_steps: int = 0

    def __len__(self):
        return int(self.n_steps)


class _Progress:
    """fit's progress line (step, loss, rate): on a terminal only."""

    def __init__(self, n_steps, stream=None):
        self.n = n_steps
        self.line = ProgressLine(sys.stdout if stream is None else stream, interval=0.1)

    def update(self, step, loss, final=False):
        self.line.show(lambda el: f"  step {step}/{self.n}  loss {loss: .6g}  {step / max(el, 1e-12):.1f} it/s", final)


def _largest(params):
    return max((float(np.max(np.abs(v))) for v in params.values() if np.size(v)), default=0.0)


def _check_update(new_params, step, optimizer):
    """Refuse a diverged update here, naming ``lr``, before ``with_params`` would blame the parameters."""
    for name, value in new_params.items():
        if not np.all(np.isfinite(value)):
            raise FloatingPointError(
                f"fit: the update diverged at step {step}: the optimiser step ({optimizer!r}) made parameter "
                f"`{name}` non-finite although the loss and gradient were finite; lower `lr` "
                f"(now {optimizer.lr!r})."
            )


def fit(model, data, objective, optimizer, n_steps, batch_size, seed, callback=None):
    r"""Minimise ``objective`` over minibatches of ``data``.

    Parameters
    ----------
    model : EnergyModel
        Initial model (not modified).
    data : array_like of shape (N, d)
        Training states in the model's domain.
    objective : object
        Anything with ``value_and_grad(model, x, seed) -> (loss, grads)``
        (:mod:`ebm_ref.objectives`).
    optimizer : SGD or Adam
        Its state carries over between calls of ``fit`` (call ``reset()``
        to start afresh).
    n_steps : int
        Number of updates (>= 0).
    batch_size : int
        Rows per minibatch, 1 <= batch_size <= N.
    seed : int, SeedSequence or Generator
        Drives the minibatches and every call of the objective.
    callback : callable, optional
        ``callback(step, model, loss)`` after each update (``step`` from 1,
        ``model`` the updated model, ``loss`` the loss before the update).

    Returns
    -------
    model : EnergyModel
        The trained model (a new object).
    history : History
        Per-step losses and the wall time.

    Raises
    ------
    FloatingPointError
        If the loss or the gradient stops being finite, or the update
        diverges (a finite gradient times the learning rate overflows, or
        the new parameters leave the model's valid range); the step and the
        optimiser's ``lr`` are named. An error of the objective after the
        first step is re-raised (same type) saying that the updates may have
        diverged.

    Notes
    -----
    Minibatches are drawn without replacement within an epoch: a fresh
    permutation of the rows (from ``seed``) is consumed ``batch_size`` rows
    at a time and redrawn when fewer than ``batch_size`` rows remain. Step
    ``s`` calls the objective with ``SeedSequence(ss.entropy,
    spawn_key=ss.spawn_key + (101, s))``, so a run is reproducible and the
    objective's noise differs between steps. The update is
    ``optimizer.step(params, grads)`` (descent), structural zeros
    (``model.structural_zeros()``) are kept at their value, and the new
    model is built with ``model.with_params``. On a terminal a progress line
    (step, loss, rate) is refreshed every 0.1 s; it is silent when standard
    output is not a TTY.

    Examples
    --------
    >>> import numpy as np
    >>> from ebm_ref.energies import Ising
    >>> from ebm_ref.objectives import RatioMatching
    >>> from ebm_ref.train import Adam, fit
    >>> data = np.where(np.random.default_rng(0).random((500, 4)) < 0.7, 1.0, -1.0)
    >>> model = Ising(np.zeros((4, 4)), np.zeros(4))
    >>> model, history = fit(model, data, RatioMatching(), Adam(0.05), 50, 100, seed=0)
    >>> history.loss.shape
    (50,)
    """
    if not isinstance(model, EnergyModel):
        raise TypeError(f"`model` must be an ebm_ref EnergyModel; got {type(model).__name__}.")
    if not hasattr(objective, "value_and_grad"):
        raise TypeError(f"`objective` must have value_and_grad(model, x, seed); got {type(objective).__name__}.")
    if not isinstance(optimizer, _Optimizer):
        raise TypeError(f"`optimizer` must be ebm_ref.train.SGD or Adam; got {type(optimizer).__name__}.")
    if callback is not None and not callable(callback):
        raise TypeError(f"`callback` must be callable; got {type(callback).__name__}.")
    x, _ = model.check_states(data, "data")
    n_steps = check_nonneg_int(n_steps, "n_steps")
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    N = x.shape[0]
    if batch_size > N:
        raise ValueError(f"`batch_size` must be <= the number of data rows ({N}); got {batch_size}.")
    ss = as_seed_sequence(seed)
    base = tuple(ss.spawn_key)
    batch_rng = np.random.default_rng(np.random.SeedSequence(ss.entropy, spawn_key=base + (_STREAM_BATCH,)))
    zero_mask = model.structural_zeros()

    losses = np.empty(n_steps)
    progress = _Progress(n_steps)
    t0 = time.perf_counter()
    perm = np.empty(0, dtype=np.int64)
    pos = 0
    for step in range(n_steps):
        if pos + batch_size > perm.size:
            perm = batch_rng.permutation(N)
            pos = 0
        batch = x[perm[pos : pos + batch_size]]
        pos += batch_size
        step_seed = np.random.SeedSequence(ss.entropy, spawn_key=base + (_STREAM_STEP, step))
        try:
            loss, grads = objective.value_and_grad(model, batch, step_seed)
        except (ValueError, FloatingPointError) as exc:
            if step == 0:
                raise
            # the same objective accepted step 0: what changed is the model,
            # i.e. the updates; say so instead of only echoing a message
            # about an argument (``v``, ``x``) the user never passed
            raise type(exc)(
                f"fit: the objective failed at step {step} after {step} updates by {optimizer!r} "
                f"(largest |parameter| now {_largest(model.params):.3g}); the updates may have diverged: "
                f"lower `lr`. The objective said: {exc}"
            ) from exc
        loss = float(loss)
        if not math.isfinite(loss) or not all(np.all(np.isfinite(g)) for g in grads.values()):
            raise FloatingPointError(
                f"fit: the loss or its gradient is not finite at step {step} (loss {loss!r}); "
                "lower the learning rate or check the data."
            )
        losses[step] = loss
        with np.errstate(over="ignore", invalid="ignore"):
            new_params = optimizer.step(model.params, grads, zero_mask)
        _check_update(new_params, step, optimizer)
        try:
            model = model.with_params(new_params)
        except ValueError as exc:
            raise FloatingPointError(
                f"fit: the update diverged at step {step}: the optimiser step ({optimizer!r}) gave parameters "
                f"the model refuses; lower `lr` (now {optimizer.lr!r}). The model said: {exc}"
            ) from exc
        progress.update(step + 1, loss)
        if callback is not None:
            callback(step + 1, model, loss)
    if n_steps:
        progress.update(n_steps, losses[-1], final=True)
    return model, History(loss=losses, wall_time=time.perf_counter() - t0, n_steps=n_steps)
