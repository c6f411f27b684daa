"""A throwaway real PostgreSQL 15 server (Debian's ``postgresql`` package) for tests.

``postgres_server`` (session scope) starts one server on a free port of 127.0.0.1 with trust
auth; ``postgres_server.create_database(name)`` gives a fresh database's SQLAlchemy asyncpg
URL. ``postgres_url`` (module scope) is a fresh database per test module. ``stop()`` and
``start()`` restart the same server on the same port and data, for restart tests.

initdb and pg_ctl refuse to run as root: as root they run as the ``postgres`` user (via
``runuser``) in a temporary directory that user owns.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.procs import free_port

BIN_DIR = Path("/usr/lib/postgresql/15/bin")
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PostgresServer:
    """One PostgreSQL server in its own temporary directory, reachable on 127.0.0.1:port."""

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.port = port
        self.data_dir = root / "data"
        self.log_path = root / "server.log"
        self.host = "127.0.0.1"
        self.user = "postgres"

    def _run(self, *args: str) -> None:
        """Run a server binary, as the postgres user when we are root."""
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        result = subprocess.run(
            [*prefix, *args], capture_output=True, text=True, timeout=60, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args[:2])} failed ({result.returncode}):\n{result.stdout}\n"
                f"{result.stderr}\n{self.logs()}"
            )

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def init(self) -> None:
        self._run(str(BIN_DIR / "initdb"), "-D", str(self.data_dir), "-U", self.user,
                  "--auth=trust", "--encoding=UTF8", "--no-sync")  # fmt: skip

    def start(self) -> None:
        """Start (or restart after ``stop``) on the same port and data; returns when ready."""
        options = (
            f"-p {self.port} -c listen_addresses={self.host} -k {self.root} "
            "-c fsync=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(str(BIN_DIR / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(self.data_dir),
                  "-l", str(self.log_path), "-o", options)  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` (clean shutdown) or ``immediate`` (like a crash)."""
        self._run(str(BIN_DIR / "pg_ctl"), "stop", "-w", "-D", str(self.data_dir), "-m", mode)

    def url(self, database: str) -> str:
        """The SQLAlchemy asyncpg URL of one database on this server."""
        return f"postgresql+asyncpg://{self.user}@{self.host}:{self.port}/{database}"

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run one SQL statement with psql; returns its unaligned output."""
        result = subprocess.run(
            ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", self.host,
             "-p", str(self.port), "-U", self.user, "-d", database, "-c", statement],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr.strip()}")
        return result.stdout

    def create_database(self, name: str | None = None) -> str:
        """Create a fresh, empty database (a random name if none) and return its URL."""
        name = name or f"db_{secrets.token_hex(6)}"
        if not _NAME.match(name):
            raise ValueError(f"not a plain database name: {name!r}")
        self.sql(f'CREATE DATABASE "{name}"')
        return self.url(name)


def start_postgres() -> PostgresServer:
    """Start a throwaway server; the caller stops it and removes ``server.root``."""
    if not (BIN_DIR / "initdb").exists() or shutil.which("psql") is None:
        raise RuntimeError(
            f"PostgreSQL 15 is not installed at {BIN_DIR} (apt-get install postgresql)"
        )
    root = Path(tempfile.mkdtemp(prefix="switchyard-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    server = PostgresServer(root, free_port())
    try:
        server.init()
        server.start()
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = start_postgres()
    try:
        yield server
    finally:
        with contextlib.suppress(RuntimeError):  # already stopped by a test
            server.stop("immediate")
        shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh database for this test module."""
    return postgres_server.create_database()
