"""Structured Ising lattices (``Ising.lattice``): the model without a dense ``J``.

What is checked, and against what (see docs/lattices.md):

* every primitive of the structured model against a dense-``J`` Ising whose
  ``J`` is built here, bond by bond, from the definition (square,
  rectangular, periodic and free, sides of length 2 with their double
  bonds, large couplings), and against finite differences;
* exact ``log Z`` by brute-force enumeration written here;
* ``edges()``, ``tempered()``, the dense-size limit, O(1) construction;
* ``gibbs`` (and ``gwg``, ``rwmh``) on lattice models bit-identical to the
  outputs recorded from the dense-``J`` implementation before the
  structured one existed; 1 vs 2 threads; chain prefixes;
* the new sampler paths (rectangular torus, free boundary) against the
  exact distribution, with planted-bug negative controls.
"""

import hashlib
import itertools
import pathlib
import textwrap
import time
import tracemalloc

import numpy as np
import pytest
from scipy.special import expit

from _threads_harness import run_at_thread_counts
from ebm_ref import exact
from ebm_ref.energies import Ising, LatticeSpec
from ebm_ref.energies import ising as ising_module
from ebm_ref.energies import lattice as lattice_module
from ebm_ref.energies import kernels
from ebm_ref.energies.ising import coupling_csr, lattice_csr
from ebm_ref.samplers import _lattice, gibbs, gwg, rwmh
from ebm_ref.samplers._flip import final_energies
from ebm_ref.testing import check_energy_derivatives, check_sampler

REPO = pathlib.Path(__file__).resolve().parent.parent


def _bond_J(shape, K, boundary):
    """Dense ``J`` from the definition: each site bonded to its right and lower neighbour."""
    L1, L2 = shape
    d = L1 * L2
    counts = np.zeros((d, d))
    for r in range(L1):
        for c in range(L2):
            i = r * L2 + c
            nbrs = []
            if boundary == "periodic":
                nbrs = [r * L2 + (c + 1) % L2, ((r + 1) % L1) * L2 + c]
            else:
                if c + 1 < L2:
                    nbrs.append(r * L2 + c + 1)
                if r + 1 < L1:
                    nbrs.append((r + 1) * L2 + c)
            for j in nbrs:
                counts[i, j] += 1.0
                counts[j, i] += 1.0
    return K * counts


def _dense_twin(model):
    """A dense-``J`` Ising with the couplings of ``model.lattice``, built from the definition."""
    s = model.lattice
    d = s.shape[0] * s.shape[1]
    J = _bond_J(s.shape, s.beta * s.coupling, s.boundary)
    return Ising(J, np.full(d, s.beta * s.field), domain=model.domain)


def _states(rng, n, d, domain):
    b = rng.integers(0, 2, size=(n, d)).astype(float)
    return 2.0 * b - 1.0 if domain == "spin" else b


SHAPES = [
    ((2, 2), "periodic"), ((3, 3), "periodic"), ((4, 4), "periodic"), ((2, 3), "periodic"),
    ((3, 2), "periodic"), ((3, 4), "periodic"), ((4, 6), "periodic"),
    ((2, 2), "free"), ((3, 3), "free"), ((2, 5), "free"), ((4, 3), "free"),
]


# ------------------------------------------------------------------ structure


@pytest.mark.parametrize("shape, boundary", SHAPES)
def test_params_equal_the_definition(shape, boundary):
    m = Ising.lattice(shape, 0.37, coupling=-1.5, field=0.2, boundary=boundary)
    assert m.lattice == LatticeSpec(shape, 0.37, -1.5, 0.2, boundary)
    assert m.n_features == shape[0] * shape[1]
    # K * count: the same floating-point products as the definition
    np.testing.assert_array_equal(m.params["J"], _bond_J(shape, 0.37 * -1.5, boundary))
    np.testing.assert_array_equal(m.params["h"], np.full(m.n_features, 0.37 * 0.2))
    assert m.lattice_size == (shape[0] if boundary == "periodic" and shape[0] == shape[1] else None)


