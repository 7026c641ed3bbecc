"""run_chunked: chunking, Ctrl-C between chunks, progress; and a SIGINT harness.

Unit tests use fake step functions (and a fake clock for the chunk sizes);
``signal.raise_signal`` delivers a real SIGINT inside a chunk. The harness
``sigint_roundtrip`` runs code in a child process, sends it SIGINT and
times the answer; it is what the samplers are checked with once they run
through ``run_chunked``.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from ebm_ref import _interrupt
from ebm_ref._interrupt import ChunkInterrupted, run_chunked

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class _Recorder:
    """A fake step: records the chunks it was given; optional hook per call."""

    def __init__(self, hook=None):
        self.chunks = []
        self.hook = hook

    def __call__(self, start, count):
        self.chunks.append((start, count))
        if self.hook is not None:
            self.hook(len(self.chunks), start, count)


def _covered(chunks):
    return [i for start, count in chunks for i in range(start, start + count)]


def test_every_item_once_in_order():
    step = _Recorder()
    assert run_chunked(step, 1000, target_seconds=1e-4) == 1000
    assert _covered(step.chunks) == list(range(1000))
    assert step.chunks[0] == (0, 1)


def test_zero_items_never_call_step():
    step = _Recorder()
    assert run_chunked(step, 0) == 0
    assert step.chunks == []


def test_chunk_sizes_follow_the_measured_rate(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(_interrupt.time, "perf_counter", lambda: clock[0])

    def advance(k, start, count):
        clock[0] += 2.0**-7 * count  # 128 items per second (exact in binary)

    step = _Recorder(advance)
    run_chunked(step, 200, target_seconds=0.25, first_chunk=2)
    sizes = [c for _, c in step.chunks]
    # 2, then at most 8x growth (16), then the rate's 32 per 0.25 s, and the remainder
    assert sizes[:4] == [2, 16, 32, 32]
    assert sum(sizes) == 200 and all(c <= 32 for c in sizes[2:])


def test_slow_chunk_shrinks_the_next_one(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(_interrupt.time, "perf_counter", lambda: clock[0])

    def advance(k, start, count):
        clock[0] += (1.0 if k == 3 else 0.001) * count  # chunk 3 is 1000x slower

    step = _Recorder(advance)
    run_chunked(step, 5000, target_seconds=0.25)
    sizes = [c for _, c in step.chunks]
    assert sizes[3] == max(1, int(sizes[2] * 0.25 / (1.0 * sizes[2])))  # one item per 0.25 s
    assert sum(sizes) == 5000


def test_sigint_during_a_chunk_is_raised_after_it():
    def hook(k, start, count):
        if k == 3:
            signal.raise_signal(signal.SIGINT)
            hook.after_signal = True  # the chunk runs to its end

    hook.after_signal = False
    step = _Recorder(hook)
    with pytest.raises(ChunkInterrupted) as info:
        run_chunked(step, 10**9, target_seconds=1e-3)
    assert hook.after_signal
    assert len(step.chunks) == 3  # nothing started after the interrupted chunk
    assert info.value.completed == sum(c for _, c in step.chunks)
    assert info.value.total == 10**9
    assert isinstance(info.value, KeyboardInterrupt)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    # the next call works and Ctrl-C is back to Python's default
    again = _Recorder()
    assert run_chunked(again, 50) == 50
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)


def test_sigint_during_the_last_chunk_is_not_swallowed():
    step = _Recorder(lambda k, s, c: signal.raise_signal(signal.SIGINT) if s + c == 10 else None)
    with pytest.raises(ChunkInterrupted) as info:
        run_chunked(step, 10, first_chunk=4)
    assert info.value.completed == 10
    assert _covered(step.chunks) == list(range(10))


def test_second_sigint_in_one_chunk_raises_at_once():
    reached = []

    def hook(k, start, count):
        signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGINT)
        reached.append(k)  # never: the second signal raises inside the step

    with pytest.raises(KeyboardInterrupt) as info:
        run_chunked(_Recorder(hook), 100)
    assert not isinstance(info.value, ChunkInterrupted)
    assert reached == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_step_error_propagates_and_restores_the_handler():
    def hook(k, start, count):
        if k == 2:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run_chunked(_Recorder(hook), 100)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_nested_calls_share_the_deferral():
    def inner_hook(k, start, count):
        if k == 2:
            signal.raise_signal(signal.SIGINT)

    def outer(start, count):
        run_chunked(_Recorder(inner_hook), 20)

    with pytest.raises(ChunkInterrupted):
        run_chunked(outer, 5)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_users_own_handler_is_left_alone():
    seen = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: seen.append(signum))
    try:
        step = _Recorder(lambda k, s, c: signal.raise_signal(signal.SIGINT) if k == 2 else None)
        assert run_chunked(step, 100) == 100  # the user's handler decides: here, go on
        assert seen == [signal.SIGINT]
        assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)


def test_runs_in_a_worker_thread_without_touching_signals():
    result = []
    step = _Recorder()
    t = threading.Thread(target=lambda: result.append(run_chunked(step, 300)))
    t.start()
    t.join(30)
    assert result == [300]
    assert _covered(step.chunks) == list(range(300))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_progress_callback_sees_every_chunk():
    seen = []
    step = _Recorder()
    run_chunked(step, 500, progress=lambda done, total: seen.append((done, total)))
    assert [d for d, _ in seen] == np.cumsum([c for _, c in step.chunks]).tolist()
    assert seen[-1] == (500, 500)


class _FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_line_only_on_a_terminal(monkeypatch, capsys):
    run_chunked(_Recorder(), 100, progress=True)
    assert capsys.readouterr().err == ""  # pytest's stderr is not a terminal: silent
    fake = _FakeTerminal()
    monkeypatch.setattr(sys, "stderr", fake)
    run_chunked(_Recorder(), 100, progress="sampling")
    text = fake.getvalue()
    assert text.startswith("\rsampling: ") and "100/100 (100%)" in text and text.endswith("\n")
    fake2 = _FakeTerminal()
    monkeypatch.setattr(sys, "stderr", fake2)
    run_chunked(_Recorder(), 100, progress=None)
    assert fake2.getvalue() == ""


def test_chunking_does_not_change_a_resumable_computation():
    """A step that carries its state in arrays gives the same bits however it is cut."""
    def make():
        state = {"g": np.random.Generator(np.random.PCG64(5)), "out": np.empty(4000)}

        def step(start, count):
            state["out"][start : start + count] = state["g"].standard_normal(count)

        return state, step

    whole, step = make()
    step(0, 4000)
    cut, step = make()
    run_chunked(step, 4000, target_seconds=1e-5)
    assert np.array_equal(whole["out"], cut["out"])


@pytest.mark.parametrize(
    "kwargs, exc, name",
    [
        (dict(step=None, n_total=3), TypeError, "step"),
        (dict(n_total=-1), ValueError, "n_total"),
        (dict(n_total=2.5), TypeError, "n_total"),
        (dict(n_total=3, target_seconds=0), ValueError, "target_seconds"),
        (dict(n_total=3, target_seconds=float("nan")), ValueError, "target_seconds"),
        (dict(n_total=3, first_chunk=0), ValueError, "first_chunk"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, exc, name):
    kwargs = dict(kwargs)
    step = kwargs.pop("step", _Recorder())
    with pytest.raises(exc, match=f"`{name}`"):
        run_chunked(step, **kwargs)


# ------------------------------------------------------------ SIGINT harness
def sigint_roundtrip(child_code, *, delay=1.0, answer_within=2.0, timeout=120.0):
    """Run ``child_code`` in a child, send SIGINT ``delay`` s after it prints READY; time the answer.

    The child must print ``READY`` when its long loop starts, ``INTERRUPTED``
    when its ``KeyboardInterrupt`` arrives, and ``AGAIN-OK`` after a second
    call in the same process. Returns ``(seconds from SIGINT to INTERRUPTED,
    the child's whole output)``; fails if the answer takes longer than
    ``answer_within`` or anything is missing. The child is killed on any
    failure or past ``timeout``: a hang fails, it never stays behind.
    """
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT] + sys.path))
    proc = subprocess.Popen(
        [sys.executable, "-u", "-c", textwrap.dedent(child_code)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    lines = []
    try:
        deadline = time.monotonic() + timeout

        def read_until(marker):
            while time.monotonic() < deadline:
                line = proc.stdout.readline()
                if not line:
                    break
                lines.append(line)
                if line.strip() == marker:
                    return time.monotonic()
            pytest.fail(f"child never printed {marker}; output:\n{''.join(lines)}")

        read_until("READY")
        time.sleep(delay)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        answered = read_until("INTERRUPTED") - sent
        read_until("AGAIN-OK")
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    assert proc.returncode == 0, "".join(lines)
    assert answered < answer_within, f"SIGINT answered after {answered:.2f} s:\n{''.join(lines)}"
    return answered, "".join(lines)


_CHILD = """
    import numpy as np
    from ebm_ref._interrupt import ChunkInterrupted, run_chunked

    a = np.random.default_rng(0).random((150, 150))
    out = np.empty(10**8)

    def step(start, count):
        # a Python loop over BLAS calls: Python's default handler would raise
        # in the middle of it; run_chunked waits for the chunk to end
        for i in range(start, start + count):
            out[i] = float(np.trace(a @ a))

    print("READY", flush=True)
    try:
        run_chunked(step, 10**8)
    except ChunkInterrupted as e:
        assert e.completed > 0 and np.all(out[: e.completed] == out[0])
        print("INTERRUPTED", e.completed, flush=True)
        print("INTERRUPTED", flush=True)
    assert run_chunked(step, 2000) == 2000  # a second call in the same process works
    print("AGAIN-OK", flush=True)
"""


def test_sigint_reaches_a_long_chunked_loop_within_two_seconds():
    answered, output = sigint_roundtrip(_CHILD)
    assert "INTERRUPTED" in output and answered >= 0


_SLOW_CHILD = """
    import signal, time

    seen = []
    signal.signal(signal.SIGINT, lambda signum, frame: seen.append(signum))
    print("READY", flush=True)
    while not seen:
        time.sleep(0.01)
    time.sleep(3.0)  # a planted slow answer: 3 s after the signal
    print("INTERRUPTED", flush=True)
    print("AGAIN-OK", flush=True)
"""


def test_harness_fails_a_slow_answer():
    """Negative control: a child that answers SIGINT after 3 s must fail the harness."""
    with pytest.raises(AssertionError, match="answered after"):
        sigint_roundtrip(_SLOW_CHILD)
