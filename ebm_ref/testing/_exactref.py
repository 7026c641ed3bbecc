r"""The exact side of :func:`check_sampler`: distributions the sampler is tested against.

Nothing here re-derives a model: a binary/spin model's distribution comes
from :func:`ebm_ref.exact.probabilities`, a continuous model's exact draws,
marginal CDFs and moments from the model's own public API (``StudentT``'s
``loc``/``scale``/``df``, ``GaussianMixture``'s ``weights``/``means``/
``log_scales``, ``GRBM.visible_mixture``). This module only turns those
into the statistics the check needs (pooled chi-square, KS, moment z-tests).
"""

from __future__ import annotations

import numpy as np
from scipy import special, stats

from .. import exact as _exact_mod
from ..energies import GRBM, GaussianMixture, StudentT

MAX_ENUM_FEATURES = 16


# ------------------------------------------------------------------ discrete
def enumerate_distribution(model):
    r"""All states of a small binary/spin model and their exact probabilities.

    Parameters
    ----------
    model : EnergyModel
        ``domain`` ``"binary"`` or ``"spin"``, at most 16 features, of a kind
        :func:`ebm_ref.exact.probabilities` enumerates.

    Returns
    -------
    states : ndarray of shape (2**d, d)
        Lexicographic order, unit 0 most significant (-1 plays 0 for spins).
    probs : ndarray of shape (2**d,)

    Raises
    ------
    ValueError
        For a continuous model, more than 16 features, or a model
        :func:`ebm_ref.exact.probabilities` refuses.

    Notes
    -----
    :math:`p(x) = e^{-E(x)} / \sum_y e^{-E(y)}`, computed by
    :func:`ebm_ref.exact.probabilities` (for latent-variable models the
    free energy, so this is the visible marginal). The kit keeps no copy of
    the enumeration: the reference it tests against is the one the rest of
    ebm_ref is tested against.
    """
    domain = getattr(model, "domain", None)
    if domain not in ("binary", "spin"):
        raise ValueError(f"`model` must have a binary or spin domain to enumerate; got domain={domain!r}.")
    d = model.n_features
    if d > MAX_ENUM_FEATURES:
        raise ValueError(
            f"`model` has {d} features; enumeration is limited to {MAX_ENUM_FEATURES} (2**{MAX_ENUM_FEATURES} states)."
        )
    return _exact_mod.probabilities(model)


def most_probable_state(states, probs):
    """The first (lowest-index) state among those tied for the largest probability.

    Ties are common (a zero-field spin model is symmetric under x -> -x) and
    the last bit of tied probabilities depends on the order of the sum that
    produced them; a relative tolerance of 1e-12 makes the fixed start of
    :func:`check_sampler` independent of that order.
    """
    top = float(np.max(probs))
    return states[int(np.flatnonzero(probs >= top * (1.0 - 1e-12))[0])]


def _state_index(x, domain):
    d = x.shape[1]
    ones = x == 1.0
    weights = 1 << np.arange(d - 1, -1, -1)
    return ones.astype(np.int64) @ weights


def _pooled_chisquare(counts, expected):
    """Pearson chi-square with every cell of expected count < 5 pooled.

    Cells are pooled from the smallest expected count upward until each
    pooled group reaches 5 (a leftover group joins the last one).
    """
    # Sort on the expected counts rounded to 12 significant digits: states
    # tied in exact arithmetic (a symmetric model) may differ in the last
    # bits depending on how the enumeration summed, and the pooling must not
    # depend on that (tied cells stay in index order, as a stable sort keeps them).
    with np.errstate(divide="ignore"):
        mag = 10.0 ** np.floor(np.log10(np.where(expected > 0, expected, 1.0)))
    order = np.argsort(np.round(expected / mag, 11) * mag, kind="stable")
    e_sorted = expected[order]
    c_sorted = counts[order]
    groups_e, groups_c = [], []
    acc_e = acc_c = 0.0
    for e, c in zip(e_sorted, c_sorted):
        if e >= 5.0 and acc_e == 0.0:
            groups_e.append(e)
            groups_c.append(c)
            continue
        acc_e += e
        acc_c += c
        if acc_e >= 5.0:
            groups_e.append(acc_e)
            groups_c.append(acc_c)
            acc_e = acc_c = 0.0
    if acc_e > 0.0:
        if groups_e:
            groups_e[-1] += acc_e
            groups_c[-1] += acc_c
        else:
            groups_e.append(acc_e)
            groups_c.append(acc_c)
    ge = np.asarray(groups_e)
    gc = np.asarray(groups_c)
    stat = float(np.sum((gc - ge) ** 2 / ge))
    return stat, len(ge) - 1



# ---------------------------------------------------------------- continuous
    stat = float(np.sum((gc - ge) ** 2 / ge))
    return stat, len(ge) - 1