def test_square_int_and_double_bonds():
    m = Ising.lattice(2, 0.5, coupling=1.5)
    assert m.lattice.shape == (2, 2) and m.lattice.boundary == "periodic"
    J = m.params["J"]
    # L = 2: left/right (and up/down) neighbours coincide: two bonds, 2 beta coupling
    np.testing.assert_array_equal(J, 0.75 * np.array([[0, 2, 2, 0], [2, 0, 0, 2], [2, 0, 0, 2], [0, 2, 2, 0]]))
    # free boundary: one bond per neighbour pair
    np.testing.assert_array_equal(Ising.lattice(2, 0.5, coupling=1.5, boundary="free").params["J"], J / 2)
    # all-up energy: -K * (number of bonds) = -0.75 * 2 * L1 * L2 on a torus
    np.testing.assert_allclose(m.energy(np.ones(4)), -0.75 * 8, rtol=1e-15)
    np.testing.assert_allclose(Ising.lattice((3, 5), 0.5, coupling=1.5).energy(np.ones(15)), -0.75 * 30, rtol=1e-15)
    np.testing.assert_allclose(Ising.lattice((3, 5), 0.5, coupling=1.5, boundary="free").energy(np.ones(15)),
                               -0.75 * (3 * 4 + 2 * 5), rtol=1e-15)


@pytest.mark.parametrize("shape, boundary", SHAPES)
@pytest.mark.parametrize("domain", ["spin", "binary"])
@pytest.mark.parametrize("K, field", [(0.3, 0.0), (-1.1, 0.7), (50.0, -50.0)])
def test_primitives_equal_dense_twin(shape, boundary, domain, K, field, rng):
    m = Ising.lattice(shape, 1.0, coupling=K, field=field, domain=domain, boundary=boundary)
    dense = _dense_twin(m)
    d = m.n_features
    scale = max(1.0, abs(K), abs(field))
    for x in (_states(rng, 7, d, domain), rng.normal(size=(5, d)) * 3.0, rng.normal(size=d)):
        tol = dict(rtol=1e-12, atol=1e-12 * scale * d)
        np.testing.assert_allclose(m.energy(x), dense.energy(x), **tol)
        np.testing.assert_allclose(m.grad_x(x), dense.grad_x(x), **tol)
        np.testing.assert_array_equal(m.hessian_diag(x), dense.hessian_diag(x))
        np.testing.assert_array_equal(m.hessian_trace(x), dense.hessian_trace(x))
        np.testing.assert_allclose(m.conditional_logit(x), dense.conditional_logit(x), **tol)
        np.testing.assert_allclose(m.conditional_prob(x), dense.conditional_prob(x), rtol=1e-12, atol=1e-14)
        x2 = np.atleast_2d(x)
        v = rng.normal(size=x2.shape)
        w = rng.uniform(0.5, 1.5, size=x2.shape[0])
        for a, b in (
            (m.grad_params(x2, w), dense.grad_params(x2, w)),
            (m.grad_params_of_grad_x(x2, v), dense.grad_params_of_grad_x(x2, v)),
            (m.grad_params_of_hessian_diag(x2, v), dense.grad_params_of_hessian_diag(x2, v)),
        ):
            assert a.keys() == b.keys() == {"J", "h"}
            for k in a:
                np.testing.assert_array_equal(a[k], b[k])  # same formula, no J involved


@pytest.mark.parametrize("shape, boundary", [((3, 3), "periodic"), ((2, 3), "periodic"), ((3, 4), "free")])
@pytest.mark.parametrize("domain", ["spin", "binary"])
@pytest.mark.parametrize("K", [0.4, 5.0, 50.0])
def test_derivatives_match_finite_differences(shape, boundary, domain, K, rng):
    m = Ising.lattice(shape, 1.0, coupling=K, field=-0.3 * K, domain=domain, boundary=boundary)
    d = m.n_features
    for x in (rng.normal(size=(3, d)), _states(rng, 4, d, domain)):
        check_energy_derivatives(m, x, seed=2).assert_ok()


def test_no_overflow_at_large_couplings(rng):
    m = Ising.lattice((4, 5), 1.0, coupling=50.0, field=-50.0)
    x = _states(rng, 20, 20, "spin")
    with np.errstate(all="raise"):
        vals = [m.energy(x), m.grad_x(x), m.conditional_prob(x), m.conditional_logit(x)]
    assert all(np.all(np.isfinite(v)) for v in vals)
    p = m.conditional_prob(x)
    # logits reach 2 (4 * 50 + 50) = 500: saturated, yet the small tail keeps its digits
    z = m.conditional_logit(x)
    assert np.abs(z).max() == 500.0
    np.testing.assert_allclose(p, expit(z), rtol=1e-13, atol=0)
    assert np.any(p < 1e-200) and np.any(p == 1.0)


