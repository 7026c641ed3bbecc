r"""Gibbs samplers: block Gibbs for RBM/GRBM (``_block_gibbs``), single-site heat-bath sweeps for binary models."""

from __future__ import annotations

import numpy as np

from .._threads import one_thread_blas
from ..energies import GRBM, RBM, EnergyModel, Ising
from ..energies import kernels
from ..energies.ising import coupling_csr
from . import _lattice
from ._binary import site_gibbs_run
from ._block_gibbs import grbm_block_gibbs, rbm_block_gibbs
from ._common import finish, prepare, run_steps, unsupported
from ._flip import final_energies

__all__ = ["gibbs"]


_METHODS = {
    "rbm": ("block",),
    "grbm": ("block",),
    "ising": ("sequential", "checkerboard"),
    "site": ("sequential",),
}


def gibbs(model, x0, n_steps, seed, thin=0, method=None):
    r"""Gibbs sampling: block Gibbs for RBM/GRBM, single-site sweeps for Ising and other binary models.

    Parameters
    ----------
    model : RBM, GRBM, Ising, FVBM or any binary model with a Numba form
        For RBM/GRBM the chain state is the visible vector ``v``; the hidden
        units are redrawn inside every step and not returned. Other binary
        models (``FVBM``, ...) are swept site by site like a dense Ising
        model (``method="sequential"`` only).
    x0 : ndarray of shape (n_chains, d) or (d,)
        Initial states in the model's domain ({0,1} for RBM, reals for
        GRBM, the Ising model's ``domain``). Never modified.
    n_steps : int
        Number of steps (>= 0). One step is ``h ~ p(h|v)`` then
        ``v ~ p(v|h)`` for RBM/GRBM, one full sweep over all sites for Ising.
    seed : int, numpy.random.SeedSequence or numpy.random.Generator
        Chain ``c`` draws only from its own stream (see ``docs/conventions.md``).
    thin : int, default 0
        Save the states after steps ``thin, 2 thin, ...`` (0: no trace).
    method : str or None, default None
        RBM/GRBM: ``"block"`` (the only one, and the default). Ising:
        ``"sequential"`` (sites ``0, 1, ..., d-1``; the default for a
        general model) or ``"checkerboard"`` (sites ordered by colour class,
        see Notes; the default for a lattice: ``model.lattice`` or
        ``model.lattice_size`` set).

    Returns
    -------
    SampleResult
        ``acceptance_rate`` is ``None`` (no accept/reject step);
        ``energies`` are ``model.energy`` of the final states (free energies
        for RBM/GRBM).

    Raises
    ------
    TypeError
        For a model that is none of these (the message names the supported ones).
    ValueError
        For ``x0`` of the wrong shape or outside the domain, ``n_steps < 0``,
        ``thin < 0`` or an unknown ``method``.

    Notes
    -----
    **RBM** (:math:`a = b_h + W^\top v`, :math:`b = b_v + W h`):

    .. math::

        p(h_j = 1 | v) = \sigma(a_j), \qquad p(v_k = 1 | h) = \sigma(b_k).

    **GRBM** (:math:`\sigma_k^2 = e^{\mathrm{log\_var}_k}`):

    .. math::

        p(h_j = 1 | v) = \sigma\big((W^\top (v / \sigma^2))_j + b_{h,j}\big),
        \qquad v | h \sim \mathcal N(W h + \mu, \operatorname{diag}\sigma^2).

    The products ``v W`` and ``h W^T`` go through BLAS, always on blocks of
    exactly 128 chains (the last block zero-padded): OpenBLAS was measured to
    round a row differently depending on the number of rows of the product,
    never on the other rows' contents, so fixed-shape blocks keep chain ``c``
    bit-identical whatever ``n_chains`` (see ``docs/conventions.md``). Each product is also cut
    into a few tiles of output units fixed by the model's shape, and each
    tile is one single-threaded BLAS call (OpenBLAS is pinned to one thread
    for the call, then restored): the same computation at any thread
    count, hence bit-identical results with 1 or 2 threads. Given enough
    work, ``numba.get_num_threads()`` Python threads share it: whole blocks
    each when there are at least two per thread, otherwise the tiles and
    the chains' draws of every half-step (``nogil`` draw kernels). Each
    chain draws from its own stream, one uniform per unit in unit order:
    ``u < sigmoid(a)``, evaluated as ``u (1 + e) < top`` with
    ``e = exp(-|a|)`` and ``top = 1`` if ``a >= 0`` else ``e`` (no
    division, a select instead of a branch), the uniforms of 16 chains
    generated in lock-step (SIMD over chains; see ``_bernoulli_rows``);
    Gaussian visibles by Box-Muller.

    **Ising** (:math:`f_i = h_i + \sum_j J_{ij} x_j`): site ``i`` is redrawn
    from its exact conditional (heat bath),

    .. math::

        p(s_i = +1 | s_{-i}) = \sigma(2 f_i) \;\text{(spins)}, \qquad
        p(x_i = 1 | x_{-i}) = \sigma(f_i) \;\text{(0/1)},

    one uniform per site in visiting order. ``"checkerboard"`` visits the
    colour classes of a greedy proper colouring of the coupling graph (site
    order, smallest free colour): sites of one colour share no coupling, so
    updating them one by one equals updating them simultaneously, which is
    the checkerboard update. For a periodic lattice with even ``L`` the
    classes are the two sublattices ``(r + c)`` even, then odd; for odd
    ``L`` no 2-colouring exists and the greedy colouring has three classes,
    which is still a valid systematic sweep (every site once, each from its
    exact conditional): colour ``(f(r) + f(c)) mod 3`` with ``f`` the
    3-colouring ``0, 1, 0, 1, ..., 2`` of the odd cycle. Models without a
    lattice use the greedy colouring (for a dense ``J`` every site is its
    own class, i.e. the sequential sweep). Chains run in parallel; within a chain the sites of
    a class are visited in index order. For lattice models (``Ising.lattice``,
    which store no ``J``, and dense models detected as such a lattice) the
    conditional comes from a 5-entry table of the neighbour sum (same random
    numbers); with both sides even the checkerboard advances groups of
    ``LANES`` (16) chains in lock-step on int8 copies of their spins
    (SIMD over chains; bit-identical to the table path). A lattice model
    reaches these kernels from its structure alone (set-up O(1) plus
    O(n_chains d) for copying the states and the final energies; no ``J``,
    no CSR); a rectangular ``(L1, L2)`` torus with an odd side uses the
    3-colouring ``(f_1(r) + f_2(c)) mod 3``, and a free boundary the
    checkerboard ``(r + c) mod 2`` with the general kernel. See
    ``docs/lattices.md``.

    References
    ----------
    Geman, S. & Geman, D. (1984). Stochastic relaxation, Gibbs distributions
    and the Bayesian restoration of images. IEEE TPAMI 6(6).
    Hinton, G. E. (2002). Training products of experts by minimizing
    contrastive divergence. Neural Computation 14(8).
    Liao, R., Kornblith, S., Ren, M., Fleet, D. J. & Hinton, G. (2022).
    Gaussian-Bernoulli RBMs without tears. arXiv:2210.10318.
    """
    kind, form = _gibbs_kind(model)
    if kind is None:
        raise unsupported("gibbs", model, ["RBM", "GRBM", "Ising", "FVBM", "any binary model with a Numba form"])
    method = _check_method(kind, method, model)
    prep = prepare(model, x0, n_steps, seed, thin)
    if kind in ("ising", "site"):
        _site_gibbs(model, form, prep, method)
        return finish(prep, final_energies(model, prep.x))
    with one_thread_blas():
        run = (rbm_block_gibbs if kind == "rbm" else grbm_block_gibbs)(model, prep)
        run_steps(prep, run, "gibbs")
        run.finish()
        return finish(prep, final_energies(model, prep.x))


