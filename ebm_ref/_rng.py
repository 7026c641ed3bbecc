r"""The seeding convention of docs/conventions.md: one reproducible stream per chain.

Construction
------------
1. ``as_seed_sequence(seed)`` turns the user's ``seed`` into a
   :class:`numpy.random.SeedSequence`:

   * ``int`` -> ``SeedSequence(seed)``;
   * ``SeedSequence`` -> used as given (never ``spawn``-ed: that is stateful);
   * ``Generator`` -> ``SeedSequence(gen.integers(2**63, size=4))``, which
     *advances* the generator, so two calls with the same Generator object
     give different streams (as NumPy's own functions do);
   * anything else -> ``TypeError``. ``None`` is refused: a reference
     implementation is always seeded explicitly.

2. ``chain_states(ss, n_chains, stream)`` gives row ``i`` the 256-bit state
   ``SeedSequence(ss.entropy, spawn_key=ss.spawn_key + (stream, i))
   .generate_state(4, uint64)``. Row ``i`` depends only on ``(seed, stream,
   i)``: not on ``n_chains`` and not on the thread that runs the chain, so a
   kernel that lets chain ``i`` touch only row ``i`` is bit-identical with 1
   or 2 Numba threads, and chain ``i`` of a 100-chain run equals chain ``i``
   of a 10-chain run. ``stream`` separates purposes (sampling, initial
   states, objective noise, ...) drawn from one user seed.

3. Inside kernels each row drives xoshiro256** (Blackman & Vigna 2018,
   "Scrambled linear pseudorandom number generators"), a 64-bit generator
   with period 2^256 - 1 whose state is exactly that row. Numba's built-in
   ``np.random`` is never used: its state is per thread (docs/threads.md).

Derived variates
----------------
* ``nb_uniform(s)``: ``((u >> 12) + 0.5) 2^-52``, the midpoints of 2^52
  equal cells of [0, 1]. Every value ``(2k + 1) 2^-53`` is exactly
  representable, so the result lies in the *open* interval (0, 1): ``log(u)``
  is always finite and ``u < p`` is never true for ``p = 0`` nor false for
  ``p = 1``. (With 53 bits, ``m + 0.5`` rounds to even for ``m >= 2^52``
  and the top value would round up to exactly 1.0.)
* ``nb_normal(s)``: Box-Muller, ``sqrt(-2 log u1) cos(2 pi u2)`` (one output
  per two uniforms; the second is discarded so that no hidden state sits
  outside the row), with ``log`` and ``cos`` the branch-free polynomials of
  ``_numerics`` (within about one ulp; libm's calls would not vectorise).
  ``draw_normals`` gives the same bits for many chains at once.

``np_next_u64`` / ``np_uniforms`` reproduce the kernels' draws in plain NumPy
bit for bit; ``np_normals`` agrees with ``nb_normal`` to a few ULP (NumPy's
``log``/``cos`` are not the kernels' polynomials), so reference samplers in the tests
that need exact agreement draw uniforms and transform them the same way.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ._jit import jit, jit_inline
from ._numerics import nb_cos_2pi, nb_log_unit

__all__ = [
    "as_seed_sequence",
    "chain_states",
    "STREAM_SAMPLE",
    "STREAM_INIT",
    "STREAM_OBJECTIVE",
    "STREAM_AIS",
    "nb_next_u64",
    "nb_uniform",
    "nb_normal",
    "nb_randint",
    "np_next_u64",
    "np_uniforms",
    "np_normals",
]

# Purposes (the ``stream`` argument). Fixed numbers: changing one changes
# every seeded result of the package.
STREAM_SAMPLE = 0
STREAM_INIT = 1
STREAM_OBJECTIVE = 2
STREAM_AIS = 3


def as_seed_sequence(seed, name="seed"):
    """Normalise ``seed`` (int, SeedSequence or Generator) to a SeedSequence.

    Parameters
    ----------
    seed : int, numpy.random.SeedSequence or numpy.random.Generator
        A Generator is consumed: four 63-bit integers are drawn from it.
    name : str
        Argument name used in error messages.

    Returns
    -------
    numpy.random.SeedSequence

    Raises
    ------
    TypeError
        For any other type, ``None`` and ``bool`` included.
    ValueError
        For a negative integer.
    """
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, np.random.Generator):
        return np.random.SeedSequence(seed.integers(2**63, size=4))
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(
            f"`{name}` must be an int, a numpy.random.SeedSequence or a numpy.random.Generator; "
            f"got {type(seed).__name__}."
        )
    if int(seed) < 0:
        raise ValueError(f"`{name}` must be a non-negative int; got {int(seed)}.")
    return np.random.SeedSequence(int(seed))


def chain_states(ss, n_chains, stream=STREAM_SAMPLE):
    """Per-chain xoshiro256** states, shape ``(n_chains, 4)`` uint64.

    Row ``i`` is ``SeedSequence(ss.entropy, spawn_key=ss.spawn_key +
    (stream, i)).generate_state(4, np.uint64)``. Building one SeedSequence
    per chain costs ~15 us in Python, which dominated short sampler calls
    (CD/PCD steps), so the rows are computed by ``_seedseq_rows``: NumPy's
    SeedSequence algorithm with the shared prefix of the entropy mixed once
    and the last word (the chain index) mixed for all chains at once,
    bit-identical to the definition (tested against it) and ~60x faster.
    SeedSequence never returns the all-zero state in practice (probability
    2^-256), which xoshiro forbids; we check it anyway.
    """
    if not isinstance(ss, np.random.SeedSequence):
        ss = as_seed_sequence(ss)
    n_chains = int(n_chains)
    if ss.pool_size == 4 and n_chains <= 2**32:
        out = _seedseq_rows(ss, n_chains, int(stream))
    else:  # pragma: no cover - custom pool sizes / more than 2^32 chains
        out = _seedseq_rows_reference(ss, n_chains, int(stream))
    zero = ~out.any(axis=1)
    if zero.any():  # pragma: no cover - probability 2^-256 per row
        out[zero, 0] = np.uint64(1)
    return out


def _seedseq_rows_reference(ss, n_chains, stream):
    """The definition of ``chain_states``: one SeedSequence per chain."""
    out = np.empty((n_chains, 4), dtype=np.uint64)
    base = tuple(ss.spawn_key) + (stream,)
    for i in range(n_chains):
        child = np.random.SeedSequence(ss.entropy, spawn_key=base + (i,))
        out[i] = child.generate_state(4, np.uint64)
    return out


# NumPy's SeedSequence constants (O'Neill's seed_seq_fe hash, 32-bit words).
_M32 = 0xFFFFFFFF
_INIT_A, _MULT_A = 0x43B0D7E5, 0x931E8875
_INIT_B, _MULT_B = 0x8B51F9DD, 0x58F38DED
_MIX_L, _MIX_R = 0xCA01F9DD, 0x4973F715


def _uint32_words(value):
    """Little-endian 32-bit words of a non-negative int (0 -> [0]) or a sequence of them."""
    if isinstance(value, (int, np.integer)):
        v = int(value)
        if v == 0:
            return [0]
        words = []
        while v:
            words.append(v & _M32)
            v >>= 32
        return words
    words = []
    for item in np.asarray(value).ravel().tolist():
        words += _uint32_words(item)
    return words


class _HashConst:
    """The running multiplier of the entropy hash (advanced on every use)."""

    def __init__(self, value):
        self.value = value

    def next_mult(self):
        self.value = (self.value * _MULT_A) & _M32
        return self.value


def _hashmix(v, hc, vec=False):
    c0 = hc.value
    c1 = hc.next_mult()
    if vec:
        v = (v ^ np.uint32(c0)) * np.uint32(c1)
        return v ^ (v >> np.uint32(16))
    v = ((v ^ c0) * c1) & _M32
    return v ^ (v >> 16)


def _mix(x, y, vec=False):
    if vec:
        r = np.uint32(_MIX_L) * x - np.uint32(_MIX_R) * y
        return r ^ (r >> np.uint32(16))
    r = (_MIX_L * x - _MIX_R * y) & _M32
    return r ^ (r >> 16)


def _seedseq_rows(ss, n_chains, stream):
    """``chain_states`` rows, vectorised over the chain index (pool size 4)."""
    run = _uint32_words(ss.entropy)
    run += [0] * max(0, 4 - len(run))  # NumPy pads when a spawn key follows
    entropy = run + _uint32_words(list(ss.spawn_key)) + _uint32_words(stream)
    hc = _HashConst(_INIT_A)
    mixer = [_hashmix(entropy[i], hc) for i in range(4)]
    for src in range(4):
        for dst in range(4):
            if src != dst:
                mixer[dst] = _mix(mixer[dst], _hashmix(mixer[src], hc))
    for src in range(4, len(entropy)):
        for dst in range(4):
            mixer[dst] = _mix(mixer[dst], _hashmix(entropy[src], hc))
    # the chain index is the last entropy word (one word: n_chains <= 2^32)
    with np.errstate(over="ignore"):
        index = np.arange(n_chains, dtype=np.uint64).astype(np.uint32)
        pool = [np.full(n_chains, m, dtype=np.uint32) for m in mixer]
        for dst in range(4):
            pool[dst] = _mix(pool[dst], _hashmix(index, hc, vec=True), vec=True)
        words = np.empty((n_chains, 8), dtype=np.uint32)
        c = _INIT_B
        for k in range(8):
            v = pool[k % 4] ^ np.uint32(c)
            c = (c * _MULT_B) & _M32
            v = v * np.uint32(c)
            words[:, k] = v ^ (v >> np.uint32(16))
    return words.view("<u8").astype(np.uint64).reshape(n_chains, 4)


# --------------------------------------------------------------------------
# Numba kernels. Constants are np.uint64 so that Numba never promotes the
# arithmetic to float64 (uint64 op int64 -> float64 in Numba's typing).
_U5 = np.uint64(5)
_U9 = np.uint64(9)
_S7 = np.uint64(7)
_S57 = np.uint64(57)
_S17 = np.uint64(17)
_S45 = np.uint64(45)
_S19 = np.uint64(19)
_S12 = np.uint64(12)
_TWO_M52 = 2.0**-52


@jit
def nb_next_u64(s):
    """Advance row ``s`` (uint64[4]) by one xoshiro256** step; return the output."""
    s1 = s[1]
    x = s1 * _U5
    result = ((x << _S7) | (x >> _S57)) * _U9
    t = s1 << _S17
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s3 = s[3]
    s[3] = (s3 << _S45) | (s3 >> _S19)
    return result


@jit
def nb_uniform(s):
    """Uniform double in the open interval (0, 1) from row ``s``."""
    return (float(nb_next_u64(s) >> _S12) + 0.5) * _TWO_M52


@jit_inline
def box_muller(u1, u2):
    """``sqrt(-2 log u1) cos(2 pi u2)`` with the library's branch-free ``log`` and ``cos`` (same bits scalar or vectorised)."""
    return math.sqrt(-2.0 * nb_log_unit(u1)) * nb_cos_2pi(u2)


