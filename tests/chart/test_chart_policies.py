"""Policy checks on every rendered workload, in every scenario."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chart.conftest import rendered_scenario
from tests.chart.render import Rendered, labels_match, pools, render, selector_matches

IMMUTABLE_SELECTOR_KEYS = {
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
    "switchyard.io/pool",
}
ALLOWED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
    "projected", "secret",
}  # fmt: skip
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod["spec"]
    return spec.get("initContainers", []) + spec["containers"]


def test_pod_security_restricted(rendered: Rendered) -> None:
    """The PodSecurity "restricted" profile, plus a read-only root filesystem."""
    checked = 0
    for owner, pod in rendered.pod_templates():
        spec = pod["spec"]
        psc = spec.get("securityContext", {})
        for host in ("hostNetwork", "hostPID", "hostIPC"):
            assert not spec.get(host), owner["metadata"]["name"]
        for volume in spec.get("volumes", []):
            kinds = set(volume) - {"name"}
            assert kinds <= ALLOWED_VOLUMES, (owner["metadata"]["name"], volume)
        for c in _containers(pod):
            sc = c.get("securityContext", {})
            where = f"{owner['metadata']['name']}/{c['name']}"
            assert sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, where
            assert sc.get("runAsUser", psc.get("runAsUser", 1)) != 0, where
            seccomp = sc.get("seccompProfile", psc.get("seccompProfile", {}))
            assert seccomp.get("type") in ("RuntimeDefault", "Localhost"), where
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert not sc.get("privileged"), where
            assert "ALL" in sc.get("capabilities", {}).get("drop", []), where
            assert set(sc.get("capabilities", {}).get("add", [])) <= {"NET_BIND_SERVICE"}, where
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert all("hostPort" not in p for p in c.get("ports", [])), where
            checked += 1
    assert checked >= 4


def test_probes_and_resources(rendered: Rendered) -> None:
    for d in rendered.of_kind("Deployment"):
        for c in d["spec"]["template"]["spec"]["containers"]:
            where = f"{d['metadata']['name']}/{c['name']}"
            ports = {p["name"] for p in c["ports"]}
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert c[probe]["httpGet"]["port"] in ports, (where, probe)
            res = c["resources"]
            assert res["requests"]["cpu"] and res["requests"]["memory"], where
            assert res["limits"]["memory"], where


def test_probes_use_real_endpoints() -> None:
    """The services really serve the paths the probes ask for."""
    from switchyard_common.app import create_service_app
    from switchyard_common.settings import ServiceSettings
    from switchyard_model_worker.api.models import router as worker_router

    common = {
        getattr(r, "path", None)
        for r in create_service_app(ServiceSettings(), configure_logs=False).routes
    }
    worker = common | {r.path for r in worker_router.routes}
    for scenario in ("default", "gpu-pools"):
        for d in rendered_scenario(scenario).of_kind("Deployment"):
            component = d["metadata"]["labels"]["app.kubernetes.io/component"]
            for c in d["spec"]["template"]["spec"]["containers"]:
                if c["name"] == "engine":
                    continue
                paths = {
                    c[p]["httpGet"]["path"]
                    for p in ("startupProbe", "readinessProbe", "livenessProbe")
                }
                assert paths <= (worker if component == "model-worker" else common), (
                    d["metadata"]["name"],
                    paths,
                )
                assert "/readyz" in paths and "/healthz" in paths
                # Probes use the internal port, where the services serve them (and /metrics).
                ports = {
                    c[p]["httpGet"]["port"]
                    for p in ("startupProbe", "readinessProbe", "livenessProbe")
                }
                assert ports == {"internal"}
            if component == "model-worker":
                worker_c = d["spec"]["template"]["spec"]["containers"][0]
                assert worker_c["startupProbe"]["httpGet"]["path"] == "/startupz"


def test_engines_get_a_long_startup_probe() -> None:
    for scenario in ("gpu-pools", "multi-model", "keda"):
        engines = [
            c
            for d in rendered_scenario(scenario).of_kind("Deployment")
            for c in d["spec"]["template"]["spec"]["containers"]
            if c["name"] == "engine"
        ]
        assert engines
        for c in engines:
            p = c["startupProbe"]
            assert p["periodSeconds"] * p["failureThreshold"] >= 15 * 60


def test_selectors_carry_no_mutable_labels(rendered: Rendered) -> None:
    selectors = []
    for o in rendered.objects:
        kind, spec = o["kind"], o.get("spec", {})
        if kind == "Deployment":
            selectors.append(spec["selector"]["matchLabels"])
            # The selector's labels are on the pods.
            assert labels_match(
                spec["selector"]["matchLabels"], spec["template"]["metadata"]["labels"]
            )
        elif kind == "PodDisruptionBudget":
            selectors.append(spec["selector"]["matchLabels"])
        elif kind == "Service":
            selectors.append(spec["selector"])
        elif kind == "NetworkPolicy":
            selectors.append(spec["podSelector"]["matchLabels"])
    assert selectors
    for sel in selectors:
        assert set(sel) <= IMMUTABLE_SELECTOR_KEYS, sel
        assert {
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/component",
        } <= set(sel)


def test_every_object_has_the_standard_labels(rendered: Rendered) -> None:
    for o in rendered.objects:
        labels = o["metadata"]["labels"]
        for key in ("name", "instance", "component", "version", "managed-by", "part-of"):
            assert f"app.kubernetes.io/{key}" in labels, (o["kind"], o["metadata"]["name"], key)
        assert labels["helm.sh/chart"].startswith("switchyard-")


def test_gpu_pools_and_cpu_pools(rendered: Rendered) -> None:
    for pool in pools(rendered):
        d = rendered.get("Deployment", f"rel-switchyard-model-worker-{pool['name']}")
        assert d is not None
        spec = d["spec"]["template"]["spec"]
        limits = [
            c["resources"].get("limits", {}).get("nvidia.com/gpu") for c in spec["containers"]
        ]
        shm = [v for v in spec["volumes"] if v.get("emptyDir", {}).get("medium") == "Memory"]
        gpu_taint = GPU_TOLERATION in spec.get("tolerations", [])
        count = pool["gpu"]["count"]
        if count > 0:
            assert spec["nodeSelector"].items() >= pool["gpu"]["nodeSelector"].items()
            assert gpu_taint
            assert sum(x or 0 for x in limits) == count
            assert shm and any(
                m["mountPath"] == "/dev/shm" for c in spec["containers"] for m in c["volumeMounts"]
            )
            if pool["gpu"]["runtimeClassName"]:
                assert spec["runtimeClassName"] == pool["gpu"]["runtimeClassName"]
        else:
            assert not any(limits)
            assert not gpu_taint
            assert "nvidia.com/gpu.present" not in spec.get("nodeSelector", {})
            assert not shm
            assert "runtimeClassName" not in spec


def test_some_scenario_has_gpu_pools_and_cpu_pools() -> None:
    counts = {
        p["gpu"]["count"] for s in ("gpu-pools", "multi-model") for p in pools(rendered_scenario(s))
    }
    assert 0 in counts and max(counts) >= 2


def test_autoscalers_and_pdbs_target_existing_workloads(rendered: Rendered) -> None:
    deployments = {d["metadata"]["name"]: d for d in rendered.of_kind("Deployment")}
    scaled: dict[str, str] = {}
    for o in rendered.of_kind("HorizontalPodAutoscaler") + rendered.of_kind("ScaledObject"):
        ref = o["spec"]["scaleTargetRef"]
        assert ref["name"] in deployments, ref
        assert ref.get("kind", "Deployment") == "Deployment"
        assert ref["name"] not in scaled, f"{ref['name']} scaled by two autoscalers"
        scaled[ref["name"]] = o["kind"]
        # A scaled Deployment leaves its replica count to the autoscaler.
        assert "replicas" not in deployments[ref["name"]]["spec"]
    for hpa in rendered.of_kind("HorizontalPodAutoscaler"):
        spec = hpa["spec"]
        assert 1 <= spec["minReplicas"] <= spec["maxReplicas"]
        assert spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"] > 0
    for pdb in rendered.of_kind("PodDisruptionBudget"):
        sel = pdb["spec"]["selector"]["matchLabels"]
        matched = [
            n
            for n, d in deployments.items()
            if labels_match(sel, d["spec"]["template"]["metadata"]["labels"])
        ]
        assert len(matched) == 1, (pdb["metadata"]["name"], matched)
    for name, d in deployments.items():
        assert any(
            labels_match(
                p["spec"]["selector"]["matchLabels"], d["spec"]["template"]["metadata"]["labels"]
            )
            for p in rendered.of_kind("PodDisruptionBudget")
        ), f"{name} has no PodDisruptionBudget"


def test_worker_pools_scale_on_queue_depth() -> None:
    from prometheus_client import CollectorRegistry

    from switchyard_model_worker.admission import Admission
    from switchyard_model_worker.metrics import WorkerMetrics

    registry = CollectorRegistry()
    WorkerMetrics(registry, Admission(1, 1, 1.0))
    exported = {m.name for m in registry.collect()}
    r = rendered_scenario("gpu-pools")
    hpa = r.get("HorizontalPodAutoscaler", "rel-switchyard-model-worker-llama-8b")
    metric = hpa["spec"]["metrics"][0]
    assert metric["type"] == "Pods"
    assert metric["pods"]["metric"]["name"] in exported
    assert metric["pods"]["target"] == {"type": "AverageValue", "averageValue": "8"}
    assert hpa["spec"]["minReplicas"] == 1
    keda = rendered_scenario("keda")
    so = keda.get("ScaledObject", "rel-switchyard-model-worker-burst")
    assert so["spec"]["minReplicaCount"] == 0
    assert "switchyard_worker_queue_depth" in so["spec"]["triggers"][0]["metadata"]["query"]
    assert keda.get("HorizontalPodAutoscaler", "rel-switchyard-model-worker-burst") is None
    assert (
        keda.get("HorizontalPodAutoscaler", "rel-switchyard-model-worker-cpu")["spec"][
            "minReplicas"
        ]
        == 2
    )


def test_services_target_container_ports(rendered: Rendered) -> None:
    pods = [d["spec"]["template"] for d in rendered.of_kind("Deployment")]
    for svc in rendered.of_kind("Service"):
        selected = [
            p for p in pods if labels_match(svc["spec"]["selector"], p["metadata"]["labels"])
        ]
        assert selected, svc["metadata"]["name"]
        for port in svc["spec"]["ports"]:
            for pod in selected:
                names = {p["name"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
                numbers = {
                    p["containerPort"]
                    for c in pod["spec"]["containers"]
                    for p in c.get("ports", [])
                }
                assert port["targetPort"] in names | numbers, (svc["metadata"]["name"], port)


def test_service_monitors_select_services(rendered: Rendered) -> None:
    for sm in rendered.of_kind("ServiceMonitor"):
        services = [
            s
            for s in rendered.of_kind("Service")
            if selector_matches(sm["spec"]["selector"], s["metadata"]["labels"])
        ]
        assert services, sm["metadata"]["name"]
        for ep in sm["spec"]["endpoints"]:
            assert all(ep["port"] in {p["name"] for p in s["spec"]["ports"]} for s in services)


def test_config_changes_roll_the_pods() -> None:
    before = rendered_scenario("default")
    after = render(
        "default",
        {
            "gateway": {"logLevel": "DEBUG"},
            "session": {"database": {"url": "postgresql+asyncpg://db/s"}},
        },
    )

    def checksums(r: Rendered, name: str) -> dict[str, str]:
        return r.get("Deployment", name)["spec"]["template"]["metadata"]["annotations"]

    gw, sess, worker = (f"rel-switchyard-{c}" for c in ("gateway", "session", "model-worker-cpu"))
    assert checksums(before, gw)["checksum/config"] != checksums(after, gw)["checksum/config"]
    assert checksums(before, sess)["checksum/secret"] != checksums(after, sess)["checksum/secret"]
    assert checksums(before, worker) == checksums(after, worker)
    for d in before.of_kind("Deployment"):
        assert "checksum/config" in d["spec"]["template"]["metadata"]["annotations"]


def test_scheduling_knobs_reach_the_pods() -> None:
    r = rendered_scenario("gpu-pools")
    spec = r.get("Deployment", "rel-switchyard-model-worker-llama-8b")["spec"]["template"]["spec"]
    assert spec["priorityClassName"] == "switchyard-serving"
    assert {t["topologyKey"] for t in spec["topologySpreadConstraints"]} == {
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
    }
    values = {
        "gateway": {
            "affinity": {"podAntiAffinity": {}},
            "tolerations": [{"key": "k", "operator": "Exists"}],
            "extraEnv": [{"name": "TZ", "value": "UTC"}],
            "extraVolumes": [{"name": "x", "emptyDir": {}}],
            "extraVolumeMounts": [{"name": "x", "mountPath": "/x"}],
        }
    }
    gw = render("default", values).get("Deployment", "rel-switchyard-gateway")["spec"]["template"][
        "spec"
    ]
    assert gw["affinity"] == {"podAntiAffinity": {}}
    assert gw["tolerations"] == [{"key": "k", "operator": "Exists"}]
    assert {"name": "TZ", "value": "UTC"} in gw["containers"][0]["env"]
    assert {"name": "x", "mountPath": "/x"} in gw["containers"][0]["volumeMounts"]


@pytest.mark.parametrize("scenario", ["default", "external-secrets"])
def test_images(scenario: str) -> None:
    r = rendered_scenario(scenario)
    images = {
        d["metadata"]["labels"]["app.kubernetes.io/component"]: d["spec"]["template"]["spec"][
            "containers"
        ][0]["image"]
        for d in r.of_kind("Deployment")
    }
    if scenario == "default":
        assert images == {
            c: f"switchyard/{c}:0.1.0" for c in ("gateway", "model-worker", "session", "webhook")
        }
    else:
        assert (
            images["gateway"]
            == "registry.example.com/switchyard/gateway@sha256:" + "0123456789abcdef" * 4
        )
        assert images["session"] == "registry.example.com/switchyard/session:0.1.0"
        for d in r.of_kind("Deployment"):
            assert {"name": "registry-credentials"} in d["spec"]["template"]["spec"][
                "imagePullSecrets"
            ]


def test_label_values_are_valid() -> None:
    """A model name like org/Model is no label value: the label is left out, probes tell."""
    import re

    valid = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
    pools_ = [{"name": "hf", "model": "meta-llama/Llama-3.1-8B-Instruct"}]
    r = render("default", {"modelWorker": {"pools": pools_}})
    for o in r.objects:
        for value in o["metadata"]["labels"].values():
            assert valid.match(value), (o["kind"], value)
    d = r.get("Deployment", "rel-switchyard-model-worker-hf")
    assert "switchyard.io/model" not in d["spec"]["template"]["metadata"]["labels"]
    svc = rendered_scenario("default").get("Service", "rel-switchyard-model-worker")
    assert svc["metadata"]["labels"]["switchyard.io/model"] == "smollm2-135m-instruct"


def test_helm_test_asks_a_chat_model() -> None:
    import json

    pod = rendered_scenario("consul-off").get("Pod", "rel-switchyard-test-chat")
    body = next(e["value"] for e in pod["spec"]["containers"][0]["env"] if e["name"] == "BODY")
    assert json.loads(body)["model"] == "smollm2-135m-instruct"
    pools_ = [
        {"name": "embed", "model": "all-minilm-l6-v2", "backend": "embeddings"},
        {"name": "chat", "model": "c"},
    ]
    pod = render("default", {"modelWorker": {"pools": pools_}}).get(
        "Pod", "rel-switchyard-test-chat"
    )
    body = next(e["value"] for e in pod["spec"]["containers"][0]["env"] if e["name"] == "BODY")
    assert json.loads(body)["model"] == "c"


def test_in_flight_metrics_exist() -> None:
    """The optional Pods metric of gateway, session and webhook is one each service exports."""
    from prometheus_client import CollectorRegistry

    from switchyard_common.metrics import HttpMetrics
    from switchyard_gateway.metrics import GatewayMetrics

    registry = CollectorRegistry()
    GatewayMetrics(registry)
    HttpMetrics(registry, "session")
    HttpMetrics(registry, "webhook")
    exported = {m.name for m in registry.collect()}
    r = rendered_scenario("observability-all")
    names = set()
    for c in ("gateway", "session", "webhook"):
        hpa = r.get("HorizontalPodAutoscaler", f"rel-switchyard-{c}")
        names |= {
            m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"
        }
    assert len(names) == 3
    assert names <= exported, names - exported


def test_only_the_gateway_reads_the_api_and_only_endpointslices(rendered: Rendered) -> None:
    assert not rendered.of_kind("ClusterRole") and not rendered.of_kind("ClusterRoleBinding")
    consul = rendered.merged["consul"]["enabled"]
    roles = rendered.of_kind("Role")
    tokens = {
        owner["metadata"]["name"]
        for owner, pod in rendered.pod_templates()
        if pod["spec"].get("automountServiceAccountToken", True)
    }
    if consul:
        assert roles == [] and tokens == set()
        return
    (role,) = roles
    rules = [
        {
            "apiGroups": ["discovery.k8s.io"],
            "resources": ["endpointslices"],
            "verbs": ["get", "list", "watch"],
        }
    ]
    assert role["rules"] == rules
    (binding,) = rendered.of_kind("RoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    gateway = rendered.get("Deployment", "rel-switchyard-gateway")["spec"]["template"]["spec"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": gateway["serviceAccountName"], "namespace": "sy"}
    ]
    assert tokens == {"rel-switchyard-gateway"}
