"""Shared helpers of the figure scripts ``scripts/fig_*.py``.

Every figure goes through the same four steps, so they live here once:

* **seeds** -- :func:`seed_sequence` / :func:`rng`: one scheme for every
  random stream of every figure. The stream of figure ``f``, purpose
  ``k1, k2, ...`` is ``SeedSequence(seed, spawn_key=(f, k1, k2, ...))``,
  where ``seed`` is the figure's ``seed`` argument. This is the library's own
  derivation (its samplers give chain ``i`` of stream ``s`` the key
  ``spawn_key + (s, i)``): stateless, so a stream does not depend on which
  other streams were drawn before it (``SeedSequence.spawn`` would), and two
  figures never share a stream because the key starts with the figure
  number.
* **ESS** -- :func:`ess` and :data:`ESS_METHOD`: the one effective sample
  size of every caption, ``n_samples / tau_int`` with ``tau_int`` from
  :func:`ebm_ref.observables.integrated_autocorr_time` (Sokal's automatic
  window, pooled over chains), so ESS numbers of different figures can be
  compared. It is checked on AR(1) series of both signs of the coefficient
  in ``tests/test_figures_kit.py``.
* **drawing and saving** -- :func:`pyplot` / :func:`subplots` (the
  non-interactive Agg backend), :func:`label_axes` and
  :func:`write_figures`: one function that draws, saves and closes, at a
  fixed resolution, with no software/date metadata in the PNG, so the same
  numbers give the same bytes and regenerating leaves ``figures/``
  unchanged.
* **captions** -- :func:`markdown_table`. Captions carry statistics only;
  run times go nowhere in ``figures/`` (``python -m ebm_ref bench``
  measures speed): a timing would change the tracked files on every run.
"""

from __future__ import annotations

import pathlib

import numpy as np

from ebm_ref.observables import integrated_autocorr_time

#: Resolution of every PNG (dots per inch).
DPI = 110

#: PNG text chunks: none. Matplotlib writes a "Software" entry (its version)
#: by default; ``None`` removes it, so the file depends on the drawing only.
PNG_METADATA = {"Software": None}

#: How the ESS of every caption is computed (quoted in the captions).
ESS_METHOD = (
    "ESS = samples / tau_int, tau_int = 1 + 2 sum rho(t) over Sokal's automatic window (the smallest M >= 5 "
    "(1 + 2 sum |rho|)) of the autocorrelation pooled over chains (`ebm_ref.observables.integrated_autocorr_time`)"
)


def seed_sequence(seed, *key):
    """The stream ``key`` of a figure run with ``seed``.

    Parameters
    ----------
    seed : int or numpy.random.SeedSequence
        The figure's ``seed`` argument (a non-negative int), or a stream
        made by this function, whose key is then extended.
    *key : int
        The figure number first, then what the stream is for (panel, model,
        sampler, ...), each a non-negative int.

    Returns
    -------
    numpy.random.SeedSequence
        ``SeedSequence(seed, spawn_key=key)`` (for a SeedSequence ``seed``:
        its entropy, its spawn key followed by ``key``), accepted as ``seed``
        by every stochastic function of ebm_ref.
    """
    key = tuple(int(k) for k in key)
    if isinstance(seed, np.random.SeedSequence):
        return np.random.SeedSequence(seed.entropy, spawn_key=tuple(seed.spawn_key) + key)
    return np.random.SeedSequence(int(seed), spawn_key=key)


def rng(seed, *key):
    """A NumPy Generator on the stream :func:`seed_sequence` ``(seed, *key)``."""
    return np.random.default_rng(seed_sequence(seed, *key))


def ess(trace):
    """Effective sample size of a trace, by :data:`ESS_METHOD`.

    Parameters
    ----------
    trace : array_like of shape (n_steps, n_chains) or (n_steps, n_chains, k)
        Time first; ``k`` observables (e.g. coordinates) are treated one at
        a time.

    Returns
    -------
    float or ndarray of shape (k,)
        ``n_steps * n_chains / tau_int`` (per observable for a 3-D trace).
    """
    trace = np.asarray(trace, dtype=np.float64)
    n, c = trace.shape[:2]
    if trace.ndim == 2:
        return n * c / integrated_autocorr_time(trace)
    return np.array([n * c / integrated_autocorr_time(trace[:, :, j]) for j in range(trace.shape[2])])


def pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def subplots(*args, **kwargs):
    """``pyplot().subplots(*args, **kwargs)``: a new figure and its axes on the Agg backend."""
    return pyplot().subplots(*args, **kwargs)


def label_axes(ax, xlabel=None, ylabel=None, title=None, legend=None, grid=None):
    """Label one axes the way every panel of the figures is labelled.

    Parameters
    ----------
    ax : matplotlib Axes
    xlabel, ylabel, title : str, optional
        Set when given.
    legend, grid : dict, optional
        Keyword arguments of ``ax.legend`` / ``ax.grid`` (``{}`` for the
        defaults); no legend / grid when None.
    """
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(title)
    if legend is not None:
        ax.legend(**legend)
    if grid is not None:
        ax.grid(**grid)


def write_figures(out_dir, res, plots, caption, tight_layout=True, **save_kw):
    """Draw, save and close every figure of a script; the script's ``main`` result.

    Parameters
    ----------
    out_dir : path-like
        Created if missing.
    res : dict
        The script's computed numbers.
    plots : dict
        ``{file name: plot function}``; ``plot(res)`` returns a matplotlib
        Figure, laid out, saved as ``out_dir / name`` at :data:`DPI` without
        metadata, and closed.
    caption : callable
        ``caption(res, names)`` with ``names`` the file names in order.
    tight_layout : bool, default True
        Call ``fig.tight_layout()`` before saving (False for a figure whose
        axes it cannot arrange, e.g. one with a colorbar spanning a grid;
        pass ``bbox_inches="tight"`` instead).
    **save_kw
        Extra ``savefig`` arguments (e.g. ``bbox_inches="tight"``).

    Returns
    -------
    dict
        ``{"files": [paths], "caption": markdown}`` (what ``python -m
        ebm_ref figures`` expects of ``main``).
    """
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plt = pyplot()
    for name, plot in plots.items():
        fig = plot(res)
        if tight_layout:
            fig.tight_layout()
        fig.savefig(out_dir / name, dpi=DPI, metadata=PNG_METADATA, **save_kw)
        plt.close(fig)
    names = list(plots)
    return {"files": [str(out_dir / n) for n in names], "caption": caption(res, names)}


def markdown_table(header, rows):
    """A Markdown table: ``header`` a sequence of column titles, ``rows`` of cells (already formatted)."""
    lines = ["| " + " | ".join(str(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
