"""Figure 11 (Boltzmann machine as a variational posterior) at reduced size: the claims of its caption."""

import math
import pathlib

import numpy as np
import pytest

from ebm_ref.__main__ import load_script

SCRIPT = pathlib.Path(__file__).resolve().parent.parent / "scripts" / "fig_11_boltzmann_posterior.py"
Z_CRIT = 3.89  # two-sided, alpha = 1e-4 per assertion


@pytest.fixture(scope="module")
def fig():
    return load_script(SCRIPT)


@pytest.fixture(scope="module")
def res(fig):
    return fig.compute(ks=(1, 4, 16, 64), n_samples=4000, n_chains=20_000, n_steps=40, n_mix=20, mix_chains=5000, seed=0)


def test_bound_increases_towards_log_z(res):
    b, se, log_z = res["bound"], res["stderr"], res["log_z"]
    # L~_k <= log Z (exact inequality), up to Monte Carlo error
    assert np.all(log_z - b > -Z_CRIT * se)
    # increasing: independent estimates for different k (one seed, but different numbers of draws per sample
    # shift every later draw), so a decrease larger than 3.89 combined s.e. would be a failure
    for i in range(len(b) - 1):
        assert b[i + 1] - b[i] > -Z_CRIT * math.hypot(se[i], se[i + 1])
    # and the increase from k = 1 to k = 64 is large: measured gaps 0.65 (k = 1) and 0.017 (k = 64) nats,
    # s.e. 0.016 and 0.003; the chi-square argument bounds the gap by C/k, so it must fall by >= 10x over 64x in k
    # once k is past the transient
    assert b[-1] - b[0] > 10 * math.hypot(se[0], se[-1])
    assert res["gap"][-1] < 0.1 * res["gap"][0]


def test_sampler_matches_exact_probabilities(res):
    # 40 steps from z = 0: the TV curves of panel (d) reach the noise level within ~12-17 steps, so the
    # pooled chi-square of the 20,000 final codes against b keeps its false-failure rate alpha = 1e-4
    assert res["chi2_p"] > 1e-4


def test_larger_shift_mixes_slower(res):
    tv = res["mix"]
    # TV after 5 steps from z = 0, well above the noise level (0.031 at 5000 chains): measured 0.18 (smallest
    # shift) vs 0.40 (shift + 3); the difference is > 10 times the noise level
    assert tv[0.0][4] < tv[3.0][4]
    assert tv[0.0][4] > 3 * res["tv_null"]


def test_main_writes_png_and_caption(fig, tmp_path):
    out = fig.main(tmp_path, seed=1, ks=(1, 8), n_samples=500, n_chains=2000, n_steps=20, n_mix=5, mix_chains=1000)
    for f in out["files"]:
        p = pathlib.Path(f)
        assert p.exists() and p.stat().st_size > 10_000
        assert f"]({p.name})" in out["caption"]
    assert out["caption"].startswith("## 11.")
