"""Record, then compare bit for bit, the outputs of every sampler, AIS and
exact routine on a fixed set of small cases.

Used when the code under the public API is restructured: record on the old
tree, compare on the new one. Every case is a function returning a dict of
arrays; ``compare`` reports each array that is not bit-identical (NaNs in
the same places count as equal) and exits 1 if any differs or is missing.

    python3 scripts/golden_outputs.py record --out old.npz [--only PREFIX]
    python3 scripts/golden_outputs.py compare --ref old.npz [--only PREFIX]

The recorded file is machine-specific (BLAS kernels round differently on
different CPUs): compare on the machine that recorded.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from ebm_ref import estimate, exact, objectives, samplers
from ebm_ref.energies import (
    GRBM,
    RBM,
    GaussianMixture,
    Ising,
    LatentEnergy,
    LowRankBoltzmann,
    MLPEnergy,
    StudentT,
)

CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def _rng(seed):
    return np.random.default_rng(seed)


def _rbm(V=9, H=5, scale=1.0, seed=1):
    r = _rng(seed)
    return RBM(scale * r.normal(size=(V, H)), 0.3 * r.normal(size=V), 0.3 * r.normal(size=H))


def _grbm(V=4, H=3, seed=2):
    r = _rng(seed)
    return GRBM(r.normal(size=(V, H)), r.normal(size=V), 0.3 * r.normal(size=H), 0.2 * r.normal(size=V))


def _ising(d=8, domain="spin", seed=3):
    return Ising.random(d, 0.4, seed, domain=domain)


def _continuous_models():
    r = _rng(4)
    return {
        "studentt": StudentT(r.normal(size=3), 0.2 * r.normal(size=3), np.full(3, np.log(3.0))),
        "mixture": GaussianMixture(r.normal(size=3), r.normal(size=(3, 2)), 0.2 * r.normal(size=(3, 2))),
        "grbm": _grbm(),
        "mlp_softplus": MLPEnergy((2, 16, 8), activation="softplus", seed=5),
        "mlp_tanh": MLPEnergy((3, 8), activation="tanh", seed=6),
        "mlp_swish": MLPEnergy((2, 8, 8), activation="swish", seed=7),
        "latent": LatentEnergy(np.array([1.3, 0.7])),
    }


def _binary_models():
    return {
        "rbm": _rbm(),
        "rbm_big": _rbm(V=40, H=30, scale=0.3, seed=9),
        "ising_spin": _ising(),
        "ising_binary": _ising(domain="binary"),
        "lattice": Ising.lattice(6, 0.4),
        "lattice_rect_open": Ising.lattice((4, 6), 0.5, field=0.1, boundary="free"),
    }


def _x0(model, n, seed):
    r = _rng(seed)
    d = model.n_features
    if model.domain == "binary":
        return r.integers(0, 2, size=(n, d)).astype(float)
    if model.domain == "spin":
        return 2.0 * r.integers(0, 2, size=(n, d)) - 1.0
    return r.normal(size=(n, d))


def _res(res, prefix=""):
    out = {prefix + "x": res.x, prefix + "energies": res.energies}
    if res.trace is not None:
        out[prefix + "trace"] = res.trace
    if res.acceptance_rate is not None:
        out[prefix + "acc"] = res.acceptance_rate
    return out


def _try_all(models, run):
    out = {}
    for name, model in models.items():
        try:
            res = run(model)
        except (TypeError, ValueError) as exc:  # sampler does not accept the model
            out[f"{name}:refused"] = np.array([len(str(type(exc)))])
            continue
        out.update(_res(res, name + ":"))
    return out


# ----------------------------------------------------------------- binary
@case
def binary_gibbs():
    out = _try_all(_binary_models(), lambda m: samplers.gibbs(m, _x0(m, 37, 1), 6, 11, thin=2))
    m = _binary_models()["ising_spin"]
    for method in ("sequential", "random", "checkerboard"):
        try:
            out.update(_res(samplers.gibbs(m, _x0(m, 5, 2), 4, 12, method=method), f"method_{method}:"))
        except (TypeError, ValueError):
            pass
    lat = Ising.lattice(8, 0.44)
    out.update(_res(samplers.gibbs(lat, _x0(lat, 21, 3), 5, 13, thin=1, method="checkerboard"), "lat8cb:"))
    return out


@case
def binary_gwg():
    return _try_all(_binary_models(), lambda m: samplers.gwg(m, _x0(m, 23, 4), 7, 14, thin=3))


@case
def binary_rwmh():
    return _try_all(_binary_models(), lambda m: samplers.rwmh(m, _x0(m, 23, 5), 9, 1.0, 15, thin=3))


@case
def binary_dula():
    out = _try_all(_binary_models(), lambda m: samplers.dula(m, _x0(m, 19, 6), 5, 0.3, 16, thin=1))
    out.update({"adj:" + k: v for k, v in _try_all(
        _binary_models(), lambda m: samplers.dula(m, _x0(m, 19, 6), 5, 0.3, 17, adjust=True)).items()})
    return out


@case
def binary_cluster():
    out = {}
    for name, m in (("lat", Ising.lattice(6, 0.44)), ("lat_open", Ising.lattice((4, 5), 0.3, boundary="free"))):
        out.update(_res(samplers.swendsen_wang(m, _x0(m, 9, 7), 5, 18, thin=1), f"{name}:sw:"))
        out.update(_res(samplers.wolff(m, _x0(m, 9, 7), 5, 19, thin=1), f"{name}:wolff:"))
    return out


@case
def binary_tempering():
    m = Ising.lattice(5, 0.4)
    b = np.linspace(0.2, 1.0, 4)
    r = samplers.parallel_tempering(m, b, _x0(m, 6, 8), 5, 20, thin=1)
    out = _res(r)
    out.update(replicas=r.replicas, replica_energies=r.replica_energies, swap=r.swap_rate_per_chain)
    return out


@case
def binary_boltzmann_aux():
    m = LowRankBoltzmann.random(8, 2, 0.5, 21)
    return _res(samplers.boltzmann_auxiliary(m, _x0(m, 13, 9), 6, 22, thin=2))


# ------------------------------------------------------------- continuous
@case
def cont_langevin():
    out = _try_all(_continuous_models(), lambda m: samplers.langevin(m, _x0(m, 19, 10), 6, 0.05, 23, thin=2))
    out.update({"mala:" + k: v for k, v in _try_all(
        _continuous_models(), lambda m: samplers.langevin(m, _x0(m, 19, 10), 6, 0.05, 24, adjust=True, thin=3)).items()})
    return out


@case
def cont_rwmh():
    return _try_all(_continuous_models(), lambda m: samplers.rwmh(m, _x0(m, 19, 11), 8, 0.5, 25, thin=4))


@case
def cont_hmc():
    return _try_all(_continuous_models(), lambda m: samplers.hmc(m, _x0(m, 11, 12), 4, 0.1, 3, 26, thin=1))


@case
def cont_gibbs_langevin():
    m = _grbm()
    out = _res(samplers.gibbs_langevin(m, _x0(m, 17, 13), 5, 0.05, 27, thin=1))
    out.update(_res(samplers.gibbs_langevin(m, _x0(m, 17, 13), 5, 0.05, 28, adjust=True), "adj:"))
    return out


# -------------------------------------------------------------------- AIS
def _ais_out(r, prefix):
    return {prefix + "log_w": r.log_weights, prefix + "x": r.x,
            prefix + "scalars": np.array([r.log_z, r.stderr, r.ess, r.log_z_base])}


@case
def ais_forward():
    out = {}
    b = estimate.betas(30)
    for name, m in (("rbm", _rbm()), ("rbm_big", _rbm(40, 30, 0.3, 9)), ("grbm", _grbm()),
                    ("ising", _ising()), ("ising_bin", _ising(domain="binary")), ("lattice", Ising.lattice(4, 0.3))):
        out.update(_ais_out(estimate.ais(m, 45, b, 29), name + ":"))
    out.update(_ais_out(estimate.ais(_rbm(), 21, estimate.betas(12, "sigmoid"), 30, base="uniform"), "rbm_uniform:"))
    return out


@case
def ais_reverse():
    out = {}
    b = estimate.betas(20)
    for name, m in (("rbm", _rbm()), ("grbm", _grbm()), ("ising", _ising())):
        out.update(_ais_out(estimate.reverse_ais(m, _x0(m, 15, 14), b, 31), name + ":"))
    ll, res = estimate.log_likelihood(_rbm(), _x0(_rbm(), 5, 15), 17, b, 32)
    out["loglik"] = ll
    out.update(_ais_out(res, "loglik:"))
    return out


@case
def ais_betas():
    return {k: estimate.betas(17, k) for k in ("linear", "sigmoid", "three_piece")}


@case
def ais_boltzmann_bound():
    m = LowRankBoltzmann.random(8, 2, 0.5, 33)
    r = estimate.boltzmann_bound(m, 3, 50, 34)
    return {"terms": r.terms, "scalars": np.array([r.value, r.stderr, r.elbo])}


# ------------------------------------------------------------------ exact
@case
def exact_all():
    out = {}
    models = {"rbm": _rbm(), "grbm": _grbm(V=2, H=3), "ising": _ising(), "ising_bin": _ising(domain="binary"),
              "lattice": Ising.lattice(3, 0.4), "studentt": _continuous_models()["studentt"],
              "lowrank": LowRankBoltzmann.random(6, 2, 0.5, 35)}
    for name, m in models.items():
        try:
            out[name + ":log_z"] = np.atleast_1d(exact.log_partition(m))
        except ValueError:  # no exact route for this model in this version
            continue
        if m.domain != "real":
            out[name + ":p"] = exact.probabilities(m)
            x = _x0(m, 4, 16)
            out[name + ":ll"] = np.atleast_1d(exact.log_likelihood(m, x))
            try:
                g = exact.mle_grad(m, x)
                out.update({f"{name}:g:{k}": v for k, v in g.items()})
            except (TypeError, ValueError):
                pass
    out["ising2d"] = np.array([exact.ising_log_partition_2d(4, 0.4), exact.ising_energy_2d(4, 0.4),
                               exact.ising_specific_heat_2d(4, 0.4)])
    return out


# ------------------------------------------------------------- objectives
@case
def objectives_sampled():
    out = {}
    m = _rbm()
    x = _x0(m, 20, 17)
    for name, obj in (("cd", objectives.CD(k=2)), ("pcd", objectives.PCD(k=1, n_chains=15)),
                      ("pl_stoch", objectives.PseudoLikelihood(stochastic=True)),
                      ("ed", objectives.EnergyDiscrepancy(perturbation="bernoulli", t=0.2, m=4))):
        try:
            v, g = obj.value_and_grad(m, x, seed=36)
        except (TypeError, ValueError):
            continue
        out[name + ":v"] = np.atleast_1d(v)
        out.update({f"{name}:{k}": a for k, a in g.items()})
    c = _continuous_models()["studentt"]
    xc = _x0(c, 20, 18)
    for name, obj in (("dsm", objectives.DenoisingScoreMatching(0.3)),
                      ("ssm", objectives.SlicedScoreMatching(n_projections=2)),
                      ("ed_gauss", objectives.EnergyDiscrepancy(t=0.2, m=4))):
        v, g = obj.value_and_grad(c, xc, seed=37)
        out[name + ":v"] = np.atleast_1d(v)
        out.update({f"{name}:{k}": a for k, a in g.items()})
    return out


# -------------------------------------------------------------------- CLI
def _run(only):
    out = {}
    for name, fn in CASES.items():
        if only and not any(name.startswith(p) for p in only):
            continue
        for key, arr in fn().items():
            if isinstance(arr, tuple):
                out.update({f"{name}/{key}.{i}": np.asarray(a) for i, a in enumerate(arr)})
            else:
                out[f"{name}/{key}"] = np.asarray(arr)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    r.add_argument("--out", required=True)
    r.add_argument("--only", nargs="*", default=[])
    c = sub.add_parser("compare")
    c.add_argument("--ref", required=True, nargs="+")
    c.add_argument("--only", nargs="*", default=[])
    args = p.parse_args(argv)
    if args.cmd == "record":
        out = _run(args.only)
        np.savez(args.out, **out)
        print(f"recorded {len(out)} arrays from {len({k.split('/')[0] for k in out})} cases into {args.out}")
        return 0
    ref = {}
    for path in args.ref:
        with np.load(path) as f:
            ref.update({k: f[k] for k in f.files})
    if args.only:
        ref = {k: v for k, v in ref.items() if any(k.startswith(p) for p in args.only)}
    new = _run(sorted({k.split("/")[0] for k in ref}))
    bad = 0
    for key, old in ref.items():
        if key not in new:
            print(f"MISSING  {key}")
            bad += 1
            continue
        a = new[key]
        if a.shape != old.shape or a.dtype != old.dtype:
            print(f"SHAPE    {key}: {old.shape} {old.dtype} -> {a.shape} {a.dtype}")
            bad += 1
        elif not np.array_equal(a, old, equal_nan=a.dtype.kind == "f"):
            diff = np.nanmax(np.abs(a.astype(float) - old.astype(float)))
            n = int(np.sum(~((a == old) | (np.isnan(a) & np.isnan(old)) if a.dtype.kind == "f" else a == old)))
            print(f"DIFFERS  {key}: {n} of {a.size} entries, max |diff| {diff:.3g}")
            bad += 1
    extra = sorted(set(new) - set(ref))
    print(f"{len(ref) - bad} of {len(ref)} arrays bit-identical; {bad} differ or are missing; "
          f"{len(extra)} new arrays not in the reference")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