@jit
def nb_normal(s):
    """Standard normal from row ``s`` (Box-Muller, cosine branch)."""
    u1 = nb_uniform(s)
    u2 = nb_uniform(s)
    return box_muller(u1, u2)


@jit
def nb_randint(s, n):
    """Uniform integer in ``[0, n)`` (``n >= 1``), by ``floor(n u)``.

    The bias of ``floor(n u)`` with a 52-bit ``u`` is below ``n 2^-52``,
    negligible for the unit counts used here (< 2^20).
    """
    k = int(nb_uniform(s) * n)
    if k >= n:  # pragma: no cover - cannot happen since u < 1
        k = n - 1
    return k


# --------------------------------------------------------------------------
# xoshiro256** on lanes: several chains' states held in separate words
# ``S0[g] .. S3[g]`` so that one loop over the lanes advances them all and
# vectorises (the lock-step kernels of the lattice and block Gibbs samplers).
# Lane ``g`` produces exactly the outputs ``nb_next_u64`` gives its chain.

# Chains advanced together by one kernel iteration (one prange item). The
# xoshiro step vectorises across 16 uint64 lanes; with 8 the same loop stays
# scalar (measured ~3x slower per update).
LANES = 16

_ZERO = np.uint64(0)


@jit_inline
def lane_words():
    """``S0 .. S3``: the four state words of ``LANES`` lanes (zeroed; fill them with :func:`load_lanes`)."""
    return (np.zeros(LANES, dtype=np.uint64), np.zeros(LANES, dtype=np.uint64),
            np.zeros(LANES, dtype=np.uint64), np.zeros(LANES, dtype=np.uint64))


