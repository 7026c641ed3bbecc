"""The bench peers (careful NumPy, torch, JAX) do the same work as ebm_ref, and their lines have the documented keys.

Each peer's energy gradient, score-matching value and gradient, and Gibbs
conditional probabilities are compared with ebm_ref's public API on small
cases (to 1e-10 relative): the benchmark compares equal work. torch and
JAX are installed wherever the tests run (the ``bench`` extra); a missing
one is simulated by monkeypatching ``_peers.import_peer``.
"""

import numpy as np
import pytest

from ebm_ref.bench import _langevin_bench, _peers, _rbm_bench, _sm_bench
from ebm_ref.bench._peers_jax import JaxLangevin, JaxRBMGibbs, JaxScoreMatching
from ebm_ref.bench._peers_numpy import NumpyLangevin, NumpyRBMGibbs, NumpyScoreMatching
from ebm_ref.bench._peers_torch import TorchLangevin, TorchRBMGibbs, TorchScoreMatching
from ebm_ref.bench._mlp import mlp_layers
from ebm_ref.energies import RBM, MLPEnergy
from ebm_ref.objectives import ScoreMatching

RTOL = 1e-10
LINE_KEYS = {"unit", "ebm_ref", "peers", "fastest_peer", "ratio_vs_fastest_peer", "compile_s", "threads", "cpu"}


@pytest.fixture(scope="module")
def torch():
    mod = _peers.import_peer("torch")
    assert mod is not None, "torch is part of the test environment (the bench extra)"
    before = mod.get_num_threads()
    yield mod
    mod.set_num_threads(before)


@pytest.fixture(scope="module")
def jax():
    mod = _peers.import_peer("jax")
    assert mod is not None, "jax is part of the test environment (the bench extra)"
    return mod


def _close(actual, expected):
    """Whether ``actual`` equals ``expected`` to ``RTOL`` relative to the largest ``|expected|``
    (shapes equal, every number finite: a NaN is never close)."""
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape or not (np.all(np.isfinite(actual)) and np.all(np.isfinite(expected))):
        return False
    scale = max(float(np.max(np.abs(expected))), 1e-300) if expected.size else 1.0
    return bool(np.all(np.abs(actual - expected) <= RTOL * scale + RTOL * np.abs(expected)))


@pytest.fixture(params=[(3, 6, 5), (4, 7, 5, 3)], ids=["2 layers", "3 layers"])
def mlp_case(request):
    sizes = request.param
    model = MLPEnergy(sizes, activation="softplus", seed=1)
    r = np.random.default_rng(2)
    model = model.with_params({k: np.asarray(v) + 0.3 * r.standard_normal(np.shape(v)) for k, v in model.params.items()})
    x = r.standard_normal((9, sizes[0]))
    return model, x


def test_langevin_peers_compute_the_same_energy_and_gradient(mlp_case, torch, jax):
    model, x = mlp_case
    n, d = x.shape
    e, g = np.empty(n), np.empty((n, d))
    NumpyLangevin(model, n).energy_grad(x, e, g)
    assert _close(e, model.energy(x))
    assert _close(g, model.grad_x(x))
    et, gt = torch.zeros(n, dtype=torch.float64), torch.zeros(n, d, dtype=torch.float64)
    TorchLangevin(torch, model, n, threads=1).energy_grad(torch.from_numpy(x.copy()), et, gt)
    assert _close(et.numpy(), model.energy(x))
    assert _close(gt.numpy(), model.grad_x(x))
    peer = JaxLangevin(jax, model, x, 0.05, adjust=True)
    ej, gj = peer.energy_grad(peer.params, peer.x0)
    assert _close(ej, model.energy(x))
    assert _close(gj, model.grad_x(x))
    # the plain reference of the suite too
    layers, w_out, b_out = mlp_layers(model)
    assert _close(_langevin_bench._numpy_energy_grad(layers, w_out, b_out, x)[1], model.grad_x(x))