def _gibbs_kind(model):
    """``(kind, form)``: block Gibbs for RBM / GRBM (their hidden layer), site sweeps for binary-family models.

    An ``Ising`` model (lattices and colourings; a stored lattice needs no
    Numba form) gets the lattice kernels and the checkerboard order; any
    other model registered in the binary family the sequential sweep.
    """
    if isinstance(model, Ising) and model.lattice is not None:
        return "ising", None
    form = model.numba_form() if isinstance(model, EnergyModel) else None
    if form is None:
        return None, None
    if form.kind == RBM.NUMBA_KIND:
        return "rbm", form
    if form.kind == GRBM.NUMBA_KIND:
        return "grbm", form
    if form.kind in kernels.BINARY_KINDS:
        return ("ising" if isinstance(model, Ising) else "site"), form
    return None, None


def _check_method(kind, method, model):
    allowed = _METHODS[kind]
    if method is None:
        if kind == "ising":
            on_lattice = model.lattice is not None or getattr(model, "lattice_size", None) is not None
            return "checkerboard" if on_lattice else "sequential"
        return allowed[0]
    if not isinstance(method, str) or method not in allowed:
        raise ValueError(
            f"`method` of gibbs for {type(model).__name__} must be None or one of {list(allowed)}; got {method!r}."
        )
    return method


