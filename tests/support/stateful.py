"""The stateful platform for the Conversations and Responses tests: a real session service
on real PostgreSQL, a gateway in front of it and of the real model-worker, and API keys of
two tenants.

The root conftest registers the fixtures (``stateful``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from switchyard_gateway.keys import hash_key
from tests.support.postgres import PostgresServer
from tests.support.procs import ServiceProcess, free_port

MODEL = "smollm2-135m-instruct"
KEY = "sk-stateful-" + "a" * 20
ADMIN_KEY = "sk-stateful-admin-" + "b" * 16
SESSION_TOKEN = "session-internal-" + "c" * 16
GATEWAY_MODULE = "switchyard_gateway"


@dataclass
class Stateful:
    gateway: ServiceProcess
    session: ServiceProcess
    other_key: str  # a key of another tenant

    def client(self, key: str = KEY) -> OpenAI:
        return OpenAI(base_url=f"{self.gateway.url}/v1", api_key=key, max_retries=0)


def start_session(tmp: Path, database_url: str) -> ServiceProcess:
    env = {
        "SWITCHYARD_SESSION_DATABASE_URL": database_url,
        "SWITCHYARD_SESSION_DATA_DIR": str(tmp / "session"),
        "SWITCHYARD_SESSION_INTERNAL_TOKEN": SESSION_TOKEN,
    }
    migrated = subprocess.run(
        [sys.executable, "-m", "switchyard_session", "migrate"],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert migrated.returncode == 0, migrated.stderr
    port = free_port()
    env["SWITCHYARD_SESSION_PORT"] = str(port)
    return ServiceProcess("switchyard_session", env, tmp / "session.log", port).wait_ready(60)


def start_stateful_gateway(
    tmp: Path,
    worker_url: str,
    session_url: str,
    extra_workers: tuple[str, ...] | list[str] = (),
    env: dict[str, str] | None = None,
    port: int | None = None,
) -> ServiceProcess:
    port = port or free_port()
    workers = [{"url": url} for url in (worker_url, *extra_workers)]
    env = (env or {}) | {
        "SWITCHYARD_GATEWAY_PORT": str(port),
        "SWITCHYARD_GATEWAY_STATIC_WORKERS": json.dumps(workers),
        "SWITCHYARD_GATEWAY_API_KEY_HASHES": json.dumps([hash_key(KEY)]),
        "SWITCHYARD_GATEWAY_ADMIN_KEY_HASHES": json.dumps([hash_key(ADMIN_KEY)]),
        "SWITCHYARD_GATEWAY_KEYS_FILE": str(tmp / f"keys-{port}.json"),
        "SWITCHYARD_GATEWAY_SESSION_URL": session_url,
        "SWITCHYARD_GATEWAY_SESSION_TOKEN": SESSION_TOKEN,
        # Two cores shared by every test: a long prompt may wait for the CPU.
        "SWITCHYARD_GATEWAY_FIRST_BYTE_TIMEOUT_SECONDS": "300",
    }
    return ServiceProcess(GATEWAY_MODULE, env, tmp / f"gateway-{port}.log", port).wait_ready(120)


@pytest.fixture(scope="session")
def stateful(
    worker: ServiceProcess,
    postgres_server: PostgresServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stateful]:
    tmp = tmp_path_factory.mktemp("stateful")
    session = start_session(tmp, postgres_server.create_database())
    try:
        gateway = start_stateful_gateway(tmp, worker.url, session.url)
    except BaseException:
        session.stop()
        raise
    try:
        created = httpx.post(
            f"{gateway.url}/admin/v1/keys",
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            json={"name": "other", "tenant": "other-tenant"},
        )
        assert created.status_code == 201, created.text
        yield Stateful(gateway, session, created.json()["key"])
    finally:
        gateway.stop()
        session.stop()
