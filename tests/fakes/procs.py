"""Start the fakes as real server processes on free ports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from switchyard_cli.processes import ChildProcess

ROOT = Path(__file__).resolve().parents[2]


class FakeServer:
    """``python -m tests.fakes.<name> --port N``; ``kill()`` and ``start()`` again on one port."""

    def __init__(self, module: str, port: int, log_path: Path, probe: str) -> None:
        self.module = module
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.probe = probe
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        self._child = ChildProcess(
            module,
            [sys.executable, "-m", module, "--port", str(port)],
            log_path,
            env={"PYTHONPATH": path},
            cwd=ROOT,
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> FakeServer:
        self.proc = self._child.start().popen
        self._child.wait_ready(f"{self.url}{self.probe}", timeout, interval=0.05)
        return self

    def kill(self) -> None:
        """Vanish at once, like a crashed agent: no graceful close of open connections."""
        if self.proc is not None:
            self._child.stop(grace=0, sig=signal.SIGKILL)
        self.proc = None
