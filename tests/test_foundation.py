"""Tests of the shared foundation: RNG streams, numerics, validation, RBM."""

import numpy as np
import pytest
from scipy import special

from ebm_ref import _rng
from ebm_ref._numerics import log_sigmoid, sigmoid_prime, softplus
from ebm_ref.energies import RBM
from ebm_ref.testing import check_energy_derivatives, check_grad
from zoo import random_rbm


def test_xoshiro_known_outputs():
    # Hand-derived from the algorithm with state (1, 2, 3, 4):
    # first output rotl(2*5, 7)*9 = 1280*9 = 11520; second: s1 becomes
    # 2^(1^3)... = 0 after one step's xor pattern gives rotl(0,7)*9 = 0.
    s = np.array([[1, 2, 3, 4]], dtype=np.uint64)
    got = [int(_rng.np_next_u64(s)[0]) for _ in range(2)]
    assert got == [11520, 0]


def test_numpy_and_numba_streams_agree_bit_for_bit():
    import numba

    @numba.njit
    def draw(st, n):
        out = np.empty((st.shape[0], n))
        for c in range(st.shape[0]):
            for k in range(n):
                out[c, k] = _rng.nb_uniform(st[c])
        return out

    st = _rng.chain_states(_rng.as_seed_sequence(3), 50)
    a = draw(st.copy(), 20)
    st2 = st.copy()
    b = np.stack([_rng.np_uniforms(st2) for _ in range(20)], axis=1)
    assert np.array_equal(a, b)
    assert np.all((a > 0) & (a < 1))


def test_lane_uniforms_equal_each_chains_nb_uniform_bit_for_bit():
    # lane_uniform builds the double from the bit pattern 1 + k 2^-52 instead
    # of converting k: the same value for every 52-bit k, checked on the
    # extreme integers (fed through the lanes' states: a state whose output
    # is known is not at hand, so the map itself is checked on them) and on
    # 16 lanes x 300 draws of real streams, 5 of the lanes unused.
    import numba

    @numba.njit
    def lanes(st, n, used):
        L = _rng.LANES
        S0 = np.zeros(L, dtype=np.uint64)
        S1 = np.zeros(L, dtype=np.uint64)
        S2 = np.zeros(L, dtype=np.uint64)
        S3 = np.zeros(L, dtype=np.uint64)
        _rng.load_lanes(st, 0, used, S0, S1, S2, S3)
        out = np.empty((n, L))
        for j in range(n):
            for g in range(L):
                out[j, g] = _rng.lane_uniform(S0, S1, S2, S3, g)
        _rng.store_lanes(st, 0, used, S0, S1, S2, S3)
        return out

    @numba.njit
    def from_bits(k):
        return (np.uint64(k | _rng._ONE_BITS).view(np.float64) - 1.0) + _rng._TWO_M53

    for k in (0, 1, 2, 2**51, 2**52 - 2, 2**52 - 1):
        assert from_bits(np.uint64(k)) == (float(k) + 0.5) * 2.0**-52
    st = _rng.chain_states(_rng.as_seed_sequence(5), _rng.LANES)
    ref = st.copy()
    got = lanes(st, 300, 11)
    want = np.stack([_rng.np_uniforms(ref[:11]) for _ in range(300)])
    assert np.array_equal(got[:, :11], want)
    assert np.array_equal(st[:11], ref[:11])  # advanced like the streams
    assert np.array_equal(st[11:], _rng.chain_states(_rng.as_seed_sequence(5), _rng.LANES)[11:])  # untouched


def test_draw_normals_equal_nb_normal_chain_by_chain():
    # 37 chains: two full lane groups and a partial one; two calls, so the
    # states carry over; every normal and every final state bit for bit.
    import numba

    @numba.njit
    def one_by_one(st, n_calls, d):
        out = np.empty((n_calls, st.shape[0], d))
        for t in range(n_calls):
            for c in range(st.shape[0]):
                for j in range(d):
                    out[t, c, j] = _rng.nb_normal(st[c])
        return out

    st = _rng.chain_states(_rng.as_seed_sequence(9), 37)
    ref_st = st.copy()
    want = one_by_one(ref_st, 2, 5)
    for t in range(2):
        got = np.empty((37, 5))
        _rng.draw_normals(st, 0, got, np.empty(2 * 5 * _rng.LANES))
        assert np.array_equal(got, want[t])
    assert np.array_equal(st, ref_st)
    # agrees with NumPy's log/cos transform of the same uniforms to a few ulp
    st = _rng.chain_states(_rng.as_seed_sequence(9), 37)
    np.testing.assert_allclose(np.stack([_rng.np_normals(st) for _ in range(5)], axis=1), want[0], rtol=0, atol=1e-14)