@jit_inline
def load_lanes(rng, c0, used, S0, S1, S2, S3):
    """Lane ``g < used`` takes chain ``c0 + g``'s xoshiro256** state; the other lanes an all-zero one."""
    for g in range(S0.shape[0]):
        live = g < used
        S0[g] = rng[c0 + g, 0] if live else _ZERO
        S1[g] = rng[c0 + g, 1] if live else _ZERO
        S2[g] = rng[c0 + g, 2] if live else _ZERO
        S3[g] = rng[c0 + g, 3] if live else _ZERO


@jit_inline
def store_lanes(rng, c0, used, S0, S1, S2, S3):
    """Write lanes ``g < used`` back to chain ``c0 + g``'s state."""
    for g in range(used):
        rng[c0 + g, 0] = S0[g]
        rng[c0 + g, 1] = S1[g]
        rng[c0 + g, 2] = S2[g]
        rng[c0 + g, 3] = S3[g]


@jit_inline
def lane_bits(S0, S1, S2, S3, g):
    """One xoshiro256** step of lane ``g``: the 52 high bits of its output (``nb_uniform``'s integer)."""
    s0 = S0[g]
    s1 = S1[g]
    s2 = S2[g] ^ s0
    s3 = S3[g] ^ s1
    m = s1 * _U5
    S1[g] = s1 ^ s2
    S0[g] = s0 ^ s3
    S2[g] = s2 ^ (s1 << _S17)
    S3[g] = (s3 << _S45) | (s3 >> _S19)
    return (((m << _S7) | (m >> _S57)) * _U9) >> _S12


