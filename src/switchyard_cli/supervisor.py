"""Start services as child processes, wait for readiness, stop them cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

import httpx


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
    def __init__(self, grace_seconds: float = 20.0) -> None:
        self.grace_seconds = grace_seconds
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.specs: dict[str, ServiceSpec] = {}

    def start(self, spec: ServiceSpec) -> None:
        env = {**os.environ, **spec.env}
        # Own process group: the terminal's Ctrl-C reaches only us, and we stop children
        # in order (gateway first).
        self.procs[spec.name] = subprocess.Popen(
            [sys.executable, "-m", spec.module], env=env, start_new_session=True
        )
        self.specs[spec.name] = spec

    def wait_ready(self, names: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = list(names)
        with httpx.Client(timeout=1.0, trust_env=False) as client:
            while pending:
                for name in list(pending):
                    proc = self.procs[name]
                    if proc.poll() is not None:
                        raise StartupError(
                            f"{name} exited with code {proc.returncode} while starting"
                        )
                    try:
                        if client.get(f"{self.specs[name].url}/readyz").status_code == 200:
                            pending.remove(name)
                    except httpx.HTTPError:
                        pass
                if pending and time.monotonic() > deadline:
                    raise StartupError(f"not ready after {timeout:.0f}s: {', '.join(pending)}")
                if pending:
                    time.sleep(0.2)

    def exited(self) -> tuple[str, int] | None:
        for name, proc in self.procs.items():
            code = proc.poll()
            if code is not None:
                return name, code
        return None

    def stop_all(self) -> None:
        """SIGTERM in reverse start order, wait for the grace period, then SIGKILL."""
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace_seconds
        for proc in reversed(list(self.procs.values())):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
