"""A corpus of bad and extreme inputs to every public entry point: each one a clean error.

One row per case: a call with exactly one bad argument, the exception type
it must raise, and the name that the message must contain (the argument
the user passed, so they can find it). The entry points: the energies'
constructors and methods, the samplers, ``estimate``, ``exact``, the
objectives, ``train``, ``observables``, ``sweep``, the testing kit,
reference files and the command line. Every call fails in validation
before any sampling or enumeration, so the whole corpus runs in seconds.

The tables are built from a few generic bad values (NaN, inf, negative,
zero, wrong type, wrong shape, out of domain) crossed with each argument
they apply to; the rows that need something specific are written out.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from ebm_ref import estimate, exact, objectives, observables, reference, samplers, sweep
from ebm_ref import train as tr
from ebm_ref.__main__ import main as cli_main
from ebm_ref.energies import GRBM, RBM, GaussianMixture, Ising, LowRankBoltzmann, MLPEnergy, StudentT
from ebm_ref.testing import (
    ParamMap,
    check_energy_derivatives,
    check_grad,
    check_objective_grad,
    check_sampler,
    compare_energy,
    compare_objective,
    enumerate_distribution,
)

NAN, INF = float("nan"), float("inf")
rng = np.random.default_rng(0)
rbm = RBM(0.1 * rng.standard_normal((4, 3)), np.zeros(4), np.zeros(3))
J = np.zeros((3, 3))
J[0, 1] = J[1, 0] = 0.5
ising = Ising(J, np.zeros(3))
lat = Ising.lattice(4, 0.3)
grbm = GRBM(rng.standard_normal((2, 2)), np.zeros(2), np.zeros(2), np.zeros(2))
st = StudentT(np.zeros(2), np.zeros(2), np.zeros(2))
gm = GaussianMixture(np.zeros(2), np.zeros((2, 2)), np.zeros((2, 2)))
mlp = MLPEnergy((2, 4, 1))
lrb = LowRankBoltzmann(np.zeros(3), 0.1 * np.ones((3, 1)), np.zeros(3))
vb = rng.integers(0, 2, size=(5, 4)).astype(float)  # RBM states
sp = np.where(rng.random((5, 3)) < 0.5, -1.0, 1.0)  # Ising states
xr = rng.standard_normal((5, 2))  # continuous points
data = np.where(rng.random((20, 3)) < 0.5, -1.0, 1.0)

CASES = []


def case(name, fn, exc, arg):
    CASES.append(pytest.param(fn, exc, arg, id=name))


def nan_at(a, i=0):
    a = np.array(a, dtype=np.float64)
    a.flat[i] = NAN
    return a


def inf_at(a, i=0):
    a = np.array(a, dtype=np.float64)
    a.flat[i] = INF
    return a


# generic bad arrays for an argument whose good value is ``a``: (label, value, exception)
def bad_arrays(a, domain=None):
    rows = [
        ("nan", nan_at(a), ValueError),
        ("inf", inf_at(a, a.size - 1), ValueError),
        ("complex", np.asarray(a) + 1j, (TypeError, ValueError)),
        ("string", "abc", (TypeError, ValueError)),
        ("None", None, (TypeError, ValueError)),
        ("wrong trailing size", np.zeros(a.shape[:-1] + (a.shape[-1] + 1,)), ValueError),
        ("3-d", np.zeros((2,) + a.shape), ValueError),
    ]
    if domain == "binary":
        rows.append(("0.5 for binary", np.full(a.shape, 0.5), ValueError))
        rows.append(("-1 for binary", -np.ones(a.shape), ValueError))
    if domain == "spin":
        rows.append(("0 for spin", np.zeros(a.shape), ValueError))
        rows.append(("2 for spin", np.full(a.shape, 2.0), ValueError))
    return rows


# bad integers for a count that must be >= ``minimum``
def bad_ints(minimum=1):
    return [
        ("below minimum", minimum - 1, ValueError),
        ("negative", -5, ValueError),
        ("float", 2.5, TypeError),
        ("bool", True, TypeError),
        ("string", "3", TypeError),
        ("huge", 2**70, ValueError),
    ]


# bad positive reals
def bad_pos():
    return [("zero", 0.0, ValueError), ("negative", -1.0, ValueError), ("nan", NAN, ValueError), ("inf", INF, ValueError), ("string", "x", TypeError)]


# bad seeds
BAD_SEEDS = [("seed str", "a", TypeError), ("seed negative", -1, ValueError), ("seed float", 1.5, TypeError), ("seed None", None, TypeError)]

# ------------------------------------------------------------------ energies
for label, v, e in [r for r in bad_arrays(np.zeros((4, 3))) if r[0] != "wrong trailing size"]:
    case(f"RBM W {label}", lambda v=v: RBM(v, np.zeros(4), np.zeros(3)), e, "W")
for label, v, e in bad_arrays(np.zeros(4))[:2] + [("wrong length", np.zeros(5), ValueError)]:
    case(f"RBM b_v {label}", lambda v=v: RBM(np.zeros((4, 3)), v, np.zeros(3)), e, "b_v")
for label, v, e in bad_arrays(np.zeros(3))[:2] + [("wrong length", np.zeros(4), ValueError)]:
    case(f"RBM b_h {label}", lambda v=v: RBM(np.zeros((4, 3)), np.zeros(4), v), e, "b_h")
case("Ising J not square", lambda: Ising(np.zeros((3, 2)), np.zeros(3)), ValueError, "J")
case("Ising J not symmetric", lambda: Ising(np.triu(np.ones((3, 3)), 1), np.zeros(3)), ValueError, "J")
case("Ising J diagonal", lambda: Ising(np.eye(3), np.zeros(3)), ValueError, "J")
case("Ising J nan", lambda: Ising(nan_at(J, 1), np.zeros(3)), ValueError, "J")
case("Ising h wrong length", lambda: Ising(J, np.zeros(4)), ValueError, "h")
case("Ising h inf", lambda: Ising(J, inf_at(np.zeros(3))), ValueError, "h")
case("Ising domain unknown", lambda: Ising(J, np.zeros(3), domain="ising"), ValueError, "domain")
case("Ising domain int", lambda: Ising(J, np.zeros(3), domain=1), (TypeError, ValueError), "domain")
case("Ising.lattice L 0", lambda: Ising.lattice(0, 0.3), ValueError, "L")
case("Ising.lattice L float", lambda: Ising.lattice(2.5, 0.3), TypeError, "L")
case("Ising.lattice beta nan", lambda: Ising.lattice(4, NAN), ValueError, "beta")
case("Ising.lattice beta negative", lambda: Ising.lattice(4, -1.0), ValueError, "beta")
case("Ising.lattice coupling inf", lambda: Ising.lattice(4, 0.3, coupling=INF), ValueError, "coupling")
case("Ising.lattice field nan", lambda: Ising.lattice(4, 0.3, field=NAN), ValueError, "field")
case("Ising.lattice boundary", lambda: Ising.lattice(4, 0.3, boundary="twisted"), ValueError, "boundary")
case("Ising.random d 0", lambda: Ising.random(0, 1.0, seed=0), ValueError, "d")
case("Ising.random scale nan", lambda: Ising.random(3, NAN, seed=0), ValueError, "scale")
case("Ising.random seed", lambda: Ising.random(3, 1.0, seed="a"), TypeError, "seed")
case("GRBM log_var huge", lambda: GRBM(np.zeros((2, 2)), np.zeros(2), np.zeros(2), np.full(2, 1e4)), ValueError, "log_var")
case("GRBM W nan", lambda: GRBM(nan_at(np.zeros((2, 2))), np.zeros(2), np.zeros(2), np.zeros(2)), ValueError, "W")
case("GRBM mu wrong length", lambda: GRBM(np.zeros((2, 2)), np.zeros(3), np.zeros(2), np.zeros(2)), ValueError, "mu")
case("GRBM b_h wrong length", lambda: GRBM(np.zeros((2, 2)), np.zeros(2), np.zeros(3), np.zeros(2)), ValueError, "b_h")
case("StudentT loc nan", lambda: StudentT(nan_at(np.zeros(2)), np.zeros(2), np.zeros(2)), ValueError, "loc")
case("StudentT log_scale huge", lambda: StudentT(np.zeros(2), np.full(2, 1e3), np.zeros(2)), ValueError, "log_scale")
case("StudentT log_df wrong length", lambda: StudentT(np.zeros(2), np.zeros(2), np.zeros(3)), ValueError, "log_df")
case("StudentT log_df inf", lambda: StudentT(np.zeros(2), np.zeros(2), inf_at(np.zeros(2))), ValueError, "log_df")
case("GaussianMixture logits nan", lambda: GaussianMixture(nan_at(np.zeros(2)), np.zeros((2, 2)), np.zeros((2, 2))), ValueError, "logits")
case("GaussianMixture means wrong K", lambda: GaussianMixture(np.zeros(2), np.zeros((3, 2)), np.zeros((2, 2))), ValueError, "means")
case("GaussianMixture log_scales shape", lambda: GaussianMixture(np.zeros(2), np.zeros((2, 2)), np.zeros((2, 3))), ValueError, "log_scales")
case("MLPEnergy sizes one layer", lambda: MLPEnergy((2,)), ValueError, "sizes")
case("MLPEnergy sizes zero", lambda: MLPEnergy((2, 0, 1)), ValueError, "sizes")
case("MLPEnergy activation", lambda: MLPEnergy((2, 4, 1), activation="gelu"), ValueError, "activation")
case("MLPEnergy seed", lambda: MLPEnergy((2, 4, 1), seed=-1), ValueError, "seed")
case("LowRankBoltzmann U nan", lambda: LowRankBoltzmann(np.zeros(3), nan_at(np.ones((3, 1))), np.zeros(3)), ValueError, "U")
case("LowRankBoltzmann mu nan", lambda: LowRankBoltzmann(np.zeros(3), np.ones((3, 1)), nan_at(np.zeros(3))), ValueError, "mu")

# methods: every primitive with bad states
METHOD_MODELS = [("RBM", rbm, vb, "binary"), ("Ising", ising, sp, "spin"), ("StudentT", st, xr, None), ("GRBM", grbm, xr, None), ("MLP", mlp, xr, None)]
for mname, model, good, domain in METHOD_MODELS:
    # states outside {0,1} / {-1,+1} are valid for the energies (the
    # continuous extension, docs/conventions.md): see test_extreme_valid_inputs
    for label, v, e in bad_arrays(good):
        case(f"{mname}.energy x {label}", lambda model=model, v=v: model.energy(v), e, "x")
    case(f"{mname}.grad_x x nan", lambda model=model, good=good: model.grad_x(nan_at(good)), ValueError, "x")
    case(f"{mname}.hessian_diag x wrong d", lambda model=model, good=good: model.hessian_diag(good[:, :-1]), ValueError, "x")
    case(f"{mname}.grad_params weights nan", lambda model=model, good=good: model.grad_params(good, nan_at(np.ones(len(good)))), ValueError, "weights")
    case(f"{mname}.grad_params weights wrong length", lambda model=model, good=good: model.grad_params(good, np.ones(len(good) + 1)), ValueError, "weights")
    case(f"{mname}.grad_params_of_grad_x v wrong shape", lambda model=model, good=good: model.grad_params_of_grad_x(good, good[:-1]), ValueError, "v")
    case(f"{mname}.grad_params_of_grad_x v nan", lambda model=model, good=good: model.grad_params_of_grad_x(good, nan_at(good)), ValueError, "v")
    case(f"{mname}.grad_params_of_hessian_diag c wrong shape", lambda model=model, good=good: model.grad_params_of_hessian_diag(good, good[:, :-1]), ValueError, "c")
    case(f"{mname}.grad_params_of_hessian_diag c inf", lambda model=model, good=good: model.grad_params_of_hessian_diag(good, inf_at(good)), ValueError, "c")
    key = next(iter(model.params))
    case(f"{mname}.with_params unknown key", lambda model=model: model.with_params({"no_such_param": np.zeros(2)}), ValueError, "no_such_param")
    case(f"{mname}.with_params wrong shape", lambda model=model, key=key: model.with_params({**model.params, key: np.zeros((7, 7, 7))}), ValueError, key)
    case(f"{mname}.with_params nan", lambda model=model, key=key: model.with_params({**model.params, key: nan_at(model.params[key])}), ValueError, key)
    case(f"{mname}.with_params not a dict", lambda model=model: model.with_params([1, 2]), TypeError, "params")
for label, b, e in [("nan", NAN, ValueError), ("negative", -0.5, ValueError), ("inf", INF, ValueError), ("string", "1", TypeError)]:
    case(f"RBM.tempered beta {label}", lambda b=b: rbm.tempered(b), e, "beta")
    case(f"Ising.tempered beta {label}", lambda b=b: ising.tempered(b), e, "beta")

# ------------------------------------------------------------------ samplers
x0b = vb.copy()
x0r = xr.copy()
SAMPLER_CALLS = {
    "gibbs": lambda x0=x0b, n=2, seed=0, **kw: samplers.gibbs(rbm, x0, n, seed, **kw),
    "gwg": lambda x0=x0b, n=2, seed=0, **kw: samplers.gwg(rbm, x0, n, seed, **kw),
    "rwmh": lambda x0=x0r, n=2, seed=0, **kw: samplers.rwmh(st, x0, n, kw.pop("scale", 0.5), seed, **kw),
    "langevin": lambda x0=x0r, n=2, seed=0, **kw: samplers.langevin(st, x0, n, kw.pop("step_size", 0.1), seed, **kw),
    "dula": lambda x0=x0b, n=2, seed=0, **kw: samplers.dula(rbm, x0, n, kw.pop("step_size", 0.5), seed, **kw),
    "hmc": lambda x0=x0r, n=2, seed=0, **kw: samplers.hmc(st, x0, n, kw.pop("step_size", 0.1), kw.pop("n_leapfrog", 3), seed, **kw),
    "gibbs_langevin": lambda x0=x0r, n=2, seed=0, **kw: samplers.gibbs_langevin(grbm, x0, n, kw.pop("step_size", 0.1), seed, **kw),
}
for sname, call in SAMPLER_CALLS.items():
    good = x0b if sname in ("gibbs", "gwg", "dula") else x0r
    for label, v, e in bad_arrays(good, "binary" if good is x0b else None)[:6] + bad_arrays(good, "binary" if good is x0b else None)[7:]:
        case(f"{sname} x0 {label}", lambda call=call, v=v: call(x0=v), e, "x0")
    for label, v, e in bad_ints(0)[1:]:
        case(f"{sname} n_steps {label}", lambda call=call, v=v: call(n=v), e, "n_steps")
    for label, v, e in BAD_SEEDS:
        case(f"{sname} {label}", lambda call=call, v=v: call(seed=v), e, "seed")
    case(f"{sname} thin negative", lambda call=call: call(thin=-1), ValueError, "thin")
    case(f"{sname} thin float", lambda call=call: call(thin=1.5), TypeError, "thin")
for sname, arg in (("rwmh", "scale"), ("langevin", "step_size"), ("dula", "step_size"), ("hmc", "step_size"), ("gibbs_langevin", "step_size")):
    for label, v, e in bad_pos():
        case(f"{sname} {arg} {label}", lambda sname=sname, arg=arg, v=v: SAMPLER_CALLS[sname](**{arg: v}), e, arg)
for label, v, e in bad_ints(1)[:4]:
    case(f"hmc n_leapfrog {label}", lambda v=v: SAMPLER_CALLS["hmc"](n_leapfrog=v), e, "n_leapfrog")
case("hmc inverse_mass wrong shape", lambda: SAMPLER_CALLS["hmc"](inverse_mass=np.ones(5)), ValueError, "inverse_mass")
case("hmc inverse_mass negative", lambda: SAMPLER_CALLS["hmc"](inverse_mass=-np.ones(2)), ValueError, "inverse_mass")
case("gibbs method unknown", lambda: SAMPLER_CALLS["gibbs"](method="sweep"), ValueError, "method")
case("gibbs continuous model", lambda: samplers.gibbs(st, x0r, 2, 0), TypeError, "StudentT")
case("gibbs model not a model", lambda: samplers.gibbs("rbm", x0b, 2, 0), TypeError, "str")
case("swendsen_wang an RBM", lambda: samplers.swendsen_wang(rbm, x0b, 2, 0), TypeError, "RBM")
PT_BETAS = np.array([0.5, 1.0])
case("parallel_tempering betas unsorted", lambda: samplers.parallel_tempering(ising, np.array([1.0, 0.5]), sp, 2, 0), ValueError, "betas")
case("parallel_tempering betas nan", lambda: samplers.parallel_tempering(ising, np.array([NAN, 1.0]), sp, 2, 0), ValueError, "betas")
case("parallel_tempering betas empty", lambda: samplers.parallel_tempering(ising, np.zeros(0), sp, 2, 0), ValueError, "betas")
case("parallel_tempering sampler", lambda: samplers.parallel_tempering(ising, PT_BETAS, sp, 2, 0, sampler="hmc"), ValueError, "sampler")
case("parallel_tempering swap_every 0", lambda: samplers.parallel_tempering(ising, PT_BETAS, sp, 2, 0, swap_every=0), ValueError, "swap_every")
case("parallel_tempering x0 nan", lambda: samplers.parallel_tempering(ising, PT_BETAS, nan_at(sp), 2, 0), ValueError, "x0")

# ------------------------------------------------------------------ estimate
BETAS = estimate.betas(5)
for label, v, e in bad_ints(1)[1:5]:
    case(f"ais n_chains {label}", lambda v=v: estimate.ais(rbm, v, BETAS, 0), e, "n_chains")
case("ais n_chains 0", lambda: estimate.ais(rbm, 0, BETAS, 0), ValueError, "n_chains")
for label, b in [("unsorted", np.array([0.0, 0.7, 0.3, 1.0])), ("not from 0", np.array([0.2, 1.0])), ("not to 1", np.array([0.0, 0.5])),
                 ("nan", np.array([0.0, NAN, 1.0])), ("one entry", np.array([0.0])), ("2-d", np.zeros((2, 2)))]:
    case(f"ais betas {label}", lambda b=b: estimate.ais(rbm, 10, b, 0), ValueError, "betas")
for label, v, e in BAD_SEEDS:
    case(f"ais {label}", lambda v=v: estimate.ais(rbm, 10, BETAS, v), e, "seed")
case("ais model not a model", lambda: estimate.ais(np.eye(2), 10, BETAS, 0), TypeError, "model")
case("reverse_ais states nan", lambda: estimate.reverse_ais(rbm, nan_at(vb), BETAS, 0), ValueError, "states")
case("reverse_ais states 0.5", lambda: estimate.reverse_ais(rbm, np.full((3, 4), 0.5), BETAS, 0), ValueError, "states")
case("reverse_ais states wrong d", lambda: estimate.reverse_ais(rbm, vb[:, :3], BETAS, 0), ValueError, "states")
for label, v, e in [("one", 1, ValueError), ("zero", 0, ValueError), ("float", 5.5, TypeError), ("negative", -3, ValueError)]:
    case(f"betas n {label}", lambda v=v: estimate.betas(v), e, "n")
case("betas kind", lambda: estimate.betas(5, kind="cosine"), ValueError, "kind")
case("betas delta nan", lambda: estimate.betas(5, kind="sigmoid", delta=NAN), ValueError, "delta")
case("log_likelihood x nan", lambda: estimate.log_likelihood(rbm, nan_at(vb), 10, BETAS, 0), ValueError, "x")
case("log_likelihood n_chains 0", lambda: estimate.log_likelihood(rbm, vb, 0, BETAS, 0), ValueError, "n_chains")
case("boltzmann_bound k 0", lambda: estimate.boltzmann_bound(lrb, 0, 10, 0), ValueError, "k")
case("boltzmann_bound n_samples 0", lambda: estimate.boltzmann_bound(lrb, 1, 0, 0), ValueError, "n_samples")

# --------------------------------------------------------------------- exact
case("log_partition not a model", lambda: exact.log_partition("rbm"), TypeError, "model")
case("log_partition MLP of 5 features", lambda: exact.log_partition(MLPEnergy((5, 4, 1))), ValueError, "model")
case("probabilities continuous", lambda: exact.probabilities(st), ValueError, "model")
case("probabilities too many units", lambda: exact.probabilities(RBM(np.zeros((25, 1)), np.zeros(25), np.zeros(1))), ValueError, "model")
case("probabilities not a model", lambda: exact.probabilities(None), TypeError, "model")
case("exact.log_likelihood x 0.5", lambda: exact.log_likelihood(rbm, np.full((2, 4), 0.5)), ValueError, "x")
case("exact.log_likelihood x wrong d", lambda: exact.log_likelihood(rbm, vb[:, :2]), ValueError, "x")
case("mle_grad x nan", lambda: exact.mle_grad(ising, nan_at(sp)), ValueError, "x")
case("mle_grad x spins for binary", lambda: exact.mle_grad(rbm, 2 * vb - 1), ValueError, "x")
for fname in ("ising_log_partition_2d", "ising_energy_2d", "ising_specific_heat_2d"):
    fn = getattr(exact, fname)
    case(f"{fname} L 0", lambda fn=fn: fn(0, 0.4), ValueError, "L")
    case(f"{fname} L float", lambda fn=fn: fn(2.5, 0.4), TypeError, "L")
    case(f"{fname} beta nan", lambda fn=fn: fn(4, NAN), ValueError, "beta")
    case(f"{fname} J inf", lambda fn=fn: fn(4, 0.4, J=INF), ValueError, "J")

# ---------------------------------------------------------------- objectives
for label, v, e in bad_ints(1)[:4]:
    case(f"CD k {label}", lambda v=v: objectives.CD(k=v), e, "k")
    case(f"PCD n_chains {label}", lambda v=v: objectives.PCD(n_chains=v), e, "n_chains")
    case(f"SlicedScoreMatching n_projections {label}", lambda v=v: objectives.SlicedScoreMatching(n_projections=v), e, "n_projections")
case("CD sampler not callable", lambda: objectives.CD(sampler=3), TypeError, "sampler")
case("PCD sampler not callable", lambda: objectives.PCD(sampler="gibbs"), TypeError, "sampler")
for label, v, e in bad_pos():
    case(f"DenoisingScoreMatching sigma {label}", lambda v=v: objectives.DenoisingScoreMatching(v), e, "sigma")
    case(f"EnergyDiscrepancy t {label}", lambda v=v: objectives.EnergyDiscrepancy(t=v), e, "t")
case("SlicedScoreMatching distribution", lambda: objectives.SlicedScoreMatching(distribution="cauchy"), ValueError, "distribution")
case("EnergyDiscrepancy perturbation", lambda: objectives.EnergyDiscrepancy(perturbation="laplace"), ValueError, "perturbation")
case("EnergyDiscrepancy m 0", lambda: objectives.EnergyDiscrepancy(m=0), ValueError, "m")
OBJ_ON = [("ExactMLE", objectives.ExactMLE(), rbm, vb), ("RatioMatching", objectives.RatioMatching(), ising, sp),
          ("PseudoLikelihood", objectives.PseudoLikelihood(), ising, sp), ("ScoreMatching", objectives.ScoreMatching(), st, xr),
          ("CD", objectives.CD(), rbm, vb)]
for oname, obj, model, good in OBJ_ON:
    case(f"{oname} x nan", lambda obj=obj, model=model, good=good: obj.value_and_grad(model, nan_at(good), seed=0), ValueError, "x")
    case(f"{oname} x wrong d", lambda obj=obj, model=model, good=good: obj.value_and_grad(model, good[:, :-1], seed=0), ValueError, "x")
    case(f"{oname} model not a model", lambda obj=obj, good=good: obj.value_and_grad("m", good, seed=0), TypeError, "model")
case("RatioMatching continuous model", lambda: objectives.RatioMatching().value_and_grad(st, xr), ValueError, "domain")
case("ScoreMatching binary model", lambda: objectives.ScoreMatching().value_and_grad(rbm, vb), ValueError, "domain")
case("CD sampler returns nan", lambda: objectives.CD(sampler=lambda m, x, k, seed: np.full(x.shape, NAN)).value_and_grad(rbm, vb, 0), ValueError, "sampler")
case("CD sampler returns 0.5", lambda: objectives.CD(sampler=lambda m, x, k, seed: np.full(x.shape, 0.5)).value_and_grad(rbm, vb, 0), ValueError, "sampler")
case("CD sampler returns complex", lambda: objectives.CD(sampler=lambda m, x, k, seed: x + 0j).value_and_grad(rbm, vb, 0), ValueError, "sampler")
case("CD sampler returns wrong shape", lambda: objectives.CD(sampler=lambda m, x, k, seed: x[:-1]).value_and_grad(rbm, vb, 0), ValueError, "sampler")
case("PCD sampler returns inf", lambda: objectives.PCD(n_chains=4, sampler=lambda m, x, k, seed: np.full(x.shape, INF)).value_and_grad(rbm, vb, 0), ValueError, "sampler")

# --------------------------------------------------------------------- train
for label, v, e in bad_pos():
    case(f"SGD lr {label}", lambda v=v: tr.SGD(v), e, "lr")
    case(f"Adam lr {label}", lambda v=v: tr.Adam(v), e, "lr")
    case(f"Adam eps {label}", lambda v=v: tr.Adam(0.1, eps=v), e, "eps")
case("SGD momentum 1", lambda: tr.SGD(0.1, momentum=1.0), ValueError, "momentum")
case("SGD momentum negative", lambda: tr.SGD(0.1, momentum=-0.1), ValueError, "momentum")
case("Adam betas 1", lambda: tr.Adam(0.1, betas=(1.0, 0.9)), ValueError, "betas")
case("Adam betas not a pair", lambda: tr.Adam(0.1, betas=0.9), TypeError, "betas")
RM = objectives.RatioMatching()
case("fit model not a model", lambda: tr.fit("m", data, RM, tr.SGD(0.1), 2, 5, 0), TypeError, "model")
case("fit data wrong d", lambda: tr.fit(ising, data[:, :2], RM, tr.SGD(0.1), 2, 5, 0), ValueError, "data")
case("fit data 0/1 for spins", lambda: tr.fit(ising, (data + 1) / 2 + 1, RM, tr.SGD(0.1), 2, 5, 0), ValueError, "data")
case("fit objective", lambda: tr.fit(ising, data, "rm", tr.SGD(0.1), 2, 5, 0), TypeError, "objective")
case("fit optimizer", lambda: tr.fit(ising, data, RM, 0.1, 2, 5, 0), TypeError, "optimizer")
case("fit n_steps negative", lambda: tr.fit(ising, data, RM, tr.SGD(0.1), -1, 5, 0), ValueError, "n_steps")
case("fit batch_size 0", lambda: tr.fit(ising, data, RM, tr.SGD(0.1), 2, 0, 0), ValueError, "batch_size")
case("fit batch_size above N", lambda: tr.fit(ising, data, RM, tr.SGD(0.1), 2, 21, 0), ValueError, "batch_size")
case("fit callback", lambda: tr.fit(ising, data, RM, tr.SGD(0.1), 2, 5, 0, callback=1), TypeError, "callback")
case("fit seed", lambda: tr.fit(ising, data, RM, tr.SGD(0.1), 2, 5, "s"), TypeError, "seed")
case("fit lr diverges", lambda: tr.fit(st, xr, objectives.ScoreMatching(), tr.SGD(1e300), 3, 5, 0), FloatingPointError, "lr")


def _adam_on_other_shapes():
    opt = tr.Adam(0.1)
    tr.fit(ising, data, RM, opt, 1, 5, 0)
    tr.fit(Ising(np.zeros((2, 2)), np.zeros(2)), data[:, :2], RM, opt, 1, 5, 0)


case("Adam state on other shapes", _adam_on_other_shapes, ValueError, "reset")
case("optimizer step grads keys", lambda: tr.SGD(0.1).step({"a": np.ones(2)}, {"b": np.ones(2)}), ValueError, "grads")

# --------------------------------------------------------------- observables
case("integrated_autocorr_time empty", lambda: observables.integrated_autocorr_time(np.zeros(0)), ValueError, "x")
case("integrated_autocorr_time nan", lambda: observables.integrated_autocorr_time(nan_at(np.ones(10))), ValueError, "x")
case("integrated_autocorr_time c 0", lambda: observables.integrated_autocorr_time(np.arange(10.0), c=0.0), ValueError, "c")
case("integrated_autocorr_time 3-d", lambda: observables.integrated_autocorr_time(np.zeros((2, 2, 2))), ValueError, "x")
case("ising_observables lengths", lambda: observables.ising_observables(np.ones(10), np.ones(9), 0.4, 16), ValueError, "magnetization")
case("ising_observables beta nan", lambda: observables.ising_observables(np.ones(10), np.ones(10), NAN, 16), ValueError, "beta")
case("ising_observables n_sites 0", lambda: observables.ising_observables(np.ones(10), np.ones(10), 0.4, 0), ValueError, "n_sites")
case("ising_observables energy inf", lambda: observables.ising_observables(inf_at(np.ones(10)), np.ones(10), 0.4, 16), ValueError, "energy")
case("lattice_series not a lattice", lambda: observables.lattice_series(rbm, np.zeros((3, 2, 4))), (TypeError, ValueError), "model")
case("lattice_series trace wrong shape", lambda: observables.lattice_series(lat, np.zeros((3, 2, 5))), ValueError, "trace")

# --------------------------------------------------------------------- sweep


def _task(settings, seed):
    return {"a": 1.0}


case("sweep.run fn", lambda: sweep.run("task", {"a": [1]}, 0), TypeError, "fn")
case("sweep.run grid not a dict", lambda: sweep.run(_task, [1, 2], 0), TypeError, "grid")
case("sweep.run grid empty values", lambda: sweep.run(_task, {"a": []}, 0), ValueError, "grid")
case("sweep.run seed", lambda: sweep.run(_task, {"a": [1]}, "s"), TypeError, "seed")
case("sweep.run workers 0", lambda: sweep.run(_task, {"a": [1]}, 0, workers=0), ValueError, "workers")
case("sweep.run retries negative", lambda: sweep.run(_task, {"a": [1]}, 0, retries=-1), ValueError, "retries")
case("sweep.task_seed seed negative", lambda: sweep.task_seed(-1, {"a": 1}), ValueError, "seed")
case("sweep.canonical object value", lambda: sweep.canonical({"a": object()}), TypeError, "'a'")
case("sweep.canonical nan", lambda: sweep.canonical({"a": NAN}), ValueError, "'a'")
case("sweep.table not records", lambda: sweep.table([1, 2]), TypeError, "records")
case("sweep.load missing folder", lambda: sweep.load("/nonexistent/ebm_ref_sweep"), (FileNotFoundError, ValueError), "out")

# --------------------------------------------------------------- testing kit
X1 = np.array([[0.3, -1.2]])


def _f(x):
    return float(np.sum(x**2))


def _g(x):
    return 2 * x


for label, v, e in bad_pos()[:4]:
    case(f"check_grad rtol {label}", lambda v=v: check_grad(_f, _g, X1, rtol=v), e, "rtol")
    case(f"check_grad eps {label}", lambda v=v: check_grad(_f, _g, X1, eps=v), e, "eps")
    case(f"compare_energy rtol {label}", lambda v=v: compare_energy(rbm, energy=lambda p, x: rbm.energy(x), rtol=v), e, "rtol")
    case(f"compare_energy scales {label}", lambda v=v: compare_energy(rbm, energy=lambda p, x: rbm.energy(x), scales=(v,)), e, "scales")
    case(f"check_objective_grad rtol {label}", lambda v=v: check_objective_grad(lambda p, s, seed: (0.0, {}), ising, sp, rtol=v), e, "rtol")
case("check_grad f not callable", lambda: check_grad(1.0, _g, X1), TypeError, "f")
case("check_grad x empty", lambda: check_grad(_f, _g, np.zeros((0, 2))), ValueError, "x")
case("check_grad n_directions negative", lambda: check_grad(_f, _g, X1, n_directions=-1), ValueError, "n_directions")
case("compare_energy nothing to compare", lambda: compare_energy(rbm), ValueError, "energy")
case("compare_energy scales overflow the parameters", lambda: compare_energy(RBM(np.full((4, 3), 10.0), np.full(4, 10.0), np.zeros(3)), energy=lambda p, x: rbm.energy(x), scales=(1e308,)), ValueError, "scales")
case("compare_energy scales empty", lambda: compare_energy(rbm, energy=lambda p, x: rbm.energy(x), scales=()), ValueError, "scales")
case("compare_energy scales string", lambda: compare_energy(rbm, energy=lambda p, x: rbm.energy(x), scales="1"), TypeError, "scales")
case("compare_energy n_batches 0", lambda: compare_energy(rbm, energy=lambda p, x: rbm.energy(x), n_batches=0), ValueError, "n_batches")
case("compare_energy energy not callable", lambda: compare_energy(rbm, energy=3), TypeError, "energy")
case("check_sampler sample_fn", lambda: check_sampler(None, rbm), TypeError, "sample_fn")
case("check_sampler alpha 0", lambda: check_sampler(lambda p, x, n, r: x, rbm, alpha=0.0), ValueError, "alpha")
case("check_sampler n_chains 1", lambda: check_sampler(lambda p, x, n, r: x, rbm, n_chains=1), ValueError, "n_chains")
case("check_sampler start", lambda: check_sampler(lambda p, x, n, r: x, rbm, start="middle"), ValueError, "start")
case("check_sampler start wrong shape", lambda: check_sampler(lambda p, x, n, r: x, rbm, n_chains=10, start=np.zeros(3)), ValueError, "start")
case("check_sampler model without exact", lambda: check_sampler(lambda p, x, n, r: x, mlp, n_chains=10), ValueError, "model")
case("check_sampler seed", lambda: check_sampler(lambda p, x, n, r: x, rbm, n_chains=10, seed="a"), TypeError, "seed")
case("enumerate_distribution continuous", lambda: enumerate_distribution(st), ValueError, "model")
case("enumerate_distribution too big", lambda: enumerate_distribution(RBM(np.zeros((17, 1)), np.zeros(17), np.zeros(1))), ValueError, "model")
case("check_objective_grad eps 0", lambda: check_objective_grad(lambda p, s, seed: (0.0, {}), ising, sp, eps=0.0), ValueError, "eps")
case("check_objective_grad x nan", lambda: check_objective_grad(lambda p, s, seed: (0.0, {}), ising, nan_at(sp)), ValueError, "x")
case("compare_objective unknown name", lambda: compare_objective("NoSuchLoss", lambda p, s, seed: 0.0, ising, sp), ValueError, "name")
case("compare_objective name not a string", lambda: compare_objective(3, lambda p, s, seed: 0.0, ising, sp), TypeError, "name")
case("compare_objective n_seeds 1", lambda: compare_objective("ExactMLE", lambda p, s, seed: 0.0, ising, sp, n_seeds=1), ValueError, "n_seeds")
case("compare_objective alpha 1", lambda: compare_objective("ExactMLE", lambda p, s, seed: 0.0, ising, sp, alpha=1.0), ValueError, "alpha")
case("check_energy_derivatives x nan", lambda: check_energy_derivatives(rbm, nan_at(vb)), ValueError, "x")
case("check_energy_derivatives rtol 0", lambda: check_energy_derivatives(rbm, vb, rtol=0.0), ValueError, "rtol")
case("ParamMap not a dict", lambda: ParamMap([("W", "w")]), TypeError, "mapping")
case("ParamMap bad layout", lambda: ParamMap({"W": ("w", 3.5)}), (TypeError, ValueError), "mapping")

# ----------------------------------------------------------- reference files
case("reference.save x nan", lambda: reference.save("/tmp/never_written.npz", rbm, nan_at(vb)), ValueError, "x")
case("reference.save quantity unknown", lambda: reference.save("/tmp/never_written.npz", rbm, vb, quantities=("entropy",)), ValueError, "quantities")
case("reference.load missing", lambda: reference.load("/nonexistent/ref.npz"), (FileNotFoundError, ValueError), "ref.npz")
case("reference.build_model unknown", lambda: reference.build_model("boltzmann-brain", {}), ValueError, "name")


def _saved(tmp=[]):
    if not tmp:
        import tempfile

        d = tempfile.mkdtemp(prefix="ebm_ref_corpus_")
        tmp.append(reference.save(d + "/r.npz", rbm, vb, quantities=("energy",)))
    return tmp[0]


case("reference.compare unknown quantity", lambda: reference.compare(_saved(), {"entropy": np.zeros(5)}), ValueError, "outputs")
case("reference.compare outputs not a dict", lambda: reference.compare(_saved(), [1.0]), (TypeError, ValueError), "outputs")


# ------------------------------------------------------------- command line
def cli(*argv):
    """Run the command line in-process; an argparse refusal becomes SystemExit(stderr text)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            code = cli_main(list(argv))
        except SystemExit as exc:
            if exc.code in (0, None):
                raise
            raise SystemExit(exc.code if isinstance(exc.code, str) else err.getvalue()) from None
    if code not in (0, None):
        raise SystemExit(err.getvalue())


