import signal
import zlib

import numpy as np
import pytest


@pytest.fixture
def rng(request):
    """A Generator seeded from the test's node id: stable and order-independent."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


def pytest_configure(config):
    """Give the suite Python's own Ctrl-C handler if it was started with SIGINT ignored.

    A shell without job control starts background jobs (``cmd &`` in a
    script) with SIGINT ignored, and child processes inherit that. The
    Ctrl-C tests (``test_interrupt*``) check how ebm_ref answers SIGINT, in
    this process and in children, so they need the disposition an
    interactive ``python`` has: with it ignored they fail or wait forever
    (``run_chunked`` leaves an ignored SIGINT alone, as it should).
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