@pytest.mark.parametrize("shape, boundary, domain", [
    ((2, 2), "periodic", "spin"), ((3, 3), "periodic", "spin"), ((4, 4), "periodic", "spin"),
    ((2, 3), "periodic", "binary"), ((3, 4), "free", "spin"), ((2, 5), "free", "binary"),
])
def test_exact_log_partition(shape, boundary, domain):
    m = Ising.lattice(shape, 0.45, coupling=1.2, field=0.15, domain=domain, boundary=boundary)
    J, h = _bond_J(shape, 0.45 * 1.2, boundary), np.full(m.n_features, 0.45 * 0.15)
    lo = -1.0 if domain == "spin" else 0.0
    s = np.array(list(itertools.product([lo, 1.0], repeat=m.n_features)))
    neg_e = 0.5 * np.einsum("ni,ij,nj->n", s, J, s) + s @ h
    brute = np.log(np.sum(np.exp(neg_e - neg_e.max()))) + neg_e.max()
    assert abs(exact.log_partition(m) - brute) < 1e-11
    if boundary == "periodic" and shape[0] == shape[1] and shape[0] >= 3 and domain == "spin":
        z0 = exact.ising_log_partition_2d(shape[0], 0.45, J=1.2)
        assert abs(exact.log_partition(Ising.lattice(shape, 0.45, coupling=1.2)) - z0) < 1e-11


# ---------------------------------------------------------------- edges


@pytest.mark.parametrize("shape, boundary", SHAPES)
def test_edges_match_dense_J(shape, boundary):
    m = Ising.lattice(shape, 0.6, coupling=-0.7, boundary=boundary)
    i, j, w = m.edges()
    assert i.dtype == np.int64 and j.dtype == np.int64 and w.dtype == np.float64
    J = m.params["J"]
    ii, jj = np.nonzero(np.triu(J, 1))  # row-major: ordered by (i, j)
    np.testing.assert_array_equal(i, ii)
    np.testing.assert_array_equal(j, jj)
    np.testing.assert_array_equal(w, J[ii, jj])
    # the dense model gives the same edges
    for a, b in zip(_dense_twin(m).edges(), (i, j, w)):
        np.testing.assert_array_equal(a, b)
    n_bonds = {"periodic": 2 * shape[0] * shape[1],
               "free": shape[0] * (shape[1] - 1) + (shape[0] - 1) * shape[1]}[boundary]
    # total bond weight: each bond once
    np.testing.assert_allclose(w.sum(), 0.6 * -0.7 * n_bonds, rtol=1e-14)


def test_edges_of_uncoupled_and_dense_models():
    for m in (Ising.lattice(4, 0.0), Ising.lattice(4, 0.3, coupling=0.0)):
        i, j, w = m.edges()
        assert i.size == j.size == w.size == 0 and i.dtype == np.int64
    J = np.array([[0.0, 0.0, 2.0], [0.0, 0.0, -1.0], [2.0, -1.0, 0.0]])
    i, j, w = Ising(J, np.zeros(3)).edges()
    np.testing.assert_array_equal(i, [0, 1])
    np.testing.assert_array_equal(j, [2, 2])
    np.testing.assert_array_equal(w, [2.0, -1.0])


# -------------------------------------------------------------- tempered


@pytest.mark.parametrize("b", [0.0, 0.3, 1.0, 2.5])
def test_tempered(b, rng):
    m = Ising.lattice((3, 4), 0.4, coupling=-1.2, field=0.3, domain="binary", boundary="free")
    t = m.tempered(b)
    assert t.lattice == m.lattice._replace(beta=0.4 * b) and t.domain == "binary"
    x = _states(rng, 6, 12, "binary")
    np.testing.assert_allclose(t.energy(x), b * m.energy(x), rtol=1e-13, atol=1e-15)
    dense = Ising.random(7, 2.0, 5, domain="spin")
    td = dense.tempered(b)
    assert td.lattice is None
    np.testing.assert_array_equal(td.params["J"], b * dense.params["J"])
    np.testing.assert_array_equal(td.params["h"], b * dense.params["h"])
    # a dense model detected as a lattice stays one
    assert Ising.lattice(4, 0.3).with_params({"h": np.zeros(16)}).tempered(b).lattice_size == 4


@pytest.mark.parametrize("bad, exc", [(-0.1, ValueError), (np.inf, ValueError), (np.nan, ValueError),
                                      ("1", TypeError), (True, TypeError)])
def test_tempered_bad_beta(bad, exc):
    for m in (Ising.lattice(3, 0.3), Ising.random(3, 1.0, 0)):
        with pytest.raises(exc, match="`beta`"):
            m.tempered(bad)


# ------------------------------------------------------------ size limit, memory


