"""The MLP kernel's padded BLAS tiles: a chain's numbers depend on its own state only.

``energies._mlp_kernel`` makes every layer's product through BLAS on a tile
padded to ``TILE`` rows. Chain-prefix and thread invariance of the samplers
(``test_zoo_reproducibility``) rest on two properties of those products,
checked here directly on the kernel, bit for bit:

* a row's result is the same at every position of a tile, whatever the
  other rows hold (BLAS computes a GEMM row from its own row only);
* a tile of any size (1 state, a partial tile, several tiles) gives each
  row the bits of that row evaluated alone.

and one of the OpenBLAS pin: the library Numba's ``np.dot`` calls (SciPy's)
is the one ``blas_threads`` sets.
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from ebm_ref._threads import blas_threads, openblas_thread_controls
from ebm_ref.energies import MLPEnergy
from ebm_ref.energies.kernels import TILE_ROWS, continuous_eval_batch, continuous_eval_tile

SHAPES = [((2, 64, 64), "softplus"), ((5, 7), "tanh"), ((3, 33, 17, 9), "swish"), ((2, 6, 1), "softplus"),
          ((100, 256, 256), "softplus")]


def _tile(model, X, need_grad=True):
    kind, ip, fp, n_work = model.numba_form()
    X = np.ascontiguousarray(X, dtype=np.float64)
    G = np.full(X.shape, np.nan)
    E = np.full(X.shape[0], np.nan)
    continuous_eval_tile(kind, ip, fp, X, G, E, need_grad, np.empty((X.shape[0], n_work)), True)
    return E, G


@pytest.mark.parametrize("sizes,act", SHAPES, ids=[f"{s}-{a}" for s, a in SHAPES])
def test_row_result_same_at_every_position_and_beside_any_rows(sizes, act):
    model = MLPEnergy(sizes, activation=act, seed=3)
    rng = np.random.default_rng(1)
    x = 2.0 * rng.normal(size=sizes[0])
    e1, g1 = _tile(model, x[None, :])
    assert np.isfinite(e1).all() and np.isfinite(g1).all()
    for pos in range(TILE_ROWS):
        X = 3.0 * rng.normal(size=(TILE_ROWS, sizes[0]))
        X[pos] = x
        E, G = _tile(model, X)
        assert E[pos] == e1[0], pos
        np.testing.assert_array_equal(G[pos], g1[0])


@pytest.mark.parametrize("sizes,act", SHAPES[:3], ids=[f"{s}-{a}" for s, a in SHAPES[:3]])
def test_any_tile_size_gives_the_bits_of_rows_alone(sizes, act):
    model = MLPEnergy(sizes, activation=act, seed=4)
    x = np.random.default_rng(2).normal(size=(3 * TILE_ROWS + 5, sizes[0]))
    kind, ip, fp, n_work = model.numba_form()
    alone_e, alone_g = continuous_eval_batch(kind, ip, fp, x, n_work, True)
    for n in (1, 5, TILE_ROWS - 1, TILE_ROWS, TILE_ROWS + 1, x.shape[0]):
        E, G = _tile(model, x[:n])
        np.testing.assert_array_equal(E, alone_e[:n])
        np.testing.assert_array_equal(G, alone_g[:n])
    # and against the NumPy model: the same formula in another summation order
    np.testing.assert_allclose(alone_e, model.energy(x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(alone_g, model.grad_x(x), rtol=1e-10, atol=1e-12)


def test_energy_only_tiles_match_and_skip_nothing_they_report():
    model = MLPEnergy((4, 16, 8), seed=5)
    x = np.random.default_rng(3).normal(size=(40, 4))
    e_grad, _ = _tile(model, x, need_grad=True)
    e_only, g_untouched = _tile(model, x, need_grad=False)
    np.testing.assert_array_equal(e_only, e_grad)
    assert np.isnan(g_untouched).all()


def test_large_weights_stay_finite():
    # |W| ~ 50: pre-activations of several thousand; every activation form is
    # written in exp(-|z|), so nothing overflows
    for act in ("softplus", "tanh", "swish"):
        model = MLPEnergy((3, 8, 8), activation=act, seed=6)
        p = dict(model.params)
        p["W1"] = 50.0 * np.sign(p["W1"])
        p["W2"] = 50.0 * np.sign(p["W2"])
        big = model.with_params(p)
        x = np.random.default_rng(4).normal(size=(10, 3))
        E, G = _tile(big, x)
        assert np.isfinite(E).all() and np.isfinite(G).all()
        np.testing.assert_allclose(E, big.energy(x), rtol=1e-12)


def _scipy_openblas_get():
    """The thread-count getter of SciPy's OpenBLAS (the one Numba's ``np.dot`` calls), or None."""
    import scipy.linalg.cython_blas  # noqa: F401

    with open("/proc/self/maps") as fh:
        paths = sorted({ln.split()[-1] for ln in fh if "scipy.libs" in ln and "openblas" in ln.lower()})
    for path in paths:
        lib = ctypes.CDLL(path)
        if hasattr(lib, "scipy_openblas_get_num_threads"):
            fn = lib.scipy_openblas_get_num_threads
            fn.restype = ctypes.c_int
            return fn
    return None


def test_blas_pin_reaches_the_library_numba_calls():
    get_scipy = _scipy_openblas_get()
    assert openblas_thread_controls() is not None, "no OpenBLAS control found (the wheels ship OpenBLAS)"
    assert get_scipy is not None, "SciPy's OpenBLAS not found (SciPy wheels ship it)"
    before = get_scipy()
    with blas_threads(1):
        assert get_scipy() == 1
    assert get_scipy() == before
