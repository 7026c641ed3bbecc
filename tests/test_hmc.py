"""Hamiltonian Monte Carlo (docs/dula-and-hmc.md).

* the leapfrog map of the kernels is reversible (forward, momentum flip,
  forward returns the start to rounding) and volume-preserving (the
  determinant of its finite-difference Jacobian is 1) in float64;
* stationarity on StudentT, GaussianMixture and the GRBM marginal against
  exact samples (``check_sampler``: KS and moment tests, false-failure rate
  1e-4) from exact and fixed starts; planted bugs (forgotten final half
  kick, wrong sign of the kinetic term, gradient frozen at the start of the
  trajectory), built here on the production streams and kernel dispatch,
  fail the same checks;
* one transition's acceptance probability equals blackjax's HMC for the
  same momentum draw;
* 1 vs 2 threads (subprocesses), chain prefixes (Numba and generic paths),
  bad input.
"""

import pathlib
import textwrap

import numba
import numpy as np
import pytest

from _threads_harness import run_at_thread_counts
from ebm_ref._jit import ON
from ebm_ref._rng import as_seed_sequence, chain_states, np_normals, np_uniforms
from ebm_ref.energies import GRBM, GaussianMixture, MLPEnergy, StudentT
from ebm_ref.energies.kernels import continuous_eval_batch, continuous_eval_tile
from ebm_ref.samplers import _continuous as _k
from ebm_ref.samplers import hmc
from ebm_ref.testing import check_sampler

REPO = pathlib.Path(__file__).resolve().parent.parent
ALPHA = 1e-4  # false-failure rate of every statistical test in this file


def _student():
    return StudentT(np.array([0.5, -1.0]), np.log([1.0, 0.7]), np.log([3.0, 6.0]))


def _mixture():
    return GaussianMixture(np.array([0.3, -0.2]), np.array([[-1.0, 0.5], [1.0, -0.5]]), np.full((2, 2), np.log(0.8)))


def _grbm():
    W = np.array([[0.8, -0.5, 0.3], [0.2, 0.9, -0.6]])
    return GRBM(W, np.array([0.2, -0.3]), np.array([-0.5, 0.3, 0.1]), np.log([0.6, 0.9]))


def _mlp():
    return MLPEnergy([3, 8, 8], activation="tanh", seed=1)


MODELS = {"student": _student, "mixture": _mixture, "grbm": _grbm, "mlp": _mlp}


@numba.njit
def _leapfrog_rows(kind, ip, fp, n_work, x, p, eps, n_leap, invm):
    """The driver's leapfrog map on every row, one chain at a time."""
    d = x.shape[1]
    for c in range(x.shape[0]):
        X = x[c: c + 1]
        G = np.empty((1, d))
        E = np.empty(1)
        work = np.empty((1, max(n_work, 1)))
        # ON, not True: a literal compiles another copy of the evaluator (ebm_ref._jit.ON)
        continuous_eval_tile(kind, ip, fp, X, G, E, ON, work, ON)
        _k.leapfrog_tile(kind, ip, fp, X, p[c: c + 1], G, E, eps, n_leap, invm, work)


def leapfrog(model, x, p, eps, n_leap, invm=None):
    """The kernel's leapfrog end points of every row (copies)."""
    kind, ip, fp, n_work = _k.pack_model(model)
    x = np.array(x, dtype=np.float64)
    p = np.array(p, dtype=np.float64)
    invm = np.ones(x.shape[1]) if invm is None else np.asarray(invm, dtype=np.float64)
    _leapfrog_rows(kind, ip, fp, n_work, x, p, eps, n_leap, invm)
    return x, p


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("eps, n_leap", [(0.1, 10), (0.5, 3)])
def test_leapfrog_reversible(name, eps, n_leap):
    model = MODELS[name]()
    r = np.random.default_rng(0)
    d = model.n_features
    x0, p0 = r.normal(size=(20, d)), r.normal(size=(20, d))
    invm = np.linspace(0.5, 1.5, d)
    x1, p1 = leapfrog(model, x0, p0, eps, n_leap, invm)
    assert np.abs(x1 - x0).max() > 1e-3  # it moved
    x2, p2 = leapfrog(model, x1, -p1, eps, n_leap, invm)
    scale = 1.0 + np.abs(x1).max() + np.abs(p1).max()
    # rounding: a few ulp per operation, n_leap * d operations per entry
    np.testing.assert_allclose(x2, x0, rtol=0, atol=1e-13 * scale * n_leap)
    np.testing.assert_allclose(-p2, p0, rtol=0, atol=1e-13 * scale * n_leap)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_leapfrog_volume_preserving(name):
    model = MODELS[name]()
    d = model.n_features
    r = np.random.default_rng(1)
    invm = np.linspace(0.5, 1.5, d)
    for _ in range(3):
        z = np.concatenate([r.normal(size=d), r.normal(size=d)])
        h = 1e-5
        pts = np.repeat(z[None], 4 * d, axis=0)
        for k in range(2 * d):
            pts[2 * k, k] += h
            pts[2 * k + 1, k] -= h
        xe, pe = leapfrog(model, pts[:, :d], pts[:, d:], 0.2, 5, invm)
        out = np.concatenate([xe, pe], axis=1)
        Jac = ((out[0::2] - out[1::2]) / (2 * h)).T
        # central differences: O(h^2) truncation plus eps/h rounding ~ 1e-10
        assert abs(np.linalg.det(Jac) - 1.0) < 1e-7