# ---------------------------------------------------------------- continuous
class _Exact:
    """Exact sampler, marginal CDFs and moments of a continuous model."""

    def __init__(self, sample, cdf=None, proj_cdf=None, m1=None, m2=None, m4=None):
        self.sample = sample  # (rng, n) -> (n, d)
        self.cdf = cdf  # (k, values) -> F_k(values)
        self.proj_cdf = proj_cdf  # (u, values) -> F_u(values)
        self.m1, self.m2, self.m4 = m1, m2, m4  # per-coordinate E x, E x^2, E x^4 (None: infinite)


def _normal_mixture(weights, means, sds):
    """Mixture of diagonal normals: weights (K,), means/sds (K, d)."""
    weights = np.asarray(weights, dtype=np.float64)
    cum = np.cumsum(weights)
    cum /= cum[-1]

    def sample(rng, n):
        k = np.minimum(np.searchsorted(cum, rng.random(n), side="right"), len(weights) - 1)
        return means[k] + sds[k] * rng.standard_normal((n, means.shape[1]))

    def cdf(j, vals):
        return np.sum(weights[None, :] * special.ndtr((vals[:, None] - means[None, :, j]) / sds[None, :, j]), axis=1)

    def proj_cdf(u, vals):
        mu = means @ u
        sd = np.sqrt((sds**2) @ (u**2))
        return np.sum(weights[None, :] * special.ndtr((vals[:, None] - mu[None, :]) / sd[None, :]), axis=1)

    w = weights[:, None]
    m1 = np.sum(w * means, axis=0)
    m2 = np.sum(w * (means**2 + sds**2), axis=0)
    m4 = np.sum(w * (means**4 + 6 * means**2 * sds**2 + 3 * sds**4), axis=0)
    return _Exact(sample, cdf, proj_cdf, m1, m2, m4)




def exact_continuous(model):
    """The exact reference of a continuous model, from the model's public API.

    Raises
    ------
    ValueError
        For a model without an exact sampler (pass ``exact_sampler``).
    """
    if isinstance(model, StudentT):
        loc, scale, df = model.params["loc"], model.scale, model.df

        def sample(rng, n):
            return loc + scale * rng.standard_t(df, size=(n, loc.size))

        def cdf(j, vals):
            return stats.t.cdf((vals - loc[j]) / scale[j], df[j])

        m1 = loc if np.all(df > 1) else None
        if np.all(df > 4):
            et2 = df / (df - 2)
            et4 = 3 * df**2 / ((df - 2) * (df - 4))
            m2 = loc**2 + scale**2 * et2
            m4 = loc**4 + 6 * loc**2 * scale**2 * et2 + scale**4 * et4
        else:
            m2 = m4 = None
        return _Exact(sample, cdf, None, m1, m2, m4)
    if isinstance(model, GaussianMixture):
        return _normal_mixture(model.weights, np.asarray(model.means), np.exp(np.asarray(model.log_scales)))
    if isinstance(model, GRBM):
        if model.n_hidden > MAX_ENUM_FEATURES:
            raise ValueError(
                f"`model` GRBM has {model.n_hidden} hidden units; the exact sampler enumerates at most {MAX_ENUM_FEATURES}."
            )
        weights, means, var = model.visible_mixture()
        return _normal_mixture(weights, means, np.array(np.broadcast_to(np.sqrt(var), means.shape)))
    raise ValueError(
        f"`model` ({type(model).__name__}) has no exact sampler in check_sampler; supported continuous models are "
        "StudentT, GaussianMixture and GRBM (or pass `exact_sampler`)."
    )


def _moment_p(values, m, m_sq):
    """Two-sided z-test p-value of mean(values) = m, with Var = m_sq - m^2."""
    var = m_sq - m * m
    if not np.isfinite(var) or var <= 0:
        return None
    z = (float(np.mean(values)) - m) / np.sqrt(var / values.size)
    return float(2.0 * special.ndtr(-abs(z)))


def _continuous_pvalues(x, exact, rng, proj_u):
    n, d = x.shape
    pv = {}
    ref = None
    for j in range(d):
        if exact.cdf is not None:
            pv[f"KS x[{j}]"] = float(stats.kstest(x[:, j], lambda t, j=j: exact.cdf(j, np.asarray(t))).pvalue)
        else:
            ref = exact.sample(rng, n) if ref is None else ref
            pv[f"KS2 x[{j}]"] = float(stats.ks_2samp(x[:, j], ref[:, j]).pvalue)
    proj = x @ proj_u
    if exact.proj_cdf is not None:
        pv["KS u.x"] = float(stats.kstest(proj, lambda t: exact.proj_cdf(proj_u, np.asarray(t))).pvalue)
    else:
        ref = exact.sample(rng, n) if ref is None else ref
        pv["KS2 u.x"] = float(stats.ks_2samp(proj, ref @ proj_u).pvalue)
    if exact.m1 is not None and exact.m2 is not None:
        for j in range(d):
            p1 = _moment_p(x[:, j], exact.m1[j], exact.m2[j])
            if p1 is not None:
                pv[f"mean x[{j}]"] = p1
            if exact.m4 is not None:
                p2 = _moment_p(x[:, j] ** 2, exact.m2[j], exact.m4[j])
                if p2 is not None:
                    pv[f"mean x[{j}]^2"] = p2
    return pv
