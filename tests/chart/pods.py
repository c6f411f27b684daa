"""Run a rendered Deployment's container as a local process, with exactly the settings the
chart gives it: ConfigMap, env, the chart's Secrets, the Downward API; only the bind address,
the port and the mounted paths are this machine's."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from tests.chart.render import Rendered
from tests.support.procs import ServiceProcess, free_port

MODULES = {
    "gateway": "switchyard_gateway",
    "model-worker": "switchyard_model_worker",
    "session": "switchyard_session",
    "webhook": "switchyard_webhook",
}


def _secret_value(r: Rendered, ref: dict[str, Any]) -> str | None:
    secret = r.get("Secret", ref["name"])
    assert secret is not None or ref.get("optional"), f"no Secret {ref['name']}"
    if secret is None or ref["key"] not in secret["data"]:
        assert ref.get("optional"), f"no key {ref['key']} in Secret {ref['name']}"
        return None
    return base64.b64decode(secret["data"][ref["key"]]).decode()


def pod_env(r: Rendered, deployment: dict[str, Any], tmp: Path, port: int) -> dict[str, str]:
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]
    downward = {
        "metadata.name": f"{deployment['metadata']['name']}-0",
        "metadata.namespace": deployment["metadata"].get("namespace", "default"),
        "status.podIP": "127.0.0.1",
        "status.hostIP": "127.0.0.1",
    }
    env: dict[str, str] = {}
    for src in container.get("envFrom", []):
        env.update(r.get("ConfigMap", src["configMapRef"]["name"])["data"])
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
            continue
        source = e["valueFrom"]
        if "fieldRef" in source:
            env[e["name"]] = downward[source["fieldRef"]["fieldPath"]]
        elif "secretKeyRef" in source:
            value = _secret_value(r, source["secretKeyRef"])
            if value is not None:
                env[e["name"]] = value
        elif "resourceFieldRef" in source:
            env[e["name"]] = "1"
    # This machine's: the bind address, a free port, and the mounted volumes' paths.
    prefix = next(n for n in env if n.endswith("_HOST")).removesuffix("HOST")
    env[f"{prefix}HOST"] = "127.0.0.1"
    env[f"{prefix}PORT"] = str(port)
    env[f"{prefix}INTERNAL_PORT"] = str(free_port())
    for mount in container.get("volumeMounts", []):
        local = tmp / mount["name"]
        local.mkdir(parents=True, exist_ok=True)
        for name, value in env.items():
            if value == mount["mountPath"] or value.startswith(mount["mountPath"] + "/"):
                env[name] = str(local) + value.removeprefix(mount["mountPath"])
    return env


def start_pod(
    r: Rendered,
    name: str,
    tmp: Path,
    extra_env: dict[str, str] | None = None,
    services: dict[str, str] | None = None,
) -> ServiceProcess:
    """``services`` maps in-cluster URLs (a Service's DNS name) to where they run here."""
    deployment = r.get("Deployment", name)
    assert deployment is not None, name
    component = deployment["metadata"]["labels"]["app.kubernetes.io/component"]
    port = free_port()
    env = {**pod_env(r, deployment, tmp / name, port), **(extra_env or {})}
    env = {k: (services or {}).get(v, v) for k, v in env.items()}
    return ServiceProcess(MODULES[component], env, tmp / f"{name}.log", port)


def service_url(r: Rendered, name: str) -> str:
    """A Service's in-cluster URL on its http port, as other pods are configured with it."""
    service = r.get("Service", name)
    port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "http")
    return f"http://{name}:{port}"
