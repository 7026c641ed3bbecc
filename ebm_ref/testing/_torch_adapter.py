r"""The PyTorch adapter: a module or function -> the six primitives as NumPy callables (docs/torch-jax.md).

torch is imported only inside the adapter, so ``import ebm_ref.testing``
stays cheap and works without it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import numpy as np

from ._adapters import _Adapter, _check_callable, _n_positional, _seed_int
from ._parammap import ParamMap


# -------------------------------------------------------------------- torch
class TorchAdapter(_Adapter):
    r"""A PyTorch model seen through the plain callables of :mod:`ebm_ref.testing`.

    Built by :func:`from_torch`. As a mapping it holds the six energy
    primitives (``compare_energy(model, **adapter)``); each is also an
    attribute with the kit's signature:

    * ``energy(params, x) -> (n,)``
    * ``grad_x(params, x)``, ``hessian_diag(params, x) -> (n, d)``
    * ``grad_params(params, x, weights) -> dict`` (:math:`\sum_i w_i \nabla_\theta E(x_i)`)
    * ``grad_params_of_grad_x(params, x, v)``,
      ``grad_params_of_hessian_diag(params, x, c) -> dict``

    and :meth:`sampler`, :meth:`objective` wrap a sampler and a loss.

    Attributes
    ----------
    dtype : torch.dtype
        The dtype the inputs and parameters are given to the user's code in.
        Results come back as NumPy arrays of the dtype the code returned.
    mapping : ParamMap
    """

    framework = "torch"

    def __init__(self, model, mapping, energy, params, dtype, reference):
        import torch

        self._torch = torch
        if dtype is None:
            dtype = torch.float64
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"`dtype` must be a floating torch.dtype such as torch.float64; got {dtype!r}.")
        self.dtype = dtype
        self.dtype_name = str(dtype).replace("torch.", "")
        self._module = None
        if isinstance(model, torch.nn.Module):
            if params is not None:
                raise ValueError("`params` is only for a plain function; a module carries its own parameters.")
            module = copy.deepcopy(model).to(dtype).eval()  # the checks need a deterministic per-sample energy
            named = {n: p for n, p in module.named_parameters() if p.requires_grad}
            if not named:
                raise ValueError("`model` has no trainable parameters (requires_grad=True) to map.")
            self._module = module
            self._named = named
            shapes = {n: tuple(p.shape) for n, p in named.items()}
            if energy is None:
                self._energy = lambda m, x: m(x)
            elif isinstance(energy, str):
                if not callable(getattr(module, energy, None)):
                    raise ValueError(f"`energy` {energy!r} is not a method of {type(model).__name__}.")
                self._energy = lambda m, x: getattr(m, energy)(x)
            else:
                _check_callable(energy, "energy")
                self._energy = energy
            self._what = f"{type(model).__name__} module"
        else:
            if model is not None:
                _check_callable(model, "model")
            if energy is not None:
                raise ValueError("`energy` selects a method of a module; for a plain function pass the function as `model`.")
            self._energy = model
            shapes = None
            if params is not None:
                if not isinstance(params, Mapping):
                    raise TypeError(f"`params` must be a dict of the user's parameters; got {type(params).__name__}.")
                shapes = {n: tuple(np.shape(v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else v)) for n, v in params.items()}
            self._what = f"function {getattr(model, '__name__', 'None')}"
        self.mapping = ParamMap(mapping, user_shapes=shapes, reference=reference)

    # -- binding
    def _bind(self, params, requires_grad=True):
        # a sampler gets parameters without requires_grad: no graph is built through them
        torch = self._torch
        user = self.mapping.to_user(params)
        if self._module is not None:
            plist = []
            with torch.no_grad():
                for name in self.mapping.user_names:
                    p = self._named[name]
                    p.copy_(torch.from_numpy(user[name]))
                    p.grad = None
                    p.requires_grad_(requires_grad)
                    plist.append(p)
            return self._module, plist
        tensors = {n: torch.tensor(a, dtype=self.dtype, requires_grad=requires_grad) for n, a in user.items()}
        return tensors, [tensors[n] for n in self.mapping.user_names]

    def _tensor(self, a, requires_grad=False):
        return self._torch.tensor(np.array(a, dtype=np.float64), dtype=self.dtype, requires_grad=requires_grad)

    @staticmethod
    def _np(t):
        return np.array(t.detach().cpu().numpy(), copy=True)

    def _grads(self, scalar, plist):
        torch = self._torch
        if scalar.requires_grad:
            gs = torch.autograd.grad(scalar, plist, allow_unused=True)
        else:
            gs = [None] * len(plist)
        out = {}
        for name, p, g in zip(self.mapping.user_names, plist, gs):
            out[name] = np.zeros(tuple(p.shape), dtype=self._np_dtype(scalar)) if g is None else self._np(g)
        return self.mapping.to_ref(out)

    def _np_dtype(self, t):
        return np.dtype(str(t.dtype).replace("torch.", ""))

    def _call_energy(self, model, x):
        if self._energy is None:
            raise TypeError("this adapter has no energy: pass a module or an energy function as `model`.")
        return self._energy(model, x)

    def _grad_x_graph(self, model, x, create_graph):
        torch = self._torch
        e = self._call_energy(model, x)
        (g,) = torch.autograd.grad(e.sum(), x, create_graph=create_graph, allow_unused=True)
        return e, (torch.zeros_like(x) if g is None else g)

    def _hdiag_graph(self, model, x, create_graph):
        torch = self._torch
        _, g = self._grad_x_graph(model, x, True)
        cols = []
        for k in range(x.shape[1]):
            if g.requires_grad:
                (hk,) = torch.autograd.grad(g[:, k].sum(), x, retain_graph=True, create_graph=create_graph, allow_unused=True)
            else:
                hk = None
            cols.append(torch.zeros_like(x[:, k]) if hk is None else hk[:, k])
        return torch.stack(cols, dim=1)

    # -- the six primitives
    def energy(self, params, x):
        """``E(x)``, shape ``(n,)``, as the user's code returns it."""
        model, _ = self._bind(params)
        with self._torch.no_grad():
            return self._np(self._call_energy(model, self._tensor(x)))

    def grad_x(self, params, x):
        """``dE/dx`` by autograd, ``(n, d)``."""
        model, _ = self._bind(params)
        _, g = self._grad_x_graph(model, self._tensor(x, True), False)
        return self._np(g)

    def hessian_diag(self, params, x):
        """``d^2E/dx_k^2`` by autograd, one second derivative per coordinate, ``(n, d)``."""
        model, _ = self._bind(params)
        return self._np(self._hdiag_graph(model, self._tensor(x, True), False))

    def grad_params(self, params, x, weights):
        """``sum_i w_i dE(x_i)/dtheta`` in ebm_ref's layout."""
        model, plist = self._bind(params)
        e = self._call_energy(model, self._tensor(x))
        return self._grads((self._tensor(weights) * e).sum(), plist)

    def grad_params_of_grad_x(self, params, x, v):
        """``sum_i d/dtheta [v_i . dE/dx(x_i)]`` in ebm_ref's layout."""
        model, plist = self._bind(params)
        _, g = self._grad_x_graph(model, self._tensor(x, True), True)
        return self._grads((self._tensor(v) * g).sum(), plist)

    def grad_params_of_hessian_diag(self, params, x, c):
        """``sum_ik c_ik d/dtheta [d^2E/dx_k^2 (x_i)]`` in ebm_ref's layout."""
        model, plist = self._bind(params)
        h = self._hdiag_graph(model, self._tensor(x, True), True)
        return self._grads((self._tensor(c) * h).sum(), plist)

    # -- sampler and objective
    def _with_rng(self, seed, fn, n_args, args):
        """Call ``fn(*args, generator)``, or ``fn(*args)`` under a seeded, restored global RNG."""
        torch = self._torch
        if n_args == len(args) + 1:
            gen = torch.Generator().manual_seed(seed)
            return fn(*args, gen)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return fn(*args)

    def sampler(self, fn, *, step=False):
        """Wrap a PyTorch sampler as ``sample_fn(params, x0, n_steps, rng)`` for :func:`check_sampler`.

        Parameters
        ----------
        fn : callable
            ``fn(model, x, n_steps, generator) -> x`` (``step=False``) or one
            transition ``fn(model, x, generator) -> x`` (``step=True``, called
            ``n_steps`` times). ``model`` is the module (or, for a plain
            function, the dict of parameter tensors), ``x`` a tensor of
            :attr:`dtype`, ``generator`` a seeded ``torch.Generator``. Without
            the ``generator`` argument the global torch RNG is seeded instead
            (inside ``torch.random.fork_rng``, so the caller's state is
            restored).
        step : bool, default False

        Returns
        -------
        callable
            ``sample_fn(params, x0, n_steps, rng) -> ndarray``; the torch seed
            is drawn from the NumPy Generator ``rng``.
        """
        _check_callable(fn, "fn")
        base = 2 if step else 3
        n_args = _n_positional(fn, (base + 1, base))
        if n_args is None:
            raise TypeError(f"`fn` must take ({'model, x' if step else 'model, x, n_steps'}[, generator]) positionally.")

        def sample_fn(params, x0, n_steps, rng):
            model, _ = self._bind(params, requires_grad=False)
            x = self._tensor(x0)
            seed = _seed_int(rng)
            if not step:
                out = self._with_rng(seed, fn, n_args, (model, x, int(n_steps)))
            elif n_args == base + 1:
                gen = self._torch.Generator().manual_seed(seed)
                out = x
                for _ in range(int(n_steps)):
                    out = fn(model, out, gen)
            else:
                with self._torch.random.fork_rng(devices=[]):
                    self._torch.manual_seed(seed)
                    out = x
                    for _ in range(int(n_steps)):
                        out = fn(model, out)
            return self._np(out)

        return sample_fn

    def objective(self, fn):
        """Wrap a PyTorch loss as ``value_and_grad(params, x, seed) -> (loss, grads)``.

        Parameters
        ----------
        fn : callable
            ``fn(model, x, generator) -> scalar tensor`` (or ``fn(model, x)``
            for a deterministic loss, or one drawing from the global RNG,
            which is then seeded and restored). The gradient is
            ``torch.autograd.grad`` of the returned scalar with respect to the
            mapped parameters, in ebm_ref's layout; a parameter the loss does
            not use gets zeros.

        Returns
        -------
        callable
            For :func:`check_objective_grad` and :func:`compare_objective`:
            the same ``seed`` gives the same torch random numbers.
        """
        _check_callable(fn, "fn")
        n_args = _n_positional(fn, (3, 2))
        if n_args is None:
            raise TypeError("`fn` must take (model, x[, generator]) positionally.")

        def value_and_grad(params, x, seed):
            model, plist = self._bind(params)
            loss = self._with_rng(_seed_int(seed), fn, n_args, (model, self._tensor(x)))
            if tuple(loss.shape) != ():
                raise ValueError(f"`fn` must return a scalar loss; got a tensor of shape {tuple(loss.shape)}.")
            grads = self._grads(loss, plist)
            return self._np(loss)[()], grads

        return value_and_grad