def test_box_muller_log_and_cos_are_within_about_an_ulp():
    # The kernels' branch-free log on (0, 1] and cos(2 pi u) (_numerics),
    # against libm's log (correctly rounded in practice) and a long-double
    # cos of the exactly reduced argument (x87 extended precision: error
    # ~1e-19). Measured worst: log 1 ulp, cos 1.1e-16 absolute; the bounds
    # are 1 ulp and one ulp of 1.0 (2.2e-16), with the extremes of nb_uniform
    # and the reduction's break points (1/8, 1/4, 3/8, 1/2, ...) included.
    import math

    import numba

    from ebm_ref._numerics import nb_cos_2pi, nb_log_unit

    @numba.njit
    def both(x, lg, cs):
        for i in range(x.shape[0]):
            lg[i] = nb_log_unit(x[i])
            cs[i] = nb_cos_2pi(x[i])

    r = np.random.default_rng(0)
    edges = [2.0**-53, 1.0 - 2.0**-53, 1.0, 0.5, math.sqrt(0.5), 0.125, 0.25, 0.375, 0.625, 0.75, 0.875]
    x = np.concatenate([r.random(20000), 2.0 ** -r.uniform(0, 53, 5000), 1.0 - 2.0 ** -r.uniform(1, 53, 5000), edges])
    lg, cs = np.empty_like(x), np.empty_like(x)
    both(x, lg, cs)
    ref_log = np.array([math.log(v) for v in x])
    nz = ref_log != 0.0
    assert np.all(np.abs(lg - ref_log)[nz] <= np.spacing(np.abs(ref_log[nz])))
    assert lg[x == 1.0][0] == 0.0
    two_pi = np.longdouble(2) * np.longdouble("3.14159265358979323846264338327950288")
    ref_cos = np.cos(two_pi * x.astype(np.longdouble)).astype(np.float64)
    if np.finfo(np.longdouble).eps >= 2.0**-52:  # pragma: no cover - a platform without extended precision
        pytest.fail("needs x87 long double for the reference cosine")
    assert np.max(np.abs(cs - ref_cos)) <= 2.0**-52


def test_chain_states_prefix_invariant_and_streams_differ():
    ss = _rng.as_seed_sequence(7)
    a = _rng.chain_states(ss, 10)
    b = _rng.chain_states(ss, 100)
    assert np.array_equal(a, b[:10])
    c = _rng.chain_states(ss, 10, stream=_rng.STREAM_INIT)
    assert not np.any(np.all(a == c, axis=1))


def test_seed_kinds():
    ss = np.random.SeedSequence(5)
    assert _rng.as_seed_sequence(ss) is ss
    assert np.array_equal(
        _rng.chain_states(_rng.as_seed_sequence(5), 3), _rng.chain_states(np.random.SeedSequence(5), 3)
    )
    g = np.random.default_rng(1)
    s1 = _rng.as_seed_sequence(g)
    s2 = _rng.as_seed_sequence(g)  # the generator advanced
    assert not np.array_equal(_rng.chain_states(s1, 1), _rng.chain_states(s2, 1))
    for bad in (None, 1.5, "3", True):
        with pytest.raises(TypeError, match="`seed`"):
            _rng.as_seed_sequence(bad)
    with pytest.raises(ValueError, match="`seed`"):
        _rng.as_seed_sequence(-1)


@pytest.mark.parametrize("a", [-1e308, -800.0, -40.0, -30.0, -1e-300, 0.0, 1e-300, 30.0, 40.0, 800.0, 1e308])
def test_stable_numerics(a):
    # underflow to 0 is correct rounding, so only over/invalid/divide raise
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        sp = softplus(a)
        ls = log_sigmoid(a)
        spp = sigmoid_prime(a)
    assert np.isfinite(sp) and np.isfinite(ls) and np.isfinite(spp)
    np.testing.assert_allclose(ls, special.log_expit(a), rtol=1e-14)
    np.testing.assert_allclose(sp, -special.log_expit(-a), rtol=1e-14)


def _rbm(rng, V, H, scale):
    return random_rbm(V, H, scale, seed=rng)


