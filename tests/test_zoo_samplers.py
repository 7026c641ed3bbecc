"""Every public sampler against the exact distribution of every zoo model it accepts.

Discrete models (the small zoo sizes, at most 9 units) are enumerated; the
final states of 20,000 chains are tested with a pooled Pearson chi-square
against ``ebm_ref.exact`` / ``enumerate_distribution`` probabilities, once
from exact starts (stationarity: a few steps must keep exact draws exact)
and once from the most probable state (convergence). Continuous models with
an exact sampler in the library (StudentT, GaussianMixture, GRBM) get
Kolmogorov-Smirnov tests per coordinate and on a random projection plus
moment z-tests, from exact draws and from the mean. All of this is
``ebm_ref.testing.check_sampler``.

False-failure rate: ``FAMILY_ALPHA = 1e-4`` for the whole parametrisation of
``test_sampler_is_exact``: each of its ``len(EXACT_CASES)`` cases runs at
``FAMILY_ALPHA / len(EXACT_CASES)`` (Bonferroni), which ``check_sampler``
splits again between its two starts. An exact sampler therefore fails any
case of this file with probability at most 1e-4 (the seeds are fixed, so a
pass is reproducible).

MLPEnergy and LatentEnergy have no exact sampler in the library; they get
the reproducibility tests only.
"""

import numpy as np
import pytest

import zoo
from ebm_ref import exact
from ebm_ref.energies import GaussianMixture
from ebm_ref.testing import check_sampler

FAMILY_ALPHA = 1e-4
N_CHAINS = 20000

# steps from exact starts (n_steps) and from the fixed start (n_fixed): one
# step of the flip samplers moves one unit, so they get more steps; the
# continuous samplers must cross the distribution from its mean (entries
# override the fixed-start steps in ``Entry.fixed_steps``).
STEPS = {
    "gibbs": (5, 60), "gwg": (20, 400), "rwmh": (20, 400), "dula": (10, 200),
    "parallel_tempering": (3, 30), "swendsen_wang": (5, 60), "wolff": (10, 200),
    "boltzmann_auxiliary": (5, 60), "langevin": (20, 200), "hmc": (5, 60),
    "gibbs_langevin": (10, 150),
}
REAL_STEPS = {"rwmh": (10, 200)}  # continuous RW-MH (one proposal moves every coordinate)


def _has_reference(entry):
    m = entry.make("small")
    if m.domain in ("binary", "spin"):
        return entry.enumerable("small")
    try:
        check_sampler(lambda p, x0, n, rng: x0, m, n_chains=2, n_steps=0, start="exact")
    except ValueError:
        return False  # no exact sampler for this continuous model
    return True


def _exact_configs():
    out = []
    for e in zoo.ENTRIES:
        if not _has_reference(e):
            continue
        for name, settings, is_exact in e.configs():
            if is_exact:
                slow = name in e.slow_samplers
                out.append(pytest.param(e, name, settings, marks=[pytest.mark.slow] if slow else [],
                                        id=zoo.config_id(e.id, name, settings)))
    return out


EXACT_CASES = _exact_configs()
CASE_ALPHA = FAMILY_ALPHA / len(EXACT_CASES)


def _sample_fn(entry, name, settings, model_of=None):
    """``check_sampler``'s callable: run the public sampler on the model with the given parameters."""
    base = entry.make("small")

    def sample(params, x0, n_steps, rng):
        model = base.with_params(params)
        if model_of is not None:
            model = model_of(model)
        return zoo.run_sampler(name, model, x0, n_steps, rng, **settings).x

    return sample


def _steps(entry, model, name):
    n, n_fixed = (REAL_STEPS if model.domain == "real" else STEPS).get(name, STEPS[name])
    return n, entry.fixed_steps.get(name, n_fixed)


@pytest.mark.parametrize("entry, name, settings", EXACT_CASES)
def test_sampler_is_exact(entry, name, settings):
    model = entry.make("small")
    n, n_fixed = _steps(entry, model, name)
    # n_fixed None: the entry says why this sampler cannot cross its
    # distribution from one state in a test's budget; exact starts only
    start = "both" if n_fixed is not None else "exact"
    res = check_sampler(_sample_fn(entry, name, settings), model, n_chains=N_CHAINS, n_steps=n,
                        n_steps_fixed=n_fixed, seed=17, alpha=CASE_ALPHA, start=start)
    assert res.passed, str(res)