def _fn(model, eps, n_leap, invm=None):
    def sample(params, x0, n_steps, rng):
        return hmc(model, x0, n_steps, eps, n_leap, rng, inverse_mass=invm).x

    return sample


# Planted bugs, built here (production code has none): an HMC in NumPy on the
# production streams, through the public kernel dispatch, with one bug each.
BUGS = ("none", "no_final_half_kick", "kinetic_sign", "frozen_grad")


def hmc_mutant(model, x0, n_steps, eps, n_leap, seed, bug):
    """HMC transitions with ``bug`` (``"none"``: the correct algorithm)."""
    kind, ip, fp, n_work = model.numba_form()

    def evaluate(x):
        return continuous_eval_batch(kind, ip, fp, np.ascontiguousarray(x), n_work, True)

    x = np.array(x0, dtype=np.float64)
    n, d = x.shape
    rng = chain_states(as_seed_sequence(seed), n)
    e, g = evaluate(x)
    p = np.empty((n, d))
    for _ in range(n_steps):
        for j in range(d):
            p[:, j] = np_normals(rng)
        k0 = 0.5 * np.sum(p * p, axis=1)
        xp, gp, g0 = x.copy(), g.copy(), g.copy()
        p -= 0.5 * eps * gp
        for step in range(n_leap):
            xp += eps * p
            ep, gp = evaluate(xp)
            kick = g0 if bug == "frozen_grad" else gp
            if step < n_leap - 1:
                p -= eps * kick
            elif bug != "no_final_half_kick":
                p -= 0.5 * eps * kick
        k1 = 0.5 * np.sum(p * p, axis=1)
        sign = -1.0 if bug == "kinetic_sign" else 1.0
        ok = np.log(np_uniforms(rng)) < (e + sign * k0) - (ep + sign * k1)
        x[ok], g[ok], e[ok] = xp[ok], gp[ok], ep[ok]
    return x


def _mutant_fn(model, eps, n_leap, bug):
    def sample(params, x0, n_steps, rng):
        return hmc_mutant(model, np.atleast_2d(x0), n_steps, eps, n_leap, rng, bug)

    return sample


def test_mutant_without_bug_is_the_sampler():
    """The mutants differ from production by their bug only."""
    model = _student()
    x0 = np.random.default_rng(5).normal(size=(200, 2))
    ref = hmc(model, x0, 8, 0.6, 4, seed=9).x
    # normals differ by a few ulp (NumPy's vs the kernel's log/cos)
    np.testing.assert_allclose(hmc_mutant(model, x0, 8, 0.6, 4, 9, "none"), ref, rtol=1e-9, atol=1e-12)


STAT = {"student": _student, "mixture": _mixture, "grbm": _grbm}


@pytest.mark.parametrize("name", sorted(STAT))
def test_invariant_from_exact_start(name):
    model = STAT[name]()
    check_sampler(_fn(model, 0.4, 5), model, n_steps=10, seed=31, alpha=ALPHA, start="exact").assert_ok()
    invm = np.linspace(0.6, 1.4, model.n_features)
    check_sampler(_fn(model, 0.4, 5, invm=invm), model, n_steps=10, seed=32, alpha=ALPHA, start="exact").assert_ok()


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(STAT))
def test_converges_from_fixed_start(name):
    model = STAT[name]()
    x0 = np.full(model.n_features, 0.5)
    check_sampler(_fn(model, 0.4, 5), model, n_steps=100, seed=33, alpha=ALPHA, start=x0).assert_ok()


@pytest.mark.parametrize("bug", BUGS[1:])
@pytest.mark.parametrize("name", sorted(STAT))
def test_planted_bugs_fail(name, bug):
    model = STAT[name]()
    res = check_sampler(_mutant_fn(model, 0.6, 4, bug), model, n_steps=10, seed=34, alpha=ALPHA, start="exact")
    assert not res.passed, res


def test_acceptance_equals_blackjax():
    import jax

    # x64 only inside this test: other tests of the process keep jax's default
    with jax.enable_x64(True):
        ours, theirs = _compare_with_blackjax()
    np.testing.assert_allclose(ours, theirs, rtol=0.0, atol=1e-10)
    assert np.sum(ours < 0.999) >= 3, ours  # not only trivial acceptances