@pytest.mark.parametrize("V,H", [(1, 1), (6, 3), (9, 12)])
@pytest.mark.parametrize("scale", [0.1, 1.0, 5.0, 20.0])
def test_rbm_derivatives(rng, V, H, scale):
    model = _rbm(rng, V, H, scale)
    x = rng.integers(0, 2, (6, V)).astype(float)
    x[3:] = rng.normal(0, 1.5, (3, V))  # continuous extension too
    report = check_energy_derivatives(model, x, seed=1)
    report.assert_ok()
    # single states are part of the report
    assert report.results["single_state"].max_rel_error == 0.0


def test_rbm_large_weights_no_overflow(rng):
    model = _rbm(rng, 8, 5, 50.0)
    x = rng.integers(0, 2, (20, 8)).astype(float)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        e = model.energy(x)
        g = model.grad_x(x)
        h = model.hessian_diag(x)
        gp = model.grad_params_of_hessian_diag(x, np.ones_like(x))
    assert np.all(np.isfinite(e)) and np.all(np.isfinite(g)) and np.all(np.isfinite(h))
    assert all(np.all(np.isfinite(v)) for v in gp.values())


def test_rbm_free_energy_matches_sum_over_hidden(rng):
    import itertools

    model = _rbm(rng, 4, 3, 1.0)
    v = rng.integers(0, 2, (5, 4)).astype(float)
    hs = np.array(list(itertools.product([0.0, 1.0], repeat=3)))
    for vi in v:
        joint = np.array([model.joint_energy(vi, h) for h in hs])
        expected = -special.logsumexp(-joint)
        np.testing.assert_allclose(model.energy(vi), expected, rtol=1e-13)
    # conditionals are the normalised Boltzmann factors of the joint energy
    h1 = np.zeros(3)
    h1[0] = 1.0
    np.testing.assert_allclose(
        special.logit(model.prob_h_given_v(v[0])[0]),
        model.joint_energy(v[0], np.zeros(3)) - model.joint_energy(v[0], h1),
        rtol=1e-12,
    )


def test_params_read_only_and_with_params(rng):
    model = _rbm(rng, 3, 2, 1.0)
    p = model.params
    assert list(p) == ["W", "b_v", "b_h"]
    with pytest.raises(ValueError):
        p["W"][0, 0] = 1.0
    m2 = model.with_params({"b_v": np.ones(3)})
    assert np.array_equal(m2.params["b_v"], np.ones(3))
    assert np.array_equal(model.params["b_v"], p["b_v"])
    with pytest.raises(ValueError, match="unknown key"):
        model.with_params({"c": np.ones(3)})
    with pytest.raises(ValueError, match="`W`.*shape"):
        model.with_params({"W": np.ones((2, 3))})
    with pytest.raises(TypeError, match="`params`"):
        model.with_params([1, 2])


@pytest.mark.parametrize(
    "call,exc,pattern",
    [
        (lambda m: m.energy(np.zeros((2, 4))), ValueError, r"`x`.*shape"),
        (lambda m: m.energy(np.zeros((2, 3, 1))), ValueError, r"`x`.*shape"),
        (lambda m: m.energy(np.array([[np.nan, 0, 0]])), ValueError, r"`x`.*finite"),
        (lambda m: m.energy(np.array([[np.inf, 0, 0]])), ValueError, r"`x`.*finite"),
        (lambda m: m.energy(np.zeros((0, 3))), ValueError, r"`x`.*at least one"),
        (lambda m: m.energy(np.array([["a", "b", "c"]])), TypeError, r"`x`"),
        (lambda m: m.energy(np.zeros(3, dtype=complex)), TypeError, r"`x`"),
        (lambda m: m.check_states(np.array([[0.0, 0.5, 1.0]])), ValueError, r"`x`.*0.0/1.0"),
        (lambda m: m.check_states(np.array([[-1.0, 1.0, 1.0]])), ValueError, r"spin"),
        (lambda m: m.grad_params(np.zeros((2, 3)), weights=np.ones(3)), ValueError, r"`weights`"),
        (lambda m: m.grad_params_of_grad_x(np.zeros((2, 3)), np.ones((3, 3))), ValueError, r"`v`"),
        (lambda m: m.grad_params_of_hessian_diag(np.zeros((2, 3)), np.ones(3)), ValueError, r"`c`"),
        (lambda m: RBM(np.ones((3, 2)), np.ones(2), np.ones(2)), ValueError, r"`b_v`.*shape"),
        (lambda m: RBM(np.full((3, 2), np.nan), np.ones(3), np.ones(2)), ValueError, r"`W`.*finite"),
        (lambda m: RBM(np.ones(3), np.ones(3), np.ones(2)), ValueError, r"`W`"),
        (lambda m: m.prob_v_given_h(np.ones((1, 3))), ValueError, r"`h`.*shape"),
    ],
)
def test_rbm_bad_input(call, exc, pattern):
    model = RBM(np.ones((3, 2)), np.zeros(3), np.zeros(2))
    with pytest.raises(exc, match=pattern):
        call(model)


