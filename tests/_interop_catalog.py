"""The interop corpus as data: correct implementations that must pass and planted bugs that must be caught.

``python tests/_interop_catalog.py`` prints the catch table (bug -> caught? -> suspects named) in Markdown; the tests
in ``test_interop_catalog.py`` assert every row. Every check runs with the kit's default settings.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _interop_jax_corpus as jc  # noqa: E402
import _interop_sklearn_corpus as sc  # noqa: E402
import _interop_torch_corpus as tc  # noqa: E402
import torch  # noqa: E402

from ebm_ref.testing import compare_objective  # noqa: E402

# name -> (what the code is, the check it runs)
CORRECT = {
    "torch RBM, F.softplus, float64": ("free energy, 6 primitives", lambda: tc.run_rbm_energy()),
    "torch RBM, F.softplus, float32": ("free energy, 6 primitives", lambda: tc.run_rbm_energy(dtype=torch.float32)),
    "torch RBM Gibbs (generator)": ("check_sampler", lambda: tc.run_rbm_sampler()),
    "torch RBM Gibbs (global RNG)": ("check_sampler", lambda: tc.run_rbm_sampler(global_rng=True)),
    "torch CD-1 loss, gradient": ("check_objective_grad", lambda: tc.run_cd_grad()),
    "torch CD-1 loss, float32, gradient": ("check_objective_grad", lambda: tc.run_cd_grad(dtype=torch.float32)),
    "torch CD-1 loss vs CD(1)": ("compare_objective", lambda: tc.run_cd_compare()),
    "torch GRBM, learnable variance": ("free energy, 6 primitives", lambda: tc.run_grbm_energy()),
    "torch MLP energy, nn.Softplus": ("6 primitives", lambda: tc.run_mlp_energy()),
    "torch score matching (autograd trace)": ("compare_objective", lambda: tc.run_sm_compare()),
    "torch score matching, gradient": ("check_objective_grad", lambda: tc.run_sm_grad()),
    "torch Ising energy": ("6 primitives", lambda: tc.run_ising_energy()),
    "torch Ising Metropolis sweep": ("check_sampler", lambda: tc.run_ising_sampler("metropolis")),
    "torch Ising heat-bath sweep": ("check_sampler", lambda: tc.run_ising_sampler("heat_bath")),
    "JAX MLP energy (eager fn)": ("6 primitives", lambda: jc.run_mlp_energy()),
    "JAX MLP energy (jax.jit fn)": ("6 primitives", lambda: jc.run_mlp_energy(jit=True)),
    "JAX RBM free energy": ("6 primitives", lambda: jc.run_rbm_energy()),
    "JAX RBM Gibbs": ("check_sampler", lambda: jc.run_rbm_sampler()),
    "JAX score matching (jacfwd trace)": ("compare_objective", lambda: _sm_jax()),
    "sklearn BernoulliRBM._free_energy": ("energy", lambda: sc.run_energy()),
    "sklearn BernoulliRBM.gibbs": ("check_sampler", lambda: sc.run_sampler()),
}

# name -> (what is wrong, the check it runs, the suspect codes the diagnosis names: exactly these, none other)
BUGS = {
    "sign flip (visible bias)": ("torch RBM: +b_v.v", lambda: tc.run_rbm_energy(bug="sign"), ("sign", "param_sign")),
    "transpose on a square W": ("torch RBM: v @ W with W (H, V), V = H", lambda: tc.run_rbm_energy(bug="transpose", V=4, H=4), ("transpose",)),
    "hidden bias sign": ("torch RBM: softplus(W v - c)", lambda: tc.run_rbm_energy(bug="hidden_bias_sign"), ("param_sign",)),
    "visible bias term dropped": ("torch RBM: F = -sum softplus", lambda: tc.run_rbm_energy(bug="no_visible_bias"), ("param_dropped",)),
    "float32 overflow in naive softplus": (
        "torch RBM float32, log(1+exp(a)), weights x3",
        lambda: tc.run_rbm_energy(dtype=torch.float32, softplus=tc.naive_softplus, scale=3.0),
        ("nonfinite", "saturation", "float32"),
    ),
    "stale hidden sample in Gibbs": ("torch Gibbs: h drawn once", lambda: tc.run_rbm_sampler(bug="stale_hidden"), ("no_mixing",)),
    "mean-field hidden instead of a sample": ("torch Gibbs: h = p(h|v)", lambda: tc.run_rbm_sampler(bug="mean_field_hidden"), ("biased",)),
    "off-by-one CD step": ("torch CD-1 loop runs k-1 steps", lambda: tc.run_cd_compare(bug="cd_off_by_one"), ()),
    "missing 1/n in CD loss": ("torch CD: sums instead of means", lambda: tc.run_cd_compare(bug="missing_1_over_n"), ("factor", "weights")),
    "wrong GRBM variance factor": ("torch GRBM: v / sigma for v / sigma^2", lambda: tc.run_grbm_energy(bug="variance_factor"), ()),
    "missing 1/2 in score matching": ("torch SM: |g|^2 for 1/2 |g|^2", lambda: tc.run_sm_compare(bug="missing_half"), ("term_scale",)),
    "Hessian trace detached in SM": ("torch SM: tr.detach()", lambda: tc.run_sm_grad(bug="trace_detached"), ()),
    "missing 1/2 in Ising energy": ("torch Ising: -s J s - h s", lambda: tc.run_ising_energy(bug="missing_half_ising"), ("param_scale", "factor")),
    "wrong MH ratio": ("torch Ising Metropolis: exp(-dE/2)", lambda: tc.run_ising_sampler("metropolis", bug="wrong_mh_ratio"), ("biased",)),
    "binary formula on spins": ("torch Ising heat bath: sigmoid(field)", lambda: tc.run_ising_sampler("heat_bath", bug="spin_as_binary"), ("biased",)),
    "transpose in a square JAX layer": ("JAX MLP: x @ W.T, d = h", lambda: jc.run_mlp_energy(jc.mlp_energy_transposed, d=3, h=3), ("transpose",)),
    "JAX hidden bias sign": ("JAX RBM: softplus(v W - c)", lambda: jc.run_rbm_energy(jc.rbm_free_energy_bias_sign), ("param_sign",)),
    "JAX mean-field hidden": ("JAX Gibbs: h = p(h|v)", lambda: jc.run_rbm_sampler(mean_field=True), ("biased",)),
    "sklearn components_ not transposed": ("mapping W <- components_ without 'T' on a square RBM", lambda: sc.run_energy(transpose=False), ("transpose",)),
}


def _sm_jax():
    ref, fn, x = jc.sm_setup()
    return compare_objective("ScoreMatching", fn, ref, x)


# entries that take seconds (20,000 chains from two starts; 200 seeds per side; finite differences through a sampler;
# a second JAX compilation): @pytest.mark.slow, still run in CI
SLOW = {
    "torch RBM Gibbs (generator)", "torch RBM Gibbs (global RNG)", "torch CD-1 loss vs CD(1)",
    "torch score matching, gradient", "torch Ising Metropolis sweep", "JAX RBM Gibbs",
    "stale hidden sample in Gibbs", "mean-field hidden instead of a sample", "off-by-one CD step",
    "missing 1/n in CD loss", "wrong MH ratio", "JAX mean-field hidden",
    "torch CD-1 loss, gradient", "torch CD-1 loss, float32, gradient", "JAX MLP energy (jax.jit fn)",
}


def suspects_of(report):
    return tuple(getattr(report, "suspects", ()) or ())


def failed_part(report):
    """What the report says failed: primitives (compare_energy), starts (check_sampler), loss/gradient (objectives)."""
    if hasattr(report, "failed") and not callable(report.failed):
        return ", ".join(report.failed)
    if getattr(report, "caught_by", None):
        return " and ".join(report.caught_by) + " start"
    value = getattr(report, "value", None)
    if isinstance(value, dict):
        parts = []
        if value.get("error", 0.0) > report.threshold:
            parts.append("loss")
        if report.grads and report.grads.get("error", 0.0) > report.threshold:
            parts.append(f"gradient {report.grads.get('key')}")
        return ", ".join(parts)
    where = getattr(report, "where", None)
    return f"gradient {where[0]}" if isinstance(where, tuple) and where else ""


def catch_table(names=None):
    """Rows ``(bug, what, caught, suspects, expected suspects, failed part)`` for the bugs in ``names`` (default all)."""
    rows = []
    for name, (what, run, expected) in BUGS.items():
        if names is not None and name not in names:
            continue
        report = run()
        rows.append((name, what, not report.passed, suspects_of(report), expected, failed_part(report)))
    return rows


def markdown(rows):
    lines = ["| planted bug | code | caught | what failed | suspects named |", "|---|---|---|---|---|"]
    for name, what, caught, suspects, _, part in rows:
        lines.append(f"| {name} | {what} | {'yes' if caught else 'NO'} | {part or '-'} | {', '.join(suspects) or '-'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(catch_table()))
