"""Stop requests by signal: the first SIGINT, SIGTERM or SIGHUP counts, the rest are ignored.

The handler only records the signal and wakes the main loop through a pipe; it never raises
(a KeyboardInterrupt raised inside the stop path, by a second signal that ``uv run``
forwards, once left every service running).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopSignals:
    def __init__(self) -> None:
        self.received: int | None = None
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)

    def install(self) -> StopSignals:
        """Handle the stop signals from now on (call from the main thread)."""
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, _: FrameType | None) -> None:
        if self.received is not None:
            return
        self.received = signum
        for sig in STOP_SIGNALS:  # every later one is ignored, by the kernel from now on
            signal.signal(sig, signal.SIG_IGN)
        with contextlib.suppress(BlockingIOError):  # the pipe holds one byte at most
            os.write(self._write, b"\0")

    def requested(self) -> bool:
        return self.received is not None

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, waking at once on a stop request; True if one came."""
        if self.received is None:
            select.select([self._read], [], [], seconds)
        return self.received is not None
