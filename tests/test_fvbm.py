"""FVBM: hand-derived derivatives, its Numba kernels, and every binary sampler on it.

FVBM joins the binary family by its own module plus its registration in
``energies.kernels``; gibbs, gwg, rwmh and dula run it with no other change.
Statistical checks: ``check_sampler``'s pooled chi-square against exact
enumeration, each with false-failure rate ``ALPHA``.
"""

import textwrap

import numpy as np
import pytest

from _threads_harness import run_at_thread_counts
from ebm_ref.energies import FVBM, Ising
from ebm_ref.energies import kernels
from ebm_ref.samplers import dula, gibbs, gwg, rwmh
from ebm_ref.testing import check_energy_derivatives, check_sampler

ALPHA = 1e-4  # false-failure rate of every statistical test in this file


def _fvbm(d, scale, seed):
    r = np.random.default_rng(seed)
    A = scale * r.normal(size=(d, d)) / np.sqrt(d)
    J = np.triu(A, 1) + np.triu(A, 1).T
    return FVBM(J, scale * r.normal(size=d))


def _states(r, n, d):
    return (r.random((n, d)) < 0.5).astype(float)


@pytest.mark.parametrize("d", [1, 3, 7])
@pytest.mark.parametrize("scale", [0.1, 1.0, 50.0])
def test_derivatives_match_finite_differences(d, scale):
    model = _fvbm(d, scale, seed=d)
    r = np.random.default_rng(3)
    # binary states and real points (the continuous extension)
    for x in (_states(r, 4, d), r.normal(size=(4, d))):
        check_energy_derivatives(model, x, seed=1).assert_ok()


@pytest.mark.parametrize("scale", [0.1, 1.0, 50.0])
def test_flip_energy_delta_closed_form(scale):
    d = 6
    model = _fvbm(d, scale, seed=2)
    r = np.random.default_rng(4)
    x = _states(r, 5, d)
    delta = model.flip_energy_delta(x)
    e0 = model.energy(x)
    for k in range(d):
        xf = x.copy()
        xf[:, k] = 1.0 - xf[:, k]
        np.testing.assert_allclose(delta[:, k], model.energy(xf) - e0, rtol=1e-12, atol=1e-12 * scale * d)


def test_grad_params_of_flip_energy_delta_finite_differences():
    d, eps = 5, 1e-5
    model = _fvbm(d, 1.3, seed=5)
    r = np.random.default_rng(6)
    x = _states(r, 4, d)
    c = r.normal(size=(4, d))
    g = model.grad_params_of_flip_energy_delta(x, c)
    mask = model.structural_zeros()["J"]
    for name, value in model.params.items():
        fd = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            if name == "J" and mask[idx]:
                continue  # the diagonal is not a parameter
            vals = []
            for s in (eps, -eps):
                p = {k: v.copy() for k, v in model.params.items()}
                p[name][idx] += s  # one entry moves (J need not stay symmetric)
                vals.append(np.sum(c * model._with_params_unchecked(p).flip_energy_delta(x)))
            fd[idx] = (vals[0] - vals[1]) / (2 * eps)
        np.testing.assert_allclose(g[name], fd, rtol=1e-6, atol=1e-8)
    assert np.all(g["J"][mask] == 0.0)