def test_dense_J_refused_above_the_limit(rng):
    m = Ising.lattice((64, 65), 0.44)  # d = 4160 > 4096
    assert m.n_features == 4160 > ising_module.MAX_DENSE_UNITS
    x = _states(rng, 2, 4160, "spin")
    for call in (lambda: m.params, lambda: m.with_params({"h": np.zeros(4160)}), m.structural_zeros,
                 lambda: m.grad_params(x), lambda: m.grad_params_of_grad_x(x, x),
                 lambda: m.grad_params_of_hessian_diag(x, x)):
        with pytest.raises(ValueError, match=r"\(64, 65\).*d\^2 = 17305600.*138\.4 MB.*d = 4160.*4096"):
            call()
    # the structure-based methods need no J
    assert m.energy(x).shape == (2,) and m.grad_x(x).shape == (2, 4160)
    assert m.conditional_prob(x).shape == (2, 4160) and m.edges()[0].size == 2 * 4160
    assert m._dense_cache is None


def test_limit_is_the_documented_constant(monkeypatch):
    # the constant lives with the lattice storage (ising re-exports it)
    assert ising_module.MAX_DENSE_UNITS is lattice_module.MAX_DENSE_UNITS
    monkeypatch.setattr(lattice_module, "MAX_DENSE_UNITS", 16)
    assert Ising.lattice(4, 0.3).params["J"].shape == (16, 16)
    with pytest.raises(ValueError, match=r"d = 20 units.*d <= 16"):
        Ising.lattice((4, 5), 0.3).params


def test_construction_is_constant_time_and_memory():
    Ising.lattice(8, 0.44)  # warm up imports
    tracemalloc.start()
    m = Ising.lattice(1024, 0.44)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    elapsed = float("inf")
    for _ in range(5):  # best of 5: robust to a descheduled process
        t0 = time.perf_counter()
        Ising.lattice(1024, 0.44)
        elapsed = min(elapsed, time.perf_counter() - t0)
    # a dense J would be 8.8 TB; the structure is a few small objects
    assert peak < 64_000, peak
    assert elapsed < 0.05, elapsed
    assert m.n_features == 1024 * 1024


def test_samplers_run_above_the_dense_limit(rng):
    # d = 16384 > MAX_DENSE_UNITS: any use of the dense J would raise
    m = Ising.lattice(128, 0.44, field=0.02)
    x0 = _states(rng, 3, m.n_features, "spin")
    for res in (gibbs(m, x0, 2, seed=0), gibbs(m, x0, 1, seed=0, method="sequential"),
                gwg(m, x0, 50, seed=0), rwmh(m, x0, 50, 1.0, seed=0),
                gibbs(Ising.lattice((100, 101), 0.3, boundary="free"), _states(rng, 2, 10100, "spin"), 1, seed=0)):
        assert np.all(np.isfinite(res.energies))
    r = gibbs(m, x0, 2, seed=0)
    np.testing.assert_allclose(r.energies, m.energy(r.x), rtol=1e-12)


def test_with_params_gives_a_dense_model():
    m = Ising.lattice(3, 0.5, field=0.1)
    h = np.linspace(-1, 1, 9)
    w = m.with_params({"h": h})
    assert w.lattice is None and w.lattice_size == 3
    np.testing.assert_array_equal(w.params["J"], m.params["J"])
    np.testing.assert_array_equal(w.params["h"], h)
    J = m.params["J"].copy()
    J[0, 4] = J[4, 0] = 0.2  # not a bond
    assert m.with_params({"J": J}).lattice_size is None
    assert Ising.lattice((3, 4), 0.5).with_params({"h": np.zeros(12)}).lattice_size is None
    with pytest.raises(ValueError, match="`J`.*symmetric"):
        m.with_params({"J": np.triu(np.ones((9, 9)), 1)})
    with pytest.raises(TypeError, match="`params`"):
        m.with_params([("h", h)])
    with pytest.raises(AttributeError, match="read-only"):
        m.lattice = None
    assert m.lattice.boundary == "periodic"  # unchanged; m itself is unchanged
    assert "Ising.lattice" in repr(m) and "(3, 3)" in repr(m)


def test_pickle_round_trip_drops_the_dense_cache(rng):
    import pickle

    m = Ising.lattice((3, 4), 0.4, coupling=-0.5, field=0.2, domain="binary", boundary="free")
    J = m.params["J"]
    m2 = pickle.loads(pickle.dumps(m))
    assert m._dense_cache is not None and m2._dense_cache is None
    assert m2.lattice == m.lattice and m2.domain == "binary" and m2.lattice_size is None
    x = _states(rng, 5, 12, "binary")
    np.testing.assert_array_equal(m2.energy(x), m.energy(x))
    np.testing.assert_array_equal(m2.params["J"], J)
    d = Ising.random(5, 1.0, 2)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(d)).params["J"], d.params["J"])


