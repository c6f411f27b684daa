"""Run real service processes on free ports and wait for them to be ready.

A thin layer over the repository's one process helper, ``switchyard_cli.processes``.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from switchyard_cli.processes import ChildProcess, free_port, http_ok, wait_until

__all__ = ["ServiceProcess", "free_port", "metric_value", "wait_ready"]


def wait_ready(
    url: str, proc: subprocess.Popen[bytes] | None, timeout: float = 120.0, path: str = "/readyz"
) -> None:
    """Wait until ``url + path`` answers 200; fail at once if ``proc`` exits first."""

    def ready() -> bool:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {proc.returncode}")
        return http_ok(f"{url}{path}")

    if not wait_until(ready, timeout):
        raise TimeoutError(f"{url} not ready after {timeout}s")


class ServiceProcess:
    """``python -m <module> [args]`` with settings from env; logs go to a file for
    post-mortems; ready once ``ready_path`` answers 200."""

    def __init__(
        self,
        module: str,
        env: dict[str, str],
        log_path: Path,
        port: int,
        *,
        args: Sequence[str] = (),
        ready_path: str = "/readyz",
    ) -> None:
        self.module = module
        self.ready_path = ready_path
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.child = ChildProcess(
            module, [sys.executable, "-m", module, *args], log_path, env=env, append_log=False
        ).start()
        assert self.child.popen is not None
        self.proc: subprocess.Popen[bytes] = self.child.popen

    def wait_ready(self, timeout: float = 120.0) -> ServiceProcess:
        self.child.wait_ready(f"{self.url}{self.ready_path}", timeout)
        return self

    def logs(self) -> str:
        return self.child.logs()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        code = self.child.stop(timeout, sig)
        assert code is not None
        return code


def metric_value(text: str, name: str, labels: dict[str, str] | None = None) -> float:
    """Read one sample from Prometheus text exposition (0.0 if absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(
                sample.labels.get(k) == v for k, v in (labels or {}).items()
            ):
                return float(sample.value)
    return 0.0
