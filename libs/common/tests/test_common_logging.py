"""Structured JSON logs: request id, trace ids and extra fields on one line."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator

import pytest
from opentelemetry import trace

from switchyard_common.context import request_id_var
from switchyard_common.logging import JsonFormatter, configure_logging
from switchyard_common.telemetry import setup_tracing


def make_record(
    msg: str = "hello %s",
    args: tuple[object, ...] = ("world",),
    level: int = logging.INFO,
    extra: dict[str, object] | None = None,
    exc_info: object = None,
) -> logging.LogRecord:
    logger = logging.getLogger("switchyard.test")
    return logger.makeRecord(
        logger.name,
        level,
        __file__,
        1,
        msg,
        args,
        exc_info,
        extra=extra,  # type: ignore[arg-type]
    )


def render(record: logging.LogRecord, service: str = "svc") -> dict[str, object]:
    line = JsonFormatter(service).format(record)
    assert "\n" not in line
    return json.loads(line)


@pytest.fixture
def request_id() -> Iterator[str]:
    token = request_id_var.set("req-42")
    yield "req-42"
    request_id_var.reset(token)


def test_basic_fields() -> None:
    out = render(make_record(level=logging.WARNING), service="gateway")
    assert out["level"] == "warning"
    assert out["service"] == "gateway"
    assert out["msg"] == "hello world"
    assert out["logger"] == "switchyard.test"
    assert str(out["ts"]).endswith("Z")
    assert "request_id" not in out
    assert "trace_id" not in out
    # Standard LogRecord attributes are not dumped.
    for noise in ("args", "levelno", "pathname", "lineno", "msecs", "thread"):
        assert noise not in out


def test_request_id_from_contextvar(request_id: str) -> None:
    assert render(make_record())["request_id"] == request_id


def test_trace_and_span_ids_inside_a_span() -> None:
    setup_tracing("logtest", "0.0.1", None)
    tracer = trace.get_tracer("switchyard.logtest")
    with tracer.start_as_current_span("op") as span:
        out = render(make_record())
        ctx = span.get_span_context()
    assert ctx.is_valid
    assert out["trace_id"] == format(ctx.trace_id, "032x")
    assert out["span_id"] == format(ctx.span_id, "016x")
    assert len(str(out["trace_id"])) == 32
    assert len(str(out["span_id"])) == 16
    # Outside the span there are no trace ids.
    assert "trace_id" not in render(make_record())


def test_extra_fields_are_included_and_unserializable_values_stringified() -> None:
    class Thing:
        def __str__(self) -> str:
            return "a-thing"

    out = render(make_record(extra={"port": 8000, "model": "m1", "obj": Thing(), "_hidden": 1}))
    assert out["port"] == 8000
    assert out["model"] == "m1"
    assert out["obj"] == "a-thing"
    assert "_hidden" not in out


def test_exception_is_rendered() -> None:
    try:
        raise ValueError("kaboom")
    except ValueError:
        record = make_record(msg="failed", args=(), exc_info=sys.exc_info())
    out = render(record)
    assert out["msg"] == "failed"
    assert "ValueError: kaboom" in str(out["exc"])


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    access = logging.getLogger("uvicorn.access")
    saved_access = access.disabled
    httpx_level = logging.getLogger("httpx").level
    yield
    root.handlers[:], root.level = saved[0], saved[1]
    access.disabled = saved_access
    logging.getLogger("httpx").setLevel(httpx_level)


@pytest.mark.usefixtures("restore_logging")
def test_configure_logging_json(capsys: pytest.CaptureFixture[str], request_id: str) -> None:
    configure_logging("cfgtest", "DEBUG", json_logs=True)
    root = logging.getLogger()
    assert len(root.handlers) == 1
    assert isinstance(root.handlers[0].formatter, JsonFormatter)
    assert root.level == logging.DEBUG
    assert logging.getLogger("uvicorn.access").disabled is True
    assert logging.getLogger("httpx").level == logging.WARNING
    logging.getLogger("cfgtest.x").debug("ping", extra={"n": 1})
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    out = json.loads(lines[-1])
    assert out == out | {"service": "cfgtest", "msg": "ping", "n": 1, "request_id": request_id}


@pytest.mark.usefixtures("restore_logging")
def test_configure_logging_plain(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("plain", "INFO", json_logs=False)
    logging.getLogger("plain.x").info("hi there")
    logging.getLogger("plain.x").debug("not shown")
    err = capsys.readouterr().err
    assert "plain INFO hi there" in err
    assert "not shown" not in err
