"""Child processes: spawn tied to our life, wait until ready, stop with a grace period.

The one process helper of the repository: ``switchyard up``, the tests' service and fake
processes and the benchmarks all start their children through :class:`ChildProcess`.

- Each child gets its own session and process group, so a terminal's Ctrl-C reaches only us
  and :meth:`ChildProcess.stop` reaches the child's own children too.
- On Linux each child asks the kernel for ``PR_SET_PDEATHSIG``: when the thread that spawned
  it dies (even by SIGKILL), the child gets SIGTERM. The kernel ties this to the spawning
  *thread*, so it is set only when spawning from the main thread.
- Output goes to a log file, read back with :meth:`ChildProcess.logs`.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import httpx

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class NotReady(RuntimeError):
    """A child exited, or did not become ready in time, or waiting was called off."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _die_with_parent(sig: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get ``sig`` when its parent thread dies."""
    if not sys.platform.startswith("linux"):
        return None
    if threading.current_thread() is not threading.main_thread():
        return None  # the child would die with this (short-lived) thread
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before fork, not in the child
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(sig), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request took effect
            os.kill(os.getpid(), sig)

    return preexec


def wait_until(
    check: Callable[[], bool],
    timeout: float,
    *,
    interval: float = 0.1,
    pause: Callable[[float], bool] | None = None,
) -> bool:
    """Poll ``check`` until it holds (True) or ``timeout`` passes (False).

    ``pause(seconds)`` replaces the sleep between polls; returning True calls the wait off
    (e.g. a stop requested by a signal), which raises :class:`NotReady`.
    """
    deadline = time.monotonic() + timeout
    while not check():
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        if pause is None:
            time.sleep(min(interval, left))
        elif pause(min(interval, left)):
            raise NotReady("stop requested while waiting")
    return True


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """True when GET ``url`` answers 200 (no proxies: everything here is local)."""
    try:
        return httpx.get(url, timeout=timeout, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


class ChildProcess:
    """``argv`` as a child in its own process group, output to ``log_path`` (or, when that
    is None, to our own stdout and stderr).

    ``env`` is added to this process's environment (``base_env`` replaces it when given).
    ``cpus`` pins the child with ``taskset -c``. :meth:`start` may be called again after the
    child has stopped (a restart on the same port, say).
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path | None,
        *,
        env: dict[str, str] | None = None,
        base_env: dict[str, str] | None = None,
        cwd: Path | None = None,
        cpus: str | None = None,
        append_log: bool = True,
        die_with_parent: bool = True,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = {**(os.environ if base_env is None else base_env), **(env or {})}
        self.cwd = cwd
        self.cpus = cpus
        self.append_log = append_log
        self.die_with_parent = die_with_parent
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> ChildProcess:
        argv = ["taskset", "-c", self.cpus, *self.argv] if self.cpus else self.argv
        preexec = _die_with_parent(signal.SIGTERM) if self.die_with_parent else None
        with contextlib.ExitStack() as files:
            log = None
            if self.log_path is not None:
                log = files.enter_context(self.log_path.open("ab" if self.append_log else "wb"))
            self.popen = subprocess.Popen(
                argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=None if log is None else subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=preexec,  # only prctl and getppid: safe after fork
            )
        return self

    @property
    def pid(self) -> int:
        if self.popen is None:
            raise RuntimeError(f"{self.name} was not started")
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    def wait_ready(
        self,
        check: str | Callable[[], bool],
        timeout: float,
        *,
        interval: float = 0.1,
        pause: Callable[[float], bool] | None = None,
    ) -> ChildProcess:
        """Wait until ``check`` holds: a callable, or a URL that must answer 200.

        Raises :class:`NotReady` (with the log's tail) when the child exits first, when the
        time is up, or when ``pause`` calls the wait off.
        """
        exited = False

        def ready() -> bool:
            nonlocal exited
            exited = not self.alive()
            if exited:
                return True
            return http_ok(check) if isinstance(check, str) else check()

        if not wait_until(ready, timeout, interval=interval, pause=pause):
            raise NotReady(f"{self.name} not ready after {timeout:g}s\n{self.tail(40)}")
        if exited:
            raise NotReady(f"{self.name} exited with code {self.returncode}\n{self.tail(40)}")
        return self

    def signal_group(self, sig: int) -> None:
        """Send ``sig`` to the child's process group (its pid: it leads its own session)."""
        if self.popen is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, sig)

    def stop(self, grace: float = 10.0, sig: int = signal.SIGTERM) -> int | None:
        """``sig`` to the group, SIGKILL after ``grace`` seconds; the exit code."""
        stop_all([self], grace, sig)
        return self.returncode

    def logs(self, chars: int = 8000) -> str:
        if self.log_path is None:
            return ""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.logs().splitlines()[-lines:])


def stop_all(
    children: Iterable[ChildProcess], grace: float = 10.0, sig: int = signal.SIGTERM
) -> None:
    """Stop children together: ``sig`` to each group in the order given, one shared grace
    period, then SIGKILL for what is left, and for strays that outlived their leader."""
    started = [c for c in children if c.popen is not None]
    for child in started:
        if child.alive():
            child.signal_group(sig)
    deadline = time.monotonic() + grace
    for child in started:
        assert child.popen is not None
        try:
            child.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.signal_group(signal.SIGKILL)
            child.popen.wait()
        child.signal_group(signal.SIGKILL)  # strays left in the group