def test_same_distribution_as_binary_ising():
    model = _fvbm(6, 1.0, seed=7)
    twin = Ising(model.params["J"], model.params["b"], domain="binary")
    x = _states(np.random.default_rng(8), 20, 6)
    np.testing.assert_allclose(model.energy(x), twin.energy(x), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(model.flip_energy_delta(x), twin.flip_energy_delta(x), rtol=1e-13, atol=1e-13)


def test_kernels_agree_with_numpy_primitives():
    d = 7
    model = _fvbm(d, 2.0, seed=9)
    form = model.numba_form()
    assert form.kind == FVBM.NUMBA_KIND == 7 and form.kind in kernels.BINARY_KINDS
    x = _states(np.random.default_rng(10), 6, d)
    J, b = model.params["J"], model.params["b"]
    for xc in x:
        xc = xc.copy()
        cache, work, g = np.empty(d), np.empty(d), np.empty(d)
        kernels.bin_init_cache(form.kind, form.ip, form.fp, xc, cache)
        np.testing.assert_allclose(cache, J @ xc + b, rtol=1e-13, atol=1e-13)
        e = kernels.bin_energy_grad(form.kind, form.ip, form.fp, xc, work, g)
        np.testing.assert_allclose(e, model.energy(xc), rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(g, model.grad_x(xc), rtol=1e-13, atol=1e-13)
        assert kernels.bin_energy(form.kind, form.ip, form.fp, xc, work) == e
        lg = np.empty(d)
        kernels.bin_flip_logits(form.kind, form.ip, form.fp, xc, cache, work, lg)
        np.testing.assert_allclose(lg, -0.5 * (1.0 - 2.0 * xc) * model.grad_x(xc), rtol=1e-13, atol=1e-13)
        ref = model.flip_energy_delta(xc)
        for i in range(d):
            for fresh in (False, True):
                de = kernels.bin_flip_delta(form.kind, form.ip, form.fp, xc, cache, i, fresh)
                np.testing.assert_allclose(de, ref[i], rtol=1e-12, atol=1e-12)
            logit = kernels.bin_cond_logit(form.kind, form.ip, form.fp, xc, cache, i)
            np.testing.assert_allclose(logit, ref[i] if xc[i] == 1.0 else -ref[i], rtol=1e-12, atol=1e-12)
        # a flip updates the cache to the flipped state's fields
        kernels.bin_apply_flip(form.kind, form.ip, form.fp, xc, cache, 3)
        np.testing.assert_allclose(cache, J @ xc + b, rtol=1e-13, atol=1e-13)


SAMPLERS = {
    "gibbs": lambda m, x0, k, rng: gibbs(m, x0, k, seed=rng).x,
    "gwg": lambda m, x0, k, rng: gwg(m, x0, k, seed=rng).x,
    "rwmh": lambda m, x0, k, rng: rwmh(m, x0, k, 1.0, seed=rng).x,
    "dmala": lambda m, x0, k, rng: dula(m, x0, k, 0.8, seed=rng, adjust=True).x,
}


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_sampler_matches_exact_distribution(name):
    # 64 states; exact starts (stationarity) and a fixed start (mixing), 20000 chains
    model = _fvbm(6, 1.0, seed=11)
    run = SAMPLERS[name]
    check_sampler(lambda params, x0, k, rng: run(model, x0, k, rng), model, n_steps=30, seed=12,
                  alpha=ALPHA).assert_ok()


@pytest.mark.parametrize("name", ["gibbs", "gwg"])
def test_planted_bias_is_detected(name):
    # negative control: the chains sample a model with every bias moved by
    # 0.3 (TV ~ 0.1 from the target), which the same check must reject
    model = _fvbm(6, 1.0, seed=11)
    wrong = FVBM(model.params["J"], model.params["b"] + 0.3)
    run = SAMPLERS[name]
    res = check_sampler(lambda params, x0, k, rng: run(wrong, x0, k, rng), model, n_steps=30, seed=12,
                        alpha=ALPHA)
    assert not res.passed, res


def test_bit_identical_at_1_and_2_threads_and_for_chain_prefixes(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(
        """
        import sys
        import numpy as np
        from ebm_ref.energies import FVBM
        from ebm_ref.samplers import dula, gibbs, gwg, rwmh
        r = np.random.default_rng(0)
        A = np.triu(r.normal(size=(9, 9)), 1)
        m = FVBM(A + A.T, r.normal(size=9))
        x0 = (r.random((70, 9)) < 0.5).astype(float)
        runs = {"gibbs": lambda x: gibbs(m, x, 6, seed=4, thin=2), "gwg": lambda x: gwg(m, x, 25, seed=4, thin=5),
                "rwmh": lambda x: rwmh(m, x, 25, 1.0, seed=4, thin=5),
                "dula": lambda x: dula(m, x, 8, 0.6, seed=4, adjust=True, thin=4)}
        out = {}
        for name, f in runs.items():
            full, head = f(x0), f(x0[:13])
            assert np.array_equal(full.x[:13], head.x) and np.array_equal(full.trace[:, :13], head.trace)
            for k in ("x", "trace", "energies", "acceptance_rate"):
                v = getattr(full, k)
                if v is not None:
                    out[f"{name}/{k}"] = v
        np.savez(sys.argv[1], **out)
        """
    ))
    one, two = run_at_thread_counts(script, tmp_path)
    assert len(one) == 4 * 3 + 3 and one.keys() == two.keys()
    for k in one:
        assert np.array_equal(one[k], two[k], equal_nan=True), k


def test_bad_input():
    J = np.array([[0.0, 1.0], [1.0, 0.0]])
    with pytest.raises(ValueError, match="`J`"):
        FVBM(np.array([[0.0, 1.0], [0.5, 0.0]]), np.zeros(2))
    with pytest.raises(ValueError, match="`J`"):
        FVBM(np.eye(2), np.zeros(2))
    with pytest.raises(ValueError, match="`J`"):
        FVBM(np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="b"):
        FVBM(J, np.zeros(3))
    with pytest.raises(ValueError, match="x0"):
        gwg(FVBM(J, np.zeros(2)), np.array([0.0, 0.5]), 1, seed=0)
    with pytest.raises(ValueError, match="x0"):
        gibbs(FVBM(J, np.zeros(2)), np.array([-1.0, 1.0]), 1, seed=0)
