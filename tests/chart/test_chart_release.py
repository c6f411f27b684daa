"""The default release, run here: each Deployment's container as a process configured only by
what the chart rendered, the gateway discovering the worker through EndpointSlices (a fake
API server holding the slice the EndpointSlice controller makes from the rendered Service),
then the helm test's own script and the openai SDK with the admin key the chart generated."""

from __future__ import annotations

import base64
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import kubernetes
import pytest
from openai import OpenAI

from tests.chart.conftest import rendered_scenario
from tests.chart.pods import service_url, start_pod
from tests.chart.render import NAMESPACE, Rendered
from tests.fakes.procs import FakeServer
from tests.fakes.waiting import eventually
from tests.support.procs import ServiceProcess, free_port

MODEL = "smollm2-135m-instruct"


def endpoint_slice(service: dict[str, Any], worker: ServiceProcess) -> dict[str, Any]:
    """What the EndpointSlice controller makes of the Service for one ready pod."""
    name = service["metadata"]["name"]
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{name}-x7k2p",
            "namespace": NAMESPACE,
            "labels": {**service["metadata"]["labels"], "kubernetes.io/service-name": name},
        },
        "addressType": "IPv4",
        "ports": [
            {"name": p["name"], "protocol": "TCP", "port": worker.port}
            for p in service["spec"]["ports"]
        ],
        "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}],
    }


@dataclass
class Release:
    rendered: Rendered
    gateway: ServiceProcess
    session: ServiceProcess
    webhook: ServiceProcess

    @property
    def admin_key(self) -> str:
        secret = self.rendered.get("Secret", "rel-switchyard-gateway-auth")
        return base64.b64decode(secret["data"]["admin-key"]).decode()


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Release]:
    r = rendered_scenario("default")
    tmp = tmp_path_factory.mktemp("release")
    api = FakeServer("tests.fakes.kubernetes", free_port(), tmp / "k8s.log", "/version").start()
    # In a pod the client finds the API and namespace itself; here they are given.
    k8s = {
        "SWITCHYARD_GATEWAY_KUBERNETES__API_SERVER": api.url,
        "SWITCHYARD_GATEWAY_KUBERNETES__NAMESPACE": NAMESPACE,
    }
    procs = [
        start_pod(r, "rel-switchyard-model-worker-cpu", tmp),
        start_pod(r, "rel-switchyard-session", tmp),
        start_pod(r, "rel-switchyard-webhook", tmp),
    ]
    # The gateway reaches session and webhook at their Services' names; here, their processes.
    names = {
        service_url(r, "rel-switchyard-session"): procs[1].url,
        service_url(r, "rel-switchyard-webhook"): procs[2].url,
    }
    procs.append(start_pod(r, "rel-switchyard-gateway", tmp, k8s, names))
    try:
        for p in procs:
            p.wait_ready(timeout=180)
        worker, session, webhook, gateway = procs
        cfg = kubernetes.client.Configuration()
        cfg.host = api.url
        slices = kubernetes.client.DiscoveryV1Api(kubernetes.client.ApiClient(cfg))
        service = r.get("Service", "rel-switchyard-model-worker")
        slices.create_namespaced_endpoint_slice(NAMESPACE, endpoint_slice(service, worker))
        yield Release(r, gateway, session, webhook)
    finally:
        for p in procs:
            p.stop()
        api.kill()


def test_the_gateway_finds_the_worker_through_the_rendered_service(release: Release) -> None:
    headers = {"Authorization": f"Bearer {release.admin_key}"}

    def models() -> list[str]:
        reply = httpx.get(f"{release.gateway.url}/v1/models", headers=headers, timeout=5)
        return [m["id"] for m in reply.json()["data"]]

    eventually(lambda: MODEL in models(), timeout=30)


def test_helm_test_script_passes(release: Release) -> None:
    """The helm test Pod's own command, run against this release."""
    if shutil.which("curl") is None:
        pytest.skip("no curl here")
    test = release.rendered.get("Pod", "rel-switchyard-test-chat")["spec"]["containers"][0]
    env = {e["name"]: e.get("value", "") for e in test["env"]}
    env.update(URL=release.gateway.url, API_KEY=release.admin_key, PATH="/usr/bin:/bin")
    eventually(lambda: _models_ready(release), timeout=30)
    done = subprocess.run(
        [*test["command"], *test["args"]], env=env, capture_output=True, timeout=180
    )
    assert done.returncode == 0, done.stderr.decode()
    assert b'"choices"' in done.stdout


def test_openai_sdk_with_the_created_admin_key(release: Release) -> None:
    eventually(lambda: _models_ready(release), timeout=30)
    client = OpenAI(base_url=f"{release.gateway.url}/v1", api_key=release.admin_key, max_retries=0)
    reply = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "What color is the sky?"}], max_tokens=8
    )
    assert reply.choices[0].message.content
    assert reply.usage.completion_tokens > 0
    wrong = OpenAI(base_url=f"{release.gateway.url}/v1", api_key="sy-wrong", max_retries=0)
    with pytest.raises(Exception) as info:
        wrong.models.list()
    assert getattr(info.value, "status_code", None) == 401


def test_session_and_webhook_want_the_internal_token(release: Release) -> None:
    secret = release.rendered.get("Secret", "rel-switchyard-internal-token")
    token = base64.b64decode(secret["data"]["token"]).decode()
    for proc, path in (
        (release.session, "/v1/conversations/conv_x"),
        (release.webhook, "/v1/webhook_endpoints"),
    ):
        assert httpx.get(f"{proc.url}/readyz", timeout=5).status_code == 200
        assert httpx.get(f"{proc.url}{path}", timeout=5).status_code == 401
        headers = {"Authorization": f"Bearer {token}", "x-switchyard-tenant": "acme"}
        authorized = httpx.get(f"{proc.url}{path}", headers=headers, timeout=5)
        assert authorized.status_code != 401, authorized.text


def _models_ready(release: Release) -> bool:
    headers = {"Authorization": f"Bearer {release.admin_key}"}
    reply = httpx.get(f"{release.gateway.url}/v1/models", headers=headers, timeout=5)
    return MODEL in [m["id"] for m in reply.json()["data"]]


def test_the_gateway_reaches_session_and_webhook_with_the_internal_token(release: Release) -> None:
    """Conversations and webhook endpoints through the gateway: the URLs and the token the
    chart gives the gateway are the ones session and webhook expect."""
    client = OpenAI(base_url=f"{release.gateway.url}/v1", api_key=release.admin_key, max_retries=0)
    conversation = client.conversations.create(metadata={"from": "chart"})
    assert client.conversations.retrieve(conversation.id).metadata == {"from": "chart"}
    headers = {"Authorization": f"Bearer {release.admin_key}"}
    reply = httpx.get(f"{release.gateway.url}/v1/webhook_endpoints", headers=headers, timeout=10)
    assert reply.status_code == 200, reply.text
