"""Reproducibility of the discrete samplers (docs/conventions.md, docs/threads.md).

* bit-identical output with NUMBA_NUM_THREADS=1 and 2 (subprocesses; the
  BLAS thread count follows, so the block-Gibbs products are covered too);
* chain-prefix invariance: chains 0..9 of a larger run equal a 10-chain run,
  also across the 128-chain BLAS blocks of block Gibbs;
* same seed twice equal, x0 never mutated, n_steps = 0 returns x0.
"""

import pathlib
import textwrap

import numpy as np
import pytest

from _threads_harness import assert_identical, result_arrays, run_at_thread_counts
from ebm_ref.energies import GRBM, RBM, Ising
from ebm_ref.samplers._binary import rwmh_binary
from ebm_ref.samplers import gibbs
from ebm_ref.samplers import gwg

REPO = pathlib.Path(__file__).resolve().parent.parent

# Each case: (name, model factory, sampler, keyword arguments). Models are
# built from fixed seeds so that the subprocess rebuilds the same ones.
SETUP = textwrap.dedent(
    """
    import numpy as np
    from ebm_ref.energies import GRBM, RBM, Ising
    from ebm_ref.samplers._binary import rwmh_binary
    from ebm_ref.samplers import gibbs
    from ebm_ref.samplers import gwg

    def _rbm():
        r = np.random.default_rng(1)
        return RBM(r.normal(size=(20, 10)), r.normal(size=20), r.normal(size=10))

    def _grbm():
        r = np.random.default_rng(2)
        return GRBM(r.normal(size=(5, 3)), r.normal(size=5), r.normal(size=3), r.normal(0, 0.3, 5))

    MODELS = {
        "rbm": _rbm,
        "grbm": _grbm,
        "ising": lambda: Ising.random(12, 1.5, seed=3),
        "ising01": lambda: Ising.random(12, 1.5, seed=4, domain="binary"),
        "lat4": lambda: Ising.lattice(4, 0.44),
        "lat5": lambda: Ising.lattice(5, 0.44, field=0.1, domain="binary"),
        "lat4-irregular": lambda: Ising.lattice(4, 0.44).with_params(
            {"h": np.linspace(-0.5, 0.5, 16)}),
    }
    CASES = [
        ("gibbs-rbm", "rbm", gibbs, {}),
        ("gibbs-grbm", "grbm", gibbs, {}),
        ("gibbs-seq", "ising", gibbs, {"method": "sequential"}),
        ("gibbs-seq01", "ising01", gibbs, {}),
        ("gibbs-cb4", "lat4", gibbs, {}),
        ("gibbs-cb5", "lat5", gibbs, {"method": "checkerboard"}),
        ("gibbs-cb-generic", "lat4-irregular", gibbs, {}),
        ("gwg-ising", "ising", gwg, {}),
        ("gwg-ising01", "ising01", gwg, {}),
        ("gwg-rbm", "rbm", gwg, {}),
        ("mh-ising", "ising", rwmh_binary, {}),
        ("mh-rbm", "rbm", rwmh_binary, {}),
    ]

    def start(model, n, seed=0):
        r = np.random.default_rng(seed)
        if model.domain == "real":
            return r.normal(size=(n, model.n_features))
        x = (r.random((n, model.n_features)) < 0.5).astype(float)
        return 2.0 * x - 1.0 if model.domain == "spin" else x

    def run(case, n, n_steps=7, seed=123, thin=3):
        name, mname, f, kw = case
        model = MODELS[mname]()
        return f(model, start(model, n), n_steps, seed, thin=thin, **kw)
    """
)
exec(SETUP)  # the same definitions in this process and in the subprocesses

# The zoo's harness (test_zoo_reproducibility.py) runs 1 vs 2 threads and
# chain prefixes for every public sampler on every zoo model; of the cases
# above it covers all but the even lattice (two colour classes; the zoo's
# lattice is 3 x 3) and the irregular-field lattice (generic checkerboard),
# which stay here.
IN_ZOO = {"gibbs-rbm", "gibbs-grbm", "gibbs-seq", "gibbs-seq01", "gibbs-cb5", "gwg-ising", "gwg-ising01",
          "gwg-rbm", "mh-ising", "mh-rbm"}
NOT_IN_ZOO = [c for c in CASES if c[0] not in IN_ZOO]

_arrays = result_arrays
_assert_identical = assert_identical


