"""In-flight accounting: a count of slots in use, taken and given back through leases.

The gateway holds one slot per request it serves (bounded by ``max_in_flight``), and one
slot of an instance per request it sends there (bounded by the per-instance limit, which
routing checks). A slot is taken with :meth:`Slots.acquire` and given back with
:meth:`SlotLease.release`, which is idempotent, so a path that ends twice (a stream that
finishes and is then closed) cannot give it back twice, and ``with`` gives it back on
every path.
"""

from __future__ import annotations

import sys
from types import TracebackType


class Slots:
    """``in_use`` slots out of ``limit``."""

    __slots__ = ("in_use", "limit")

    def __init__(self, limit: int = sys.maxsize) -> None:
        self.limit = limit
        self.in_use = 0

    @property
    def full(self) -> bool:
        return self.in_use >= self.limit

    def try_acquire(self) -> SlotLease | None:
        """A lease on one slot, or None when all are in use."""
        if self.in_use >= self.limit:
            return None
        self.in_use += 1
        return SlotLease(self)

    def acquire(self) -> SlotLease:
        """A lease on one slot, over the limit if need be (the caller checked it)."""
        self.in_use += 1
        return SlotLease(self)


class SlotLease:
    """One slot in use until :meth:`release` (or the end of a ``with`` block)."""

    __slots__ = ("_slots",)

    def __init__(self, slots: Slots) -> None:
        self._slots: Slots | None = slots

    @property
    def held(self) -> bool:
        return self._slots is not None

    def release(self) -> None:
        slots = self._slots
        if slots is not None:
            self._slots = None
            slots.in_use -= 1

    def __enter__(self) -> SlotLease:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
