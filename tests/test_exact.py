"""ebm_ref.exact: enumeration against brute force, probabilities, mle_grad, limits."""

import itertools
import json
import sys
import types

import numpy as np
import pytest
from scipy.special import logsumexp

from ebm_ref import exact
from ebm_ref.energies import RBM, EnergyModel, Ising
from ebm_ref.testing import check_grad
from zoo import random_rbm



def _naive_states(d, domain):
    vals = (-1.0, 1.0) if domain == "spin" else (0.0, 1.0)
    return np.array(list(itertools.product(vals, repeat=d)))


def _naive_log_z_ising(model):
    S = _naive_states(model.n_features, model.domain)
    J, h = model.params["J"], model.params["h"]
    return logsumexp(0.5 * np.einsum("ni,ij,nj->n", S, J, S) + S @ h)


def _naive_log_z_rbm(model):
    # joint enumeration of (v, h): independent of the free-energy formula
    p = model.params
    V, H = p["W"].shape
    v = _naive_states(V, "binary")
    h = _naive_states(H, "binary")
    neg_e = (v @ p["b_v"])[:, None] + (h @ p["b_h"])[None, :] + v @ p["W"] @ h.T
    return logsumexp(neg_e)


def _rbm(rng, V, H, scale):
    return random_rbm(V, H, scale, seed=rng)


@pytest.mark.parametrize("V, H", [(3, 7), (7, 3), (5, 5), (1, 4), (9, 1), (12, 6)])
@pytest.mark.parametrize("scale", [0.3, 3.0])
def test_rbm_log_z_matches_joint_enumeration(V, H, scale, rng):
    model = _rbm(rng, V, H, scale)
    value, err = exact.log_partition(model, return_error=True)
    ref = _naive_log_z_rbm(model)
    assert np.isfinite(err) and 0.0 <= err < 1e-9
    assert abs(value - ref) < 1e-10
    assert exact.log_partition(model) == value


@pytest.mark.parametrize("V, H", [(6, 9), (9, 6), (4, 1030)])
def test_rbm_kernel_paths_agree(V, H, rng):
    # the multiplicative path (E_j = e^{a_j}) and the softplus path both match
    # brute force; H = 1030 > SOFTPLUS_GROUP and several product groups
    from ebm_ref.exact import _enumerate as en
    from ebm_ref.exact import _rbm_log_z

    model = _rbm(rng, V, H, 1.0)
    c, b, M, _ = en.rbm_layers(model)
    mult = en.rbm_mult_plan(b, M)
    assert mult is not None
    if H > 1000:
        assert mult[2].size > 2  # more than one product group
    ref = _naive_log_z_rbm(model) if V * H < 200 else None
    v_mult, e_mult = _rbm_log_z(model, c, b, M, path="mult")
    v_gen, e_gen = _rbm_log_z(model, c, b, M, path="general")
    assert abs(v_mult - v_gen) <= e_mult + e_gen
    if ref is not None:
        assert abs(v_mult - ref) < 1e-10 and abs(v_gen - ref) < 1e-10
    else:
        # 4 visibles enumerated directly with the free energy
        states = _naive_states(V, "binary")
        assert abs(v_gen - logsumexp(-model.energy(states))) < 1e-10
    # out of the multiplicative range: the plan refuses, "auto" takes the softplus path
    big = _rbm(rng, 8, 5, 200.0)
    assert en.rbm_mult_plan(*en.rbm_layers(big)[1:3]) is None
    # a in [-350, 350], inside the range, but the coupling 750 has e^{750} = inf
    assert en.rbm_mult_plan(np.array([-350.0]), np.array([[750.0]])) is None
    assert en.rbm_mult_plan(np.array([-300.0]), np.array([[600.0]])) is not None
    assert abs(exact.log_partition(big) - _naive_log_z_rbm(big)) < 1e-12 * abs(_naive_log_z_rbm(big)) + 1e-9