case("cli no command", lambda: cli(), SystemExit, "command")
case("cli unknown command", lambda: cli("train"), SystemExit, "train")
case("cli bench unknown suite", lambda: cli("bench", "nosuchsuite"), (SystemExit, ValueError), "nosuchsuite")
case("cli figures seed", lambda: cli("figures", "--seed", "x"), SystemExit, "--seed")
case("cli reference no output", lambda: cli("reference", "rbm"), SystemExit, "--output")
case("cli reference n not int", lambda: cli("reference", "rbm", "--n", "many", "-o", "/tmp/x.npz"), SystemExit, "--n")
case("cli reference scale", lambda: cli("reference", "rbm", "--scale", "big", "-o", "/tmp/x.npz"), SystemExit, "--scale")
case("cli reference domain", lambda: cli("reference", "ising", "--domain", "potts", "-o", "/tmp/x.npz"), SystemExit, "--domain")
case("cli reference unknown model", lambda: cli("reference", "hopfield", "-o", "/tmp/never.npz"), (SystemExit, ValueError), "hopfield")
case("cli sweep workers", lambda: cli("sweep", "spec.toml", "--workers", "two"), SystemExit, "--workers")
case("cli sweep retries", lambda: cli("sweep", "spec.toml", "--retries", "1.5"), SystemExit, "--retries")
case("cli sweep missing spec", lambda: cli("sweep", "/nonexistent/spec.toml"), (SystemExit, FileNotFoundError, ValueError), "spec")


@pytest.mark.parametrize("fn,exc,arg", CASES)
def test_bad_input_is_a_clean_error(fn, exc, arg):
    with pytest.raises(exc) as info:
        fn()
    assert arg in str(info.value), f"message does not name {arg!r}: {info.value}"


def test_corpus_is_large():
    assert len(CASES) >= 300


# ----------------------------------------- extreme inputs that are valid
def test_extreme_valid_inputs():
    """Documented valid extremes give finite (or signed infinite) numbers, never an error or NaN."""
    # binary/spin energies take any real x (the continuous extension)
    assert np.all(np.isfinite(rbm.energy(np.full((2, 4), 0.5))))
    assert np.all(np.isfinite(ising.energy(np.zeros((2, 3)))))
    # products x_i x_j beyond the float range: +-inf with the exact sign, never NaN
    e = ising.energy(np.array([[1e200, 1e200, 1e200], [1e200, -1e200, 0.0], [1e300, 1.0, 1.0]]))
    assert e[0] == -np.inf and e[1] == np.inf and np.isfinite(e[2])
    # with_params takes any subset of the keys
    assert np.array_equal(rbm.with_params({"b_v": np.ones(4)}).params["W"], rbm.params["W"])
