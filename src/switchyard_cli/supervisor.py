"""Start the platform's services as child processes, wait for readiness, stop them cleanly."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from switchyard_cli.processes import ChildProcess, http_ok, stop_all, wait_until


@dataclass
class ServiceSpec:
    name: str
    module: str
    port: int
    env: dict[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


class StartupError(RuntimeError):
    pass


class Supervisor:
    """The services of ``switchyard up``; their output goes to the CLI's own stdout."""

    def __init__(self, grace_seconds: float = 20.0) -> None:
        self.grace_seconds = grace_seconds
        self.procs: dict[str, ChildProcess] = {}
        self.specs: dict[str, ServiceSpec] = {}

    def start(self, spec: ServiceSpec) -> None:
        child = ChildProcess(spec.name, [sys.executable, "-m", spec.module], None, env=spec.env)
        self.procs[spec.name] = child.start()
        self.specs[spec.name] = spec

    def wait_ready(self, names: list[str], timeout: float, pause: Callable[[float], bool]) -> None:
        """Wait until each named service's ``/readyz`` answers 200.

        ``pause`` sleeps between polls and returns True to call the wait off (a stop was
        requested), which raises :class:`switchyard_cli.processes.NotReady`.
        """
        pending = list(names)

        def all_ready() -> bool:
            for name in list(pending):
                child = self.procs[name]
                if not child.alive():
                    raise StartupError(f"{name} exited with code {child.returncode} while starting")
                if http_ok(f"{self.specs[name].url}/readyz"):
                    pending.remove(name)
            return not pending

        if not wait_until(all_ready, timeout, interval=0.2, pause=pause):
            raise StartupError(f"not ready after {timeout:.0f}s: {', '.join(pending)}")

    def exited(self) -> tuple[str, int] | None:
        for name, child in self.procs.items():
            code = child.returncode
            if code is not None:
                return name, code
        return None

    def stop_all(self) -> None:
        """SIGTERM in reverse start order (gateway first), one grace period, then SIGKILL."""
        stop_all(reversed(list(self.procs.values())), self.grace_seconds)
