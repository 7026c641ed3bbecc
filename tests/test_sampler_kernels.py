"""Exact kernel algebra of the discrete samplers and the
one-step test of the jitted kernels against those matrices (docs/samplers.md).

The transition matrices are built in plain NumPy from the models' public
probability functions (``energy``, ``grad_x``, ``conditional_prob``,
``prob_h_given_v``, ``prob_v_given_h``), mirroring what each kernel does.
Deliberately wrong variants (stale-field sweep, GWG with the forward
proposal in both directions, MH with half the energy change) are built the
same way and must fail the same checks. ``tests/test_samplers_discrete.py``
imports the helpers from here.
"""

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

from ebm_ref.energies import RBM, Ising
from ebm_ref.energies.ising import coupling_csr
from ebm_ref.samplers import gibbs, gwg
from ebm_ref.samplers._binary import rwmh_binary
from ebm_ref.samplers._lattice import colour_order

# ----------------------------------------------------------------- states


def all_states(d, domain):
    """All 2^d states, lexicographic with unit 0 the most significant."""
    bits = ((np.arange(2**d)[:, None] >> np.arange(d - 1, -1, -1)) & 1).astype(float)
    return bits if domain == "binary" else 2.0 * bits - 1.0


def state_index(x, domain):
    """Row index in ``all_states`` of each state of ``x`` (n, d)."""
    bits = x if domain == "binary" else (x + 1.0) / 2.0
    d = x.shape[1]
    return (bits @ (2.0 ** np.arange(d - 1, -1, -1))).astype(np.int64)


def flipped_index(s, i, d):
    """Index of state ``s`` with unit ``i`` flipped."""
    return s ^ (1 << (d - 1 - i))


def exact_pi(model):
    x = all_states(model.n_features, model.domain)
    e = model.energy(x)
    return np.exp(-(e - e.min()) - logsumexp(-(e - e.min())))


# ------------------------------------------------------- transition matrices


def site_kernel(model, i):
    """Heat-bath update of site ``i`` of an Ising model."""
    d = model.n_features
    X = all_states(d, model.domain)
    p_up = model.conditional_prob(X)[:, i]
    S = X.shape[0]
    up_val = 1.0
    down_val = -1.0 if model.domain == "spin" else 0.0
    Xu, Xd = X.copy(), X.copy()
    Xu[:, i], Xd[:, i] = up_val, down_val
    P = np.zeros((S, S))
    P[np.arange(S), state_index(Xu, model.domain)] += p_up
    P[np.arange(S), state_index(Xd, model.domain)] += 1.0 - p_up
    return P


def sweep_kernel(model, order):
    P = np.eye(2**model.n_features)
    for i in order:
        P = P @ site_kernel(model, i)
    return P


def random_scan_kernel(model):
    d = model.n_features
    return sum(site_kernel(model, i) for i in range(d)) / d


def stale_sweep_kernel(model):
    """WRONG: every site of the sweep uses the fields of the sweep's start."""
    X = all_states(model.n_features, model.domain)
    p_up = model.conditional_prob(X)  # (S, d)
    up = X == 1.0  # target states' units
    # P[s, t] = prod_i p(t_i | x_s) with the fields frozen at x_s
    logp = np.log(p_up)[:, None, :] * up[None] + np.log1p(-p_up)[:, None, :] * (~up)[None]
    return np.exp(logp.sum(-1))


def rbm_block_kernel(rbm):
    """Block Gibbs on v: P(v -> v') = sum_h p(h|v) p(v'|h)."""
    V, H = rbm.n_visible, rbm.n_hidden
    Xv, Xh = all_states(V, "binary"), all_states(H, "binary")
    ph = rbm.prob_h_given_v(Xv)
    A = np.prod(np.where(Xh[None] == 1.0, ph[:, None, :], 1.0 - ph[:, None, :]), axis=-1)
    pv = rbm.prob_v_given_h(Xh)
    B = np.prod(np.where(Xv[None] == 1.0, pv[:, None, :], 1.0 - pv[:, None, :]), axis=-1)
    return A @ B


def _single_flip_kernel(model, log_accept_fn, log_q):
    d = model.n_features
    X = all_states(d, model.domain)
    S = X.shape[0]
    E = model.energy(X)
    P = np.zeros((S, S))
    s = np.arange(S)
    for i in range(d):
        t = flipped_index(s, i, d)
        la = log_accept_fn(E, log_q, s, t, i)
        P[s, t] = np.exp(log_q[s, i] + np.minimum(0.0, la))
    P[s, s] = 1.0 - P.sum(axis=1)
    return P