def test_rbm_accepts_int_bool_float32_and_does_not_mutate(rng):
    model = _rbm(rng, 4, 2, 1.0)
    x = rng.integers(0, 2, (3, 4))
    ref = model.energy(x.astype(float))
    np.testing.assert_array_equal(model.energy(x.astype(bool)), ref)
    np.testing.assert_array_equal(model.energy(x.astype(np.float32)), ref)
    xf = np.asfortranarray(x.astype(float))
    xf.flags.writeable = False
    np.testing.assert_array_equal(model.energy(xf), ref)


def test_check_grad_catches_a_wrong_gradient():
    f = lambda z: float(np.sum(np.sin(z)))  # noqa: E731
    good = check_grad(f, np.cos, np.linspace(-1, 1, 7))
    bad = check_grad(f, lambda z: np.cos(z) * (1 + 1e-4), np.linspace(-1, 1, 7))
    assert good.passed and good.max_rel_error < 1e-8
    assert not bad.passed and bad.max_rel_error > 5e-5
    with pytest.raises(AssertionError, match="grad"):
        bad.assert_ok()


@pytest.mark.parametrize(
    "ss",
    [
        np.random.SeedSequence(0),
        np.random.SeedSequence(2**70 + 5),
        np.random.SeedSequence(np.random.default_rng(1).integers(2**63, size=4)),
        np.random.SeedSequence(7, spawn_key=(2**40, 1)),
        np.random.SeedSequence([1, 2, 3, 4, 5, 6]),
    ],
)
@pytest.mark.parametrize("stream", [0, 3, 101, 2**33])
def test_fast_chain_states_equal_the_seedsequence_definition(ss, stream):
    got = _rng.chain_states(ss, 257, stream)
    expected = _rng._seedseq_rows_reference(ss, 257, stream)
    assert got.dtype == np.uint64 and got.shape == (257, 4)
    assert np.array_equal(got, expected)


def test_uniform_is_strictly_inside_the_unit_interval():
    # the extreme 52-bit integers map to 2^-53 and 1 - 2^-53 exactly
    lo = (float(0) + 0.5) * 2.0**-52
    hi = (float(2**52 - 1) + 0.5) * 2.0**-52
    assert lo == 2.0**-53 and hi == 1.0 - 2.0**-53 and hi < 1.0
    st = _rng.chain_states(_rng.as_seed_sequence(11), 4096)
    u = np.concatenate([_rng.np_uniforms(st) for _ in range(64)])
    assert np.all((u > 0.0) & (u < 1.0))


def test_limit_threads_restores_numba_and_blas_counts():
    import numba

    from ebm_ref._threads import blas_threads, limit_threads, openblas_thread_controls

    before = numba.get_num_threads()
    controls = openblas_thread_controls()
    blas_before = controls[0]() if controls else None
    with limit_threads(1):
        assert numba.get_num_threads() == 1
        if controls:
            assert controls[0]() == 1
    assert numba.get_num_threads() == before
    if controls:
        assert controls[0]() == blas_before
        with blas_threads(1) as n:
            assert n == 1


def test_polynomial_exp_within_one_ulp_of_numpy():
    # nb_exp_nonpos replaces libm exp in vectorised kernel loops (AIS, MLP
    # Langevin); its documented accuracy is about one ulp on (-inf, 0].
    import numba

    from ebm_ref._numerics import nb_exp_nonpos

    @numba.njit
    def apply(x):
        out = np.empty_like(x)
        for i in range(x.size):
            out[i] = nb_exp_nonpos(x[i])
        return out

    rng = np.random.default_rng(0)
    x = np.concatenate([
        -rng.uniform(0, 1, 50_000),
        -rng.uniform(0, 745, 50_000),
        -np.array([0.0, 1e-300, 1e-16, 0.5, 1.0, 708.3, 708.4, 744.4, 745.0, 746.0, 1e4, np.inf]),
    ])
    got, expected = apply(x), np.exp(x)
    normal = expected >= np.finfo(np.float64).tiny
    ulps = np.abs(got[normal] - expected[normal]) / np.spacing(expected[normal])
    assert ulps.max() <= 1.0
    # subnormal results: within two of the smallest subnormal steps
    assert np.all(np.abs(got[~normal] - expected[~normal]) <= 2 * 5e-324)
