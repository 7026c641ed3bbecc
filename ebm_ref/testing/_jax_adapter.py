r"""The JAX adapter: a function of the user's parameters -> the six primitives as NumPy callables (docs/torch-jax.md).

jax is imported only inside the adapter, so ``import ebm_ref.testing``
stays cheap and works without it.
"""

from __future__ import annotations


import numpy as np

from ._adapters import _Adapter, _check_callable, _n_positional, _seed_int
from ._parammap import ParamMap


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
