"""scikit-learn's ``BernoulliRBM`` checked through a declared parameter mapping.

scikit-learn is NumPy code, so it needs no framework adapter: :class:`ebm_ref.testing.ParamMap` (the mapping part of
the adapters) translates ebm_ref's ``W`` (V, H) into ``components_`` (H, V), and the fitted attributes are set on an
unfitted estimator. Its private ``_free_energy`` is what ``score_samples`` uses; ``gibbs`` is one block-Gibbs step.
"""

from __future__ import annotations

import numpy as np
from sklearn.neural_network import BernoulliRBM

from ebm_ref.energies import RBM
from ebm_ref.testing import ParamMap, check_sampler, compare_energy

MAPPING = {"W": ("components_", "T"), "b_v": "intercept_visible_", "b_h": "intercept_hidden_"}


def rbm_model(V, H, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    return RBM(scale * rng.normal(size=(V, H)), rng.normal(size=V), rng.normal(size=H))


def estimator(pmap, params, rng=None):
    est = BernoulliRBM(n_components=params["b_h"].shape[0])
    for name, value in pmap.to_user(params).items():
        setattr(est, name, value)
    if rng is not None:
        est.random_state_ = rng  # _sample_hiddens / _sample_visibles only call rng.uniform(size=...)
    return est


def run_energy(transpose=True):
    """``transpose=False`` is the planted bug: ``components_`` declared in ebm_ref's (V, H) layout (square RBM)."""
    ref = rbm_model(5, 5)
    mapping = dict(MAPPING) if transpose else dict(MAPPING, W="components_")
    pmap = ParamMap(mapping, reference=ref)
    return compare_energy(ref, energy=lambda p, v: estimator(pmap, p)._free_energy(v))


def run_sampler():
    ref = rbm_model(7, 3, scale=1.5, seed=2)
    pmap = ParamMap(MAPPING, reference=ref)

    def sample(p, v, n_steps, rng):
        est = estimator(pmap, p, rng)
        for _ in range(n_steps):
            v = est.gibbs(v)
        return v

    return check_sampler(sample, ref, n_steps=5, seed=0)
