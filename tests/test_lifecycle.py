"""Stopping ``switchyard up`` never leaves a service behind, however it is stopped.

``switchyard up`` runs as a real process in its own session; its services are found in
``/proc`` (children of its threads, and theirs) while it lives, and each must be gone
afterwards: a process that outlived the CLI would have been re-parented, not reaped by it.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from switchyard_cli.processes import ChildProcess, NotReady
from tests.fakes.waiting import eventually
from tests.support.procs import free_port

SWITCHYARD = Path(sys.executable).parent / "switchyard"  # the installed console script
Pid = tuple[int, int]  # (pid, start time in clock ticks): a reused pid is another process


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, start time) from /proc/<pid>/stat, or None when the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "
    return fields[0], int(fields[19])


def descendants(pid: int) -> set[Pid]:
    found: set[Pid] = set()
    pending = [pid]
    while pending:
        parent = pending.pop()
        try:  # the process may exit between being found and being read
            tasks = list(Path(f"/proc/{parent}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                stat = _stat(child)
                if stat is not None:
                    found.add((child, stat[1]))
                    pending.append(child)
    return found


def running(proc: Pid) -> bool:
    stat = _stat(proc[0])
    return stat is not None and stat[1] == proc[1] and stat[0] not in ("Z", "X")


@dataclass
class Up:
    cli: ChildProcess
    gateway: str
    seen: set[Pid] = field(default_factory=set)

    def watch(self) -> set[Pid]:
        """Record the CLI's descendants now (call while it lives); all seen so far."""
        if self.cli.alive():
            self.seen |= descendants(self.cli.pid)
        return self.seen


@pytest.fixture
def start_up(tmp_path: Path) -> Iterator[Callable[[], Up]]:
    """``switchyard up --no-embeddings`` on free ports with its own data dir; whatever is
    left at the end is killed, so one failing test does not leak into the next."""
    started: list[Up] = []

    def start() -> Up:
        ports = [free_port() for _ in range(5)]
        run = tmp_path / f"up-{len(started)}"
        run.mkdir()
        argv = [str(SWITCHYARD), "up", "--no-embeddings", "--data-dir", str(run / "data"),
                "--api-key", "sk-test-lifecycle", "--port", str(ports[0]),
                "--worker-port", str(ports[1]), "--session-port", str(ports[2]),
                "--webhook-port", str(ports[3]), "--embeddings-port", str(ports[4])]  # fmt: skip
        up = Up(ChildProcess("switchyard-up", argv, run / "up.log").start(),
                f"http://127.0.0.1:{ports[0]}")  # fmt: skip
        started.append(up)
        return up

    yield start
    for up in started:
        up.cli.stop(grace=5, sig=signal.SIGKILL)
        for pid, _ in filter(running, up.seen):
            os.kill(pid, signal.SIGKILL)


def assert_all_gone(up: Up, cli_exit: int | None) -> None:
    """The CLI exits (with ``cli_exit``), then every service it started is gone too."""
    assert up.cli.popen is not None

    def cli_exited() -> bool:
        up.watch()  # a service started late is recorded too
        return not up.cli.alive()

    eventually(cli_exited, timeout=60, interval=0.02)
    eventually(lambda: not any(map(running, up.seen)), timeout=60)
    if cli_exit is not None:
        assert up.cli.returncode == cli_exit, up.cli.tail(40)
    assert "Traceback" not in up.cli.logs(), up.cli.tail(40)


def _sigint(pid: int) -> None:
    os.kill(pid, signal.SIGINT)


def _sigterm_group(pid: int) -> None:
    os.killpg(os.getpgid(pid), signal.SIGTERM)


def _two_sigterms(pid: int) -> None:
    os.kill(pid, signal.SIGTERM)
    time.sleep(0.001)  # the spacing under test, not a wait for anything
    os.kill(pid, signal.SIGTERM)


def _sighup(pid: int) -> None:
    os.kill(pid, signal.SIGHUP)


STOPS = {
    "sigint": _sigint,
    "sigterm-group": _sigterm_group,
    "two-sigterms": _two_sigterms,
    "sighup": _sighup,
}


@pytest.mark.parametrize("how", list(STOPS))
def test_stopping_a_ready_platform_stops_every_service(
    how: str, start_up: Callable[[], Up]
) -> None:
    up = start_up()
    up.cli.wait_ready(f"{up.gateway}/readyz", timeout=180)
    services = up.watch()
    assert len(services) >= 4  # model-worker, session, webhook, gateway
    assert all(map(running, services))
    STOPS[how](up.cli.pid)
    assert_all_gone(up, cli_exit=0)
    assert "stopping all services" in up.cli.logs()


def test_services_die_with_a_killed_cli(start_up: Callable[[], Up]) -> None:
    up = start_up()
    up.cli.wait_ready(f"{up.gateway}/readyz", timeout=180)
    services = up.watch()
    assert len(services) >= 4
    os.kill(up.cli.pid, signal.SIGKILL)  # no chance to stop anything: PR_SET_PDEATHSIG does
    assert_all_gone(up, cli_exit=-signal.SIGKILL)


@pytest.mark.parametrize("round_", range(20))
def test_two_sigterms_right_after_spawning_leave_nothing(
    round_: int, start_up: Callable[[], Up]
) -> None:
    """The race: the signals land while the services are still starting (and importing)."""
    up = start_up()
    # The first group (model-worker, session, webhook) is spawned before any readiness wait.
    eventually(lambda: len(up.watch()) >= 3 or not up.cli.alive(), timeout=60, interval=0.005)
    assert up.cli.alive(), up.cli.tail(40)
    _two_sigterms(up.cli.pid)
    assert_all_gone(up, cli_exit=0)


def test_child_process_stop_reaches_its_whole_group_and_escalates(tmp_path: Path) -> None:
    """The helper's stop: SIGTERM to the group, SIGKILL for whatever ignores it."""
    script = "trap '' TERM; sleep 300 & echo $! > grandchild; wait"
    child = ChildProcess("stubborn", ["sh", "-c", script], tmp_path / "log", cwd=tmp_path)
    child.start().wait_ready(lambda: (tmp_path / "grandchild").is_file(), timeout=10)
    grandchild = int(eventually(lambda: (tmp_path / "grandchild").read_text().strip()))
    stat = _stat(grandchild)
    assert stat is not None
    assert child.stop(grace=0.5) == -signal.SIGKILL  # the shell ignored SIGTERM
    eventually(lambda: not running((grandchild, stat[1])), timeout=10)


def test_child_process_that_exits_is_not_ready(tmp_path: Path) -> None:
    child = ChildProcess("quitter", [sys.executable, "-c", "print('bye')"], tmp_path / "log")
    with pytest.raises(NotReady, match="quitter exited with code 0"):
        child.start().wait_ready(lambda: False, timeout=30)
    assert "bye" in child.logs()
