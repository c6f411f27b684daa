"""``switchyard up``: key handling, readiness, and a clean stop on SIGTERM."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from switchyard_cli.config import CliSettings
from switchyard_cli.keys import dev_key
from tests.fakes.waiting import eventually
from tests.support.fixtures import start_platform, stop_platform
from tests.support.procs import free_port


def test_generated_key_is_stored_printed_and_accepted_then_sigterm_stops_all(
    tmp_path: Path,
) -> None:
    platform = start_platform(tmp_path, api_key=None)
    try:
        key_file = platform.data_dir / "api-key"
        key = key_file.read_text().strip()
        assert key.startswith("sk-sy-")
        assert oct(key_file.stat().st_mode & 0o777) == "0o600"
        # The gateway is given only a digest of it, and never writes it down.
        for path in (platform.data_dir / "gateway").rglob("*"):
            assert key not in path.read_text(errors="replace")
        ok = httpx.get(f"{platform.base_url}/models", headers={"Authorization": f"Bearer {key}"})
        assert ok.status_code == 200
        eventually(lambda: key in platform.logs(), timeout=5)  # the banner is printed last
        assert f"curl {platform.gateway}/v1/chat/completions" in platform.logs()
    finally:
        code = stop_platform(platform)
    assert code == 0
    for url in (platform.gateway, platform.worker, platform.session, platform.webhook):
        try:
            httpx.get(f"{url}/healthz", timeout=0.5)
        except httpx.ConnectError:
            continue
        raise AssertionError(f"{url} still answers after switchyard up stopped")


def test_startup_failure_is_reported_and_nothing_is_left_running(tmp_path: Path) -> None:
    busy = free_port()
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", busy))
        blocker.listen()
        env = {k: v for k, v in os.environ.items() if k != "SWITCHYARD_API_KEY"}
        result = subprocess.run(
            [sys.executable, "-m", "switchyard_cli.main", "up", "--data-dir", str(tmp_path),
             "--api-key", "k", "--session-port", str(busy), "--worker-port", str(free_port()),
             "--webhook-port", str(free_port()), "--port", str(free_port()),
             "--embeddings-port", str(free_port()),
             "--ready-timeout", "60"],
            capture_output=True, text=True, timeout=120, env=env,
        )  # fmt: skip
    assert result.returncode == 1
    assert "session exited" in result.stderr
    assert "Switchyard is up" not in result.stdout


def test_key_from_env_wins_over_stored_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHYARD_API_KEY", "from-env")
    api_key = CliSettings().api_key
    assert api_key is not None and api_key.get_secret_value() == "from-env"
    assert "from-env" not in repr(CliSettings())
    key, source = dev_key(tmp_path, api_key.get_secret_value())
    assert (key, source) == ("from-env", "given")
    assert not (tmp_path / "api-key").exists()
    generated, source = dev_key(tmp_path, None)
    assert source.startswith("generated")
    assert dev_key(tmp_path, None) == (generated, f"stored in {tmp_path / 'api-key'}")
