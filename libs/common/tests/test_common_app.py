"""The service app factory: health, readiness, metrics and request ids."""

from __future__ import annotations

import asyncio
import re
from contextlib import asynccontextmanager

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from opentelemetry import trace
from pydantic_settings import SettingsConfigDict

from switchyard_common.app import create_service_app
from switchyard_common.context import request_id_var
from switchyard_common.settings import ServiceSettings

HEX32 = re.compile(r"^[0-9a-f]{32}$")


class AppSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHYARD_APPTEST_")
    service_name: str = "app-test"


def make_app() -> FastAPI:
    router = APIRouter()

    @router.get("/items/{item_id}")
    async def get_item(item_id: str) -> dict[str, str | None]:
        return {"item_id": item_id, "request_id": request_id_var.get()}

    @router.get("/trace")
    async def current_trace() -> dict[str, str]:
        ctx = trace.get_current_span().get_span_context()
        return {"trace_id": format(ctx.trace_id, "032x")}

    return create_service_app(AppSettings(), routers=[router], configure_logs=False)


def counter_lines(client: TestClient) -> list[str]:
    text = client.get("/metrics").text
    return [
        line
        for line in text.splitlines()
        if line.startswith("switchyard_app_test_http_requests_total{")
    ]


def test_state_holds_settings_registry_and_readiness() -> None:
    app = make_app()
    assert isinstance(app.state.settings, AppSettings)
    assert app.state.readiness.draining is False
    assert app.title == "switchyard app-test"


def test_healthz() -> None:
    with TestClient(make_app()) as client:
        r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_readyz_ready_when_checks_pass() -> None:
    app = make_app()

    async def ok() -> bool:
        return True

    app.state.readiness.add_check("db", ok)
    with TestClient(app) as client:
        r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ready", "checks": {"db": True, "accepting": True}}


async def _false() -> bool:
    return False


async def _raises() -> bool:
    raise ConnectionError("db down")


async def _hangs() -> bool:
    await asyncio.sleep(30)
    return True


@pytest.mark.parametrize("check", [_false, _raises, _hangs], ids=["false", "raises", "timeout"])
def test_readyz_503_names_the_failing_check(check, monkeypatch: pytest.MonkeyPatch) -> None:
    app = make_app()
    monkeypatch.setattr(app.state.readiness, "_timeout", 0.05)

    async def ok() -> bool:
        return True

    app.state.readiness.add_check("cache", ok)
    app.state.readiness.add_check("db", check)
    with TestClient(app) as client:
        r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json() == {
        "status": "not_ready",
        "checks": {"cache": True, "db": False, "accepting": True},
    }


def test_readyz_not_ready_after_shutdown() -> None:
    app = make_app()
    client = TestClient(app)
    with client:
        assert client.get("/readyz").status_code == 200
    assert app.state.readiness.draining is True
    r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json() == {"status": "not_ready", "checks": {"accepting": False}}


def test_service_lifespan_runs_inside_wrapper() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        events.append("start")
        app.state.readiness.add_check("own", _false)
        yield
        events.append(f"stop draining={app.state.readiness.draining}")

    app = create_service_app(AppSettings(), lifespan=lifespan, configure_logs=False)
    with TestClient(app) as client:
        assert client.get("/readyz").json()["checks"]["own"] is False
    # Draining is already set when the service's own shutdown code runs.
    assert events == ["start", "stop draining=True"]
    assert app.state.readiness.draining is True


def test_metrics_labelled_by_route_template() -> None:
    with TestClient(make_app()) as client:
        client.get("/items/1")
        client.get("/items/2")
        client.get("/items/3")
        client.get("/nope/xyz")
        lines = counter_lines(client)
        text = client.get("/metrics").text
    counter = "switchyard_app_test_http_requests_total"
    assert f'{counter}{{method="GET",route="/items/{{item_id}}",status="200"}} 3.0' in lines
    assert f'{counter}{{method="GET",route="unmatched",status="404"}} 1.0' in lines
    assert "/items/1" not in text
    assert "/nope/xyz" not in text
    # Probe endpoints are not counted.
    assert not any('route="/healthz"' in line or 'route="/metrics"' in line for line in lines)
    assert "switchyard_app_test_http_request_duration_seconds_bucket" in text
    assert "switchyard_app_test_http_requests_in_flight 0.0" in text


def test_metrics_content_type_is_prometheus() -> None:
    with TestClient(make_app()) as client:
        r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")


def test_each_app_has_its_own_registry() -> None:
    with TestClient(make_app()) as a, TestClient(make_app()) as b:
        a.get("/items/1")
        assert len(counter_lines(a)) == 1
        assert counter_lines(b) == []


@pytest.mark.parametrize("rid", ["req-123", "abc.DEF_42", "x" * 128])
def test_valid_request_id_is_echoed(rid: str) -> None:
    with TestClient(make_app()) as client:
        r = client.get("/items/1", headers={"x-request-id": rid})
    assert r.headers["x-request-id"] == rid
    assert r.json()["request_id"] == rid


@pytest.mark.parametrize(
    "rid", [None, "", "has space", "semi;colon", "../etc", "---", "x" * 129], ids=repr
)
def test_missing_or_invalid_request_id_is_generated(rid: str | None) -> None:
    headers = {} if rid is None else {"x-request-id": rid}
    with TestClient(make_app()) as client:
        r = client.get("/items/1", headers=headers)
    generated = r.headers["x-request-id"]
    assert HEX32.match(generated)
    assert generated != rid
    assert r.json()["request_id"] == generated


def test_request_id_on_error_responses_and_probes() -> None:
    with TestClient(make_app()) as client:
        assert client.get("/nope", headers={"x-request-id": "r1"}).headers["x-request-id"] == "r1"
        assert HEX32.match(client.get("/healthz").headers["x-request-id"])


def test_generated_request_ids_differ() -> None:
    with TestClient(make_app()) as client:
        ids = {client.get("/healthz").headers["x-request-id"] for _ in range(5)}
    assert len(ids) == 5


def test_incoming_traceparent_continues_the_trace() -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    headers = {"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}
    with TestClient(make_app()) as client:
        continued = client.get("/trace", headers=headers).json()["trace_id"]
        fresh = client.get("/trace").json()["trace_id"]
    assert continued == trace_id
    assert HEX32.match(fresh)
    assert fresh not in (trace_id, "0" * 32)
