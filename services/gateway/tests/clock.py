"""A clock tests move by hand, injected where code reads the time."""

from __future__ import annotations


class ManualClock:
    """Stands for ``time.time``/``time.monotonic``: ``now`` changes only when told."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def time(self) -> float:  # the ``time`` module's interface, for the ``limits`` library
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
