"""One self-overwriting progress line on a terminal, silent elsewhere.

Shared by ``train.fit`` (on standard output) and ``sweep.run`` (on
standard error). Off a terminal (a file, a pipe, a notebook capture, a CI
log) nothing is written, so logs never fill with carriage returns; callers
may force it on or off.
"""

from __future__ import annotations

import time

__all__ = ["ProgressLine", "is_terminal"]


def is_terminal(stream):
    """Whether ``stream`` is an interactive terminal (``False`` when it cannot tell)."""
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (ValueError, OSError):  # a closed or detached stream
        return False


class ProgressLine:
    """A status line redrawn in place (``"\\r" + text``) at most every ``interval`` s.

    Parameters
    ----------
    stream : text stream
        Where to write (``sys.stdout`` or ``sys.stderr``).
    enabled : bool, optional
        Force the line on or off; by default on only when ``stream`` is a
        terminal.
    interval : float, default 0.1
        Least time between two redraws; the final one is always drawn.
    """

    def __init__(self, stream, enabled=None, interval=0.1):
        self.stream = stream
        self.enabled = is_terminal(stream) if enabled is None else bool(enabled)
        self.interval = interval
        self.t0 = time.perf_counter()
        self.last = -float("inf")

    def show(self, render, final=False):
        """Redraw with ``render(elapsed_seconds) -> str``; ``final`` ends the line.

        ``render`` is only called when the line is drawn, so a caller pays
        for formatting only a few times a second.
        """
        if not self.enabled:
            return
        now = time.perf_counter()
        if not final and now - self.last < self.interval:
            return
        self.last = now
        self.stream.write("\r" + render(now - self.t0) + " ")
        if final:
            self.stream.write("\n")
        self.stream.flush()
