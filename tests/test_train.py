"""ebm_ref.train: optimisers, minibatching, reproducibility, history, progress, errors."""

import io

import numpy as np
import pytest

from ebm_ref import objectives as O
from ebm_ref.energies import RBM, Ising, StudentT
from ebm_ref.train import SGD, Adam, History, _Progress, fit


class _Recorder:
    """Objective that records its batches; loss = mean E, grad = its gradient."""

    def __init__(self):
        self.batches = []
        self.seeds = []

    def value_and_grad(self, model, x, seed):
        self.batches.append(np.array(x))
        self.seeds.append(seed)
        return float(np.mean(model.energy(x))), model.grad_params(x)


def _student():
    return StudentT([0.0], [0.0], [np.log(5.0)])


# ------------------------------------------------------------- optimisers
def test_sgd_plain_and_momentum_by_hand():
    p = {"a": np.array([1.0, 2.0])}
    g = {"a": np.array([0.5, -1.0])}
    opt = SGD(0.1)
    np.testing.assert_allclose(opt.step(p, g)["a"], [0.95, 2.1])
    mom = SGD(0.1, momentum=0.9)
    p1 = mom.step(p, g)
    p2 = mom.step(p1, g)
    # v1 = g, v2 = 0.9 g + g
    np.testing.assert_allclose(p1["a"], p["a"] - 0.1 * g["a"])
    np.testing.assert_allclose(p2["a"], p1["a"] - 0.1 * 1.9 * g["a"])
    assert np.array_equal(p["a"], [1.0, 2.0])  # inputs untouched


def test_adam_by_hand():
    p = {"a": np.array([1.0, -1.0, 0.0])}
    g1 = {"a": np.array([0.2, -3.0, 0.0])}
    g2 = {"a": np.array([0.1, 1.0, 0.0])}
    opt = Adam(0.01, betas=(0.9, 0.999), eps=1e-8)
    q1 = opt.step(p, g1)
    # first step: m_hat = g, v_hat = g^2 -> lr g / (|g| + eps)
    np.testing.assert_allclose(q1["a"], p["a"] - 0.01 * g1["a"] / (np.abs(g1["a"]) + 1e-8))
    q2 = opt.step(q1, g2)
    m = 0.9 * 0.1 * g1["a"] + 0.1 * g2["a"]
    v = 0.999 * 0.001 * g1["a"] ** 2 + 0.001 * g2["a"] ** 2
    m_hat, v_hat = m / (1 - 0.9**2), v / (1 - 0.999**2)
    np.testing.assert_allclose(q2["a"], q1["a"] - 0.01 * m_hat / (np.sqrt(v_hat) + 1e-8), rtol=1e-14)
    assert q2["a"][2] == 0.0  # a zero gradient never moves an entry
    opt.reset()
    assert opt.t == 0


def test_optimizer_keeps_structural_zeros_and_checks_keys():
    p = {"J": np.array([[0.0, 1.0], [1.0, 0.0]])}
    g = {"J": np.ones((2, 2))}
    mask = {"J": np.eye(2, dtype=bool)}
    out = SGD(0.5).step(p, g, mask)
    np.testing.assert_array_equal(np.diag(out["J"]), [0.0, 0.0])
    with pytest.raises(ValueError, match="keys"):
        SGD(0.1).step(p, {"K": g["J"]})
    with pytest.raises(ValueError, match="shape"):
        SGD(0.1).step(p, {"J": np.ones(3)})


@pytest.mark.parametrize(
    "make,exc,pattern",
    [
        (lambda: SGD(0.0), ValueError, "lr"),
        (lambda: SGD(0.1, momentum=1.0), ValueError, "momentum"),
        (lambda: SGD(0.1, momentum="x"), TypeError, "momentum"),
        (lambda: Adam(-1.0), ValueError, "lr"),
        (lambda: Adam(0.1, betas=(0.9, 1.0)), ValueError, "betas"),
        (lambda: Adam(0.1, betas=3), TypeError, "betas"),
        (lambda: Adam(0.1, eps=0.0), ValueError, "eps"),
    ],
)
def test_optimizer_errors(make, exc, pattern):
    with pytest.raises(exc, match=pattern):
        make()


# -------------------------------------------------------------------- fit
def test_fit_minibatches_cover_each_epoch_and_history_records_losses():
    model = _student()
    data = np.arange(10.0)[:, None] / 10.0
    rec = _Recorder()
    seen = []
    trained, hist = fit(model, data, rec, SGD(0.01), 6, 3, seed=0, callback=lambda s, m, l: seen.append((s, l)))
    assert isinstance(hist, History) and len(hist) == 6 and hist.loss.shape == (6,)
    # an epoch = 3 batches of 3 distinct rows (the 10th row waits for the next permutation)
    first = np.concatenate(rec.batches[:3])[:, 0]
    assert len(set(first)) == 9
    second = np.concatenate(rec.batches[3:6])[:, 0]
    assert len(set(second)) == 9
    # history holds the loss of each step before its update; the callback sees it too
    np.testing.assert_array_equal(hist.loss, [np.mean(_student().energy(b)) if i == 0 else hist.loss[i] for i, b in enumerate(rec.batches)])
    assert [s for s, _ in seen] == [1, 2, 3, 4, 5, 6]
    np.testing.assert_array_equal([l for _, l in seen], hist.loss)
    # the objective's seed differs at every step
    assert len({tuple(s.spawn_key) for s in rec.seeds}) == 6
    assert hist.wall_time >= 0.0
    assert trained is not model


