r"""Built-in sweep tasks (``python -m ebm_ref sweep SPEC`` names them).

Each task is a top-level ``fn(settings, seed) -> dict`` and has an entry in
:data:`TASKS` that declares its settings, their types and defaults, so the
command line can refuse a misspelt or mistyped setting before anything
runs, and fill in the defaults (the settings, defaults included, name the
task and derive its seed).

* ``ising_2d`` — the periodic 2-D Ising model at one ``beta`` and size
  ``L`` with one of three samplers: energy, :math:`|m|`, specific heat,
  susceptibility and Binder cumulant with error bars, next to the exact
  energy and specific heat (Kaufman's finite-lattice formulas);
* ``ais_log_z`` — AIS or reverse AIS :math:`\log Z` of a model stored in a
  reference file, next to the exact value where enumeration reaches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["TASKS", "TaskSpec", "REQUIRED", "ising_2d", "ais_log_z", "complete_settings"]

REQUIRED = object()


@dataclass(frozen=True)
class TaskSpec:
    """A built-in task: its function, settings ``name -> (type, default)``, choices."""

    fn: object
    settings: dict
    choices: dict = field(default_factory=dict)
    summary: str = ""


def _type_ok(value, kind):
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, kind)


def complete_settings(task, settings):
    """Check one task's settings against its spec and fill in the defaults.

    Returns a new dict in the spec's order (floats given as ints become
    floats, so ``beta = 1`` and ``beta = 1.0`` name the same task).

    Raises
    ------
    ValueError
        For an unknown or missing setting or a value outside its choices.
    TypeError
        For a value of the wrong type.
    """
    spec = TASKS[task]
    unknown = [k for k in settings if k not in spec.settings]
    if unknown:
        raise ValueError(
            f"task {task!r} has no setting {unknown[0]!r}; its settings are {', '.join(spec.settings)}."
        )
    out = {}
    for name, (kind, default) in spec.settings.items():
        if name in settings:
            value = settings[name]
        elif default is REQUIRED:
            raise ValueError(f"task {task!r} needs the setting {name!r}.")
        else:
            value = default
        if not _type_ok(value, kind):
            raise TypeError(
                f"task {task!r} setting {name!r} must be {kind.__name__}; got {type(value).__name__} {value!r}."
            )
        if kind is float:
            value = float(value)
        if name in spec.choices and value not in spec.choices[name]:
            raise ValueError(
                f"task {task!r} setting {name!r} must be one of {', '.join(map(repr, spec.choices[name]))}; "
                f"got {value!r}."
            )
        out[name] = value
    return out


# ------------------------------------------------------------- 2-D Ising
#: Most float64 trace entries kept in memory at once by ``ising_2d`` (64 MiB).
_TRACE_ENTRIES = 1 << 23


def ising_2d(settings, seed):
    r"""Thermodynamics of the periodic ``L x L`` Ising model at one ``beta``.

    Parameters
    ----------
    settings : dict
        ``beta`` (inverse temperature, > 0; coupling 1, no field), ``L``
        (side, >= 2), ``sampler`` (``"gibbs"``: checkerboard Gibbs sweeps;
        ``"swendsen_wang"``; ``"wolff"``), ``n_chains`` (independent chains
        from independent uniform random starts), ``n_burn`` (steps dropped
        at the start of each chain), ``n_steps`` (steps measured after
        them) and ``thin`` (measure every ``thin``-th step).
    seed : numpy.random.SeedSequence
        The task's seed.

    Returns
    -------
    dict
        Per site: ``energy`` :math:`\langle Hangle/N`, ``abs_m``
        :math:`\langle|M|angle/N`, ``specific_heat``
        :math:`eta^2\operatorname{Var}(H)/N`, ``susceptibility``
        :math:`eta(\langle M^2angle - \langle|M|angle^2)/N` and
        ``binder`` :math:`U_4 = 1 - \langle M^4angle/(3\langle M^2
        angle^2)`, each with ``<name>_err`` (standard error) and
        ``<name>_tau`` (integrated autocorrelation time in saved states),
        from :func:`ebm_ref.observables.ising_observables`;
        ``energy_exact`` and ``specific_heat_exact`` from
        :func:`ebm_ref.exact.ising_energy_2d` and
        :func:`ebm_ref.exact.ising_specific_heat_2d` (the finite ``L``, not
        the infinite lattice), and ``energy_z``, ``specific_heat_z``: the
        differences in units of the error bars; ``n_saved`` states per
        chain.

    Notes
    -----
    :math:`H = -\sum_{\langle ijangle} s_i s_j` (each bond once) and
    :math:`M = \sum_i s_i`. One step is one sweep of all sites (Gibbs), one
    Swendsen-Wang decomposition, or one Wolff cluster flip: at high
    temperature a Wolff step moves a few spins only, so compare samplers
    by ``<name>_tau`` times their cost, not by ``n_steps``. The
    measurement runs in segments whose traces hold at most
    :math:`2^{23}` numbers, each continuing from the last states with its
    own stream, so memory stays bounded for any ``n_steps``. Random
    streams: starts from ``spawn_key + (1,)``, burn-in from ``(0, 0)``,
    segment ``k`` from ``(0, k + 1)`` appended to the task seed's key.

    References
    ----------
    Kaufman, B. (1949). Crystal statistics II. Partition function
    evaluated by spinor analysis. Physical Review 76(8), 1232-1243.
    Binder, K. (1981). Finite size scaling analysis of Ising model block
    distribution functions. Zeitschrift fur Physik B 43, 119-140.
    """
    from .. import exact, samplers
    from .._rng import STREAM_INIT, STREAM_SAMPLE
    from ..energies import Ising
    from ..observables import ising_observables, lattice_series

    beta, L = settings["beta"], settings["L"]
    model = Ising.lattice(L, beta)
    step = {"gibbs": samplers.gibbs, "swendsen_wang": samplers.swendsen_wang, "wolff": samplers.wolff}
    sample = step[settings["sampler"]]
    n, d = settings["n_chains"], L * L
    key = tuple(seed.spawn_key)

    def sub(*k):
        return np.random.SeedSequence(seed.entropy, spawn_key=key + k)

    g = np.random.default_rng(sub(STREAM_INIT))
    x = 2.0 * g.integers(0, 2, size=(n, d)) - 1.0
    if settings["n_burn"]:
        x = sample(model, x, settings["n_burn"], sub(STREAM_SAMPLE, 0)).x
    thin = settings["thin"]
    n_saved = settings["n_steps"] // thin
    per = max(1, _TRACE_ENTRIES // (n * d))  # saved states per segment
    H, M = [], []
    done, k = 0, 0
    while done < n_saved:
        m = min(per, n_saved - done)
        res = sample(model, x, m * thin, sub(STREAM_SAMPLE, k + 1), thin=thin)
        h_k, m_k = lattice_series(model, res.trace)
        H.append(h_k)
        M.append(m_k)
        x = res.x
        done += m
        k += 1
    obs = ising_observables(np.concatenate(H), np.concatenate(M), beta, d)
    out = {}
    names = {"energy": "energy", "abs_magnetization": "abs_m", "specific_heat": "specific_heat",
             "susceptibility": "susceptibility", "binder": "binder"}
    for src, name in names.items():
        est = obs[src]
        out[name] = float(est.value)
        out[f"{name}_err"] = float(est.stderr)
        out[f"{name}_tau"] = float(est.tau_int)
    out["energy_exact"] = float(exact.ising_energy_2d(L, beta))
    out["specific_heat_exact"] = float(exact.ising_specific_heat_2d(L, beta))
    for name in ("energy", "specific_heat"):
        err = out[f"{name}_err"]
        out[f"{name}_z"] = (out[name] - out[f"{name}_exact"]) / err if err > 0 else math.nan
    out["n_saved"] = int(n_saved)
    return out


def _check_ising_settings(tasks):
    """Before running: sizes and counts in range (the model is built on the worker)."""
    for t in tasks:
        if not (math.isfinite(t["beta"]) and t["beta"] > 0):
            raise ValueError(f"ising_2d: beta must be finite and > 0; got {t['beta']!r}.")
        if t["L"] < 2:
            raise ValueError(f"ising_2d: L must be >= 2; got {t['L']}.")
        for name, low in (("n_chains", 1), ("n_burn", 0), ("thin", 1)):
            if t[name] < low:
                raise ValueError(f"ising_2d: {name} must be >= {low}; got {t[name]}.")
        if t["n_steps"] // t["thin"] < 4:
            raise ValueError(f"ising_2d: n_steps // thin must be >= 4 saved states; got {t['n_steps']} // {t['thin']}.")


ising_2d.check_settings = _check_ising_settings


# --------------------------------------------------------------- AIS / log Z
def _enumerated_bits(model):
    """Units :func:`ebm_ref.exact.log_partition` would enumerate (None: no enumeration)."""
    from ..energies import GRBM, RBM, Ising

    if isinstance(model, RBM):
        return min(model.params["W"].shape)
    if isinstance(model, GRBM):
        return model.params["W"].shape[1]
    if isinstance(model, Ising):
        return model.n_features
    return None


def _exact_states(model, n, ss):
    """``n`` exact samples of a small binary model, by enumeration."""
    from ..exact import probabilities

    states, probs = probabilities(model)
    rng = np.random.default_rng(ss)
    idx = rng.choice(len(probs), size=n, p=probs / probs.sum())
    return states[idx]


def ais_log_z(settings, seed):
    r"""AIS (``method="ais"``) or reverse AIS (``"reverse"``) estimate of :math:`\log Z`.

    Parameters
    ----------
    settings : dict
        ``model`` (path of a reference file written by
        :func:`ebm_ref.reference.save`; an RBM, GRBM or Ising model),
        ``method`` (``"ais"`` or ``"reverse"``), ``n_chains``, ``n_betas``
        (inverse temperatures, both ends included), ``schedule`` (a kind of
        :func:`ebm_ref.estimate.betas`), ``n_burn`` (Gibbs steps that make
        reverse-AIS start states when exact samples are out of reach) and
        ``max_exact_bits`` (enumerate for the exact value only up to
        ``2**max_exact_bits`` states).
    seed : numpy.random.SeedSequence
        The task's seed.

    Returns
    -------
    dict
        ``log_z``, ``stderr``, ``ess`` (of the AIS result); ``log_z_exact``
        (NaN where not enumerated); ``error = log_z - log_z_exact``;
        ``start`` (reverse AIS: ``"exact"`` samples by enumeration, or
        ``"gibbs"`` after ``n_burn`` steps from uniform states; ``"base"``
        for forward AIS).

    Notes
    -----
    Forward AIS underestimates :math:`\log Z` on average and reverse AIS
    from exact samples overestimates it (Burda, Grosse & Salakhutdinov
    2015), so the two bracket the truth; from Gibbs states the reverse
    estimate is only as good as those states. Random streams: the AIS
    chains use the task seed; the start states use the streams of
    ``SeedSequence(seed.entropy, spawn_key=seed.spawn_key + (1,))``.
    """
    from .._rng import STREAM_INIT
    from ..energies import GRBM, RBM, Ising
    from ..estimate import ais, betas, reverse_ais
    from ..exact import log_partition
    from ..reference import load
    from ..samplers import gibbs

    model = load(settings["model"]).model()
    if not isinstance(model, (RBM, GRBM, Ising)):
        raise TypeError(f"ais_log_z: the model in {settings['model']!r} is a {type(model).__name__}; "
                        "AIS supports RBM, GRBM and Ising.")
    bs = betas(settings["n_betas"], settings["schedule"])
    bits = _enumerated_bits(model)
    exact = math.nan
    if bits is not None and bits <= settings["max_exact_bits"]:
        exact = float(log_partition(model))
    n = settings["n_chains"]
    init = np.random.SeedSequence(seed.entropy, spawn_key=tuple(seed.spawn_key) + (STREAM_INIT,))
    if settings["method"] == "ais":
        res = ais(model, n, bs, seed)
        start = "base"
    else:
        if not isinstance(model, GRBM) and model.n_features <= 20 and bits <= settings["max_exact_bits"]:
            x0 = _exact_states(model, n, init)
            start = "exact"
        else:
            g = np.random.default_rng(init)
            d = model.n_features
            if isinstance(model, GRBM):
                x0 = g.standard_normal((n, d))
            elif model.domain == "spin":
                x0 = 2.0 * g.integers(0, 2, size=(n, d)) - 1.0
            else:
                x0 = g.integers(0, 2, size=(n, d)).astype(np.float64)
            x0 = gibbs(model, x0, settings["n_burn"], np.random.SeedSequence(init.entropy, spawn_key=init.spawn_key + (0,))).x
            start = "gibbs"
        res = reverse_ais(model, x0, bs, seed)
    return {
        "log_z": float(res.log_z),
        "stderr": float(res.stderr),
        "ess": float(res.ess),
        "log_z_exact": exact,
        "error": float(res.log_z) - exact,
        "start": start,
    }


def _check_ais_settings(tasks):
    """Before running: every ``model`` file exists and is a reference file."""
    from ..reference import load

    for path in sorted({t["model"] for t in tasks}):
        try:
            load(path)
        except FileNotFoundError:
            raise ValueError(f"ais_log_z: model file {path!r} not found.") from None
        except (OSError, ValueError, KeyError) as exc:
            raise ValueError(f"ais_log_z: model file {path!r} is not a reference file ({exc}).") from None


ais_log_z.check_settings = _check_ais_settings

TASKS = {
    "ising_2d": TaskSpec(
        fn=ising_2d,
        settings={
            "beta": (float, REQUIRED),
            "L": (int, REQUIRED),
            "sampler": (str, "gibbs"),
            "n_chains": (int, 8),
            "n_burn": (int, 1000),
            "n_steps": (int, 10000),
            "thin": (int, 1),
        },
        choices={"sampler": ("gibbs", "swendsen_wang", "wolff")},
        summary="2-D Ising: energy, |m|, specific heat, Binder U4 with error bars next to the exact values",
    ),
    "ais_log_z": TaskSpec(
        fn=ais_log_z,
        settings={
            "model": (str, REQUIRED),
            "method": (str, "ais"),
            "n_chains": (int, 100),
            "n_betas": (int, 1000),
            "schedule": (str, "sigmoid"),
            "n_burn": (int, 1000),
            "max_exact_bits": (int, 24),
        },
        choices={"method": ("ais", "reverse"), "schedule": ("linear", "sigmoid", "three_piece")},
        summary="AIS / reverse AIS log Z of saved models (reference files), with the exact value where enumeration reaches",
    ),
}