def from_torch(model, mapping=None, *, energy=None, params=None, dtype=None, reference=None):
    r"""Adapt a PyTorch energy (module or function) to the plain callables of the checks.

    Parameters
    ----------
    model : torch.nn.Module or callable
        A module whose ``forward(x)`` (or method ``energy``) returns the
        energies ``(n,)`` of a batch ``(n, d)``; or a plain function
        ``fn(params, x)`` of a dict of tensors keyed by the user's names.
        A module is deep-copied, cast to ``dtype`` and put in ``eval()``
        mode (dropout off, batch norm on its running statistics, so each
        sample's energy is a deterministic function of that sample): the
        caller's module is never modified.
    mapping : dict, optional
        ebm_ref name -> user name, or ``(user name, layout)``; layout ``"T"``
        (transpose), a reshape target such as ``(-1,)`` or ``()``, or a list
        of those, turning the user's tensor into ebm_ref's array. Example
        for an RBM whose ``nn.Linear(V, H)`` holds ``W`` and ``b_h``:
        ``{"W": ("fc.weight", "T"), "b_h": "fc.bias", "b_v": "b_v"}``.
        Unnamed parameters map by identity. See :class:`ParamMap`.
    energy : str or callable, optional
        For a module: the method that computes the energy (default
        ``forward``), or ``energy(module, x)``.
    params : dict, optional
        For a plain function: an example of its parameters (tensors or
        arrays; only names and shapes are used), needed for reshapes and for
        the identity default.
    dtype : torch.dtype, optional
        The dtype the user's code runs in; default ``torch.float64`` (the
        module is cast, inputs are created in it). Pass ``torch.float32`` to
        check the float32 path: results are then float32 and reported as
        such.
    reference : EnergyModel, optional
        The ebm_ref model: checks the mapping's names and shapes now, and
        zeroes its structural zeros (the Ising ``J`` diagonal) in gradients.

    Returns
    -------
    TorchAdapter
        A mapping of the six primitives: ``compare_energy(model, **adapter)``;
        ``adapter.sampler(fn)`` for :func:`check_sampler`,
        ``adapter.objective(fn)`` for :func:`check_objective_grad` /
        :func:`compare_objective`.

    Raises
    ------
    TypeError, ValueError
        Naming ``mapping``, ``model``, ``energy``, ``params`` or ``dtype``:
        an unknown user parameter, a user parameter left unmapped, a shape
        that does not match after the layout, a non-floating dtype.

    Notes
    -----
    Derivatives are reverse-mode autograd of the user's energy:
    ``grad_x`` is :math:`\nabla_x \sum_i E(x_i)`; the Hessian diagonal is
    exact, one second backward pass per coordinate,
    :math:`\partial_{x_k} (\partial_{x_k} \sum_i E(x_i))`, which assumes each
    sample's energy depends on that sample only (no batch statistics);
    the parameter derivatives differentiate the scalars
    :math:`\sum_i w_i E(x_i)`, :math:`\sum_i v_i \cdot \nabla_x E(x_i)` and
    :math:`\sum_{ik} c_{ik} \partial^2_{x_k} E(x_i)`. A parameter that the
    scalar does not depend on (autograd's ``None``) gets exact zeros.
    Outputs are not reshaped: an energy of shape ``(n, 1)`` is reported as
    a shape mismatch.
    """
    return TorchAdapter(model, mapping, energy, params, dtype, reference)