def test_ising_spin_flip_symmetry_shortcut():
    from ebm_ref.exact import _enumerate as en
    from ebm_ref.exact import _ising_log_z

    for model in (Ising.lattice(4, 0.5), Ising.random(13, 2.0, 1)._with_params_unchecked({"h": np.zeros(13)})):
        arrays = en.ising_arrays(model)
        full, _ = _ising_log_z(arrays, use_symmetry=False)
        half, err = _ising_log_z(arrays)
        assert abs(full - half) < 1e-12 and abs(half - _naive_log_z_ising(model)) < 1e-10 and err < 1e-9


@pytest.mark.parametrize("domain", ["spin", "binary"])
@pytest.mark.parametrize("d", [1, 2, 5, 11, 14])
def test_ising_log_z_matches_naive(domain, d, rng):
    model = Ising.random(d, 2.0, rng, domain=domain)
    value, err = exact.log_partition(model, return_error=True)
    assert 0.0 <= err < 1e-9
    assert abs(value - _naive_log_z_ising(model)) < 1e-10


@pytest.mark.parametrize("domain", ["spin", "binary"])
def test_ising_log_z_formula_for_any_J(domain, rng):
    # finite differences move single entries of J (diagonal too): the formula
    # 1/2 x J x + h x must be enumerated as written
    model = Ising.random(6, 1.0, rng, domain=domain)
    J = rng.normal(size=(6, 6))
    moved = model._with_params_unchecked({"J": J})
    assert abs(exact.log_partition(moved) - _naive_log_z_ising(moved)) < 1e-10


def test_chunks_and_resync_are_exercised():
    from ebm_ref.exact import _enumerate as en

    # 2^18 states in 2^CHUNK_BITS chunks, each longer than RESYNC: chunk starts,
    # resynchronisations and incremental flips all run
    assert 2**18 >> en.CHUNK_BITS > en.RESYNC
    model = Ising.random(18, 1.5, 4)
    S = _naive_states(18, "spin")
    J, h = model.params["J"], model.params["h"]
    ref = logsumexp(0.5 * np.einsum("ni,ij,nj->n", S, J, S) + S @ h)
    assert abs(exact.log_partition(model) - ref) < 1e-10


@pytest.mark.parametrize("domain", ["spin", "binary"])
def test_probabilities_order_and_values(domain, rng):
    model = Ising.random(5, 2.0, rng, domain=domain)
    states, probs = exact.probabilities(model)
    assert states.shape == (32, 5) and probs.shape == (32,)
    low = -1.0 if domain == "spin" else 0.0
    assert np.all(states[0] == low) and np.all(states[-1] == 1.0)
    # row k is the binary expansion of k, unit 0 most significant
    for k in (1, 2, 6, 19):
        bits = [int(b) for b in format(k, "05b")]
        np.testing.assert_array_equal(states[k], [1.0 if b else low for b in bits])
    np.testing.assert_array_equal(states, _naive_states(5, domain))
    ref = np.exp(-model.energy(states) - _naive_log_z_ising(model))
    np.testing.assert_allclose(probs, ref, rtol=1e-12)
    assert abs(probs.sum() - 1.0) < 1e-13


@pytest.mark.parametrize("V, H", [(4, 6), (6, 3)])
def test_probabilities_rbm_visible_marginal(V, H, rng):
    model = _rbm(rng, V, H, 2.0)
    states, probs = exact.probabilities(model)
    assert states.shape == (2**V, V)
    np.testing.assert_array_equal(states, _naive_states(V, "binary"))
    p = model.params
    hs = _naive_states(H, "binary")
    neg_e = (states @ p["b_v"])[:, None] + (hs @ p["b_h"])[None, :] + states @ p["W"] @ hs.T
    ref = np.exp(logsumexp(neg_e, axis=1) - logsumexp(neg_e))
    np.testing.assert_allclose(probs, ref, rtol=1e-12)


