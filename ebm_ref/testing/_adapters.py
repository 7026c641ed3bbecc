r"""Adapters from PyTorch and JAX code to the plain callables of :mod:`ebm_ref.testing`.

Every check of :mod:`ebm_ref.testing` reaches third-party code through plain
callables that take ebm_ref's parameter dict first and NumPy arrays. These
adapters write the glue once: they translate ebm_ref's parameters into the
user's names and layouts, run the user's code (in float64 unless told
otherwise), differentiate it with the framework's own autograd, and
translate gradients back. See ``docs/torch-jax.md``.

Design notes (why):

* The mapping is declared per ebm_ref parameter as "take the user's tensor
  ``name`` and apply ``layout`` to get mine", the direction a user reads
  when comparing two shapes; the adapter inverts it for the way in. A
  reshape is only invertible when the user's shape is known, so it needs a
  module or an example of the parameters.
* Results are handed back in the dtype the user's code produced. Upcasting a
  float32 result to float64 would hide which precision was checked; the
  kit's reports judge each dtype by its own rounding.
* torch and jax are imported only inside the adapters, so ``import
  ebm_ref.testing`` stays cheap and works without them.
"""

from __future__ import annotations

import copy
import inspect
import numbers
from collections.abc import Mapping

import numpy as np

from ._compare import PRIMITIVES

__all__ = ["ParamMap", "from_torch", "from_jax", "TorchAdapter", "JaxAdapter"]


# ------------------------------------------------------------------ layouts
def _parse_ops(ref_name, layout):
    """A layout as a list of operations: ``"T"`` or a reshape target tuple."""
    if layout is None:
        return []
    if isinstance(layout, str) or _is_shape(layout):
        layout = [layout]
    if not isinstance(layout, (list, tuple)):
        raise TypeError(
            f"`mapping[{ref_name!r}]` layout must be 'T', a shape tuple such as (-1,), a list of those, or None; "
            f"got {type(layout).__name__}."
        )
    ops = []
    for op in layout:
        if isinstance(op, str):
            if op != "T":
                raise ValueError(f"`mapping[{ref_name!r}]` layout {op!r} is unknown; use 'T' (transpose) or a shape tuple.")
            ops.append(("T", None))
        elif _is_shape(op):
            if sum(1 for s in op if int(s) == -1) > 1 or any(int(s) < -1 for s in op):
                raise ValueError(f"`mapping[{ref_name!r}]` reshape {tuple(op)} may contain at most one -1 and no other negative size.")
            ops.append(("reshape", tuple(int(s) for s in op)))
        else:
            raise TypeError(f"`mapping[{ref_name!r}]` layout entry {op!r} must be 'T' or a shape tuple.")
    return ops


def _is_shape(obj):
    return isinstance(obj, tuple) and all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in obj)