@pytest.mark.parametrize("adjust", [False, True], ids=["ula", "mala"])
def test_langevin_peers_run(adjust, torch, jax):
    model = MLPEnergy((2, 8, 8), seed=0)
    x0 = np.random.default_rng(0).standard_normal((16, 2))
    runs = {
        "numpy": NumpyLangevin(model, 16),
        "torch": TorchLangevin(torch, model, 16, threads=1),
    }
    for name, peer in runs.items():
        x = np.asarray(peer.run(x0, 0, 0.05, adjust))
        np.testing.assert_array_equal(x, x0)
        x = np.asarray(peer.run(x0, 10, 0.05, adjust))
        assert np.all(np.isfinite(x)) and not np.array_equal(x, x0), name
        acc = np.asarray(peer.accepted)
        assert np.all((acc >= 0) & (acc <= 10)), name
        if adjust:
            assert acc.mean() > 5, name  # a small step is accepted most of the time
    peer = JaxLangevin(jax, model, x0, 0.05, adjust)
    assert peer.compile_s > 0
    np.testing.assert_array_equal(np.asarray(peer.run(0)[0]), x0)
    x, _, _, acc = peer.run(10)
    assert np.all(np.isfinite(np.asarray(x))) and (np.asarray(acc).mean() > 5 if adjust else True)


def test_score_matching_peers_compute_the_same_value_and_gradient(mlp_case, torch, jax):
    model, x = mlp_case
    loss, grads = ScoreMatching().value_and_grad(model, x)
    peers = {
        "numpy": NumpyScoreMatching(model, x.shape[0]).value_and_grad(x),
        "torch": TorchScoreMatching(torch, model, threads=1).value_and_grad(x),
        "jax": JaxScoreMatching(jax, model, x).value_and_grad(),
    }
    for name, (l_peer, g_peer) in peers.items():
        assert _close(float(l_peer), loss)
        assert sorted(g_peer) == sorted(grads), name
        for k in grads:
            assert _close(g_peer[k], grads[k])


def test_rbm_peers_compute_the_same_conditionals(torch, jax):
    r = np.random.default_rng(3)
    V, H, n = 7, 5, 6
    model = RBM(r.normal(0, 0.7, (V, H)), r.normal(0, 0.3, V), r.normal(0, 0.3, H))
    W, b_v, b_h = (model.params[k] for k in ("W", "b_v", "b_h"))
    v = (r.random((n, V)) < 0.5).astype(np.float64)
    h = (r.random((n, H)) < 0.5).astype(np.float64)
    ph, pv = model.prob_h_given_v(v), model.prob_v_given_h(h)
    npeer = NumpyRBMGibbs(W, b_v, b_h, n)
    assert _close(npeer.prob_h_given_v(v), ph)
    assert _close(npeer.prob_v_given_h(h), pv)
    tpeer = TorchRBMGibbs(torch, W, b_v, b_h, n, threads=1)
    assert _close(tpeer.prob_h_given_v(torch.from_numpy(v)).numpy(), ph)
    assert _close(tpeer.prob_v_given_h(torch.from_numpy(h)).numpy(), pv)
    jpeer = JaxRBMGibbs(jax, W, b_v, b_h, v)
    assert _close(jpeer.prob_h_given_v(jpeer.W, jpeer.b_h, v), ph)
    assert _close(jpeer.prob_v_given_h(jpeer.W, jpeer.b_v, h), pv)
    for out in (npeer.run(v, 3), tpeer.run(v, 3).numpy(), np.asarray(jpeer.run(3))):
        assert out.shape == (n, V) and set(np.unique(out)) <= {0.0, 1.0}


def _check_line(line, unit):
    assert LINE_KEYS <= set(line)
    assert line["unit"] == unit
    assert set(line["peers"]) == {"numpy", "torch", "jax"}
    assert set(line["cpu"]) == {"model_name", "isa", "isa_limits"} and line["cpu"]["isa"] in {"AVX-512", "AVX2", "baseline"}
    assert set(line["compile_s"]) == {"ebm_ref", "jax"}


