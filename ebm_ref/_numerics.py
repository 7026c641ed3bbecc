r"""Stable elementary functions, as NumPy functions and Numba twins.

* ``softplus(a) = log(1 + e^a)`` as ``max(a, 0) + log1p(e^{-|a|})``;
* ``log_sigmoid(a) = -softplus(-a)``;
* ``sigmoid(a)`` evaluated on the branch where ``exp`` cannot overflow, and
  ``sigmoid'(a) = sigmoid(a) sigmoid(-a)`` (not ``y (1 - y)``, which loses all
  digits of a saturated unit);
* ``logsumexp`` shifted by the maximum.

All are finite and warning-free for |a| up to 1e308 (see Mächler 2012,
"Accurately computing log(1 - exp(-|a|))", for the cut-offs' reasoning).
"""

import contextlib
import math
import threading

import numpy as np
from scipy import special

from ._jit import jit, jit_inline

__all__ = [
    "softplus",
    "log_sigmoid",
    "sigmoid",
    "sigmoid_prime",
    "logsumexp",
    "nb_softplus",
    "torch_threshold",
    "nb_sigmoid",
    "nb_log_sigmoid",
    "nb_exp_nonpos",
    "nb_log_reduced",
    "nb_log1p_unit",
    "nb_log_unit",
    "nb_cos_2pi",
]


# torch's softplus rule (``torch.nn.functional.softplus``, threshold 20):
# above the threshold it returns the pre-activation itself. Off (None) except
# inside ``torch_softplus_rule``, per thread, so the checking kit can evaluate
# the library's formulas as torch does without touching other threads.
_TORCH_RULE = threading.local()


def torch_threshold():
    """The threshold of ``torch_softplus_rule`` in this thread, ``None`` when it is off."""
    return getattr(_TORCH_RULE, "threshold", None)


@contextlib.contextmanager
def torch_softplus_rule(threshold):
    """In this thread, ``softplus(a) = a``, ``sigmoid(a) = 1``, ``sigmoid'(a) = 0`` for ``a > threshold``.

    The reference formulas of every model (``softplus``, ``sigmoid``,
    ``sigmoid_prime`` here and the MLP's softplus activation with its
    derivatives, applied after its loop) then follow
    ``torch.nn.functional.softplus``, whose derivative above its threshold
    is exactly 1 and every higher one exactly 0. The samplers' Numba
    kernels are not affected. Nested uses restore the previous threshold.
    """
    old = torch_threshold()
    _TORCH_RULE.threshold = float(threshold)
    try:
        yield
    finally:
        _TORCH_RULE.threshold = old


def torch_rule(a, out, above):
    """``out`` with ``above`` where ``a`` exceeds the torch threshold (``out`` unchanged when the rule is off)."""
    t = torch_threshold()
    if t is None:
        return out
    return np.where(np.asarray(a) > t, above, out)


def softplus(a):
    """``log(1 + exp(a))``, stable for any real ``a``: ``max(a, 0) + log1p(exp(-|a|))``.

    The same branch as ``np.logaddexp(0, a)`` takes, written with NumPy's
    vectorised ufuncs, in place (measured 1.35 against 8.45 ms on 1000 x 500
    values; they agree to 9e-16). NaN stays NaN, ``+inf`` gives ``+inf`` and
    ``-inf`` gives 0, without warnings.
    """
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 0:
        return torch_rule(a, np.maximum(a, 0.0) + np.log1p(np.exp(-np.abs(a))), a)
    t = np.abs(a)
    np.negative(t, out=t)
    np.exp(t, out=t)
    np.log1p(t, out=t)
    t += np.maximum(a, 0.0)
    return torch_rule(a, t, a)


def log_sigmoid(a):
    """``log sigmoid(a) = -softplus(-a)``."""
    return -np.logaddexp(0.0, -np.asarray(a, dtype=np.float64))


def sigmoid(a):
    """Logistic function, exact 0/1 only where the true value rounds there."""
    return torch_rule(a, special.expit(a), 1.0)


def sigmoid_prime(a):
    """``sigmoid(a) * sigmoid(-a)``: keeps relative precision when saturated."""
    a = np.asarray(a, dtype=np.float64)
    return torch_rule(a, special.expit(a) * special.expit(-a), 0.0)


