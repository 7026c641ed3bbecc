"""Thread-count and chain-prefix invariance of every public sampler on every zoo model it accepts.

* 1 versus 2 Numba (and BLAS/OpenMP) threads: the same script in two fresh
  interpreters (``_threads_harness.run_at_thread_counts``) runs every
  (model, sampler, settings) configuration of the zoo on 150 chains; every
  field of every result must be bit-identical.
* Chunks of steps: a run cut into chunks (as the samplers do, so that Ctrl-C
  is seen between them) equals one call bit for bit.
* Chain prefixes, in-process: 1, 7 and 300 chains from the same seed; the
  first chains of the larger runs equal the smaller runs bit for bit (300
  chains cross the 128-chain blocks of block Gibbs and the lock-step lane
  groups of the flip samplers).

Deterministic: no false-failure rate.
"""

import pathlib
import textwrap

import pytest

import zoo
from _threads_harness import assert_identical, result_arrays, run_at_thread_counts

HERE = pathlib.Path(__file__).resolve().parent
N_STEPS, SEED, THIN = 7, 123, 3


def _configs():
    out = []
    for e in zoo.ENTRIES:
        for name, settings, _ in e.configs():
            out.append((zoo.config_id(e.id, name, settings), e.id, name, settings))
    return out


CONFIGS = _configs()


def run_config(eid, name, settings, n_chains):
    """The zoo's small model at its sampler scale, ``n_chains`` chains from fixed seeds."""
    entry = zoo.BY_ID[eid]
    model = entry.make("small")
    x0 = zoo.model_states(model, n_chains, seed=0)
    return result_arrays(zoo.run_sampler(name, model, x0, N_STEPS, SEED, thin=THIN, **settings))


def _prefix(arrays, n):
    return {k: (v[:, :n] if k == "trace" else v[:n]) for k, v in arrays.items()}


_assert_identical = assert_identical


def test_bit_identical_with_one_and_two_threads(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(HERE)!r})
        import numpy as np
        import test_zoo_reproducibility as t

        out = {{}}
        for ident, eid, name, settings in t.CONFIGS:
            for k, v in t.run_config(eid, name, settings, 150).items():
                out[ident + "/" + k] = v
        np.savez(sys.argv[1], **out)
        """
    ))
    one, two = run_at_thread_counts(script, tmp_path)
    # every configuration saved at least its states and energies
    assert {k.split("/")[0] for k in one} == {c[0] for c in CONFIGS}
    _assert_identical(one, two, "1 vs 2 threads")


@pytest.mark.parametrize(
    "eid, name, settings",
    [pytest.param(*c[1:], id=c[0]) for c in CONFIGS],
)
def test_chain_prefix_invariance(eid, name, settings):
    big = run_config(eid, name, settings, 300)
    for n in (1, 7):
        _assert_identical(run_config(eid, name, settings, n), _prefix(big, n), f"{n} vs 300 chains")


def _cut_runner(sizes):
    """A stand-in for ``run_chunked`` that cuts the work into chunks of the given sizes (the rest in one)."""
    def run(step, n_total, **_):
        done = 0
        for size in sizes:
            if done >= n_total:
                break
            count = min(size, n_total - done)
            step(done, count)
            done += count
        if done < n_total:
            step(done, n_total - done)
        return n_total
    return run


@pytest.mark.parametrize(
    "eid, name, settings",
    [pytest.param(*c[1:], id=c[0]) for c in CONFIGS],
)
def test_steps_in_chunks_give_one_calls_bits(eid, name, settings, monkeypatch):
    """Every sampler runs its steps in chunks (Ctrl-C between them): cutting 7 steps as 7, as 1 + 2 + 4
    and as seven single steps gives the same bits (states, trace with thin 3, acceptance, energies)."""
    from ebm_ref.samplers import _common

    results = {}
    for label, sizes in (("one", (N_STEPS,)), ("1+2+4", (1, 2, 4)), ("singles", (1,) * N_STEPS)):
        monkeypatch.setattr(_common, "run_chunked", _cut_runner(sizes))
        results[label] = run_config(eid, name, settings, 20)
    _assert_identical(results["one"], results["1+2+4"], "one chunk vs 1 + 2 + 4")
    _assert_identical(results["one"], results["singles"], "one chunk vs single steps")


@pytest.mark.parametrize("eid, name, settings", [("rbm", "gibbs", {}), ("mlp-softplus", "langevin", {"step_size": 0.2})])
def test_chunk_check_sees_a_wrong_step_index(eid, name, settings, monkeypatch):
    """Negative control for the test above: chunks that all claim to start at step 0 put the traced
    states in the wrong rows, and the comparison sees it."""
    from ebm_ref.samplers import _common

    monkeypatch.setattr(_common, "run_chunked", _cut_runner((N_STEPS,)))
    one = run_config(eid, name, settings, 20)

    def restarting(step, n_total, **_):
        for t in range(n_total):
            step(0, 1)

    monkeypatch.setattr(_common, "run_chunked", restarting)
    with pytest.raises(AssertionError):
        _assert_identical(one, run_config(eid, name, settings, 20), "restarting chunks")
