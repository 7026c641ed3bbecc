r"""``ParamMap``: ebm_ref's parameter names and layouts <-> the user's (docs/torch-jax.md).

The mapping is declared per ebm_ref parameter as "take the user's tensor
``name`` and apply ``layout`` to get mine", the direction a user reads when
comparing two shapes; :class:`ParamMap` inverts it for the way in. A reshape
is only invertible when the user's shape is known, so it needs a module or
an example of the parameters. Framework-free: the torch and jax adapters
both go through it.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping

import numpy as np


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
