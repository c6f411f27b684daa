"""One contract for the data-dir service skeletons (session, webhook): app, probes, settings.

A service's tests subclass :class:`ServiceAppContract` as ``Test<Name>App`` and set the class
attributes; pytest collects the subclass (this class's name does not start with ``Test``), and
its fixtures and tests run once per subclass.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError

from switchyard_common.settings import ServiceSettings


class ServiceAppContract:
    """What every data-dir service app does; subclasses say which service."""

    #: The service name: ``service_name``, the metrics prefix, the default data dir's last part.
    service: ClassVar[str]
    #: The env prefix of the service's settings, e.g. ``SWITCHYARD_SESSION_``.
    prefix: ClassVar[str]
    #: The service's settings class.
    settings_cls: ClassVar[type[ServiceSettings]]
    #: The service's ``create_app``; wrap it in ``staticmethod`` so it is not bound to the test.
    create_app: ClassVar[Callable[..., FastAPI]]
    #: The service's ``__main__`` module (it has ``main`` and ``serve``). Not a ClassVar:
    #: mypy reads a module assigned in a class body as an instance variable.
    main_module: ModuleType
    #: The port the settings default to.
    default_port: ClassVar[int]
    #: A port set via ``<prefix>PORT`` when reading the settings.
    env_port: ClassVar[int]
    #: A port set via ``<prefix>PORT`` when running ``__main__``.
    main_port: ClassVar[int]
    #: The ``x-request-id`` sent with a request to an unknown route.
    request_id: ClassVar[str]
    #: Readiness checks the service adds beside ``data_dir`` (all pass in these tests).
    extra_checks: ClassVar[tuple[str, ...]] = ()

    def checks(self, data_dir: bool) -> dict[str, bool]:
        """The readiness report's checks, with the data dir's as given."""
        return {"data_dir": data_dir, **dict.fromkeys(self.extra_checks, True), "accepting": True}

    def settings(self, **values: Any) -> Any:
        """The service's settings; typed ``Any``, as ``data_dir`` is not on the base class."""
        return self.settings_cls(**values)

    @pytest.fixture(autouse=True)
    def isolate(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
        """create_app reconfigures the root logger; put it back, and keep env from leaking in."""
        for name in ("PORT", "DATA_DIR", "LOG_LEVEL", "HOST", "SERVICE_NAME"):
            monkeypatch.delenv(self.prefix + name, raising=False)
        root = logging.getLogger()
        saved = (root.handlers[:], root.level)
        yield
        root.handlers[:], root.level = saved

    @pytest.fixture
    def data_dir(self, tmp_path: Path) -> Path:
        return tmp_path / "state" / self.service

    @pytest.fixture
    def client(self, data_dir: Path) -> Iterator[TestClient]:
        with TestClient(self.create_app(self.settings(data_dir=data_dir))) as c:
            yield c

    def test_lifespan_creates_data_dir(self, client: TestClient, data_dir: Path) -> None:
        assert data_dir.is_dir()
        # The readiness probe leaves nothing behind.
        client.get("/readyz")
        assert list(data_dir.iterdir()) == []

    def test_healthz(self, client: TestClient) -> None:
        r = client.get("/healthz")
        assert r.status_code == 200
        assert r.json() == {"status": "ok"}

    def test_readyz_ready_with_data_dir_check(self, client: TestClient) -> None:
        r = client.get("/readyz")
        assert r.status_code == 200
        assert r.json() == {"status": "ready", "checks": self.checks(data_dir=True)}

    def test_readyz_not_ready_when_data_dir_unwritable(
        self, client: TestClient, data_dir: Path
    ) -> None:
        assert client.get("/readyz").status_code == 200
        shutil.rmtree(data_dir)
        data_dir.write_text("not a directory any more")
        r = client.get("/readyz")
        assert r.status_code == 503
        assert r.json() == {"status": "not_ready", "checks": self.checks(data_dir=False)}

    def test_readyz_recovers_when_data_dir_is_back(
        self, client: TestClient, data_dir: Path
    ) -> None:
        shutil.rmtree(data_dir)
        assert client.get("/readyz").status_code == 503
        data_dir.mkdir()
        assert client.get("/readyz").status_code == 200

    def test_readyz_not_ready_after_shutdown(self, data_dir: Path) -> None:
        client = TestClient(self.create_app(self.settings(data_dir=data_dir)))
        with client:
            assert client.get("/readyz").status_code == 200
        r = client.get("/readyz")
        assert r.status_code == 503
        assert r.json()["checks"]["accepting"] is False

    def test_metrics(self, client: TestClient) -> None:
        client.get("/nope")
        r = client.get("/metrics")
        assert r.status_code == 200
        assert f"# TYPE switchyard_{self.service}_http_requests_total counter" in r.text
        labels = 'method="GET",route="unmatched",status="404"'
        assert f"switchyard_{self.service}_http_requests_total{{{labels}}} 1.0" in r.text

    def test_unknown_route_is_openai_error_with_request_id(self, client: TestClient) -> None:
        r = client.get("/v1/nothing", headers={"x-request-id": self.request_id})
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "not_found"
        assert r.headers["x-request-id"] == self.request_id

    def test_settings_defaults(self) -> None:
        s = self.settings()
        assert s.service_name == self.service
        assert s.port == self.default_port
        assert s.data_dir == Path(f"./.switchyard/{self.service}")

    def test_settings_read_env(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        monkeypatch.setenv(self.prefix + "PORT", str(self.env_port))
        monkeypatch.setenv(self.prefix + "DATA_DIR", str(tmp_path / "from-env"))
        monkeypatch.setenv("SWITCHYARD_PORT", "1")  # the base prefix is not used
        s = self.settings()
        assert s.port == self.env_port
        assert s.data_dir == tmp_path / "from-env"

    def test_settings_validate_and_are_frozen(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(self.prefix + "PORT", "70000")
        with pytest.raises(ValidationError):
            self.settings()
        monkeypatch.delenv(self.prefix + "PORT")
        s = self.settings()
        with pytest.raises(ValidationError):
            s.port = 1

    def test_create_app_without_settings_reads_env(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.setenv(self.prefix + "DATA_DIR", str(tmp_path / "env-dir"))
        app = self.create_app()
        assert app.state.settings.data_dir == tmp_path / "env-dir"
        with TestClient(app) as c:
            assert c.get("/readyz").status_code == 200
        assert (tmp_path / "env-dir").is_dir()

    def test_main_serves_with_env_settings(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.setenv(self.prefix + "PORT", str(self.main_port))
        monkeypatch.setenv(self.prefix + "DATA_DIR", str(tmp_path / "d"))
        calls = []
        monkeypatch.setattr(
            self.main_module, "serve", lambda factory, s: calls.append((factory(), s))
        )
        self.main_module.main()
        ((app, settings),) = calls
        assert settings.port == self.main_port
        assert app.state.settings is settings
