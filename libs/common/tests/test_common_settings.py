"""ServiceSettings: env prefixes, defaults, validation and immutability."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict

from switchyard_common.settings import ServiceSettings


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHYARD_DEMO_")
    service_name: str = "demo"
    flavour: str = "plain"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PORT", "LOG_LEVEL", "LOG_JSON", "FLAVOUR", "OTLP_ENDPOINT", "HOST"):
        monkeypatch.delenv(f"SWITCHYARD_DEMO_{name}", raising=False)
        monkeypatch.delenv(f"SWITCHYARD_{name}", raising=False)


def test_defaults() -> None:
    s = DemoSettings()
    assert s.service_name == "demo"
    assert s.port == 8000
    assert s.host == "127.0.0.1"
    assert s.log_level == "INFO"
    assert s.log_json is True
    assert s.otlp_endpoint is None
    assert s.shutdown_grace_seconds == 20.0
    assert s.instance_id  # hostname by default


def test_subclass_env_prefix_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHYARD_DEMO_PORT", "9001")
    monkeypatch.setenv("SWITCHYARD_DEMO_FLAVOUR", "spicy")
    monkeypatch.setenv("SWITCHYARD_DEMO_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("SWITCHYARD_DEMO_LOG_JSON", "false")
    s = DemoSettings()
    assert s.port == 9001
    assert s.flavour == "spicy"
    assert s.log_level == "DEBUG"
    assert s.log_json is False


def test_base_prefix_does_not_leak_into_subclass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHYARD_PORT", "1234")
    assert DemoSettings().port == 8000
    assert ServiceSettings().port == 1234


def test_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    s = DemoSettings()
    with pytest.raises(ValidationError):
        s.port = 1  # type: ignore[misc]
    assert s.port == 8000


def test_unknown_env_vars_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHYARD_DEMO_NOT_A_FIELD", "x")
    assert not hasattr(DemoSettings(), "not_a_field")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "70000"),
        ("PORT", "-1"),
        ("LOG_LEVEL", "TRACE"),
        ("SHUTDOWN_GRACE_SECONDS", "-5"),
    ],
)
def test_invalid_env_values_rejected(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(f"SWITCHYARD_DEMO_{name}", value)
    with pytest.raises(ValidationError):
        DemoSettings()


def test_constructor_kwargs_override_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHYARD_DEMO_PORT", "9001")
    assert DemoSettings(port=9002).port == 9002