def test_enumeration_agrees_with_exact_probabilities():
    # check_sampler's enumeration is the library's exact distribution
    from ebm_ref.testing import enumerate_distribution

    for e in zoo.ENTRIES:
        m = e.make("small")
        if m.domain == "real" or not e.enumerable("small"):
            continue
        states, probs = enumerate_distribution(m)
        try:
            ref_states, ref_probs = exact.probabilities(m)
        except ValueError:
            continue  # exact.probabilities takes RBM and Ising models only
        order = np.lexsort(states.T[::-1])
        ref_order = np.lexsort(ref_states.T[::-1])
        np.testing.assert_array_equal(states[order], ref_states[ref_order])
        np.testing.assert_allclose(probs[order], ref_probs[ref_order], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("entry", zoo.ENTRIES, ids=[e.id for e in zoo.ENTRIES])
def test_declared_samplers_are_the_accepting_ones(entry):
    # a public sampler either runs on the model or refuses it with
    # TypeError/ValueError; the zoo's flags must say which
    model = entry.make("small")
    x0 = zoo.model_states(model, 3, 0)
    settings = {"rwmh": {"scale": 0.5}, "langevin": {"step_size": 0.05}, "gibbs_langevin": {"step_size": 0.05},
                "dula": {"step_size": 0.3}, "hmc": {"step_size": 0.1}}
    accepted = set()
    for name in zoo.PUBLIC_SAMPLERS:
        try:
            zoo.run_sampler(name, model, x0, 1, 0, **settings.get(name, {}))
        except (TypeError, ValueError):
            continue
        accepted.add(name)
    assert accepted == set(entry.samplers)


# ----------------------------------------------------------- negative controls
# One planted bug per sampler family, each through the same check_sampler
# call as the exact cases (same alpha): the bug must be caught. The seeds are
# fixed, so "caught" is reproducible; the biases are sized so that the power
# at N_CHAINS chains is essentially 1.
def _scaled_energy(beta):
    return lambda model: model.tempered(beta)


NEGATIVE = [
    # flip-proposal Metropolis (binary RW-MH, GWG): the energy change scaled
    # by 0.7 in the accept test = sampling the model at beta = 0.7
    pytest.param("ising-spin", "rwmh", {}, _scaled_energy(0.7), id="flip-mh-scaled-delta"),
    pytest.param("ising-binary", "gwg", {}, _scaled_energy(0.7), id="gwg-scaled-delta"),
    # Gibbs: the conditionals at the wrong temperature (a stale/halved field)
    pytest.param("ising-lattice", "gibbs", {}, _scaled_energy(0.6), id="gibbs-scaled-field"),
    # discrete Langevin without its Metropolis correction at a large step
    pytest.param("rbm", "dula", {"step_size": 1.5, "adjust": False}, None, id="dula-unadjusted"),
    # continuous Metropolis: ULA is MALA without the accept test; at step
    # 0.5 its stationary variance is off by tens of percent
    pytest.param("student-t", "langevin", {"step_size": 0.5, "adjust": False}, None, id="mala-no-correction"),
    # HMC on a shifted target (a stale gradient offset of 0.3)
    pytest.param("mixture", "hmc", {"step_size": 0.2},
                 lambda m: GaussianMixture(m.params["logits"], m.means + 0.3, m.log_scales), id="hmc-shifted-target"),
]


@pytest.mark.parametrize("eid, name, settings, model_of", NEGATIVE)
def test_planted_bug_is_caught(eid, name, settings, model_of):
    entry = zoo.BY_ID[eid]
    model = entry.make("small")
    n, n_fixed = _steps(entry, model, name)
    res = check_sampler(_sample_fn(entry, name, settings, model_of), model, n_chains=N_CHAINS, n_steps=n,
                        n_steps_fixed=n_fixed, seed=17, alpha=CASE_ALPHA)
    assert not res.passed, str(res)