def test_log_likelihood(rng):
    model = _rbm(rng, 6, 4, 1.0)
    x = rng.integers(0, 2, size=(7, 6)).astype(float)
    ll = exact.log_likelihood(model, x)
    assert ll.shape == (7,)
    states, probs = exact.probabilities(model)
    idx = (x * 2 ** np.arange(5, -1, -1)).sum(1).astype(int)
    np.testing.assert_allclose(ll, np.log(probs[idx]), rtol=1e-12)
    single = exact.log_likelihood(model, x[2])
    assert np.shape(single) == () and single == pytest.approx(ll[2], rel=1e-15)
    ising = Ising.random(4, 1.0, 0)
    s = np.array([[1, -1, 1, 1], [-1, -1, -1, 1]])
    np.testing.assert_allclose(
        exact.log_likelihood(ising, s), -ising.energy(s) - _naive_log_z_ising(ising), rtol=1e-12
    )


def _check_mle_grad(model, x):
    def f(theta):
        return float(np.mean(exact.log_likelihood(model._with_params_unchecked(theta), x)))

    return check_grad(
        f,
        lambda theta: exact.mle_grad(model, x),
        model.params,
        zero_mask=model.structural_zeros(),
        name="mle_grad",
    )


@pytest.mark.parametrize("V, H", [(3, 6), (6, 3), (4, 4)])
def test_mle_grad_rbm_matches_finite_differences(V, H, rng):
    model = _rbm(rng, V, H, 1.5)
    x = rng.integers(0, 2, size=(9, V)).astype(float)
    _check_mle_grad(model, x).assert_ok()


@pytest.mark.parametrize("domain", ["spin", "binary"])
@pytest.mark.parametrize("d", [3, 7])
def test_mle_grad_ising_matches_finite_differences(domain, d, rng):
    model = Ising.random(d, 2.0, rng, domain=domain)
    low = -1.0 if domain == "spin" else 0.0
    x = np.where(rng.random((11, d)) < 0.5, low, 1.0)
    res = _check_mle_grad(model, x)
    res.assert_ok()
    g = exact.mle_grad(model, x)
    assert np.all(np.diag(g["J"]) == 0.0)
    np.testing.assert_array_equal(g["J"], g["J"].T)


def test_mle_grad_is_zero_at_model_moments(rng):
    # data = the model distribution itself (weights = probabilities): gradient 0
    model = Ising.random(5, 1.0, rng)
    states, probs = exact.probabilities(model)
    e_model = model.grad_params(states, probs)
    g = exact.mle_grad(model, states[:1])
    data = model.grad_params(states[:1])
    for k in g:
        np.testing.assert_allclose(g[k], e_model[k] - data[k], atol=1e-12)