def _compare_with_blackjax():
    """Acceptance probabilities of one HMC step, ours and blackjax's, for the same momenta (12 starts)."""
    import blackjax
    import jax
    import jax.numpy as jnp

    model = _student()
    p = model.params
    loc, scale, df = p["loc"], np.exp(p["log_scale"]), np.exp(p["log_df"])

    def logdensity(x):  # -E(x) of StudentT (additive constants do not matter)
        z = (x - loc) / scale
        return -jnp.sum(0.5 * (df + 1.0) * jnp.log1p(z * z / df))

    invm = np.array([0.7, 1.3])
    eps, n_leap = 0.45, 7
    kernel = blackjax.hmc(logdensity, eps, jnp.asarray(invm), n_leap)
    r = np.random.default_rng(3)
    ours, theirs = [], []
    for k in range(12):
        x = r.normal(size=2) * 2.0
        state = kernel.init(jnp.asarray(x))
        assert state.position.dtype == jnp.float64
        _, info = kernel.step(jax.random.PRNGKey(k), state)
        mom = np.asarray(info.momentum, dtype=np.float64)
        x1, p1 = leapfrog(model, x[None], mom[None], eps, n_leap, invm)
        h0 = model.energy(x) + 0.5 * np.sum(mom * mom * invm)
        h1 = model.energy(x1)[0] + 0.5 * np.sum(p1 * p1 * invm)
        ours.append(min(1.0, float(np.exp(h0 - h1))))
        theirs.append(float(info.acceptance_rate))
    return np.array(ours), np.array(theirs)


class _PlainT(StudentT):
    """A StudentT that redefines a formula hook but not the Numba form: no
    ``numba_form()``, so the generic path."""

    def _energy(self, x):
        return super()._energy(x)


@pytest.mark.parametrize("factory", [_student, _mixture, _grbm, _mlp, lambda: _PlainT(np.zeros(2), np.zeros(2), np.log([3.0, 5.0]))])
def test_chain_prefix_invariance(factory):
    model = factory()
    x0 = np.random.default_rng(0).normal(size=(300, model.n_features))
    big = hmc(model, x0, 6, 0.3, 4, seed=7, thin=2)
    small = hmc(model, x0[:10], 6, 0.3, 4, seed=7, thin=2)
    for field in ("x", "acceptance_rate", "energies"):
        np.testing.assert_array_equal(getattr(big, field)[:10], getattr(small, field))
    np.testing.assert_array_equal(big.trace[:, :10], small.trace)


def test_generic_path_agrees_with_kernel():
    # same draws (normals to a few ulp: NumPy's vectorised log/cos), so
    # the same accept decisions and states to rounding
    a = hmc(_student(), np.zeros((50, 2)) + 0.3, 10, 0.3, 4, seed=2)
    m = _PlainT(_student().params["loc"], _student().params["log_scale"], _student().params["log_df"])
    b = hmc(m, np.zeros((50, 2)) + 0.3, 10, 0.3, 4, seed=2)
    np.testing.assert_array_equal(a.acceptance_rate, b.acceptance_rate)
    np.testing.assert_allclose(a.x, b.x, rtol=1e-9, atol=1e-9)


def test_result_fields():
    model = _student()
    x0 = np.zeros((5, 2))
    r = hmc(model, x0, 7, 0.3, 3, seed=0, thin=3)
    assert r.trace.shape == (2, 5, 2) and r.acceptance_rate.shape == (5,)
    np.testing.assert_array_equal(x0, 0.0)
    np.testing.assert_allclose(r.energies, model.energy(r.x), rtol=1e-12)
    assert hmc(model, x0[0], 3, 0.3, 3, seed=0).x.shape == (2,)
    z = hmc(model, x0, 0, 0.3, 3, seed=0)
    assert np.all(np.isnan(z.acceptance_rate)) and np.array_equal(z.x, x0)


def test_bit_identical_with_one_and_two_threads(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(
        """
        import sys
        import numpy as np
        from ebm_ref.energies import GRBM, GaussianMixture, MLPEnergy, StudentT
        from ebm_ref.samplers import hmc
        models = {
            "t": StudentT(np.zeros(2), np.zeros(2), np.log([3.0, 5.0])),
            "mix": GaussianMixture(np.zeros(2), np.array([[-1.0, 0.0], [1.0, 0.5]]), np.zeros((2, 2))),
            "grbm": GRBM(np.ones((2, 3)) * 0.3, np.zeros(2), np.zeros(3), np.zeros(2)),
            "mlp": MLPEnergy([3, 8, 8], activation="tanh", seed=1),
        }
        out = {}
        for name, m in models.items():
            x0 = np.random.default_rng(0).normal(size=(150, m.n_features))
            res = hmc(m, x0, 7, 0.3, 4, seed=123, thin=3, inverse_mass=np.linspace(0.5, 1.5, m.n_features))
            for k in ("x", "acceptance_rate", "trace", "energies"):
                out[f"{name}/{k}"] = getattr(res, k)
        np.savez(sys.argv[1], **out)
        """
    ))
    results = run_at_thread_counts(script, tmp_path)
    assert len(results[0]) == 16 and results[0].keys() == results[1].keys()
    for k in results[0]:
        assert np.array_equal(results[0][k], results[1][k], equal_nan=True), k