def _reshape_target(shape, target, where):
    size = int(np.prod(shape, dtype=np.int64))
    known = int(np.prod([s for s in target if s != -1], dtype=np.int64))
    if -1 in target:
        if known == 0 or size % known:
            raise ValueError(f"{where}: cannot reshape a tensor of shape {tuple(shape)} to {target}.")
        return tuple(size // known if s == -1 else s for s in target)
    if known != size:
        raise ValueError(f"{where}: cannot reshape a tensor of shape {tuple(shape)} to {target}.")
    return tuple(target)


class ParamMap:
    r"""Translation between ebm_ref parameter dicts and a user's parameters.

    Parameters
    ----------
    mapping : dict or None
        ``ebm_ref name -> spec`` where ``spec`` is the user's parameter name
        (a string: same layout), or ``(user name, layout)`` with ``layout``
        ``"T"`` (reverse the axes: ``nn.Linear.weight`` is ``(out, in)``), a
        reshape target such as ``(-1,)`` or ``()``, or a list of those
        applied in order. The layout turns the user's tensor into ebm_ref's
        array; the adapter applies its inverse on the way in. ``None``, or
        any user parameter that no entry names, maps by identity (same
        name, same layout); with neither a mapping nor shapes nor a
        reference, the identity on the names of the first ``params`` given.
    user_shapes : dict, optional
        ``user name -> shape`` of every user parameter (from a module or an
        example of the parameters). Needed for reshapes and for the identity
        default; without it only the names in ``mapping`` are known.
    reference : EnergyModel, optional
        The ebm_ref model: its parameter names complete the identity
        default, its shapes are checked against the layouts now rather than
        at the first call, and its structural zeros (the Ising ``J``
        diagonal) are zeroed in gradients.
    argname : str, default "mapping"
        Name used in error messages.

    Raises
    ------
    TypeError, ValueError
        For a malformed entry, a user name that does not exist, two ebm_ref
        names sharing one user parameter, a user parameter left unmapped, or
        a shape that does not match after the layout.
    """

    def __init__(self, mapping=None, *, user_shapes=None, reference=None, argname="mapping"):
        self.argname = argname
        if mapping is None:
            mapping = {}
        if not isinstance(mapping, Mapping):
            raise TypeError(f"`{argname}` must be a dict (ebm_ref name -> user name or (user name, layout)); got {type(mapping).__name__}.")
        self.user_shapes = None if user_shapes is None else {k: tuple(v) for k, v in user_shapes.items()}
        entries = {}
        for ref_name, spec in mapping.items():
            if not isinstance(ref_name, str):
                raise TypeError(f"`{argname}` keys must be ebm_ref parameter names (str); got {ref_name!r}.")
            if isinstance(spec, str):
                user, layout = spec, None
            elif isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str):
                user, layout = spec
            else:
                raise TypeError(
                    f"`{argname}[{ref_name!r}]` must be a user parameter name or a pair (name, layout); got {spec!r}."
                )
            entries[ref_name] = (user, _parse_ops(ref_name, layout))
        ref_names = list(reference.params) if reference is not None else []
        if self.user_shapes is not None:
            unknown = [(r, u) for r, (u, _) in entries.items() if u not in self.user_shapes]
            if unknown:
                r, u = unknown[0]
                raise ValueError(
                    f"`{argname}[{r!r}]` names the user parameter {u!r}, which does not exist; the user's parameters are "
                    f"{sorted(self.user_shapes)}."
                )
            taken = {u for u, _ in entries.values()}
            for u in self.user_shapes:
                if u not in taken and u not in entries:
                    entries[u] = (u, [])
        for r in ref_names:
            if r not in entries:
                entries[r] = (r, [])
        users = [u for u, _ in entries.values()]
        dup = sorted({u for u in users if users.count(u) > 1})
        if dup:
            raise ValueError(f"`{argname}` maps several ebm_ref parameters to the user parameter {dup[0]!r}.")
        if reference is not None:
            extra = [r for r in entries if r not in reference.params]
            if extra:
                u = entries[extra[0]][0]
                raise ValueError(
                    f"`{argname}`: the user parameter {u!r} has no ebm_ref counterpart {extra[0]!r}; {type(reference).__name__} "
                    f"has {list(reference.params)}. Map it with mapping={{'<ebm_ref name>': {u!r}}}."
                )
            if self.user_shapes is not None:
                missing = [r for r in entries if entries[r][0] not in self.user_shapes]
                if missing:
                    raise ValueError(
                        f"`{argname}`: the ebm_ref parameter {missing[0]!r} has no user counterpart; the user's parameters "
                        f"are {sorted(self.user_shapes)}."
                    )
        self.entries = entries
        self.zeros = reference.structural_zeros() if reference is not None else {}
        self.ref_shapes = {k: v.shape for k, v in reference.params.items()} if reference is not None else None
        if self.user_shapes is None:
            for r, (u, ops) in entries.items():
                if any(op == "reshape" for op, _ in ops):
                    raise ValueError(
                        f"`{argname}[{r!r}]` uses a reshape, which needs the user's shape: pass a module or an example "
                        "of the parameters (`params=`)."
                    )
        else:
            for r, (u, ops) in entries.items():
                shape = self._forward_shape(r, self.user_shapes[u])
                if self.ref_shapes is not None and shape != self.ref_shapes[r]:
                    raise ValueError(
                        f"`{argname}[{r!r}]`: the user parameter {u!r} of shape {self.user_shapes[u]} becomes {shape} "
                        f"after the layout {self._layout_text(ops)}; ebm_ref's {r!r} has shape {self.ref_shapes[r]}."
                    )

    @staticmethod
    def _layout_text(ops):
        return "[" + ", ".join("'T'" if op == "T" else str(arg) for op, arg in ops) + "]" if ops else "(identity)"

    def _forward_shape(self, ref_name, shape):
        for op, arg in self.entries[ref_name][1]:
            shape = tuple(reversed(shape)) if op == "T" else _reshape_target(shape, arg, f"`{self.argname}[{ref_name!r}]`")
        return tuple(shape)

    @property
    def user_names(self):
        """The user's parameter names, in ebm_ref order."""
        return [u for u, _ in self.entries.values()]

    def _check_keys(self, params, what):
        if not self.entries and self.user_shapes is None:
            # nothing declared and nothing known: the identity on the names that arrive
            self.entries = {k: (k, []) for k in params}
        keys = set(params)
        want = set(self.entries)
        if keys != want:
            extra = sorted(keys - want)
            missing = sorted(want - keys)
            raise ValueError(
                f"`{what}` has keys {sorted(keys)} but `{self.argname}` maps {sorted(want)}"
                + (f" (unmapped: {extra})" if extra else "")
                + (f" (missing: {missing})" if missing else "")
                + "."
            )

    def to_user(self, params):
        """ebm_ref dict -> ``{user name: ndarray}`` (fresh, writable float64 copies in the user's layout)."""
        self._check_keys(params, "params")
        out = {}
        for r, (u, ops) in self.entries.items():
            a = np.array(params[r], dtype=np.float64)
            if self.user_shapes is not None:
                want = self._forward_shape(r, self.user_shapes[u])
                if a.shape != want:
                    raise ValueError(
                        f"`params[{r!r}]` has shape {a.shape}; `{self.argname}[{r!r}]` maps the user parameter {u!r} of "
                        f"shape {self.user_shapes[u]} to shape {want}."
                    )
                shapes = [self.user_shapes[u]]
                for op, arg in ops:
                    shapes.append(tuple(reversed(shapes[-1])) if op == "T" else _reshape_target(shapes[-1], arg, r))
            else:
                shapes = None
            for i in range(len(ops) - 1, -1, -1):
                op, _ = ops[i]
                a = a.T if op == "T" else a.reshape(shapes[i])
            out[u] = np.array(a, dtype=np.float64, order="C")
        return out

    def to_ref(self, grads):
        """``{user name: ndarray}`` -> ebm_ref dict (layouts applied, structural zeros zeroed, dtype kept)."""
        out = {}
        for r, (u, ops) in self.entries.items():
            a = np.asarray(grads[u])
            for op, arg in ops:
                a = a.T if op == "T" else a.reshape(_reshape_target(a.shape, arg, f"`{self.argname}[{r!r}]`"))
            a = np.array(a, order="C")
            if r in self.zeros and self.zeros[r].shape == a.shape:
                a[self.zeros[r]] = 0
            out[r] = a
        return out

    def __repr__(self):
        parts = []
        for r, (u, ops) in self.entries.items():
            parts.append(f"{r}<-{u}" + ("" if not ops else " " + self._layout_text(ops)))
        return "{" + ", ".join(parts) + "}"


