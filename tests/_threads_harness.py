"""One harness for the thread-invariance tests: the same script at 1 and 2 threads.

Numba's pool size is fixed when a process starts, so each thread count runs
in a fresh interpreter: ``script OUT.npz`` saves its arrays, and the caller
compares what every run saved.
"""

import os
import pathlib
import subprocess
import sys

import numpy as np

REPO = pathlib.Path(__file__).resolve().parent.parent


def run_at_thread_counts(script, tmp_path, counts=("1", "2"), timeout=600):
    """Run ``script`` once per thread count (Numba, OpenBLAS and OpenMP alike).

    Returns one dict ``name -> array`` per count, in the order of ``counts``.
    """
    results = []
    for threads in counts:
        env = dict(os.environ, NUMBA_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads,
                   OMP_NUM_THREADS=threads, PYTHONPATH=str(REPO))
        out = pathlib.Path(tmp_path) / f"t{threads}.npz"
        subprocess.run([sys.executable, str(script), str(out)], env=env, check=True, timeout=timeout)
        with np.load(out) as z:
            results.append({k: z[k] for k in z.files})
    return results


FIELDS = ("x", "acceptance_rate", "trace", "energies")


def result_arrays(res):
    """The per-chain fields of a ``SampleResult`` that are set, by name."""
    return {k: getattr(res, k) for k in FIELDS if getattr(res, k) is not None}


def assert_identical(a, b, what):
    """Same names and bit-identical arrays (NaN equal to NaN) in two dicts of arrays."""
    assert a.keys() == b.keys(), what
    for k in a:
        assert np.array_equal(a[k], b[k], equal_nan=True), f"{what}: field {k} differs"