def gwg_log_q(model):
    X = all_states(model.n_features, model.domain)
    other = -X if model.domain == "spin" else 1.0 - X
    logits = -0.5 * (other - X) * model.grad_x(X)
    return logits - logsumexp(logits, axis=1, keepdims=True)


def gwg_kernel(model, forward_only=False):
    """GWG; ``forward_only=True`` is WRONG: q(i|x) in both directions."""

    def log_accept(E, lq, s, t, i):
        reverse = lq[s, i] if forward_only else lq[t, i]
        return E[s] - E[t] + reverse - lq[s, i]

    return _single_flip_kernel(model, log_accept, gwg_log_q(model))


def mh_kernel(model, energy_factor=1.0):
    """Uniform single-flip MH; ``energy_factor != 1`` is WRONG."""
    d = model.n_features
    lq = np.full((2**d, d), -np.log(d))

    def log_accept(E, lq_, s, t, i):
        return -energy_factor * (E[t] - E[s])

    return _single_flip_kernel(model, log_accept, lq)


def t1_errors(P, pi):
    """(||pi P - pi||_1, max |pi_i P_ij - pi_j P_ji|, min row-sum error)."""
    flow = pi[:, None] * P
    return np.abs(pi @ P - pi).sum(), np.abs(flow - flow.T).max(), np.abs(P.sum(1) - 1).max()


def t1_passes(P, pi, reversible):
    stat, db, rows = t1_errors(P, pi)
    # the diagonal 1 - sum(off-diagonal) may round to -1e-17 where rejection is impossible
    ok = stat < 1e-12 and rows < 1e-12 and P.min() > -1e-15
    return ok and (db < 1e-14 if reversible else True)


# -------------------------------------------------------------------- models


def ising_spin():
    return Ising.random(8, 2.0, seed=3, domain="spin")


def ising_binary():
    return Ising.random(8, 2.5, seed=5, domain="binary")


def small_rbm():
    r = np.random.default_rng(11)
    return RBM(r.normal(0, 1.0, (8, 4)), r.normal(0, 0.5, 8), r.normal(0, 0.5, 4))


MODELS = {
    "ising-spin-8": ising_spin,
    "ising-binary-8": ising_binary,
    "lattice-3-spin": lambda: Ising.lattice(3, 0.6, field=0.1),
    "lattice-2-binary": lambda: Ising.lattice(2, 0.7, field=-0.3, domain="binary"),
    "rbm-8x4": small_rbm,
}
ISING = [k for k in MODELS if not k.startswith("rbm")]
SINGLE_FLIP = ["ising-spin-8", "ising-binary-8", "rbm-8x4"]


# ------------------------------------------------- exact kernel algebra


@pytest.mark.parametrize("name", ISING)
def test_site_kernels_and_random_scan(name):
    model = MODELS[name]()
    pi = exact_pi(model)
    for i in range(model.n_features):
        assert t1_passes(site_kernel(model, i), pi, reversible=True), t1_errors(site_kernel(model, i), pi)
    assert t1_passes(random_scan_kernel(model), pi, reversible=True)


@pytest.mark.parametrize("name", ISING)
def test_sweeps_stationary(name):
    model = MODELS[name]()
    pi = exact_pi(model)
    d = model.n_features
    indptr, indices, _ = coupling_csr(model)
    order, _ = colour_order(model, indptr, indices)
    for o in (np.arange(d), order):
        P = sweep_kernel(model, o)
        assert t1_passes(P, pi, reversible=False), t1_errors(P, pi)


def _classes(order, n_col, d, J):
    """Split ``order`` into its colour classes: maximal runs with no coupling inside."""
    classes, cur = [], []
    for i in order:
        if any(J[i, j] != 0.0 for j in cur):
            classes.append(cur)
            cur = []
        cur.append(i)
    classes.append(cur)
    return classes


@pytest.mark.parametrize("L", [2, 3, 4, 5, 6, 7])
def test_lattice_colour_classes(L):
    model = Ising.lattice(L, 0.3)
    J = model.params["J"]
    indptr, indices, _ = coupling_csr(model)
    order, n_col = colour_order(model, indptr, indices)
    assert sorted(order) == list(range(L * L))
    assert n_col == (2 if L % 2 == 0 else 3)
    # the order splits into at most n_col runs of mutually uncoupled sites
    assert len(_classes(order, n_col, L * L, J)) <= n_col
    if L % 2 == 0:
        r, c = np.divmod(order, L)
        half = L * L // 2
        assert np.all((r[:half] + c[:half]) % 2 == 0) and np.all((r[half:] + c[half:]) % 2 == 1)