# ------------------------------------------------------------------ helpers
def _n_positional(fn, counts):
    """The first count in ``counts`` with which ``fn`` can be called positionally (or None)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return counts[0]
    for n in counts:
        try:
            sig.bind(*range(n))
            return n
        except TypeError:
            continue
    return None


def _seed_int(seed, bits=63):
    """A deterministic non-negative integer from ``seed`` (int, SeedSequence or Generator)."""
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, 2**bits))
    from .._rng import as_seed_sequence

    ss = as_seed_sequence(seed)
    state = int(ss.generate_state(1, np.uint64)[0])
    return state & ((1 << bits) - 1)


def _check_callable(fn, name):
    if not callable(fn):
        raise TypeError(f"`{name}` must be callable; got {type(fn).__name__}.")


class _Adapter(Mapping):
    """Common part: a read-only Mapping of the six primitives, so ``compare_energy(model, **adapter)`` works."""

    framework = ""

    def __getitem__(self, key):
        if key not in PRIMITIVES:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self):
        return iter(PRIMITIVES)

    def __len__(self):
        return len(PRIMITIVES)

    def __repr__(self):
        return f"{type(self).__name__}({self._what}, dtype={self.dtype_name}, mapping={self.mapping!r})"


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


# ---------------------------------------------------------------------- jax
def _path_name(path):
    parts = []
    for key in path:
        for attr in ("key", "idx", "name"):
            if hasattr(key, attr):
                parts.append(str(getattr(key, attr)))
                break
        else:
            parts.append(str(key))
    return ".".join(parts)


class JaxAdapter(_Adapter):
    r"""A JAX energy function seen through the plain callables of :mod:`ebm_ref.testing`.

    Built by :func:`from_jax`; same interface as :class:`TorchAdapter`
    (a mapping of the six primitives, :meth:`sampler`, :meth:`objective`).

    Attributes
    ----------
    dtype : numpy.dtype
        The dtype inputs and parameters are given in (float64 runs under
        ``jax.enable_x64``); results keep the dtype the code returned.
    mapping : ParamMap
    """

    framework = "jax"

    def __init__(self, fn, mapping, params, dtype, reference, jit):
        import jax

        self._jax = jax
        self.jit = bool(jit)
        self._cache = {}
        if fn is not None:
            _check_callable(fn, "fn")
        self._fn = fn
        try:
            dtype = np.dtype("float64" if dtype is None else dtype)
        except TypeError:
            raise TypeError(f"`dtype` must be a floating dtype such as jnp.float32; got {dtype!r}.") from None
        if dtype.kind != "f":
            raise TypeError(f"`dtype` must be a floating dtype such as jnp.float32; got {dtype!r}.")
        self.dtype = dtype
        self.dtype_name = dtype.name
        self._treedef = None
        shapes = None
        if params is not None:
            leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
            self._treedef = treedef
            self._leaf_names = [_path_name(p) for p, _ in leaves]
            shapes = {n: tuple(np.shape(v)) for n, (_, v) in zip(self._leaf_names, leaves)}
        self.mapping = ParamMap(mapping, user_shapes=shapes, reference=reference)
        self._what = f"function {getattr(fn, '__name__', 'None')}"

    def _x64(self):
        return self._jax.enable_x64(self.dtype == np.float64)

    def _tree(self, params):
        jnp = self._jax.numpy
        user = self.mapping.to_user(params)
        if self._treedef is not None:
            return self._treedef.unflatten([jnp.asarray(user[n], dtype=self.dtype) for n in self._leaf_names])
        tree = {}
        for name, a in user.items():
            parts = name.split(".")
            node = tree
            for p in parts[:-1]:
                node = node.setdefault(p, {})
            node[parts[-1]] = jnp.asarray(a, dtype=self.dtype)
        return tree

    def _flat(self, tree):
        leaves, _ = self._jax.tree_util.tree_flatten_with_path(tree)
        return {_path_name(p): np.array(v, copy=True) for p, v in leaves}

    def _arr(self, a):
        return self._jax.numpy.asarray(np.array(a, dtype=np.float64), dtype=self.dtype)

    def _e(self, p, x):
        if self._fn is None:
            raise TypeError("this adapter has no energy: pass an energy function as `fn`.")
        return self._fn(p, x)

    def _gx(self, p, x):
        return self._jax.grad(lambda y: self._e(p, y).sum())(x)

    def _hd(self, p, x):
        jnp = self._jax.numpy
        cols = []
        for k in range(x.shape[1]):
            e_k = jnp.zeros_like(x).at[:, k].set(1)
            _, t = self._jax.jvp(lambda y: self._gx(p, y), (x,), (e_k,))
            cols.append(t[:, k])
        return jnp.stack(cols, axis=1)

    def _compiled(self, name):
        """The jitted ``f(tree, x, extra)`` of primitive ``name`` (compiled once per input shape)."""
        if name not in self._cache:
            jax = self._jax
            gp = jax.grad
            fns = {
                "energy": lambda p, x, a: self._e(p, x),
                "grad_x": lambda p, x, a: self._gx(p, x),
                "hessian_diag": lambda p, x, a: self._hd(p, x),
                "grad_params": lambda p, x, a: gp(lambda q: (a * self._e(q, x)).sum())(p),
                "grad_params_of_grad_x": lambda p, x, a: gp(lambda q: (a * self._gx(q, x)).sum())(p),
                "grad_params_of_hessian_diag": lambda p, x, a: gp(lambda q: (a * self._hd(q, x)).sum())(p),
            }
            self._cache[name] = jax.jit(fns[name]) if self.jit else fns[name]
        return self._cache[name]

    def _run(self, name, params, x, extra=None):
        with self._x64():
            out = self._compiled(name)(self._tree(params), self._arr(x), None if extra is None else self._arr(extra))
            if name.startswith("grad_params"):
                return self.mapping.to_ref(self._flat(out))
            return np.array(out, copy=True)

    def energy(self, params, x):
        """``E(x)``, shape ``(n,)``, as the user's code returns it."""
        return self._run("energy", params, x)

    def grad_x(self, params, x):
        """``dE/dx`` by ``jax.grad``, ``(n, d)``."""
        return self._run("grad_x", params, x)

    def hessian_diag(self, params, x):
        """``d^2E/dx_k^2``: a forward-over-reverse product per coordinate, ``(n, d)``."""
        return self._run("hessian_diag", params, x)

    def grad_params(self, params, x, weights):
        """``sum_i w_i dE(x_i)/dtheta`` in ebm_ref's layout."""
        return self._run("grad_params", params, x, weights)

    def grad_params_of_grad_x(self, params, x, v):
        """``sum_i d/dtheta [v_i . dE/dx(x_i)]`` in ebm_ref's layout."""
        return self._run("grad_params_of_grad_x", params, x, v)

    def grad_params_of_hessian_diag(self, params, x, c):
        """``sum_ik c_ik d/dtheta [d^2E/dx_k^2 (x_i)]`` in ebm_ref's layout."""
        return self._run("grad_params_of_hessian_diag", params, x, c)

    def sampler(self, fn, *, step=False):
        """Wrap a JAX sampler as ``sample_fn(params, x0, n_steps, rng)`` for :func:`check_sampler`.

        Parameters
        ----------
        fn : callable
            ``fn(params, x, n_steps, key) -> x`` (``step=False``), or one
            transition ``fn(params, x, key) -> x`` (``step=True``; the key is
            split before each step). ``key`` is a ``jax.random.PRNGKey``
            seeded from the NumPy Generator ``rng``.
        step : bool, default False
        """
        _check_callable(fn, "fn")
        jax = self._jax
        if self.jit and step:
            fn = jax.jit(fn)

        def sample_fn(params, x0, n_steps, rng):
            with self._x64():
                key = jax.random.PRNGKey(_seed_int(rng, 32))
                tree, x = self._tree(params), self._arr(x0)
                if step:
                    for _ in range(int(n_steps)):
                        key, sub = jax.random.split(key)
                        x = fn(tree, x, sub)
                else:
                    x = fn(tree, x, int(n_steps), key)
                return np.array(x, copy=True)

        return sample_fn

    def objective(self, fn):
        """Wrap a JAX loss as ``value_and_grad(params, x, seed) -> (loss, grads)``.

        ``fn(params, x, key) -> scalar`` (or ``fn(params, x)`` for a
        deterministic loss); the gradient is ``jax.value_and_grad`` with
        respect to the mapped parameters, in ebm_ref's layout (compiled
        with ``jax.jit`` unless ``jit=False``). The same ``seed`` gives the
        same key.
        """
        _check_callable(fn, "fn")
        n_args = _n_positional(fn, (3, 2))
        if n_args is None:
            raise TypeError("`fn` must take (params, x[, key]) positionally.")
        jax = self._jax
        if n_args == 3:
            vg = jax.value_and_grad(lambda p, x, key: fn(p, x, key))
        else:
            vg = jax.value_and_grad(lambda p, x, key: fn(p, x))
        if self.jit:
            vg = jax.jit(vg)

        def value_and_grad(params, x, seed):
            with self._x64():
                key = jax.random.PRNGKey(_seed_int(seed, 32))
                loss, g = vg(self._tree(params), self._arr(x), key)
                return np.array(loss, copy=True)[()], self.mapping.to_ref(self._flat(g))

        return value_and_grad


