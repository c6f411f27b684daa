"""Start the fakes as real server processes on free ports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


class FakeServer:
    """``python -m tests.fakes.<name> --port N``; ``kill()`` and ``start()`` again on one port."""

    def __init__(self, module: str, port: int, log_path: Path, probe: str) -> None:
        self.module = module
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.probe = probe
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> FakeServer:
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        env = {**os.environ, "PYTHONPATH": path}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", self.module, "--port", str(self.port)],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.module} exited:\n{self.log_path.read_text()[-4000:]}")
            try:
                if httpx.get(f"{self.url}{self.probe}", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"{self.module} not up after {timeout}s")

    def kill(self) -> None:
        """Vanish at once, like a crashed agent: no graceful close of open connections."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None
