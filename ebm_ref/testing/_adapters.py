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

import inspect
from collections.abc import Mapping

import numpy as np

from ._compare import PRIMITIVES

__all__ = ["ParamMap", "from_torch", "from_jax", "TorchAdapter", "JaxAdapter"]


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


# The framework adapters live beside this base (one module per framework);
# they are imported last because they subclass ``_Adapter``.
from ._jax_adapter import JaxAdapter, from_jax  # noqa: E402
from ._parammap import ParamMap  # noqa: E402
from ._torch_adapter import TorchAdapter, from_torch  # noqa: E402