def from_jax(fn, mapping=None, *, params=None, dtype=None, reference=None, jit=True):
    r"""Adapt a JAX energy function of a parameter pytree to the plain callables of the checks.

    Parameters
    ----------
    fn : callable
        ``fn(params, x) -> (n,)`` energies of a batch ``(n, d)``, with
        ``params`` a pytree. May be ``jax.jit``-ed.
    mapping : dict, optional
        ebm_ref name -> user path, or ``(user path, layout)``: paths are
        dotted (``"layers.0.W"``: dict keys, sequence indices, attribute
        names), layouts as in :func:`from_torch` (``"T"``, a reshape target,
        or a list of those). Unnamed leaves map by identity.
    params : pytree, optional
        An example of the user's parameters (e.g. the output of their
        ``init``): gives the pytree structure, the leaf paths and shapes
        (needed for reshapes and the identity default). Without it the
        pytree is nested dicts built from the dotted paths of ``mapping``.
    dtype : dtype, optional
        Default float64 (calls run under ``jax.enable_x64(True)``, whatever
        the global setting); ``jnp.float32`` checks the float32 path.
    reference : EnergyModel, optional
        As in :func:`from_torch`.
    jit : bool, default True
        Compile each primitive with ``jax.jit`` (once per input shape; the
        checks reuse a few shapes, so this is much faster than eager
        dispatch). Pass ``False`` for code that cannot be traced (Python
        control flow on values).

    Returns
    -------
    JaxAdapter

    Notes
    -----
    ``grad_x`` is ``jax.grad`` of :math:`\sum_i E(x_i)`; the Hessian
    diagonal is exact: for each coordinate :math:`k`, the forward-mode
    derivative of that gradient along :math:`e_k` (one JVP per coordinate),
    assuming each sample's energy depends on that sample only; the
    parameter derivatives are ``jax.grad`` of the weighted scalars listed
    in :func:`from_torch`. Leaves a scalar does not depend on get zeros.
    """
    return JaxAdapter(fn, mapping, params, dtype, reference, jit)