def logsumexp(a, axis=None, b=None, return_sign=False):
    """Thin wrapper of :func:`scipy.special.logsumexp` (max-shifted)."""
    return special.logsumexp(a, axis=axis, b=b, return_sign=return_sign)


@jit
def nb_softplus(a):
    """Scalar softplus for Numba kernels (no overflow, full precision)."""
    if a > 0.0:
        return a + math.log1p(math.exp(-a))
    return math.log1p(math.exp(a))


@jit
def nb_sigmoid(a):
    """Scalar logistic function for Numba kernels."""
    if a >= 0.0:
        return 1.0 / (1.0 + math.exp(-a))
    e = math.exp(a)
    return e / (1.0 + e)


@jit
def nb_log_sigmoid(a):
    """Scalar ``log sigmoid(a)`` for Numba kernels."""
    return -nb_softplus(-a)


# exp on (-inf, 0] without a libm call, so that LLVM can vectorise the loops
# that use it: x = n ln2 + r with |r| <= ln2/2, e^r by its degree-13 Taylor
# polynomial (truncation error r^14/14! < 5e-18, below half an ulp), and 2^n
# built from its exponent bits. 2^(n+54) is always a normal number; the final
# product with 2^-54 rounds once into the subnormal range when e^x is there.
# ``n`` stays a double (``np.floor``, not ``math.floor``, which returns an int)
# and reaches the exponent bits through the bit pattern of ``2^52 + n + 1077``:
# a double <-> int64 conversion has no AVX2 vector instruction (AVX-512DQ has
# one), so with it every vectorised loop calling this function went scalar for
# four lanes at a time on AVX2 CPUs (measured on an AMD EPYC with Numba capped
# at Haswell: 3.65 -> 2.36 ns per exp; 1.25 -> 1.15 with AVX-512; same bits).
# The polynomial is evaluated in Estrin's form, not by Horner's rule: the
# vectorised loops were bound by Horner's chain of 13 dependent multiply-adds
# (1.09 -> 0.91 ns per exp natively, 1.90 -> 1.46 at Haswell; the MLP
# kernel's softplus with its derivative, which also uses nb_log_reduced's
# Estrin form, 3.52 -> 2.71 and 6.44 -> 4.90 ns per unit). Adding the 1 last,
# to r + r^2 Q(r), keeps the error at most 0.99 ulp (1.12 with Horner's
# rule; 4.3M arguments against long-double exp).
_LOG2E = 1.4426950408889634
_LN2_HI = 0.693147180369123816490  # ln 2 split so that n * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_EXP_FLOOR = -745.0  # e^x rounds to 0 (or the least subnormal) below this
_TWO_M54 = 2.0 ** -54
_INT_MAGIC = np.int64(0x4330000000000000)  # the bits of 2^52
_TWO_52 = 2.0**52


@jit_inline
def nb_exp_nonpos(x):
    r""":math:`e^x` for :math:`x \le 0`, within about one ulp."""
    return _exp_parts(x)[2]


@jit_inline
def nb_exp_one_minus(x):
    r"""``(e^x, 1 - e^x)`` for :math:`x \le 0`, each within a few ulp.

    ``e^x`` is :func:`nb_exp_nonpos`'s (same bits). ``1 - e^x`` is ``-(r +
    r^2 Q(r))`` where ``x = r`` (``|x| <= ln2/2``: no cancellation, where
    ``1 - e^x`` from the rounded ``e^x`` would lose ``-log2 |x|`` bits),
    else ``1 - e^x`` (then ``e^x < 0.71``: at most ~3.5 ulp).
    """
    n, pm1, e = _exp_parts(x)
    return e, (-pm1 if n == 0.0 else 1.0 - e)