# ------------------------------------------------------------------------ Ising


def _run_sites(form, spin, order, prep):
    """The general site-by-site sweep (``site_gibbs_run``) of a model's Numba form."""
    cache = np.empty((prep.x.shape[0], form.n_work))
    down = -1.0 if spin else 0.0

    def chunk(t0, count):
        site_gibbs_run(form.kind, form.ip, form.fp, down, order, prep.x, cache, t0, count, prep.thin, prep.rng,
                       prep.trace)

    run_steps(prep, chunk, "gibbs")


def _site_gibbs(model, form, prep, method):
    spin = model.domain == "spin"
    if form is None:  # an Ising.lattice (see _gibbs_kind)
        _lattice_gibbs(model, prep, method, spin)
        return
    d = model.n_features
    if method == "checkerboard":
        indptr, indices, _ = coupling_csr(model)
        order, _ = _lattice.colour_order(model, indptr, indices)
    else:
        order = np.arange(d, dtype=np.int64)
    lattice = _lattice.homogeneous_lattice(model) if isinstance(model, Ising) else None
    if lattice is not None and method == "checkerboard" and lattice[0] % 2 == 0:
        L, K, field = lattice
        thresholds = _lattice.uniform_thresholds(_lattice.lattice_table(K, field, spin))
        run_steps(prep, lambda t0, count: _lattice.lattice_checkerboard_run(
            L, thresholds, spin, prep.x, t0, count, prep.thin, prep.rng, prep.trace), "gibbs")
    elif lattice is not None:
        L, K, field = lattice
        _lattice_sweeps(_lattice.lattice_neighbours(L), _lattice.lattice_table(K, field, spin), spin, order, prep)
    else:
        _run_sites(form, spin, order, prep)


def _lattice_gibbs(model, prep, method, spin):
    """Heat-bath sweeps of a lattice model from its structure: no ``J``, no CSR for a torus.

    Same kernels, tables and visiting orders as a dense model detected as a
    lattice (``model.lattice_size``), hence the same chains bit for bit:
    the coupling ``K = beta * coupling`` and field ``beta * field`` are the
    numbers the detection recovers from ``J`` and ``h``. Set-up is O(1)
    for the checkerboard (a 5-entry threshold table), O(d) otherwise.
    """
    spec = model.lattice
    K = spec.beta * spec.coupling
    field = spec.beta * spec.field
    L1, L2 = spec.shape
    torus = spec.boundary == "periodic"
    if method == "checkerboard" and torus and L1 % 2 == 0 and L2 % 2 == 0:
        # the checkerboard kernel visits exactly lattice_colour_order's order
        thresholds = _lattice.uniform_thresholds(_lattice.lattice_table(K, field, spin))
        run_steps(prep, lambda t0, count: _lattice.lattice_checkerboard_grid(
            L1, L2, thresholds, spin, prep.x, t0, count, prep.thin, prep.rng, prep.trace), "gibbs")
        return
    if method == "checkerboard":
        order, _ = _lattice.lattice_colour_order(spec.shape, spec.boundary)
    else:
        order = np.arange(L1 * L2, dtype=np.int64)
    if not torus:
        # fewer than four neighbours at the edges: the general sweep on the
        # lattice's CSR (O(d log d) to build)
        _run_sites(model.numba_form(), spin, order, prep)
    else:
        _lattice_sweeps(_lattice.lattice_neighbours(spec.shape), _lattice.lattice_table(K, field, spin), spin,
                        order, prep)


def _lattice_sweeps(neighbours, table, spin, order, prep):
    """The table-driven lattice sweep (``lattice_gibbs_run``) in chunks of sweeps."""
    run_steps(prep, lambda t0, count: _lattice.lattice_gibbs_run(
        neighbours, table, spin, order, prep.x, t0, count, prep.thin, prep.rng, prep.trace), "gibbs")