@pytest.mark.parametrize("make, exc, pattern", [
    (lambda: Ising.lattice((3,), 0.3), ValueError, r"`L`"),
    (lambda: Ising.lattice((3, 1), 0.3), ValueError, r"`L`.*>= 2"),
    (lambda: Ising.lattice((3, 2.0), 0.3), TypeError, r"`L`"),
    (lambda: Ising.lattice(3, 0.3, boundary="open"), ValueError, r"`boundary`"),
    (lambda: Ising.lattice(3, 0.3, coupling=np.inf), ValueError, r"`coupling`"),
    (lambda: Ising.lattice(3, 0.3, field="x"), TypeError, r"`field`"),
])
def test_bad_lattice_arguments(make, exc, pattern):
    with pytest.raises(exc, match=pattern):
        make()


# ------------------------------------------------------------------ samplers

# sha256 (first 16 hex digits) of x, trace, energies and acceptance_rate of
# every case of _recorded_cases(), recorded with the dense-J Ising.lattice
# (before the structured model existed), in case order.
RECORDED = """
0038b0abff3559f3 413bf64854a58766 7243dc9b5d1f1fb5 e1c028d72ea212c5
0038b0abff3559f3 d7a8a5a51ef29df6 3dec4f5c57830714 bf1de1fe6dd5af3a
c3f2f4d80d82e475 43f70201cd8dc8c4 f4150e6aeeae8abc a82b86c782dfd251
ea3d4f49f570e886 af3a972e62f9efb1 f20f2403d9fde45e 3f67158163d98bef
939159fa18e63360 1def00788a495314 5de51d3a1e876698 a37db90174af7dba
939159fa18e63360 3a0953a790a97d07 04d3078480921577 1dd4931bbee33c06
3242c97b49067007 393237ec7233210f 5b7df7d49d6e6346 1b79cc6e27f0cfc8
3fdc9bb1c7b99e21 d82793a088c5c44a 0e44796fd91ab039 3e2a84a2a9dd5a96
0bde1d2d362937da 6e98394456242b51 3e56f64f4f35b85e 47cca78984424cce
48a78e2173228564 5835e50fe3def6d0 78531b6afc36389d d9d3c9b2f39133b4
ad3a16795bd8b4f7 a6a8c0d5eb1f4c08 9e15a4376d0d1a31 1d58a92201e61a09
ca3303b533b83c1f e1101cc7d1ea4ab6 90a837b7bb1de6e0 1590bb1f2e08b2d7
ab6a402909abf5c5 3041b51c2dc596b4 9cf69b4f711ef553 1be68ed0aad250ed
ab6a402909abf5c5 256c0c9c95971955 09cb61998805ff73 2242dd99d6fd78de
86ec8fc3a5afbc83 60c58770286acea7 1edf06daea6d0997 29e7f9492213d4b2
94391f20df10b82e 4985ade43285f661 db5c9bcec534a2b2 e4732e7408a77643
eca7d3a8e2167ad8 d2359b4344efbe73 b6ac13deccc9d78e 04f8ff559ddf2243
eca7d3a8e2167ad8 4bb30c61362eacf1 099005c53168582f 3c94e6786b35e942
faa987ca1748d139 41de28504b080e9f 5b19d0706e859ab1 565dbf64b8bb6eae
42f683f337d84990 0c92e2a40e65d0a8 d30d8f11f3d9c9db 39633c9c5af94756
fd138138f1362962 66a25c05903c2e2f a2963ba91dcdaa68 edf0456c39efcbd1
718df4f9f5784e49 aab821074d192aac fb22957ce4e03c8f a035be6a6e11a6de
a6348ed671d115da 975cf2a76c8b92ca 9ec84564df4c3293 c217073ad9a10bff
00c8df81ce729720 439217c3ba42a348 9f4710b6de0a154c 9f3a2b7f350eddda
1ddda67a22997a88 ea314271e5cf1552 6799d38badb753fe 87d3ba6c3bd7d3d8
95477f8614e2ad5a ff181adb6590b3a2 7b9bde3f6bf61a6f 0c78e9df79909b8c
c494c92c6df4ab40 09694f3116f2c367 c45ab215f8f5058a b2c746eb81d09622
369aa552585930a9 a697d7a2fdefefb6 b2c6b4923e429400 2f69dda60cf12734
a27609e512d2cf3c 1c38ed4ed0562c42 504ee5f1012fe74b 3ad5ca6a457181bf
b6d27023a90b4dbf bd17aca87108788e d41b5f680ab45815 a78ab325f015d9ff
a408864fe9838dc2 1d2397d4f4723c58 652bd55c557b459d 16ceae458c21e295
63980d39611fcb20 55e5b9a11ab370c8 68d3801b7cf9c719 4303256da1c0a3fb
8753e9b4cc30f497 f93c157a2d7151de 05927277dae7dc8e da28cfdae2ecd696
55549e412e3ddc6a ebdde35b97079337 be2ad303d0b184f0 be5ea732f8b496ca
3bcdb1bece0e0169 a665d1b9f362159f 540c41983e298539 a1728b744419707b
93fde0afc25330f3 39f0c9fdb59f13ac 21a33b3fff027a44 a818fc6f9701148c
abac50265cf10737 eb4f078aaa9dccd4 90e14815a58dbc11 0ff3fcd64428446a
caee338608436784 b75b5f9472a24fe3 62b6da27601aa28f 6b8fe7c19b86bb88
fa05555c0d5cd858 eab1926d9cfc851e 68e36bcf25cbfe24 008b4345e55cd105
214c74e5a9f8037f 4c622db633d73609 e0d6596933b7fbb1 8bf7d6db9cc30108
5190198dfc82e57e cd69976845160dbd 2087191919a7eb1c 704c8f64767ce2cc
f3a1245293c3db33 fd8f266427473223 1749341d29e274dd 9892dfa1c3a5991c
11c7bde3d3b9ded9 eb6c0d0e7f68909a e1330995c8befa82 5005e7a00bf25995
5ad4236b20f785fe 65856626e6ce9156 38daaeb4ed701715 28ec4c59a95ae64b
3eb33257d4e5e571 4a9d7155892e9222 a3867ebf55c931ba 5010d3eb33329e1a
d7af657d2bde7099 770745311bd5414b e4737aef90144640 367b9d711060a36a
61453e79db311165 22e59b3b39ebe4e0 eaddb225b44e0425 1b2bf08fa3c7bb88
938b1d9c99b6433d 4c73cf96303e86b1 b13800cdd3fb232b 2ed0cc3bb742deea
246fba4ffbb96c85 77237120f3247cfd f03b9016f978a2ec e335c181c6c8576a
08c845aed48b3ea9 730ef58c98ab540b 4378faef8899eac1 a525b884e3c02043
4478c25c7c135c90 2f21cf19b78fc88f 6c4051d5db9b1ae6 6e87d4638370f8c2
77b744d350c6e551 61857dbb5414370c 3a77f02c27cb5ea7 3163ef42def682c9
"""