def test_fit_is_reproducible_and_seed_dependent():
    model = RBM(np.zeros((5, 2)), np.zeros(5), np.zeros(2))
    data = (np.random.default_rng(0).random((40, 5)) < 0.3).astype(float)
    obj = O.EnergyDiscrepancy("bernoulli", t=0.2, m=4)
    m1, h1 = fit(model, data, obj, Adam(0.05), 15, 8, seed=3)
    m2, h2 = fit(model, data, obj, Adam(0.05), 15, 8, seed=3)
    m3, h3 = fit(model, data, obj, Adam(0.05), 15, 8, seed=4)
    np.testing.assert_array_equal(h1.loss, h2.loss)
    for k in m1.params:
        np.testing.assert_array_equal(m1.params[k], m2.params[k])
    assert not np.array_equal(h1.loss, h3.loss)


def test_fit_decreases_loss_and_keeps_ising_structure():
    data = np.where(np.random.default_rng(1).random((200, 6)) < 0.7, 1.0, -1.0)
    model = Ising(np.zeros((6, 6)), np.zeros(6))
    trained, hist = fit(model, data, O.RatioMatching(), Adam(0.05), 40, 200, seed=0)
    J = trained.params["J"]
    assert np.all(np.diag(J) == 0.0) and np.array_equal(J, J.T)
    assert hist.loss[-1] < hist.loss[0]
    # data biased to +1: the learned fields are positive
    assert np.all(trained.params["h"] > 0)


def test_fit_zero_steps():
    model = _student()
    trained, hist = fit(model, np.zeros((3, 1)), O.ScoreMatching(), SGD(0.1), 0, 2, seed=0)
    assert len(hist) == 0 and hist.loss.shape == (0,)
    for k in model.params:
        np.testing.assert_array_equal(trained.params[k], model.params[k])


def test_fit_is_silent_off_a_terminal(capsys):
    fit(_student(), np.zeros((4, 1)), O.ScoreMatching(), SGD(0.01), 3, 2, seed=0)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


def test_progress_line_on_a_terminal():
    class TTY(io.StringIO):
        def isatty(self):
            return True

    stream = TTY()
    prog = _Progress(10, stream)
    prog.update(1, 0.5)
    prog.update(10, 0.25, final=True)
    text = stream.getvalue()
    assert "step 1/10" in text and "step 10/10" in text and "it/s" in text and text.endswith("\n")
    quiet = io.StringIO()
    _Progress(10, quiet).update(10, 0.1, final=True)
    assert quiet.getvalue() == ""


def test_fit_raises_on_non_finite_loss():
    class Bad:
        def value_and_grad(self, model, x, seed):
            return float("nan"), model.grad_params(x)

    with pytest.raises(FloatingPointError, match="step 0"):
        fit(_student(), np.zeros((4, 1)), Bad(), SGD(0.1), 3, 2, seed=0)


@pytest.mark.parametrize(
    "kwargs,exc,pattern",
    [
        ({"batch_size": 5}, ValueError, "batch_size"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"batch_size": 1.5}, TypeError, "batch_size"),
        ({"n_steps": -1}, ValueError, "n_steps"),
        ({"n_steps": 2.0}, TypeError, "n_steps"),
        ({"data": np.full((4, 1), np.nan)}, ValueError, "data"),
        ({"data": np.zeros((4, 2))}, ValueError, "data"),
        ({"optimizer": "adam"}, TypeError, "optimizer"),
        ({"objective": 3}, TypeError, "objective"),
        ({"model": "m"}, TypeError, "model"),
        ({"seed": None}, TypeError, "seed"),
        ({"callback": 1}, TypeError, "callback"),
    ],
)
def test_fit_errors(kwargs, exc, pattern):
    args = dict(
        model=_student(), data=np.zeros((4, 1)), objective=O.ScoreMatching(), optimizer=SGD(0.1),
        n_steps=2, batch_size=2, seed=0,
    )
    args.update(kwargs)
    with pytest.raises(exc, match=pattern):
        fit(**args)


def test_fit_refuses_states_outside_domain():
    model = RBM(np.zeros((3, 2)), np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="data"):
        fit(model, np.full((4, 3), 0.5), O.RatioMatching(), SGD(0.1), 1, 2, seed=0)


_THREAD_SCRIPT = r"""
import sys
import numpy as np
from ebm_ref import objectives as O
from ebm_ref.energies import RBM
from ebm_ref.train import Adam, fit
r = np.random.default_rng(0)
model = RBM(r.normal(0, 0.5, (6, 3)), np.zeros(6), np.zeros(3))
data = (r.random((64, 6)) < 0.4).astype(float)
out = []
for obj in (O.CD(k=2), O.PCD(k=1, n_chains=40), O.EnergyDiscrepancy("bernoulli", 0.2, 4)):
    m, h = fit(model, data, obj, Adam(0.05), 5, 16, seed=7)
    out.append(np.concatenate([h.loss] + [v.ravel() for v in m.params.values()]))
np.savez(sys.argv[1], out=np.concatenate(out))
"""


def test_fit_bit_identical_across_numba_thread_counts(tmp_path):
    from _threads_harness import run_at_thread_counts

    script = tmp_path / "run.py"
    script.write_text(_THREAD_SCRIPT)
    results = [r["out"] for r in run_at_thread_counts(script, tmp_path)]
    assert np.array_equal(results[0], results[1])
