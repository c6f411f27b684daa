"""Readiness driven by each service's own checks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from pydantic import BaseModel

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[bool]]


class ReadinessReport(BaseModel):
    status: str
    checks: dict[str, bool]


class Readiness:
    """Named async checks; the service is ready when all pass and it is not draining."""

    def __init__(self, timeout: float = 2.0) -> None:
        self._checks: dict[str, Check] = {}
        self._timeout = timeout
        self.draining = False

    def add_check(self, name: str, check: Check) -> None:
        self._checks[name] = check

    async def _run(self, name: str, check: Check) -> bool:
        try:
            return bool(await asyncio.wait_for(check(), self._timeout))
        except Exception as exc:  # a failing check is "not ready", never a crash
            log.warning("readiness check %s failed: %r", name, exc)
            return False

    async def report(self) -> ReadinessReport:
        names = list(self._checks)
        results = await asyncio.gather(*(self._run(n, self._checks[n]) for n in names))
        checks = dict(zip(names, results, strict=True))
        checks["accepting"] = not self.draining
        return ReadinessReport(
            status="ready" if all(checks.values()) else "not_ready", checks=checks
        )


def writable_dir_check(path: Path) -> Check:
    """Create ``path``; the check passes while a file can be written in it (and leaves none)."""
    path.mkdir(parents=True, exist_ok=True)

    async def writable() -> bool:
        probe = path / ".ready-probe"
        probe.write_bytes(b"ok")
        probe.unlink()
        return True

    return writable