def test_mle_grad_rbm_many_visibles_few_hiddens(rng):
    # enumerates the 3 hiddens only, E[v|h] analytically; compare with 2^12 visibles
    model = _rbm(rng, 12, 3, 1.0)
    x = rng.integers(0, 2, size=(5, 12)).astype(float)
    g = exact.mle_grad(model, x)
    states, probs = exact.probabilities(model)
    e_model = model.grad_params(states, probs)
    data = model.grad_params(x)
    for k in g:
        np.testing.assert_allclose(g[k], e_model[k] - data[k], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("scale", [50.0])
def test_no_overflow_large_weights(scale, rng):
    model = _rbm(rng, 8, 10, scale)
    ising = Ising.random(12, scale, rng)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        v_rbm, e_rbm = exact.log_partition(model, return_error=True)
        v_is, e_is = exact.log_partition(ising, return_error=True)
        _, probs = exact.probabilities(model)
        g = exact.mle_grad(model, np.ones((2, 8)))
    for v, e in ((v_rbm, e_rbm), (v_is, e_is)):
        assert np.isfinite(v) and np.isfinite(e) and e >= 0.0
    assert abs(v_rbm - _naive_log_z_rbm(model)) < 1e-12 * abs(v_rbm) + 1e-9
    assert abs(v_is - _naive_log_z_ising(ising)) < 1e-12 * abs(v_is) + 1e-9
    assert np.all(np.isfinite(probs)) and abs(probs.sum() - 1.0) < 1e-12
    assert all(np.all(np.isfinite(a)) for a in g.values())


_THREAD_SCRIPT = r"""
import json, numpy as np
from ebm_ref import exact
from ebm_ref.energies import RBM, Ising
rng = np.random.default_rng(3)
rbm = RBM(rng.normal(0, 2, (13, 17)), rng.normal(size=13), rng.normal(size=17))
ising = Ising.random(17, 2.0, 5)
x = np.where(rng.random((4, 17)) < 0.5, -1.0, 1.0)
out = {
    "rbm": exact.log_partition(rbm).hex(),
    "ising": exact.log_partition(ising).hex(),
    "lattice": exact.log_partition(Ising.lattice(4, 0.5)).hex(),
    "g_rbm": [float(v).hex() for a in exact.mle_grad(rbm, np.ones((1, 13))).values() for v in a.ravel()],
    "g_ising": [float(v).hex() for a in exact.mle_grad(ising, x).values() for v in a.ravel()],
    "probs": [float(v).hex() for v in exact.probabilities(Ising.random(11, 1.0, 2))[1]],
}
import sys
np.savez(sys.argv[1], out=np.array(json.dumps(out)))
"""


def test_bit_identical_across_thread_counts(tmp_path):
    from _threads_harness import run_at_thread_counts

    script = tmp_path / "run.py"
    script.write_text(_THREAD_SCRIPT)
    results = [json.loads(str(r["out"])) for r in run_at_thread_counts(script, tmp_path)]
    assert results[0] == results[1]


def test_size_limits():
    big_rbm = RBM(np.zeros((31, 32)), np.zeros(31), np.zeros(32))
    with pytest.raises(ValueError, match=r"`model`.*2\^31.*limit 30"):
        exact.log_partition(big_rbm)
    with pytest.raises(ValueError, match=r"`model`.*2\^31"):
        exact.log_partition(Ising(np.zeros((31, 31)), np.zeros(31)))
    with pytest.raises(ValueError, match=r"`model`.*2\^21.*probabilities"):
        exact.probabilities(Ising(np.zeros((21, 21)), np.zeros(21)))
    with pytest.raises(ValueError, match=r"`model`.*2\^21.*probabilities"):
        exact.probabilities(RBM(np.zeros((21, 2)), np.zeros(21), np.zeros(2)))
    with pytest.raises(ValueError, match=r"`model`.*2\^25.*mle_grad"):
        exact.mle_grad(Ising(np.zeros((25, 25)), np.zeros(25)), np.ones(25))
    # 1000 visibles x 3 hiddens: only the 3 hiddens are enumerated
    wide = RBM(np.full((1000, 3), 0.01), np.zeros(1000), np.zeros(3))
    # a_k = 0.01 |h| for every visible k: Z = sum_s C(3, s) (1 + e^{0.01 s})^1000
    s = np.arange(4)
    ref = logsumexp(np.log([1.0, 3.0, 3.0, 1.0]) + 1000 * np.log1p(np.exp(0.01 * s)))
    assert abs(exact.log_partition(wide) - ref) < 1e-9


class _Gauss1D(EnergyModel):
    """Minimal real model for the dispatch tests: E(x) = x^2 / 2."""

    def __init__(self, d=1):
        self._d = d
        self._set_params({"a": np.zeros(1)}, {"a": (1,)})

    @property
    def n_features(self):
        return self._d

    def _energy(self, x):
        return 0.5 * np.sum(x * x, axis=1)

    def _grad_x(self, x):
        return x.copy()

    def _hessian_diag(self, x):
        return np.ones_like(x)

    def _grad_params(self, x, w):
        return {"a": np.zeros(1)}

    def _grad_params_of_grad_x(self, x, v):
        return {"a": np.zeros(1)}

    def _grad_params_of_hessian_diag(self, x, c):
        return {"a": np.zeros(1)}


def test_dispatch_closed_form_and_quadrature(monkeypatch):
    class Closed(_Gauss1D):
        def _exact_log_partition(self):
            return 0.5 * self._d * np.log(2 * np.pi), 1e-16

        def _exact_mean_grad_params(self):
            return {"a": np.array([2.5])}

    m = Closed(3)
    assert exact.log_partition(m, return_error=True) == (1.5 * np.log(2 * np.pi), 1e-16)
    np.testing.assert_allclose(exact.log_likelihood(m, np.zeros((2, 3))), -1.5 * np.log(2 * np.pi))
    assert exact.mle_grad(m, np.zeros((2, 3)))["a"][0] == 2.5

    calls = []
    fake = types.ModuleType("ebm_ref.exact._quadrature")

    def quadrature_log_partition(model):
        calls.append(model)
        return 0.918, 1e-12

    fake.quadrature_log_partition = quadrature_log_partition
    monkeypatch.setitem(sys.modules, "ebm_ref.exact._quadrature", fake)
    g = _Gauss1D(2)
    assert exact.log_partition(g) == 0.918 and calls == [g]
    with pytest.raises(ValueError, match=r"`model`.*no exact log partition"):
        exact.log_partition(_Gauss1D(3))
    with pytest.raises(ValueError, match=r"`model`.*mle_grad"):
        exact.mle_grad(_Gauss1D(1), np.zeros((1, 1)))
    with pytest.raises(ValueError, match=r"`model`.*binary or spin model"):
        exact.probabilities(_Gauss1D(1))


def test_bad_inputs():
    with pytest.raises(TypeError, match=r"`model`"):
        exact.log_partition("rbm")
    with pytest.raises(TypeError, match=r"`model`"):
        exact.mle_grad(None, np.ones(3))
    model = RBM(np.zeros((3, 2)), np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match=r"`x`.*0.0/1.0"):
        exact.log_likelihood(model, [[0.0, 0.5, 1.0]])
    with pytest.raises(ValueError, match=r"`x`.*0.0/1.0"):
        exact.mle_grad(model, [[-1.0, 1.0, 1.0]])
    with pytest.raises(ValueError, match=r"`x`.*shape"):
        exact.log_likelihood(model, np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"`x`.*finite"):
        exact.mle_grad(model, [[np.nan, 1.0, 1.0]])
    with pytest.raises(ValueError, match=r"`x`.*-1.0/\+1.0"):
        exact.log_likelihood(Ising.random(3, 1.0, 0), [[0.0, 1.0, 1.0]])


# ------------------------------------- generic enumeration (model.energy)
def _low_rank(seed=0):
    from ebm_ref.energies import LowRankBoltzmann

    return LowRankBoltzmann.random(6, 2, 0.5, seed=seed)


def test_generic_enumeration_of_a_binary_model_without_kernel():
    """LowRankBoltzmann has no Gray-code kernel: it is enumerated through its
    own energy and agrees with the same distribution written as an Ising
    model (enumerated by the Ising kernel)."""
    model = _low_rank()
    ising = model.to_ising()
    lz, err = exact.log_partition(model, return_error=True)
    lz_i, err_i = exact.log_partition(ising, return_error=True)
    assert abs(lz - lz_i) <= err + err_i
    assert 0.0 < err < 1e-10
    s1, p1 = exact.probabilities(model)
    s2, p2 = exact.probabilities(ising)
    np.testing.assert_array_equal(s1, s2)
    np.testing.assert_allclose(p1, p2, rtol=1e-12, atol=0)
    x = np.random.default_rng(3).integers(0, 2, size=(7, 6)).astype(float)
    _check_mle_grad(model, x).assert_ok()


def test_subclass_redefining_the_energy_is_not_enumerated_by_the_parent_kernel():
    """A subclass that changes the formula loses the Numba form (see
    EnergyModel.numba_form), so exact uses its energy, not the Ising kernel."""

    class Shifted(Ising):
        def _energy(self, x):
            return super()._energy(x) + 0.25 * x[:, 0]

    J = np.zeros((4, 4))
    J[0, 1] = J[1, 0] = 0.7
    base = Ising(J, np.full(4, 0.2), domain="binary")
    model = Shifted(J, np.full(4, 0.2), domain="binary")
    states = exact.probabilities(base)[0]
    ref = logsumexp(-model.energy(states))
    assert abs(exact.log_partition(model) - ref) < 1e-13
    assert abs(exact.log_partition(base) - ref) > 0.01  # the parent's value differs


def test_generic_enumeration_limits(monkeypatch):
    from ebm_ref.energies import LowRankBoltzmann

    big = LowRankBoltzmann(np.ones(exact.MAX_GENERIC_BITS + 1), np.zeros((exact.MAX_GENERIC_BITS + 1, 1)),
                           np.zeros(exact.MAX_GENERIC_BITS + 1))
    with pytest.raises(ValueError, match=r"`model`.*2\^25.*model.energy.*log_partition"):
        exact.log_partition(big)
    with pytest.raises(ValueError, match=r"`model`.*2\^25.*mle_grad"):
        exact.mle_grad(big, np.ones(exact.MAX_GENERIC_BITS + 1))
    # the memory check runs before anything is allocated
    monkeypatch.setenv("EBM_REF_MEMORY_LIMIT", "1000")
    with pytest.raises(ValueError, match=r"probabilities of 2\^6 states.*GiB.*EBM_REF_MEMORY_LIMIT"):
        exact.probabilities(_low_rank())


def test_states_blocks_are_the_lexicographic_order():
    from ebm_ref._states import all_states, state_block, state_blocks

    for domain, lo in (("binary", 0.0), ("spin", -1.0)):
        full = all_states(5, domain)
        ref = np.array(list(itertools.product([lo, 1.0], repeat=5)))
        np.testing.assert_array_equal(full, ref)
        pieces = [b for _, b in state_blocks(5, domain, block=7)]
        assert [len(b) for b in pieces] == [7, 7, 7, 7, 4]
        np.testing.assert_array_equal(np.concatenate(pieces), ref)
        np.testing.assert_array_equal(state_block(5, domain, 9, 13), ref[9:13])


@pytest.mark.parametrize("which", ["rbm-mult", "rbm-walk", "ising"])
def test_log_partition_walk_in_groups_of_chunks_gives_one_calls_bits(which, monkeypatch):
    """log_partition walks its 2^10 Gray-code chunks in groups (Ctrl-C between them): groups of
    1, 3, 5, ... chunks give the bits of one call over all chunks."""
    import ebm_ref.exact as ex
    from zoo import random_rbm

    model = {"rbm-mult": lambda: random_rbm(14, 5, scale=0.5, seed=3),
             "rbm-walk": lambda: random_rbm(14, 5, scale=400.0, seed=3),  # pre-activations beyond the mult range
             "ising": lambda: Ising.random(14, 0.5, seed=3)}[which]()

    def groups(first, grow):
        def run(step, n_total, **_):
            done, size = 0, first
            while done < n_total:
                count = min(size, n_total - done)
                step(done, count)
                done += count
                size += grow
        return run

    values = []
    for runner in (groups(1 << 20, 0), groups(1, 2), groups(1, 0)):
        monkeypatch.setattr(ex, "run_chunked", runner)
        values.append(ex.log_partition(model, return_error=True))
    assert values[0] == values[1] == values[2]