@jit_inline
def _exp_parts(x):
    """``(n, e^r - 1, e^x)`` with ``n`` and ``r = x - n ln2`` as below and
    ``e^r - 1`` by the polynomial (callers drop what they do not use)."""
    x = max(x, _EXP_FLOOR)
    n = np.floor(x * _LOG2E + 0.5)  # an integer in [-1075, 0], as a double
    r = (x - n * _LN2_HI) - n * _LN2_LO
    # e^r = 1 + (r + r^2 Q(r)), Q(r) = sum_{k=0}^{11} r^k / (k+2)!, with Q in
    # Estrin's form (pairs, then pairs of pairs in r^2, r^4): the same
    # terms as Horner's rule with a third of its dependent chain
    r2 = r * r
    r4 = r2 * r2
    q01 = (1.0 / 2.0 + r * (1.0 / 6.0)) + r2 * (1.0 / 24.0 + r * (1.0 / 120.0))
    q23 = (1.0 / 720.0 + r * (1.0 / 5040.0)) + r2 * (1.0 / 40320.0 + r * (1.0 / 362880.0))
    q45 = (1.0 / 3628800.0 + r * (1.0 / 39916800.0)) + r2 * (1.0 / 479001600.0 + r * (1.0 / 6227020800.0))
    q = q01 + r4 * (q23 + r4 * q45)
    pm1 = r + r2 * q
    # the low bits of 2^52 + (n + 1077) hold n + 1077 in [2, 1077] exactly: the
    # biased exponent of 2^(n + 54)
    biased = np.float64(n + (1077.0 + _TWO_52)).view(np.int64) - _INT_MAGIC
    scale = np.int64(biased << 52).view(np.float64)
    return n, pm1, ((1.0 + pm1) * scale) * _TWO_M54


# log on (0, 1], log1p on [0, 1] and cos(2 pi u) without libm calls, for the
# Box-Muller normals (``_rng.nb_normal``) and the MLP kernel: branch-free so that the lock-step lane generators
# vectorise them, and the scalar and vector evaluations give the same bits.
_SQRT2 = 1.4142135623730951
_LN2 = 0.6931471805599453
_MANT = np.int64(0x000FFFFFFFFFFFFF)
_ONE_EXP = np.int64(0x3FF0000000000000)
_TWO_PI = 6.283185307179586


@jit_inline
def nb_log_reduced(f):
    r""":math:`\log(1 + f)` for :math:`1 + f` in :math:`[1/\sqrt 2, \sqrt 2]`, ``f`` exact, within about one ulp.

    ``log(1 + f) = 2 atanh(s)``, ``s = f / (2 + f)``, written as
    ``f - s (f - s^2 P(s^2))`` with ``P(z) = sum_{j=1}^{10} 2 z^{j-1} / (2j + 1)``
    (the atanh series; ``|s| <= 0.172``, so the first omitted term is below
    ``1e-18`` relative). ``np.divide``: ``/`` carries a zero-divisor check
    that stops vectorisation (here ``2 + f >= 1.7``).
    """
    s = np.divide(f, 2.0 + f)
    z = s * s
    # P in Estrin's form (see nb_exp_nonpos)
    z2 = z * z
    z4 = z2 * z2
    p03 = (2.0 / 3.0 + z * (2.0 / 5.0)) + z2 * (2.0 / 7.0 + z * (2.0 / 9.0))
    p47 = (2.0 / 11.0 + z * (2.0 / 13.0)) + z2 * (2.0 / 15.0 + z * (2.0 / 17.0))
    p89 = 2.0 / 19.0 + z * (2.0 / 21.0)
    p = p03 + z4 * (p47 + z4 * p89)
    return f - s * (f - z * p)


@jit_inline
def nb_log1p_unit(e):
    r""":math:`\log(1 + e)` for :math:`0 \le e \le 1`, within about two ulp, without a libm call.

    ``u = 1 + e`` rounded, ``c = (e - (u - 1)) / u`` its rounding error to
    first order; ``u = 2^k m`` with ``k`` in {0, 1} and ``m`` in
    ``[1/sqrt 2, sqrt 2]``; ``log m = nb_log_reduced(m - 1)`` (``m - 1``
    exact). Branch-free (selects only) so that loops calling it vectorise
    (the MLP kernel's softplus).
    """
    u = 1.0 + e
    c = np.divide(e - (u - 1.0), u)
    # selects, not ``k = 1.0 * (u > sqrt 2)`` and products with it: the
    # same values, but the mask-to-double conversion cost 10% of a vectorised
    # softplus with AVX-512 and 15% with AVX2 (measured, AMD EPYC)
    big = u > _SQRT2
    m = 0.5 * u if big else u  # exact
    k_ln2 = _LN2 if big else 0.0
    return k_ln2 + (nb_log_reduced(m - 1.0) + c)


