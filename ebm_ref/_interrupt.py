r"""Run a long kernel in chunks, so that Ctrl-C is seen within a fraction of a second.

A Numba kernel, a BLAS call or a pool of worker threads does not look at
Python's signal flag until it returns: a 10^6-step sampler called in one
piece answers Ctrl-C only at the end, and a ``KeyboardInterrupt`` raised in
the calling thread while worker threads still run leaves them running on
arrays nobody will read (docs/processes.md). :func:`run_chunked` calls the
kernel on slices of the work sized to last about ``target_seconds`` each
and handles Ctrl-C *between* slices.

Ctrl-C while a chunk runs is deferred: the chunk finishes, then
:class:`ChunkInterrupted` (a ``KeyboardInterrupt``) is raised with the
number of items completed. Every completed chunk's results are in place;
nothing is half-written. A second Ctrl-C before the chunk ends raises
``KeyboardInterrupt`` at once, as Python's default handler would (the
escape hatch for a chunk that never ends; that chunk's outputs are then
undefined). The deferral is installed only in the main thread and only
while Python's default handler is in place: a handler of the user's own
is left alone, and in other threads the signal never arrives anyway.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

from ._progress import ProgressLine
from ._validation import check_nonneg_int, check_positive

__all__ = ["run_chunked", "ChunkInterrupted", "PROGRESS_DELAY"]

#: Seconds of work before the progress line of a library call (sampler, AIS,
#: enumeration) appears on a terminal: short calls print nothing.
PROGRESS_DELAY = 2.0


class ChunkInterrupted(KeyboardInterrupt):
    """Ctrl-C seen between two chunks of :func:`run_chunked`.

    A ``KeyboardInterrupt``, so ``except KeyboardInterrupt`` catches it.

    Attributes
    ----------
    completed : int
        Items ``0 .. completed - 1`` were processed by completed calls of
        ``step``; nothing beyond them was started.
    total : int
        The ``n_total`` of the interrupted call.
    """

    def __init__(self, completed, total):
        super().__init__(f"interrupted after {completed} of {total} items")
        self.completed = completed
        self.total = total


# A chunk may grow by at most this factor over the previous one: the first
# chunk's rate is the least reliable (it may include compilation, or be too
# short for the clock), and a wrong guess then costs at most a few chunks.
_MAX_GROWTH = 8


class _DeferSigint:
    """Record SIGINT during a chunk instead of raising; shared by nested calls.

    ``pending`` is set by the first signal; a second one while pending
    raises at once. Only the outermost ``run_chunked`` of the main thread
    installs and restores the handler.
    """

    pending = False
    depth = 0
    previous = None

    @classmethod
    def handler(cls, signum, frame):
        if cls.pending:
            raise KeyboardInterrupt
        cls.pending = True

    @classmethod
    def enter(cls):
        """Install the handler if this thread may; return whether deferral is active."""
        if threading.current_thread() is not threading.main_thread():
            return False
        current = signal.getsignal(signal.SIGINT)
        if cls.depth == 0:
            if current is not signal.default_int_handler:
                return False  # SIG_IGN, SIG_DFL or the user's own handler
            cls.previous = current
            cls.pending = False
            signal.signal(signal.SIGINT, cls.handler)
        elif current is not cls.handler:
            return False
        cls.depth += 1
        return True

    @classmethod
    def leave(cls):
        """Restore the handler when the outermost call ends; return whether a signal is pending."""
        cls.depth -= 1
        if cls.depth:
            return False
        signal.signal(signal.SIGINT, cls.previous)
        cls.previous = None
        return cls.take()

    @classmethod
    def take(cls):
        """Whether a signal is pending (and clear it)."""
        was, cls.pending = cls.pending, False
        return was


class _Progress:
    """One status line on stderr, redrawn after chunks; only on a terminal.

    ``delay`` seconds pass before the first line (a call shorter than that
    prints nothing). The environment variable ``EBM_REF_PROGRESS=0`` turns
    every line off (``1`` forces them on, e.g. under a terminal multiplexer
    that is not seen as a terminal); a callable ``progress`` is always called.
    """

    def __init__(self, progress, total, delay=0.0):
        self.callback = progress if callable(progress) else None
        self.label = progress if isinstance(progress, str) else "progress"
        wanted = progress is not None and progress is not False and self.callback is None
        # None: on a terminal only (ProgressLine decides)
        enabled = progress_forced() if wanted else False
        self.line = ProgressLine(sys.stderr, enabled=enabled, interval=0.5)
        self.total = total
        self.delay = delay
        self.done = 0
        self.t0 = time.perf_counter()

    def update(self, done):
        self.done = done
        if self.callback is not None:
            self.callback(done, self.total)
        if self._due():
            self.line.show(self._text)

    def _due(self):
        return self.line.enabled and time.perf_counter() - self.t0 >= self.delay

    def _text(self, elapsed):
        done = self.done
        left = elapsed * (self.total - done) / done if done else float("nan")
        pct = 100.0 * done / self.total if self.total else 100.0
        return f"{self.label}: {done}/{self.total} ({pct:.0f}%), {elapsed:.1f} s, ~{left:.1f} s left"

    def close(self):
        """Draw the last state and end the line (nothing if no line was due)."""
        if self._due():
            self.line.show(self._text, final=True)


def progress_forced():
    """``EBM_REF_PROGRESS``: ``False`` for "0", ``True`` for "1", else ``None`` (terminal only)."""
    value = os.environ.get("EBM_REF_PROGRESS", "").strip()
    if value == "0":
        return False
    if value == "1":
        return True
    return None


def run_chunked(step, n_total, *, target_seconds=0.25, progress=None, first_chunk=1, progress_delay=0.0):
    r"""Call ``step(start, count)`` over ``range(n_total)`` in chunks of about ``target_seconds``.

    Parameters
    ----------
    step : callable
        ``step(start, count)`` processes items ``start .. start + count - 1``
        (for a sampler: steps), in place, and must give the same result
        however the work is cut (see Notes). Its return value is ignored.
    n_total : int
        Number of items (>= 0).
    target_seconds : float, default 0.25
        Wanted duration of one chunk (> 0). Ctrl-C is seen within about one
        chunk; each chunk boundary costs one Python call.
    progress : None, bool, str or callable, default None
        ``None``/``False``: silent. ``True`` or a label: one status line on
        stderr, rewritten after each chunk, only when stderr is a terminal
        (silent in logs, pipes and tests). A callable: called as
        ``progress(done, n_total)`` after each chunk.
    first_chunk : int, default 1
        Size of the first chunk (>= 1): small, since nothing is known about
        the rate yet (the first call may also compile).
    progress_delay : float, default 0.0
        Seconds of work before the status line first appears (the library's
        samplers pass 2 s, so short calls print nothing). The environment
        variable ``EBM_REF_PROGRESS`` set to ``0`` turns the line off, ``1``
        shows it even when stderr is not seen as a terminal.

    Returns
    -------
    int
        ``n_total``: every item was processed.

    Raises
    ------
    ChunkInterrupted
        Ctrl-C arrived during a chunk; raised after that chunk completed
        (``.completed`` items are done). Also when it arrived during the
        last chunk: the work is then complete, but the user's Ctrl-C is
        not swallowed.
    KeyboardInterrupt
        A second Ctrl-C during the same chunk (raised at once; the chunk's
        outputs are undefined), or Ctrl-C when a handler other than
        Python's default was installed (then raised wherever Python raises it).
    TypeError, ValueError
        For a non-callable ``step``, or a bad ``n_total``,
        ``target_seconds`` or ``first_chunk`` (the message names it).

    Notes
    -----
    Chunk sizes: ``first_chunk``, then ``rate * target_seconds`` with the
    rate measured on the previous chunk, at most 8 times the previous chunk
    and at least 1. Sizes depend on timing, so ``step`` must not let them
    change any result.

    **Wiring a sampler** (a jitted driver over ``prep.n_steps`` steps that
    updates ``prep.x``, the per-chain RNG rows ``prep.rng`` and the trace
    in place): give the driver a first-step argument ``t0`` and a count,
    and call it as

    .. code-block:: python

        def step(t0, count):
            driver(form.kind, form.ip, form.fp, prep.x, prep.rng, t0, count,
                   prep.thin, prep.trace, n_accepted)

        run_chunked(step, prep.n_steps)

    The driver must (1) index the trace by the global step,
    ``(t0 + t + 1) // thin - 1`` when ``(t0 + t + 1) % thin == 0``;
    (2) keep every per-chain carry in arrays that persist between calls:
    the RNG row (xoshiro state, advanced in place), the state ``x``, and
    any cached energy or gradient (recompute it at the start of a chunk
    only if the recomputation is bit-identical to the carried value,
    otherwise keep it in a per-chain buffer); (3) accumulate acceptance
    counts as integers and divide once, after the last chunk. Then the
    output is bit-identical to one call of ``n_steps`` steps. Block Gibbs
    (Python threads over 128-chain blocks) is wired the same way: the
    block-major visible states ``v`` are built once and kept across
    chunks (the hidden states are redrawn from them in every step), and
    each chunk runs ``by_blocks``/``by_tiles`` for ``count`` steps starting
    at ``t0`` (the trace index as above), so a Ctrl-C never leaves a
    worker thread running past the chunk. AIS: one chunk is a range of
    temperatures, the running log-weights carried per chain.
    """
    if not callable(step):
        raise TypeError(f"`step` must be callable; got {type(step).__name__}.")
    n_total = check_nonneg_int(n_total, "n_total")
    target_seconds = check_positive(target_seconds, "target_seconds")
    first_chunk = check_nonneg_int(first_chunk, "first_chunk")
    if first_chunk < 1:
        raise ValueError(f"`first_chunk` must be >= 1; got {first_chunk}.")
    shown = _Progress(progress, n_total, progress_delay)
    deferring = _DeferSigint.enter()
    done = 0
    count = first_chunk
    try:
        while done < n_total:
            count = min(count, n_total - done)
            t = time.perf_counter()
            step(done, count)
            dt = time.perf_counter() - t
            done += count
            shown.update(done)
            if deferring and _DeferSigint.take():
                raise ChunkInterrupted(done, n_total)
            wanted = int(count * target_seconds / dt) if dt > 0 else count * _MAX_GROWTH
            count = max(1, min(wanted, count * _MAX_GROWTH))
    except BaseException:
        if deferring:
            _DeferSigint.leave()
        shown.close()
        raise
    shown.close()
    # Ctrl-C after the last chunk's check: not swallowed.
    if deferring and _DeferSigint.leave():
        raise ChunkInterrupted(done, n_total)
    return n_total
