"""Secrets stay in Secrets; the admin key's digest matches; migrations run before the rollout."""

from __future__ import annotations

import base64
import hashlib
import json

from tests.chart.conftest import rendered_scenario
from tests.chart.render import Rendered

SECRET_VALUES = [
    "redis://redis-master",
    "postgresql+asyncpg://session:pw",
    "postgresql+asyncpg://webhook:pw",
]


def _data(secret: dict) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


def _all_env(r: Rendered) -> list[dict]:
    return [
        e
        for _, pod in r.pod_templates()
        for c in pod["spec"]["containers"]
        for e in c.get("env", [])
    ]


def test_created_admin_key_reaches_the_gateway_only_as_its_digest() -> None:
    r = rendered_scenario("default")
    auth = _data(r.get("Secret", "rel-switchyard-gateway-auth"))
    key = auth["admin-key"]
    assert key.startswith("sk-sy-") and len(key) > 40
    assert json.loads(auth["admin-key-hashes"]) == [hashlib.sha256(key.encode()).hexdigest()]
    assert json.loads(auth["api-key-hashes"]) == []
    gateway = r.get("Deployment", "rel-switchyard-gateway")["spec"]["template"]["spec"][
        "containers"
    ][0]
    refs = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in gateway["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert refs["SWITCHYARD_GATEWAY_ADMIN_KEY_HASHES"]["key"] == "admin-key-hashes"
    assert refs["SWITCHYARD_GATEWAY_API_KEY_HASHES"]["key"] == "api-key-hashes"
    assert all(ref["key"] != "admin-key" for ref in refs.values())
    # The helm test uses the key itself; NOTES tells how to read it.
    test = r.get("Pod", "rel-switchyard-test-chat")["spec"]["containers"][0]
    assert {"name": "rel-switchyard-gateway-auth", "key": "admin-key"} in [
        e["valueFrom"]["secretKeyRef"] for e in test["env"] if "valueFrom" in e
    ]
    assert "rel-switchyard-gateway-auth" in r.notes and "admin-key" in r.notes


def test_nothing_secret_outside_secrets() -> None:
    r = rendered_scenario("gpu-pools")
    for cm in r.of_kind("ConfigMap"):
        text = json.dumps(cm)
        for value in SECRET_VALUES:
            assert value not in text, cm["metadata"]["name"]
    for e in _all_env(r):
        for value in SECRET_VALUES:
            assert value not in (e.get("value") or "")
    redis = _data(r.get("Secret", "rel-switchyard-redis"))
    assert redis["redis-url"].startswith("redis://redis-master")


def test_existing_secrets_are_used_and_none_created() -> None:
    r = rendered_scenario("external-secrets")
    assert r.of_kind("Secret") == []
    refs = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in _all_env(r)
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert refs["SWITCHYARD_GATEWAY_ADMIN_KEY_HASHES"]["name"] == "switchyard-gateway-keys"
    assert refs["SWITCHYARD_GATEWAY_REDIS_URL"] == {"name": "switchyard-redis", "key": "url"}
    assert refs["SWITCHYARD_SESSION_DATABASE_URL"]["name"] == "switchyard-session-db"
    assert refs["SWITCHYARD_WEBHOOK_DATABASE_URL"]["name"] == "switchyard-webhook-db"
    assert refs["SWITCHYARD_GATEWAY_CONSUL__TOKEN"]["name"] == "consul-acl"
    assert refs["API_KEY"]["name"] == "switchyard-test-key"
    assert refs["SWITCHYARD_WEBHOOK_INTERNAL_TOKEN"]["name"] == "switchyard-internal-token"
    assert "kubectl" not in r.notes.split("2. The API key:")[1].split("3.")[0]


def test_migrations_run_as_hooks_before_the_rollout() -> None:
    for scenario, hook_secret in (("gpu-pools", True), ("external-secrets", False)):
        r = rendered_scenario(scenario)
        for service in ("session", "webhook"):
            job = r.get("Job", f"rel-switchyard-{service}-migrate")
            assert job is not None, (scenario, service)
            ann = job["metadata"]["annotations"]
            assert set(ann["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
            policy = r.get("NetworkPolicy", f"rel-switchyard-{service}-migrate")
            assert policy["metadata"]["annotations"]["helm.sh/hook"] == ann["helm.sh/hook"]
            assert int(policy["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
                ann["helm.sh/hook-weight"]
            )
            container = job["spec"]["template"]["spec"]["containers"][0]
            assert container["args"] == ["migrate"]
            assert container["image"].endswith(f"switchyard/{service}:0.1.0")
            ref = next(
                e
                for e in container["env"]
                if e["name"] == f"SWITCHYARD_{service.upper()}_DATABASE_URL"
            )
            secret_name = ref["valueFrom"]["secretKeyRef"]["name"]
            secret = r.get("Secret", secret_name)
            if hook_secret:
                # Hooks run before the release's objects exist: the Secret is a hook, created first.
                assert secret["metadata"]["annotations"]["helm.sh/hook"] == ann["helm.sh/hook"]
                assert int(secret["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
                    ann["helm.sh/hook-weight"]
                )
                assert (
                    r.get("Secret", f"rel-switchyard-{service}-db") is not None
                )  # the Deployment's own
            else:
                assert secret is None and secret_name == f"switchyard-{service}-db"
    assert rendered_scenario("default").of_kind("Job") == []


def test_services_migrate_themselves_only_without_the_job() -> None:
    for scenario, expected in (
        ("default", "true"),
        ("gpu-pools", "false"),
        ("external-secrets", "false"),
    ):
        r = rendered_scenario(scenario)
        for service in ("session", "webhook"):
            data = r.get("ConfigMap", f"rel-switchyard-{service}")["data"]
            assert data[f"SWITCHYARD_{service.upper()}_AUTO_MIGRATE"] == expected, (
                scenario,
                service,
            )


def test_session_and_webhook_require_a_generated_internal_token() -> None:
    r = rendered_scenario("default")
    token = _data(r.get("Secret", "rel-switchyard-internal-token"))["token"]
    assert len(token) >= 32
    refs = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in _all_env(r)
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    for service in ("SESSION", "WEBHOOK"):
        assert refs[f"SWITCHYARD_{service}_INTERNAL_TOKEN"] == {
            "name": "rel-switchyard-internal-token",
            "key": "token",
        }