def test_greedy_colouring_of_general_model():
    model = ising_spin()  # dense: every site its own class, in index order
    indptr, indices, _ = coupling_csr(model)
    order, n_col = colour_order(model, indptr, indices)
    assert n_col == 8 and list(order) == list(range(8))
    J = np.zeros((6, 6))
    for i, j in [(0, 1), (1, 2), (3, 4)]:
        J[i, j] = J[j, i] = 0.5
    sparse = Ising(J, np.zeros(6))
    indptr, indices, _ = coupling_csr(sparse)
    order, n_col = colour_order(sparse, indptr, indices)
    assert n_col == 2 and len(_classes(order, n_col, 6, J)) == 2


def test_rbm_block_gibbs_stationary():
    model = small_rbm()
    pi = exact_pi(model)
    P = rbm_block_kernel(model)
    # block Gibbs on v is reversible too (P = A B with pi_v A_vh = p(v,h) = p_h B_hv)
    assert t1_passes(P, pi, reversible=True), t1_errors(P, pi)


@pytest.mark.parametrize("name", SINGLE_FLIP)
def test_gwg_and_mh_reversible(name):
    model = MODELS[name]()
    pi = exact_pi(model)
    for P in (gwg_kernel(model), mh_kernel(model)):
        assert t1_passes(P, pi, reversible=True), t1_errors(P, pi)


def test_gwg_estimate_is_exact_for_ising():
    # dE~ equals the true flip energy change for energies linear in each unit
    for model in (ising_spin(), ising_binary()):
        X = all_states(8, model.domain)
        other = -X if model.domain == "spin" else 1.0 - X
        est = (other - X) * model.grad_x(X)
        s = np.arange(X.shape[0])
        E = model.energy(X)
        true = np.stack([E[flipped_index(s, i, 8)] - E for i in range(8)], axis=1)
        np.testing.assert_allclose(est, true, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "name,variant",
    [
        ("ising-spin-8", "stale"),
        ("ising-binary-8", "stale"),
        ("ising-spin-8", "gwg-forward"),
        ("ising-binary-8", "gwg-forward"),
        ("rbm-8x4", "gwg-forward"),
        ("ising-spin-8", "mh-half"),
        ("rbm-8x4", "mh-half"),
    ],
)
def test_wrong_kernels_fail_t1(name, variant):
    model = MODELS[name]()
    pi = exact_pi(model)
    if variant == "stale":
        P, rev = stale_sweep_kernel(model), False
    elif variant == "gwg-forward":
        P, rev = gwg_kernel(model, forward_only=True), True
    else:
        P, rev = mh_kernel(model, energy_factor=0.5), True
    assert not t1_passes(P, pi, reversible=rev)
    # and not by a rounding margin: the stationarity error is macroscopic
    assert t1_errors(P, pi)[0] > 1e-3


# ------------------------------------------------------------ one step


def chi2_pvalue(counts, probs):
    """Pearson chi-square p-value, cells with expected < 5 pooled into one.

    A pooled cell with expectation 0 must be empty (else p = 0).
    """
    n = counts.sum()
    expected = n * probs
    small = expected < 5.0
    obs = list(counts[~small])
    exp_ = list(expected[~small])
    if small.any():
        if expected[small].sum() == 0.0:
            if counts[small].sum() > 0:
                return 0.0
        else:
            obs.append(counts[small].sum())
            exp_.append(expected[small].sum())
    obs, exp_ = np.array(obs, float), np.array(exp_, float)
    if len(obs) < 2:
        return 1.0
    stat = ((obs - exp_) ** 2 / exp_).sum()
    return stats.chi2.sf(stat, len(obs) - 1)


# 40 000 one-step chains: chi-square cells stay large; most of the cost is seeding the rows
N_ONE_STEP = 40_000


def _one_step_case(name, sampler):
    model = MODELS[name]()
    d = model.n_features
    X = all_states(d, model.domain)
    s0 = 37 % X.shape[0]
    x0 = np.repeat(X[s0][None], N_ONE_STEP, axis=0)
    if sampler == "gibbs-seq":
        res = gibbs(model, x0, 1, seed=101, method="sequential")
        P = sweep_kernel(model, np.arange(d))
    elif sampler == "gibbs-cb":
        indptr, indices, _ = coupling_csr(model)
        order, _ = colour_order(model, indptr, indices)
        res = gibbs(model, x0, 1, seed=102, method="checkerboard")
        P = sweep_kernel(model, order)
    elif sampler == "gibbs-block":
        res = gibbs(model, x0, 1, seed=103)
        P = rbm_block_kernel(model)
    elif sampler == "gwg":
        res = gwg(model, x0, 1, seed=104)
        P = gwg_kernel(model)
    else:
        res = rwmh_binary(model, x0, 1, seed=105)
        P = mh_kernel(model)
    counts = np.bincount(state_index(res.x, model.domain), minlength=X.shape[0])
    return counts, P[s0]