def _tiny_langevin_line():
    model = MLPEnergy((2, 8, 8), seed=0)
    layers, w_out, b_out = mlp_layers(model)
    x0 = np.random.default_rng(0).standard_normal((32, 2))
    return _langevin_bench._measure_kernel(model, layers, w_out, b_out, x0, 3, 0.05, True, 1, 1)


def test_langevin_line_has_the_documented_keys():
    line = _tiny_langevin_line()
    _check_line(line, "chain_steps_per_s")
    for name in ("numpy", "torch", "jax"):
        assert isinstance(line["peers"][name], float) or line["peers"][name] is None
    assert line["fastest_peer"] in {"numpy", "torch", "jax"}
    best = max(v for v in line["peers"].values() if v)
    assert line["ratio_vs_fastest_peer"] == pytest.approx(line["ebm_ref"] / best)
    assert line["compile_s"]["jax"] > 0


def test_sm_and_rbm_lines_have_the_documented_keys():
    line = _sm_bench._measure_d(2, True, 1)
    _check_line(line, "ms_per_value_and_grad")
    best = min(line["peers"].values())
    assert line["fastest_peer"] == min(line["peers"], key=line["peers"].get)
    assert line["ratio_vs_fastest_peer"] == pytest.approx(best / line["ebm_ref"])
    line = _rbm_bench._measure_at(True, 1)
    _check_line(line, "chain_sweeps_per_s")
    assert line["gemm_ceiling_chain_sweeps_per_s"] > 0


def test_a_missing_peer_is_reported_not_installed(monkeypatch):
    real = _peers.import_peer
    monkeypatch.setattr(_peers, "import_peer", lambda name: None if name == "torch" else real(name))
    line = _tiny_langevin_line()
    assert line["peers"]["torch"] == "not installed"
    assert isinstance(line["peers"]["numpy"], float)
    assert line["fastest_peer"] in {"numpy", "jax"}
    monkeypatch.setattr(_peers, "import_peer", lambda name: None)
    line = _tiny_langevin_line()
    assert line["peers"]["torch"] == line["peers"]["jax"] == "not installed"
    assert line["fastest_peer"] == "numpy" and line["compile_s"]["jax"] is None


def test_fastest_peer_and_cpu_info():
    assert _peers.fastest_peer(2.0, {"numpy": 1.0, "torch": 4.0, "jax": "not installed"}) == ("torch", 0.5)
    assert _peers.fastest_peer(2.0, {"numpy": None, "torch": "not installed"}) == (None, None)
    fields = _peers.peer_fields(10.0, {"numpy": 5.0, "torch": 20.0}, {}, 1, "ms", higher_is_better=False)
    assert fields["fastest_peer"] == "numpy" and fields["ratio_vs_fastest_peer"] == pytest.approx(0.5)
    assert fields["peers"]["jax"] == "not installed"
    info = _peers.cpu_info()
    assert info["isa"] in {"AVX-512", "AVX2", "baseline"} and info["model_name"]


def test_cpu_info_names_the_isa_limits_that_are_set(monkeypatch):
    for k in _peers.ISA_LIMITS:
        monkeypatch.delenv(k, raising=False)
    assert _peers.cpu_info()["isa_limits"] == {}
    monkeypatch.setenv("NUMBA_CPU_NAME", "haswell")
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    assert _peers.cpu_info()["isa_limits"] == {"NUMBA_CPU_NAME": "haswell", "OPENBLAS_CORETYPE": "Haswell"}
    # the one-thread child's XLA thread flags are not an ISA cap
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    assert "XLA_FLAGS" not in _peers.cpu_info()["isa_limits"]
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false --xla_cpu_max_isa=AVX2")
    assert _peers.cpu_info()["isa_limits"]["XLA_FLAGS"] == "--xla_cpu_max_isa=AVX2"