@jit_inline
def nb_log_unit(x):
    r""":math:`\log x` for a normal double :math:`0 < x \le 1`, within about one ulp; branch-free.

    ``x = 2^k m`` from the bits (``m`` in [1, 2), then halved and ``k``
    raised by one when ``m > sqrt 2``, exactly), ``log x = k ln 2 +
    nb_log_reduced(m - 1)`` with ``ln 2`` split so that ``k ln2_hi`` is
    exact. The exponent becomes a double through the bit pattern of
    ``2^52 + e`` (no integer-to-float conversion, which AVX2 lacks).
    """
    bits = np.float64(x).view(np.int64)
    e = np.int64((bits >> 52) | _INT_MAGIC).view(np.float64) - _TWO_52  # biased exponent
    m = np.int64((bits & _MANT) | _ONE_EXP).view(np.float64)
    big = m > _SQRT2  # selects, as in nb_log1p_unit
    m = 0.5 * m if big else m
    k = (e - 1023.0) + (1.0 if big else 0.0)
    return k * _LN2_HI + (nb_log_reduced(m - 1.0) + k * _LN2_LO)


@jit_inline
def nb_cos_2pi(u):
    r""":math:`\cos(2 \pi u)` for :math:`0 \le u \le 1`, within about one ulp of the exact value; branch-free.

    The argument is reduced exactly before it is multiplied by ``2 pi``
    (Sterbenz: each subtraction below is exact): ``v = u`` or ``u - 1`` in
    [-1/2, 1/2], ``w = |v|``, ``w' = 1/2 - w`` with a sign flip when ``w >
    1/4``, then ``x = 2 pi w''`` with ``w'' = w'`` (cosine) or ``1/4 - w'``
    (sine) so that ``|x| <= pi/4``, where the Taylor series of cos to
    ``x^16`` and of sin to ``x^17`` are below ``1e-17`` from the truth.
    (libm's ``cos(2 pi u)`` rounds ``2 pi u`` first, up to ~9e-16 off.)
    """
    v = u - 1.0 if u > 0.5 else u
    w = abs(v)
    flip = w > 0.25
    w = 0.5 - w if flip else w
    use_sin = w > 0.125
    w = 0.25 - w if use_sin else w
    x = w * _TWO_PI
    z = x * x
    c = 1.0 / 20922789888000.0
    c = c * z - 1.0 / 87178291200.0
    c = c * z + 1.0 / 479001600.0
    c = c * z - 1.0 / 3628800.0
    c = c * z + 1.0 / 40320.0
    c = c * z - 1.0 / 720.0
    c = c * z + 1.0 / 24.0
    c = c * z - 0.5
    c = c * z + 1.0
    t = 1.0 / 355687428096000.0
    t = t * z - 1.0 / 1307674368000.0
    t = t * z + 1.0 / 6227020800.0
    t = t * z - 1.0 / 39916800.0
    t = t * z + 1.0 / 362880.0
    t = t * z - 1.0 / 5040.0
    t = t * z + 1.0 / 120.0
    t = t * z - 1.0 / 6.0
    t = x + x * (z * t)
    r = t if use_sin else c
    return -r if flip else r


@jit
def nb_bernoulli_logit(u, a):
    r"""``u < sigmoid(a)`` without a branch or a division: ``u e^{-a} < 1 - u``.

    Equivalent for every real ``a``: ``e^{-a} = inf`` (a < -709) gives
    False (sigmoid rounds to 0), ``e^{-a} = 0`` gives True (sigmoid rounds
    to 1). A data-dependent branch on the sign of ``a``, as in a stable
    sigmoid, is mispredicted half the time on random pre-activations
    (measured 2.5x slower per unit). (The block Gibbs kernels use the
    vectorisable variant ``u (1 + e^{-|a|}) < top`` instead: a different
    rounding, so the two are kept apart to keep every stream's bits.)
    """
    return u * math.exp(-a) < 1.0 - u


@jit
def nb_flip_value(xi, spin):
    """The other state of a binary unit: ``-x`` for spins, ``1 - x`` for 0/1."""
    if spin:
        return -xi
    return 1.0 - xi