def _recorded_cases():
    cases = []
    for L in (2, 3, 4, 5, 6, 8, 16, 32):
        for domain, beta, coupling, field in (("spin", 0.44, 1.0, 0.0), ("binary", 0.7, -0.5, 0.3),
                                              ("spin", 0.3, -1.0, -0.2)):
            for method in (None, "sequential"):
                for n, steps, thin, seed in ((1, 3, 0, 0), (5, 7, 2, 11), (17, 4, 1, 123), (33, 10, 5, 7)):
                    cases.append(("gibbs", L, beta, coupling, field, domain, method, n, steps, thin, seed))
    for L in (2, 3, 4, 5):
        for sampler in ("gwg", "rwmh"):
            cases.append((sampler, L, 0.4, 1.0, 0.1, "spin", None, 6, 50, 10, 3))
            cases.append((sampler, L, 0.6, -1.0, -0.3, "binary", None, 6, 50, 10, 4))
    return cases


def _digest(res):
    h = hashlib.sha256()
    for a in (res.x, res.trace, res.energies, res.acceptance_rate):
        if a is not None:
            h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
    return h.hexdigest()[:16]


def _run_case(case):
    kind, L, beta, coupling, field, domain, method, n, steps, thin, seed = case
    model = Ising.lattice(L, beta, coupling=coupling, field=field, domain=domain)
    r = np.random.default_rng(1000 * L + n + steps)
    x0 = (r.random((n, L * L)) < 0.5).astype(float)
    if domain == "spin":
        x0 = 2.0 * x0 - 1.0
    if kind == "gibbs":
        res = gibbs(model, x0, steps, seed=seed, thin=thin, method=method)
    elif kind == "gwg":
        res = gwg(model, x0, steps, seed=seed, thin=thin)
    else:
        res = rwmh(model, x0, steps, 1.0, seed=seed, thin=thin)
    assert model._dense_cache is None  # the samplers never built J
    return _digest(res)


def test_samplers_bit_identical_to_recorded_dense_outputs():
    expected = RECORDED.split()
    cases = _recorded_cases()
    assert len(expected) == len(cases)
    bad = [(c, e) for c, e in zip(cases, expected) if _run_case(c) != e]
    assert not bad, f"{len(bad)} of {len(cases)} differ, first: {bad[0]}"


