"""A throwaway real Redis server (Debian's ``redis-server``) for tests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
import redis

from switchyard_cli.processes import ChildProcess
from tests.support.procs import free_port

MISSING = (
    "redis-server is not installed: the tests start throwaway Redis servers. Install the "
    "Debian package redis-server (scripts/bootstrap does, as `make test` runs it)."
)


def redis_binary() -> str:
    """The path of redis-server, or an error that names the package to install."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError(MISSING)
    return binary


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = redis_binary()
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    server = ChildProcess(
        "redis-server",
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        workdir / "redis.log",
    ).start()  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        server.wait_ready(lambda: _answers(client), timeout=10, interval=0.05)
        yield url
    finally:
        client.close()
        server.stop(grace=10)
