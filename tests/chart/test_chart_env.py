"""Every environment variable the chart sets is a real settings field of the service it is set
on, derived from the settings classes, so a renamed setting fails here."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel
from pydantic_settings import BaseSettings

from tests.chart.conftest import rendered_scenario
from tests.chart.render import SCENARIOS, Rendered


def _settings_classes() -> dict[str, type[BaseSettings]]:
    from switchyard_gateway.config import GatewaySettings
    from switchyard_model_worker.config import WorkerSettings
    from switchyard_session.config import SessionSettings
    from switchyard_webhook.config import WebhookSettings

    classes: list[type[BaseSettings]] = [
        GatewaySettings,
        WorkerSettings,
        SessionSettings,
        WebhookSettings,
    ]
    return {c.model_config["env_prefix"]: c for c in classes}


def env_names(cls: type[BaseModel], prefix: str) -> set[str]:
    """PREFIX_FIELD for every field, and PREFIX_FIELD__SUB for the fields of nested models."""
    names = set()
    for name, info in cls.model_fields.items():
        names.add(f"{prefix}{name.upper()}")
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= env_names(annotation, f"{prefix}{name.upper()}__")
    return names


# Downward-API helpers other variables expand with $(NAME); nothing else may lack the prefix.
HELPERS = {"HOST_IP"}
# Downward-API variables switchyard_common.telemetry reads itself (no settings fields).
TELEMETRY = {"K8S_POD_NAME", "K8S_NAMESPACE_NAME"}
ENGINE_CONTAINERS = {"engine", "chat"}  # vLLM/TGI/llama.cpp server, the helm test's curl


def container_env(r: Rendered, pod: dict[str, Any], c: dict[str, Any]) -> dict[str, str | None]:
    """Name -> literal value (None for values from a Secret or the Downward API)."""
    env: dict[str, str | None] = {}
    for src in c.get("envFrom", []):
        cm = r.get("ConfigMap", src["configMapRef"]["name"])
        assert cm is not None, src
        env.update(cm["data"])
    for e in c.get("env", []):
        env[e["name"]] = e.get("value")
    return env


def switchyard_containers(r: Rendered):
    for owner, pod in r.pod_templates():
        for c in pod["spec"]["containers"]:
            if c["name"] not in ENGINE_CONTAINERS:
                yield owner, pod, c


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_env_vars_are_settings_fields(scenario: str) -> None:
    r = rendered_scenario(scenario)
    classes = _settings_classes()
    seen = 0
    for owner, pod, c in switchyard_containers(r):
        env = container_env(r, pod, c)
        prefixes = {p for p in classes if any(n.startswith(p) for n in env)}
        assert len(prefixes) == 1, (owner["metadata"]["name"], prefixes)
        (prefix,) = prefixes
        known = env_names(classes[prefix], prefix)
        for name, value in env.items():
            if name in HELPERS:
                assert any(f"$({name})" in (v or "") for v in env.values()), f"{name} unused"
                continue
            if name in TELEMETRY:
                assert value is None, f"{name}: from the Downward API"
                continue
            where = f"{owner['metadata']['name']}/{c['name']}"
            assert name in known, f"{where}: {name} is no setting of {classes[prefix].__name__}"
            seen += 1
        # The literal values parse as the service's settings (types, enums, JSON lists).
        literal = {
            k: v.replace("$(HOST_IP)", "10.0.0.1")
            for k, v in env.items()
            if v is not None and k not in HELPERS | TELEMETRY
        }
        settings = _settings_from(classes[prefix], literal)
        if owner["kind"] == "Deployment":
            assert settings.host == "0.0.0.0"
            ports = {p["name"]: p["containerPort"] for p in pod["spec"]["containers"][0]["ports"]}
            assert (settings.port, settings.internal_port) == (ports["http"], ports["internal"])
    assert seen > 20


def _settings_from(cls: type[BaseSettings], env: dict[str, str]) -> Any:
    """Settings from exactly these variables (nothing from the test's own environment)."""
    import os
    from unittest import mock

    with mock.patch.dict(os.environ, env, clear=True):
        return cls()


def test_a_renamed_setting_would_fail() -> None:
    from switchyard_gateway.config import GatewaySettings

    names = env_names(GatewaySettings, "SWITCHYARD_GATEWAY_")
    assert "SWITCHYARD_GATEWAY_KUBERNETES__PORT_NAME" in names
    assert "SWITCHYARD_GATEWAY_CONSUL__ADDRESS" in names
    assert "SWITCHYARD_GATEWAY_ROUTING" not in names


def test_worker_settings_follow_the_pool() -> None:
    r = rendered_scenario("gpu-pools")
    cm = r.get("ConfigMap", "rel-switchyard-model-worker-llama-8b")["data"]
    assert cm["SWITCHYARD_MODEL_WORKER_BACKEND"] == "openai-compatible"
    assert cm["SWITCHYARD_MODEL_WORKER_ENGINE_URL"] == "http://127.0.0.1:8000"
    assert cm["SWITCHYARD_MODEL_WORKER_MODEL_NAME"] == "llama-3.1-8b-instruct"
    assert cm["SWITCHYARD_MODEL_WORKER_REGISTRATION__GPU_COUNT"] == "1"
    # TGI answers under its own name: the worker asks its /v1/models instead.
    tgi = rendered_scenario("multi-model").get("ConfigMap", "rel-switchyard-model-worker-mistral")[
        "data"
    ]
    assert "SWITCHYARD_MODEL_WORKER_ENGINE_MODEL" not in tgi
    assert tgi["SWITCHYARD_MODEL_WORKER_ENGINE_HEALTH_PATH"] == "/health"
    gguf = r.get("ConfigMap", "rel-switchyard-model-worker-qwen-gguf")["data"]
    assert gguf["SWITCHYARD_MODEL_WORKER_N_GPU_LAYERS"] == "-1"
    cpu = r.get("ConfigMap", "rel-switchyard-model-worker-cpu")["data"]
    assert cpu["SWITCHYARD_MODEL_WORKER_BACKEND"] == "llamacpp"
    assert "SWITCHYARD_MODEL_WORKER_N_GPU_LAYERS" not in cpu


def test_discovery_follows_consul() -> None:
    off = rendered_scenario("consul-off").get("ConfigMap", "rel-switchyard-gateway")["data"]
    assert off["SWITCHYARD_GATEWAY_DISCOVERY"] == "kubernetes"
    assert off["SWITCHYARD_GATEWAY_WORKER_SERVICE"] == "rel-switchyard-model-worker"
    on = rendered_scenario("gpu-pools")
    assert (
        on.get("ConfigMap", "rel-switchyard-gateway")["data"]["SWITCHYARD_GATEWAY_DISCOVERY"]
        == "consul"
    )
    worker = on.get("Deployment", "rel-switchyard-model-worker-cpu")["spec"]["template"]["spec"][
        "containers"
    ][0]
    env = {e["name"]: e for e in worker["env"]}
    assert env["HOST_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.hostIP"
    assert env["SWITCHYARD_MODEL_WORKER_CONSUL__ADDRESS"]["value"] == "http://$(HOST_IP):8500"
    assert (
        env["SWITCHYARD_MODEL_WORKER_REGISTRATION__ADVERTISE_ADDRESS"]["valueFrom"]["fieldRef"][
            "fieldPath"
        ]
        == "status.podIP"
    )
    # The gateway watches the name the workers register under.
    assert (
        env["SWITCHYARD_MODEL_WORKER_REGISTRATION__SERVICE_NAME"]["value"]
        == "rel-switchyard-model-worker"
    )
    explicit = rendered_scenario("multi-model").get("Deployment", "rel-switchyard-gateway")
    genv = {e["name"]: e for e in explicit["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert (
        genv["SWITCHYARD_GATEWAY_CONSUL__ADDRESS"]["value"]
        == "https://consul-server.consul.svc:8501"
    )
    assert genv["SWITCHYARD_GATEWAY_CONSUL__TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "consul-acl",
        "key": "token",
    }


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_container_names_its_pod_and_namespace_for_traces(scenario: str) -> None:
    from switchyard_common.telemetry import NAMESPACE_ENV, POD_ENV

    assert {POD_ENV, NAMESPACE_ENV} == TELEMETRY
    fields = {POD_ENV: "metadata.name", NAMESPACE_ENV: "metadata.namespace"}
    r = rendered_scenario(scenario)
    # The services' containers (a migration Job's serves nothing and exports no traces).
    containers = [x for x in switchyard_containers(r) if x[0]["kind"] != "Job"]
    assert containers
    for owner, _, c in containers:
        env = {e["name"]: e for e in c.get("env", [])}
        for name, field in fields.items():
            where = f"{owner['metadata']['name']}/{c['name']}: {name}"
            assert env[name]["valueFrom"]["fieldRef"]["fieldPath"] == field, where