@pytest.mark.parametrize("shape, boundary", SHAPES + [((5, 7), "periodic"), ((3, 9), "free"), ((4, 2), "free")])
@pytest.mark.parametrize("K, field", [(-0.37 * 1.3, 0.21), (0.0, 0.4)])
def test_final_energies_from_structure_equal_csr_sum(shape, boundary, K, field, rng):
    # the lattice's CSR, built from the structure, is the dense twin's CSR
    # entry for entry, so the energy kernel sums the same numbers in the
    # same order; both equal model.energy up to rounding
    m = Ising.lattice(shape, 1.0, coupling=K, field=field, boundary=boundary)
    x = _states(rng, 9, m.n_features, "spin")
    a, b = np.empty(9), np.empty(9)
    dense = _dense_twin(m)
    for u, v in zip(lattice_csr(m.lattice), coupling_csr(dense)):
        np.testing.assert_array_equal(u, v)
    for form, out in ((m.numba_form(), a), (dense.numba_form(), b)):
        kernels.bin_energy_rows(form.kind, form.ip, form.fp, form.n_work, x, out)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(final_energies(m, x), a)
    np.testing.assert_allclose(a, m.energy(x), rtol=1e-13, atol=1e-13 * m.n_features)


def test_gibbs_same_as_dense_detected_lattice(rng):
    # the dense model detected as a lattice keeps the old path: same chains
    for L, domain in ((4, "spin"), (5, "binary"), (6, "spin")):
        m = Ising.lattice(L, 0.5, coupling=0.8, field=0.1, domain=domain)
        dense = m.with_params({"h": m.params["h"]})
        assert dense.lattice is None and dense.lattice_size == L
        x0 = _states(rng, 19, L * L, domain)
        for method in (None, "sequential"):
            a = gibbs(m, x0, 5, seed=9, thin=2, method=method)
            b = gibbs(dense, x0, 5, seed=9, thin=2, method=method)
            for f in ("x", "trace", "energies"):
                np.testing.assert_array_equal(getattr(a, f), getattr(b, f))


@pytest.mark.parametrize("shape", [(2, 4), (4, 2), (4, 6), (6, 4), (8, 2)])
@pytest.mark.parametrize("domain", ["spin", "binary"])
def test_rectangular_checkerboard_equals_table_kernel(shape, domain, rng):
    # the lock-step kernel and the one-chain table kernel in the same colour
    # order make the same decisions with the same draws
    from ebm_ref._rng import as_seed_sequence, chain_states

    spin = domain == "spin"
    table = _lattice.lattice_table(0.45, 0.2, spin)
    order, n_col = _lattice.lattice_colour_order(shape)
    assert n_col == 2
    n = 21
    x0 = _states(rng, n, shape[0] * shape[1], domain)
    xa, xb = x0.copy(), x0.copy()
    ra, rb = (chain_states(as_seed_sequence(5), n) for _ in range(2))
    ta = np.empty((3, n, x0.shape[1]))
    tb = np.empty_like(ta)
    _lattice.lattice_gibbs_run(_lattice.lattice_neighbours(shape), table, spin, order, xa, 0, 7, 2, ra, ta)
    _lattice.lattice_checkerboard_grid(shape[0], shape[1], _lattice.uniform_thresholds(table), spin, xb, 0, 7, 2, rb, tb)
    np.testing.assert_array_equal(xa, xb)
    np.testing.assert_array_equal(ta, tb)
    np.testing.assert_array_equal(ra, rb)


@pytest.mark.parametrize("shape, boundary", [((3, 4), "periodic"), ((3, 5), "periodic"), ((4, 4), "free"),
                                             ((2, 6), "periodic"), ((5, 3), "free")])
def test_colour_orders_are_proper(shape, boundary):
    m = Ising.lattice(shape, 0.3, boundary=boundary)
    order, n_col = _lattice.lattice_colour_order(shape, boundary)
    assert sorted(order) == list(range(m.n_features))
    colour = np.empty(m.n_features, dtype=int)
    # recover classes: the stable sort keeps index order within a class
    breaks = [0] + [k for k in range(1, len(order)) if order[k] < order[k - 1]] + [len(order)]
    assert len(breaks) - 1 <= n_col
    for c, (a, b) in enumerate(zip(breaks[:-1], breaks[1:])):
        colour[order[a:b]] = c
    i, j, _ = m.edges()
    assert np.all(colour[i] != colour[j])


@pytest.mark.parametrize("shape, boundary", [(4, "periodic"), (5, "periodic"), ((4, 6), "periodic"),
                                             ((3, 4), "periodic"), ((4, 5), "free")])