def test_bad_input():
    model = _student()
    x0 = np.zeros((3, 2))
    with pytest.raises(ValueError, match="step_size"):
        hmc(model, x0, 1, -0.1, 3, seed=0)
    with pytest.raises(ValueError, match="n_leapfrog"):
        hmc(model, x0, 1, 0.1, 0, seed=0)
    with pytest.raises(TypeError, match="n_leapfrog"):
        hmc(model, x0, 1, 0.1, 2.5, seed=0)
    with pytest.raises(ValueError, match="n_steps"):
        hmc(model, x0, -1, 0.1, 3, seed=0)
    with pytest.raises(ValueError, match="thin"):
        hmc(model, x0, 1, 0.1, 3, seed=0, thin=-1)
    with pytest.raises(ValueError, match="inverse_mass"):
        hmc(model, x0, 1, 0.1, 3, seed=0, inverse_mass=np.ones(3))
    with pytest.raises(ValueError, match="inverse_mass"):
        hmc(model, x0, 1, 0.1, 3, seed=0, inverse_mass=np.array([1.0, 0.0]))
    with pytest.raises(TypeError, match="inverse_mass"):
        hmc(model, x0, 1, 0.1, 3, seed=0, inverse_mass="big")
    with pytest.raises(ValueError, match="x0"):
        hmc(model, np.array([[0.0, np.nan]]), 1, 0.1, 3, seed=0)
    with pytest.raises(ValueError, match="x0"):
        hmc(model, np.zeros((3, 3)), 1, 0.1, 3, seed=0)
    with pytest.raises(TypeError, match="seed"):
        hmc(model, x0, 1, 0.1, 3, seed=1.5)
    from ebm_ref.energies import RBM

    with pytest.raises(TypeError, match="hmc"):
        hmc(RBM(np.zeros((2, 2)), np.zeros(2), np.zeros(2)), x0, 1, 0.1, 3, seed=0)


@pytest.mark.slow
def test_generic_path_latent_energy_invariant():
    # LatentEnergy at beta = 1: exp(-F(y)) = mean_j exp(-||y - w * phi(z_j)||^2),
    # an equal-weight mixture of N(w * phi(z_j), I / 2): exact draws are easy
    from scipy.special import logsumexp

    from ebm_ref.energies import LatentEnergy

    w = np.array([2.0, 1.0])
    model = LatentEnergy(w)
    centres = np.stack([np.cos(model.z_grid), np.sin(model.z_grid)], axis=1) * w
    y = np.random.default_rng(0).normal(size=(50, 2)) * 2.0
    log_mix = logsumexp(-((y[:, None, :] - centres[None]) ** 2).sum(axis=-1), axis=1)
    assert np.ptp(-model.energy(y) - log_mix) < 1e-12  # the reference is the model's law

    def exact(rng, n):
        return centres[rng.integers(0, len(centres), size=n)] + rng.normal(0.0, np.sqrt(0.5), size=(n, 2))

    check_sampler(
        _fn(model, 0.3, 5), model, n_steps=20, seed=35, alpha=ALPHA, exact_sampler=exact, start="exact"
    ).assert_ok()
    # negative control: the chains of the beta = 3 model drift away from the
    # beta = 1 law within the same 20 transitions (measured p-value 1e-14)
    hot = LatentEnergy(w, beta=3.0)
    bad = check_sampler(_fn(hot, 0.3, 5), model, n_steps=20, seed=35, alpha=ALPHA, exact_sampler=exact, start="exact")
    assert not bad.passed, bad


def test_divergent_trajectories_are_rejected():
    # a step far beyond the stability limit: energies overflow or turn
    # NaN along the trajectory, and every such proposal must be rejected
    narrow = GaussianMixture(np.zeros(2), np.array([[-1.0], [1.0]]), np.full((2, 1), np.log(1e-3)))
    x0 = np.array([[-1.0], [1.0], [-1.0005]])
    res = hmc(narrow, x0, 20, 5.0, 10, seed=0)
    assert np.all(np.isfinite(res.x)) and np.all(np.isfinite(res.energies))
    np.testing.assert_array_equal(res.acceptance_rate, 0.0)
    np.testing.assert_array_equal(res.x, x0)