_ONE_BITS = np.uint64(0x3FF0000000000000)
_TWO_M53 = 2.0**-53


@jit_inline
def lane_uniform(S0, S1, S2, S3, g):
    """One xoshiro256** step of lane ``g`` as a uniform double: bit for bit ``nb_uniform`` of its chain.

    With ``k`` the 52-bit integer of :func:`lane_bits`, ``k | 0x3FF0...``
    is the bit pattern of ``1 + k 2^-52``; subtracting 1 is exact and
    adding ``2^-53`` gives ``(2k + 1) 2^-53 = (k + 0.5) 2^-52`` exactly (53
    significant bits), ``nb_uniform``'s value. No integer-to-float
    conversion: AVX2 has no vector uint64-to-double instruction, an OR and
    two additions vectorise on any x86-64.
    """
    k = lane_bits(S0, S1, S2, S3, g)
    return (np.uint64(k | _ONE_BITS).view(np.float64) - 1.0) + _TWO_M53


@jit
def draw_normals(rng, c0, Z, U):
    """``Z[b, j]``: the next ``Z.shape[1]`` normals of chain ``c0 + b``, in ``j`` order; bit for bit ``nb_normal``.

    ``U``: scratch of at least ``2 * Z.shape[1] * LANES`` doubles (the
    caller's, allocated once outside its step loop).

    Chains go in lock-step groups of ``LANES``: their uniform pairs are
    drawn lane by lane (each lane's ``u1, u2, u1, u2, ...`` in its own
    order), then one vectorised Box-Muller loop over the whole group, then
    a transpose into ``Z``. Measured at d = 100 and 1024 chains in 32-chain
    tiles: 4.5 ns per normal, against 25 ns for ``nb_normal`` one chain at
    a time.
    """
    T, d = Z.shape
    L = LANES
    S0, S1, S2, S3 = lane_words()
    U1 = U[: d * L]
    U2 = U[d * L : 2 * d * L]
    for g0 in range(0, T, L):
        used = min(L, T - g0)
        load_lanes(rng, c0 + g0, used, S0, S1, S2, S3)
        for j in range(d):
            for g in range(L):
                U1[j * L + g] = lane_uniform(S0, S1, S2, S3, g)
                U2[j * L + g] = lane_uniform(S0, S1, S2, S3, g)
        store_lanes(rng, c0 + g0, used, S0, S1, S2, S3)
        for i in range(d * L):
            U1[i] = box_muller(U1[i], U2[i])
        for g in range(used):
            for j in range(d):
                Z[g0 + g, j] = U1[j * L + g]


@jit
def draw_bits(S0, S1, S2, S3, U, n_sites, lanes):
    """``U[j * lanes + g]``: the 52 high bits of lane ``g``'s next ``n_sites`` xoshiro256** outputs.

    Site by site, all lanes at once: the inner loop over lanes has no
    dependency between lanes, so it vectorises; each lane still produces
    the same outputs, in the same order, as ``nb_uniform``.
    """
    for j in range(n_sites):
        base = j * lanes
        for g in range(lanes):
            U[base + g] = lane_bits(S0, S1, S2, S3, g)


# --------------------------------------------------------------------------
# Plain-NumPy twins (for reference implementations in tests): same states,
# same outputs bit for bit. They advance ``states`` in place, all rows at once.
_M64 = (1 << 64) - 1


def np_next_u64(states):
    """One xoshiro256** step of every row of ``states`` (n, 4) uint64, in place."""
    with np.errstate(over="ignore"):
        s0, s1, s2, s3 = (states[:, k].copy() for k in range(4))
        x = s1 * _U5
        result = ((x << _S7) | (x >> _S57)) * _U9
        t = s1 << _S17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = (s3 << _S45) | (s3 >> _S19)
        states[:, 0], states[:, 1], states[:, 2], states[:, 3] = s0, s1, s2, s3
    return result


def np_uniforms(states):
    """One open-interval uniform per row, as ``nb_uniform`` draws it."""
    return ((np_next_u64(states) >> _S12).astype(np.float64) + 0.5) * _TWO_M52


def np_normals(states):
    """One standard normal per row, as ``nb_normal`` draws it (to a few ULP)."""
    u1 = np_uniforms(states)
    u2 = np_uniforms(states)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