def test_bit_identical_with_one_and_two_threads(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(
        SETUP
        + f"SKIP = {sorted(IN_ZOO)!r}\n"
        + textwrap.dedent(
            """
            import sys
            out = {}
            for case in CASES:
                if case[0] in SKIP:
                    continue  # covered by the zoo's harness
                res = run(case, 150)
                for k in ("x", "acceptance_rate", "trace", "energies"):
                    v = getattr(res, k)
                    if v is not None:
                        out[case[0] + "/" + k] = v
            # block Gibbs on threads even for these small models; 600 chains
            # = 5 blocks: at 2 threads each thread runs whole blocks (150
            # chains = 2 blocks split every half-step instead); 300 visible
            # units = 2 product tiles
            import importlib
            importlib.import_module("ebm_ref.samplers._block_gibbs")._MIN_WORK = 0
            r = np.random.default_rng(8)
            wide = RBM(r.normal(size=(300, 20)), r.normal(size=300), r.normal(size=20))
            for n in (150, 600):
                for name, model in (("rbm", MODELS["rbm"]()), ("wide", wide)):
                    res = gibbs(model, start(model, n), 7, 123, thin=3)
                    for k in ("x", "trace", "energies"):
                        out[f"threaded-{name}-{n}/" + k] = getattr(res, k)
            np.savez(sys.argv[1], **out)
            """
        )
    )
    results = run_at_thread_counts(script, tmp_path)
    # every field of every case was saved (Gibbs has no acceptance rate)
    assert len(results[0]) == sum(3 if c[2] is gibbs else 4 for c in NOT_IN_ZOO) + 12
    _assert_identical(results[0], results[1], "1 vs 2 threads")


@pytest.mark.parametrize("case", NOT_IN_ZOO, ids=[c[0] for c in NOT_IN_ZOO])
def test_chain_prefix_invariance(case):
    small = _arrays(run(case, 10))
    # 300 chains: three BLAS blocks of 128 (the last padded) for block Gibbs
    big = _arrays(run(case, 300))
    prefix = {k: (v[:, :10] if k == "trace" else v[:10]) for k, v in big.items()}
    _assert_identical(small, prefix, "10 vs 300 chains")


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_same_seed_same_result_and_x0_untouched(case):
    name, mname, f, kw = case
    model = MODELS[mname]()
    x0 = start(model, 20)
    x0.flags.writeable = False  # read-only input is accepted and never written
    keep = x0.copy()
    a = _arrays(f(model, x0, 5, 99, thin=1, **kw))
    b = _arrays(f(model, x0, 5, 99, thin=1, **kw))
    _assert_identical(a, b, "same seed twice")
    np.testing.assert_array_equal(x0, keep)
    c = f(model, x0, 5, 100, **kw)
    assert not np.array_equal(c.x, a["x"])  # another seed, another result
    # a SeedSequence seed equals the int seed it wraps
    d = f(model, x0, 5, np.random.SeedSequence(99), thin=1, **kw)
    _assert_identical(a, _arrays(d), "int vs SeedSequence")


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_zero_steps_returns_x0(case):
    name, mname, f, kw = case
    model = MODELS[mname]()
    x0 = start(model, 6)
    res = f(model, x0, 0, 5, **kw)
    np.testing.assert_array_equal(res.x, x0)
    assert res.x is not x0
    np.testing.assert_allclose(res.energies, model.energy(x0), rtol=1e-13, atol=1e-13)
    assert res.trace is None
    res = f(model, x0, 0, 5, thin=2, **kw)
    assert res.trace.shape == (0, 6, model.n_features)


def test_single_chain_equals_chain_zero():
    for case in CASES:
        name, mname, f, kw = case
        model = MODELS[mname]()
        x0 = start(model, 4)
        one = f(model, x0[0], 6, 7, **kw)
        many = f(model, x0, 6, 7, **kw)
        np.testing.assert_array_equal(one.x, many.x[0])
        np.testing.assert_array_equal(np.atleast_1d(one.energies)[0], many.energies[0])


def test_generator_seed_advances_and_numpy_state_untouched():
    case = CASES[7]
    name, mname, f, kw = case
    model = MODELS[mname]()
    x0 = start(model, 5)
    g = np.random.default_rng(0)
    state = np.random.get_state()[1].copy()
    a = f(model, x0, 20, g, **kw)
    b = f(model, x0, 20, g, **kw)
    assert not np.array_equal(a.x, b.x)  # the Generator was consumed
    c = f(model, x0, 20, np.random.default_rng(0), **kw)
    np.testing.assert_array_equal(a.x, c.x)
    np.testing.assert_array_equal(np.random.get_state()[1], state)


@pytest.mark.parametrize("L", [2, 4, 6])
@pytest.mark.parametrize("spin", [True, False])
def test_fast_checkerboard_equals_table_sweep(L, spin):
    # the lock-step int8 kernel is the table kernel in the same site order, draw for draw
    from ebm_ref._rng import as_seed_sequence, chain_states
    from ebm_ref._rng import LANES
    from ebm_ref.samplers import _lattice

    table = _lattice.lattice_table(0.5, 0.2, spin)
    order, _ = _lattice.lattice_colour_order(L)
    r = np.random.default_rng(L)
    n = 2 * LANES + 5  # two full lock-step groups and a partial one
    x = (r.random((n, L * L)) < 0.5).astype(float)
    if spin:
        x = 2.0 * x - 1.0
    xa, xb = x.copy(), x.copy()
    ra = chain_states(as_seed_sequence(4), n)
    rb = ra.copy()
    ta, tb = np.empty((2, n, L * L)), np.empty((2, n, L * L))
    _lattice.lattice_gibbs_run(_lattice.lattice_neighbours(L), table, spin, order, xa, 0, 6, 3, ra, ta)
    _lattice.lattice_checkerboard_run(L, _lattice.uniform_thresholds(table), spin, xb, 0, 6, 3, rb, tb)
    np.testing.assert_array_equal(xa, xb)
    np.testing.assert_array_equal(ra, rb)  # generator states advanced identically
    np.testing.assert_array_equal(ta, tb)


def test_uniform_thresholds_match_float_comparison():
    from ebm_ref._rng import np_next_u64
    from ebm_ref.samplers._lattice import uniform_thresholds

    p = np.array([0.0, 1e-17, 0.25, 0.1234567890123, 0.5, 1 - 1e-16, 1.0])
    T = uniform_thresholds(p)
    states = np.random.default_rng(0).integers(1, 2**63, size=(4096, 4), dtype=np.uint64)
    raw = np.concatenate([np_next_u64(states) for _ in range(8)])
    m = raw >> np.uint64(12)
    u = (m.astype(np.float64) + 0.5) * 2.0**-52
    for k in range(len(p)):
        np.testing.assert_array_equal(m < T[k], u < p[k])
    # boundary values: the integers next to each threshold, with the kernel's float ops
    for k in range(len(p)):
        for mm in (int(T[k]) - 2, int(T[k]) - 1, int(T[k]), int(T[k]) + 1, 2**52 - 1):
            if 0 <= mm < 2**52:
                assert (mm < int(T[k])) == ((float(mm) + 0.5) * 2.0**-52 < p[k])


@pytest.mark.parametrize("kind, n", [("rbm", 300), ("rbm", 600), ("grbm", 300)])
def test_block_gibbs_equals_numpy_step_draw_for_draw(kind, n, monkeypatch):
    # Block Gibbs keeps its chains block by block, draws in lock-step
    # lane groups, spread over threads; this pins it to the plain definition:
    # chain c draws its hidden units then its visible units, one uniform
    # (normal) per unit in unit order, from its own stream (docs/conventions.md).
    # 300 chains = two full 128-chain blocks and a partial one, so lane
    # groups and blocks are crossed; at 2 threads 300 chains (3 blocks) split
    # every half-step between the threads, 600 (5 blocks) deal whole blocks;
    # 300 visible units make two product tiles. _MIN_WORK = 0: threads even
    # for a model this small. The pre-activations of the two sides
    # may differ in the last bits (other summation order), which flips a
    # Bernoulli decision only when |u - sigmoid(a)| < ~1e-15: probability
    # below 1e-10 over these ~1e5 draws, so the states must match exactly
    # (GRBM visibles to 1e-12: NumPy's and libm's log/cos differ by ulps).
    from scipy.special import expit

    from ebm_ref._rng import as_seed_sequence, chain_states, np_normals, np_uniforms

    import importlib

    monkeypatch.setattr(importlib.import_module("ebm_ref.samplers._block_gibbs"), "_MIN_WORK", 0)
    r = np.random.default_rng(11)
    V, H, steps = 300, 20, 3
    W = r.normal(0, 1.0, (V, H))
    if kind == "rbm":
        model = RBM(W, r.normal(size=V), r.normal(size=H))
        v = (r.random((n, V)) < 0.5).astype(float)
    else:
        model = GRBM(W, r.normal(size=V), r.normal(size=H), r.normal(0, 0.3, V))
        v = r.normal(size=(n, V))
    res = gibbs(model, v, steps, seed=5, thin=1)
    p = model.params
    states = chain_states(as_seed_sequence(5), n)
    for t in range(steps):
        if kind == "rbm":
            a = v @ W + p["b_h"]
        else:
            a = (v / np.exp(p["log_var"])) @ W + p["b_h"]
        u = np.stack([np_uniforms(states) for _ in range(H)], axis=1)
        h = (u < expit(a)).astype(float)
        if kind == "rbm":
            u = np.stack([np_uniforms(states) for _ in range(V)], axis=1)
            v = (u < expit(h @ W.T + p["b_v"])).astype(float)
            np.testing.assert_array_equal(res.trace[t], v)
        else:
            eps = np.stack([np_normals(states) for _ in range(V)], axis=1)
            v = h @ W.T + p["mu"] + np.exp(0.5 * p["log_var"]) * eps
            np.testing.assert_allclose(res.trace[t], v, rtol=1e-12, atol=1e-12)
            v = res.trace[t]  # continue from the sampler's state
    np.testing.assert_array_equal(res.x, res.trace[-1])


def test_block_gibbs_restores_blas_threads_and_reraises_worker_errors(monkeypatch):
    import importlib
    import threading

    import numba

    from ebm_ref._threads import openblas_thread_controls

    gibbs_module = importlib.import_module("ebm_ref.samplers._block_gibbs")
    monkeypatch.setattr(gibbs_module, "_MIN_WORK", 0)
    controls = openblas_thread_controls()
    if controls is None or numba.get_num_threads() < 2:
        pytest.skip("needs OpenBLAS's thread control and 2 Numba threads")
    get, set_ = controls
    before = get()
    set_(2)
    try:
        model = MODELS["rbm"]()
        real = gibbs_module._bernoulli_rows
        names = set()

        def spy(*args):
            names.add(threading.current_thread().name)
            return real(*args)

        monkeypatch.setattr(gibbs_module, "_bernoulli_rows", spy)
        for n in (150, 600):  # split half-steps, whole blocks per thread
            names.clear()
            gibbs(model, start(model, n), 2, 0)
            assert get() == 2
            assert len(names) == 2  # the caller and one worker drew

        def failing(pre, bias, out, rng, lo, hi):
            if lo > 0:  # only the worker thread's chains
                raise RuntimeError("worker failed")
            return real(pre, bias, out, rng, lo, hi)

        monkeypatch.setattr(gibbs_module, "_bernoulli_rows", failing)
        for n in (150, 600):
            with pytest.raises(RuntimeError, match="worker failed"):
                gibbs(model, start(model, n), 2, 0)
            assert get() == 2
    finally:
        set_(before)


class _RecordingGRBM(GRBM):
    """Redefines a formula hook (so no Numba form: the generic path) and records OpenBLAS's thread count."""

    seen = []

    def _energy(self, x):
        from ebm_ref._threads import openblas_thread_controls

        _RecordingGRBM.seen.append(openblas_thread_controls()[0]())
        return super()._energy(x)


def test_blockwise_energies_do_not_depend_on_the_blas_thread_count():
    # Per-chain energies computed by the models' NumPy methods on 128-row
    # blocks (gwg's final energies; the generic continuous path) run on one
    # OpenBLAS thread: a 2-thread OpenBLAS product of a 784 x 500 RBM's
    # 128-row blocks was measured up to 1.1e-13 away from the 1-thread one,
    # which broke "same bits at 1 and 2 threads" for these energies.
    from ebm_ref._threads import openblas_thread_controls
    from ebm_ref.samplers import langevin

    controls = openblas_thread_controls()
    assert controls is not None, "the test environment's NumPy ships OpenBLAS"
    get, set_ = controls
    before = get()
    rng = np.random.default_rng(21)
    V, H = 784, 500
    model = RBM(0.02 * rng.normal(size=(V, H)), 0.1 * rng.normal(size=V), 0.1 * rng.normal(size=H))
    v0 = (rng.random((300, V)) < 0.5).astype(float)
    grbm = _RecordingGRBM(0.1 * rng.normal(size=(6, 4)), rng.normal(size=6), rng.normal(size=4), np.zeros(6))
    try:
        energies = []
        for n in (1, 2):
            set_(n)
            energies.append(gwg(model, v0, 2, seed=3).energies)
            assert get() == n  # restored after the call
        np.testing.assert_array_equal(energies[0], energies[1])
        set_(2)
        _RecordingGRBM.seen.clear()
        langevin(grbm, rng.normal(size=(40, 6)), 3, 0.05, seed=1, adjust=True)
        assert _RecordingGRBM.seen and set(_RecordingGRBM.seen) == {1}
    finally:
        set_(before)