@pytest.mark.parametrize(
    "name,sampler",
    [(m, s) for m in ISING for s in ("gibbs-seq", "gibbs-cb")]
    + [("rbm-8x4", "gibbs-block")]
    + [(m, s) for m in SINGLE_FLIP for s in ("gwg", "mh")],
)
def test_one_step_matches_matrix_row(name, sampler):
    counts, row = _one_step_case(name, sampler)
    p = chi2_pvalue(counts, row)
    # alpha = 1e-4: a correct kernel fails this with probability 1e-4 (fixed seed: deterministic)
    assert p > 1e-4, p


def test_one_step_rejects_wrong_row():
    # negative control: the jitted GWG step compared with the forward-only matrix row
    model = ising_spin()
    X = all_states(8, "spin")
    s0 = 37
    x0 = np.repeat(X[s0][None], N_ONE_STEP, axis=0)
    res = gwg(model, x0, 1, seed=104)
    counts = np.bincount(state_index(res.x, "spin"), minlength=256)
    assert chi2_pvalue(counts, gwg_kernel(model, forward_only=True)[s0]) < 1e-4


# ------------------------------------------- drivers run in consecutive chunks


@pytest.mark.parametrize("name", ["ising-spin-8", "ising-binary-8", "lattice-3-spin", "rbm-8x4", "fvbm-6"])
def test_binary_drivers_in_chunks_equal_one_call(name):
    # every per-chain quantity is carried in the arrays passed in (state,
    # RNG row, the model's cache), ``t0`` offsets the trace rows and
    # ``accepted`` accumulates: steps [0, 7) then [7, 20) give the bits of [0, 20)
    from ebm_ref._rng import as_seed_sequence, chain_states
    from ebm_ref.energies import FVBM
    from ebm_ref.samplers._binary import site_gibbs_run
    from ebm_ref.samplers._flip import PROPOSE_GWG, PROPOSE_UNIFORM, flip_mh_run
    from ebm_ref.samplers._dula import dula_run

    if name == "fvbm-6":
        A = np.triu(np.random.default_rng(2).normal(size=(6, 6)), 1)
        model = FVBM(A + A.T, np.full(6, 0.2))
    else:
        model = MODELS[name]()
    form = model.numba_form()
    n, d, steps, thin, cut = 11, model.n_features, 20, 2, 7
    x0 = all_states(d, model.domain)[:: max(1, 2**d // n)][:n]
    spin = model.domain == "spin"
    runs = {
        "gwg": lambda x, c, t0, k, r, tr, a: flip_mh_run(form.kind, form.ip, form.fp, spin, PROPOSE_GWG, x, c, t0, k, thin, r, tr, a),
        "rwmh": lambda x, c, t0, k, r, tr, a: flip_mh_run(form.kind, form.ip, form.fp, spin, PROPOSE_UNIFORM, x, c, t0, k, thin, r, tr, a),
        "dmala": lambda x, c, t0, k, r, tr, a: dula_run(form.kind, form.ip, form.fp, form.n_work, spin, x, t0, k, 0.6, True, thin, r, tr, a),
        "sweep": lambda x, c, t0, k, r, tr, a: site_gibbs_run(form.kind, form.ip, form.fp, -1.0 if spin else 0.0, np.arange(d), x, c, t0, k, thin, r, tr),
    }
    for key, run in runs.items():
        out = []
        for chunks in ([(0, steps)], [(0, cut), (cut, steps - cut)]):
            x = x0.copy()
            cache = np.empty((n, form.n_work))
            rng = chain_states(as_seed_sequence(9), n)
            trace = np.full((steps // thin, n, d), np.nan)
            acc = np.zeros(n, dtype=np.int64)
            for t0, k in chunks:
                run(x, cache, t0, k, rng, trace, acc)
            out.append((x, rng, trace, acc))
        for a, b in zip(*out):
            np.testing.assert_array_equal(a, b, err_msg=f"{name} {key}")
        assert not np.isnan(out[0][2]).any()
