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