@pytest.mark.parametrize("method", [None, "sequential"])
def test_chain_prefix_invariance(shape, boundary, method, rng):
    m = Ising.lattice(shape, 0.4, field=0.1, boundary=boundary)
    x0 = _states(rng, 40, m.n_features, "spin")
    big = gibbs(m, x0, 6, seed=3, thin=3, method=method)
    for k in (1, 10, 17):
        small = gibbs(m, x0[:k], 6, seed=3, thin=3, method=method)
        np.testing.assert_array_equal(small.x, big.x[:k])
        np.testing.assert_array_equal(small.trace, big.trace[:, :k])
        np.testing.assert_array_equal(small.energies, big.energies[:k])


def test_bit_identical_with_one_and_two_threads(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(
        """
        import sys
        import numpy as np
        from ebm_ref.energies import Ising
        from ebm_ref.samplers import gibbs, gwg
        out = {}
        cases = [((32, 32), "periodic", None), ((6, 10), "periodic", None), ((5, 7), "periodic", None),
                 ((6, 5), "free", None), ((8, 8), "periodic", "sequential")]
        for k, (shape, boundary, method) in enumerate(cases):
            m = Ising.lattice(shape, 0.44, field=0.05, boundary=boundary)
            r = np.random.default_rng(k)
            x0 = np.where(r.random((37, m.n_features)) < 0.5, 1.0, -1.0)
            res = gibbs(m, x0, 5, seed=k, thin=2, method=method)
            out[f"{k}/x"], out[f"{k}/trace"], out[f"{k}/e"] = res.x, res.trace, res.energies
        res = gwg(Ising.lattice((4, 5), 0.5, boundary="free"), np.ones((9, 20)), 30, seed=1, thin=10)
        out["gwg/x"], out["gwg/a"] = res.x, res.acceptance_rate
        np.savez(sys.argv[1], **out)
        """
    ))
    results = run_at_thread_counts(script, tmp_path)
    assert len(results[0]) == 17
    for k in results[0]:
        np.testing.assert_array_equal(results[0][k], results[1][k], err_msg=k)


def _lattice_sampler(model, method=None):
    def sample_fn(params, x0, n_steps, rng):
        return gibbs(model, x0, n_steps, seed=rng, method=method).x
    return sample_fn


# Chi-square test of check_sampler (20,000 chains, pooled cells): an exact
# sampler fails with probability alpha = 1e-4 per call; 10 calls below, so
# the whole test fails falsely with probability <= 1e-3.
STAT_MODELS = [
    (lambda: Ising.lattice((2, 3), 0.5, coupling=0.7, field=0.2), None),  # double bonds on the side 2
    (lambda: Ising.lattice((2, 4), 0.4, coupling=-0.9, field=0.1), None),  # checkerboard, rectangular
    (lambda: Ising.lattice((3, 4), 0.35, field=-0.15, domain="binary"), None),  # odd side: 3 colours
    (lambda: Ising.lattice((3, 3), 0.5, coupling=1.1, field=0.2, boundary="free"), "sequential"),
    (lambda: Ising.lattice((2, 4), 0.6, coupling=-0.8, field=-0.1, boundary="free", domain="binary"), None),
]


@pytest.mark.parametrize("k", range(len(STAT_MODELS)))
def test_new_lattice_paths_sample_the_exact_distribution(k):
    make, method = STAT_MODELS[k]
    model = make()
    fn = _lattice_sampler(model, method)
    check_sampler(fn, model, n_steps=3, seed=k, alpha=1e-4).assert_ok()
    # fixed start: all up; 60 sweeps mix these small, weakly coupled lattices
    rep = check_sampler(fn, model, n_steps=60, seed=100 + k, alpha=1e-4, start=np.ones(model.n_features))
    rep.assert_ok()


def test_planted_bugs_are_caught():
    # negative controls: each wrong sampler must fail the same test by a wide margin
    torus = Ising.lattice((2, 3), 0.5, coupling=0.7, field=0.2)
    free = Ising.lattice((3, 3), 0.5, coupling=1.1, field=0.2, boundary="free")
    bugs = {
        # single instead of double bonds on the side of length 2
        "double bond lost": (torus, Ising.lattice((2, 3), 0.5, coupling=0.7, field=0.2, boundary="free")),
        # wrap-around bonds added to a free lattice
        "wrap-around on a free edge": (free, Ising.lattice((3, 3), 0.5, coupling=1.1, field=0.2)),
        # inverse temperature 30 % too high
        "wrong temperature": (free, free.tempered(1.3)),
    }
    for name, (model, wrong) in bugs.items():
        rep = check_sampler(_lattice_sampler(wrong), model, n_steps=3, seed=7, alpha=1e-4)
        assert not rep.passed and rep.statistic > 3 * rep.threshold, (name, rep.statistic, rep.threshold)
