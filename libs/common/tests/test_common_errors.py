"""Typed errors and the handlers that turn every failure into OpenAI's error JSON."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from pydantic import BaseModel
from pydantic_settings import SettingsConfigDict

from switchyard_common.app import create_service_app
from switchyard_common.disconnect import ClientDisconnectedError
from switchyard_common.errors import (
    AuthenticationError,
    InternalError,
    InvalidRequestError,
    ModelNotFoundError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    RateLimitError,
    ServiceUnavailableError,
    SwitchyardError,
    UpstreamError,
    UpstreamTimeoutError,
    validation_error_from,
)
from switchyard_common.settings import ServiceSettings


class ErrSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHYARD_ERRTEST_")
    service_name: str = "errtest"


class Item(BaseModel):
    name: str
    price: float


# (error instance, status, type, code, param)
CASES: list[tuple[SwitchyardError, int, str, str | None, str | None]] = [
    (InvalidRequestError("bad", param="x"), 400, "invalid_request_error", None, "x"),
    (AuthenticationError("no key"), 401, "invalid_request_error", "invalid_api_key", None),
    (PermissionDeniedError("nope"), 403, "invalid_request_error", "permission_denied", None),
    (NotFoundError("gone"), 404, "invalid_request_error", "not_found", None),
    (ModelNotFoundError("gpt-x"), 404, "invalid_request_error", "model_not_found", "model"),
    (RateLimitError("slow down"), 429, "rate_limit_exceeded", "rate_limit_exceeded", None),
    (OverloadedError("busy"), 503, "server_error", "overloaded", None),
    (UpstreamError("bad gw"), 502, "server_error", "upstream_error", None),
    (ServiceUnavailableError("down"), 503, "server_error", "service_unavailable", None),
    (UpstreamTimeoutError("slow"), 504, "server_error", "upstream_timeout", None),
    (InternalError("oops"), 500, "server_error", "internal_error", None),
    (ClientDisconnectedError("bye"), 499, "invalid_request_error", "client_disconnected", None),
]


def build_client() -> TestClient:
    router = APIRouter()

    @router.get("/raise/{index}")
    async def raise_case(index: int) -> None:
        raise CASES[index][0]

    @router.post("/items")
    async def create_item(item: Item) -> dict[str, str]:
        return {"name": item.name}

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret-db-password=hunter2")

    app = create_service_app(ErrSettings(), routers=[router], configure_logs=False)
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with build_client() as c:
        yield c


def assert_error_shape(body: dict[str, object]) -> dict[str, object]:
    assert set(body) == {"error"}
    error = body["error"]
    assert isinstance(error, dict)
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    return error


@pytest.mark.parametrize(
    ("index", "case"), list(enumerate(CASES)), ids=[type(c[0]).__name__ for c in CASES]
)
def test_typed_error_maps_to_status_and_body(client: TestClient, index: int, case: tuple) -> None:
    exc, status, kind, code, param = case
    r = client.get(f"/raise/{index}")
    assert r.status_code == status
    assert r.headers["content-type"] == "application/json"
    error = assert_error_shape(r.json())
    assert error == {"message": exc.message, "type": kind, "param": param, "code": code}


def test_explicit_code_overrides_default() -> None:
    exc = NotFoundError("gone", code="thing_missing", param="id")
    assert exc.body()["error"]["code"] == "thing_missing"
    assert exc.body()["error"]["param"] == "id"
    assert exc.to_response().status_code == 404


def test_model_not_found_names_the_model() -> None:
    exc = ModelNotFoundError("llama-9000")
    assert "'llama-9000'" in exc.message
    assert exc.param == "model"


def test_overloaded_error_carries_retry_after(client: TestClient) -> None:
    index = next(i for i, c in enumerate(CASES) if isinstance(c[0], OverloadedError))
    r = client.get(f"/raise/{index}")
    assert r.status_code == 503
    assert r.headers["retry-after"] == "1"


@pytest.mark.parametrize(("retry_after", "header"), [(0.0, "1"), (0.2, "1"), (3.4, "3"), (7, "7")])
def test_overloaded_retry_after_is_whole_seconds_at_least_one(
    retry_after: float, header: str
) -> None:
    response = OverloadedError("busy", retry_after=retry_after).to_response()
    assert response.headers["retry-after"] == header


def test_overloaded_status_can_be_overridden() -> None:
    exc = OverloadedError("queue full", retry_after=2, status_code=429)
    assert exc.status_code == 429
    assert exc.to_response().status_code == 429
    # The class default is untouched.
    assert OverloadedError.status_code == 503


def test_missing_body_field_is_400_with_param(client: TestClient) -> None:
    r = client.post("/items", json={"name": "widget"})
    assert r.status_code == 400
    error = assert_error_shape(r.json())
    assert error["type"] == "invalid_request_error"
    assert error["param"] == "price"
    assert error["code"] == "missing_required_parameter"
    assert "'price'" in error["message"]


def test_wrong_type_is_400_with_param(client: TestClient) -> None:
    r = client.post("/items", json={"name": "widget", "price": "not-a-number"})
    assert r.status_code == 400
    error = assert_error_shape(r.json())
    assert error["param"] == "price"
    assert error["code"] == "invalid_value"
    assert error["message"].startswith("Invalid value for 'price':")


def test_wrong_path_param_type_is_400_with_param(client: TestClient) -> None:
    r = client.get("/raise/not-an-int")
    assert r.status_code == 400
    error = assert_error_shape(r.json())
    assert error["param"] == "index"
    assert error["code"] == "invalid_value"


def test_malformed_json_is_400_invalid_json(client: TestClient) -> None:
    r = client.post(
        "/items", content=b'{"name": "widget",', headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    error = assert_error_shape(r.json())
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "invalid_json"
    assert error["param"] is None
    assert error["message"].startswith("We could not parse the JSON body")


def test_validation_error_from_nested_loc_and_empty_list() -> None:
    nested = validation_error_from(
        [{"loc": ("body", "messages", 0, "role"), "type": "literal_error", "msg": "bad role"}]
    )
    assert nested.param == "messages.0.role"
    assert nested.message == "Invalid value for 'messages.0.role': bad role."
    empty = validation_error_from([])
    assert empty.status_code == 400
    assert empty.code == "invalid_request"
    no_detail = validation_error_from([{"loc": ("body",), "type": "json_invalid"}])
    assert no_detail.message == "We could not parse the JSON body of your request."


def test_unknown_route_is_404_in_openai_shape(client: TestClient) -> None:
    r = client.get("/does/not/exist")
    assert r.status_code == 404
    error = assert_error_shape(r.json())
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "not_found"


def test_wrong_method_is_405_in_openai_shape(client: TestClient) -> None:
    r = client.delete("/items")
    assert r.status_code == 405
    error = assert_error_shape(r.json())
    assert error["code"] == "method_not_allowed"
    assert "POST" in r.headers["allow"]


def test_unhandled_exception_is_generic_500(client: TestClient) -> None:
    r = client.get("/boom")
    assert r.status_code == 500
    error = assert_error_shape(r.json())
    assert error["type"] == "server_error"
    assert error["code"] == "internal_error"
    assert "hunter2" not in r.text
    assert "RuntimeError" not in r.text
    assert "secret" not in r.text


def test_unhandled_exception_is_counted_as_500_under_route_template(client: TestClient) -> None:
    client.get("/boom")
    metrics = client.get("/metrics").text
    assert 'route="/boom",status="500"' in metrics


def test_unhandled_exception_response_echoes_request_id(client: TestClient) -> None:
    r = client.get("/boom", headers={"x-request-id": "trace-me"})
    assert r.headers.get("x-request-id") == "trace-me"


def test_missing_body_message_does_not_say_none(client: TestClient) -> None:
    r = client.post("/items")
    assert r.status_code == 400
    assert "'None'" not in r.json()["error"]["message"]
