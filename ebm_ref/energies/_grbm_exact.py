r"""Exact quantities of :class:`~ebm_ref.energies.grbm.GRBM` by enumerating
its ``2^H`` hidden states in chunks (the Gaussian integral over ``v`` is
closed-form for each ``h``; see the class Notes).
"""

from __future__ import annotations

import math

import numpy as np

from .._numerics import logsumexp

_CHUNK_BITS = 14


def hidden_block(H, start, stop):
    """Hidden states ``start..stop-1`` in lexicographic order, unit 0 most significant."""
    idx = np.arange(start, stop, dtype=np.int64)
    shifts = np.arange(H - 1, -1, -1, dtype=np.int64)
    return ((idx[:, None] >> shifts[None, :]) & 1).astype(np.float64)


def hidden_scores(p, h, s):
    """Log marginal weight of each hidden state (the bracket of log Z) and its magnitude."""
    m = h @ p["W"].T
    score = h @ p["b_h"] + m @ (s * p["mu"]) + 0.5 * (m * m) @ s
    # the same sums over absolute values bound the rounding of ``score``
    mabs = h @ np.abs(p["W"]).T
    size = h @ np.abs(p["b_h"]) + mabs @ (s * np.abs(p["mu"])) + 0.5 * (mabs * mabs) @ s
    return m, score, size


def log_partition(p):
    """``(log Z, rounding bound)`` of a GRBM with parameters ``p`` (``GRBM._exact_log_partition``)."""
    V, H = p["W"].shape
    lv = p["log_var"]
    s = np.exp(-lv)
    n_states = 1 << H
    chunk = 1 << min(H, _CHUNK_BITS)
    parts = []
    max_size = 0.0
    for start in range(0, n_states, chunk):
        h = hidden_block(H, start, min(start + chunk, n_states))
        _, score, size = hidden_scores(p, h, s)
        parts.append(float(logsumexp(score)))
        max_size = max(max_size, float(size.max()))
    lse = float(logsumexp(np.array(parts)))
    const = 0.5 * V * math.log(2.0 * math.pi) + 0.5 * float(lv.sum())
    value = const + lse
    eps = np.finfo(np.float64).eps
    bound = eps * ((H + 2 * V + 4) * max_size + (H + 4) * abs(lse) + (V + 4) * (abs(const) + float(np.abs(lv).sum())))
    return value, float(bound)


def mean_grad_params(p):
    """``E_p[dF/dtheta]`` of a GRBM with parameters ``p`` (``GRBM._exact_mean_grad_params``)."""
    V, H = p["W"].shape
    s = np.exp(-p["log_var"])
    mu = p["mu"]
    n_states = 1 << H
    chunk = 1 << min(H, _CHUNK_BITS)
    # running sums of weight * statistic, rescaled to the running max score
    ref = -np.inf
    tot = 0.0
    acc_w = np.zeros((V, H))
    acc_m = np.zeros(V)
    acc_h = np.zeros(H)
    acc_l = np.zeros(V)
    for start in range(0, n_states, chunk):
        h = hidden_block(H, start, min(start + chunk, n_states))
        m, score, _ = hidden_scores(p, h, s)
        new_ref = max(ref, float(score.max()))
        scale = math.exp(ref - new_ref) if np.isfinite(ref) else 0.0
        ref = new_ref
        wgt = np.exp(score - ref)
        tot = tot * scale + float(wgt.sum())
        acc_w = acc_w * scale + ((mu + m) * wgt[:, None]).T @ h
        acc_m = acc_m * scale + wgt @ m
        acc_h = acc_h * scale + wgt @ h
        acc_l = acc_l * scale + wgt @ (mu * m + 0.5 * m * m)
    return {
        "W": -(s[:, None] * acc_w) / tot,
        "mu": -s * acc_m / tot,
        "b_h": -acc_h / tot,
        "log_var": -0.5 + s * acc_l / tot,
    }
