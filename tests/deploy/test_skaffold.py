"""skaffold.yaml, read as skaffold would (the binary cannot run here): one artifact per service,
deployed through the chart, each artifact's image wired to its component's image values, in
the base configuration and in every profile (their JSON patches applied)."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy.dockerfiles import ROOT, SERVICES, dockerfile_path, parse

CHART = ROOT / "charts" / "switchyard"
# The chart's values key of each service (services/<dir> -> values key).
VALUES_KEY = {"gateway": "gateway", "model-worker": "modelWorker", "session": "session"}
VALUES_KEY |= {"webhook": "webhook"}
# Skaffold's template variables for the registry, repository and tag of an artifact.
WIRING = {"registry": "IMAGE_DOMAIN", "repository": "IMAGE_REPO_NO_DOMAIN", "tag": "IMAGE_TAG"}
PINNING = {"digest": "IMAGE_DIGEST"}


def load_skaffold() -> dict[str, Any]:
    config = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    assert isinstance(config, dict)
    return config


def apply_patches(config: dict[str, Any], patches: list[dict[str, Any]]) -> dict[str, Any]:
    """JSON Patch (RFC 6902) add/replace/remove, as skaffold applies a profile's patches."""
    result = copy.deepcopy(config)
    for patch in patches:
        pointer = patch["path"][1:].split("/")
        *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in pointer]
        target: Any = result
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        key: Any = int(last) if isinstance(target, list) and last != "-" else last
        if patch["op"] == "remove":
            del target[key]
        elif patch["op"] == "replace":
            assert (key < len(target)) if isinstance(target, list) else key in target, patch
            target[key] = patch["value"]
        elif patch["op"] == "add":
            if isinstance(target, list):
                target.insert(len(target) if key == "-" else key, patch["value"])
            else:
                target[key] = patch["value"]
        else:
            raise AssertionError(f"unexpected patch op {patch['op']}")
    return result


def effective_configs() -> dict[str, dict[str, Any]]:
    config = load_skaffold()
    configs = {"(none)": config}
    for profile in config.get("profiles", []):
        configs[profile["name"]] = apply_patches(config, profile.get("patches", []))
    return configs


CONFIGS = effective_configs()


def sanitized(image: str) -> str:
    """Skaffold's name for an artifact in templates: / - . : become _."""
    return re.sub(r"[/\-.:]", "_", image)


def chart_values() -> dict[str, Any]:
    if not (CHART / "values.yaml").exists():
        pytest.skip("charts/switchyard is not there yet")
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert isinstance(values, dict)
    return values


def has_path(values: dict[str, Any], dotted: str) -> bool:
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def merged(base: Any, override: Any) -> Any:
    """Helm's values merge: maps merge key by key, anything else is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        return {k: merged(base.get(k), v) if k in base else v for k, v in override.items()} | {
            k: v for k, v in base.items() if k not in override
        }
    return override


def test_one_artifact_per_service_with_its_dockerfile() -> None:
    artifacts = load_skaffold()["build"]["artifacts"]
    by_dockerfile: dict[str, list[str]] = {}
    for artifact in artifacts:
        context = ROOT / artifact.get("context", ".")
        dockerfile = context / artifact["docker"]["dockerfile"]
        assert context.is_dir() and dockerfile.is_file(), artifact
        by_dockerfile.setdefault(str(dockerfile.resolve()), []).append(artifact["image"])
    for service in SERVICES:
        images = by_dockerfile.pop(str(dockerfile_path(service).resolve()), [])
        assert images == [f"switchyard/{service}"], f"{service}: {images}"
    assert not by_dockerfile, f"artifacts of no service: {by_dockerfile}"


@pytest.mark.parametrize("profile", CONFIGS)
def test_deploy_goes_through_the_chart(profile: str) -> None:
    config = CONFIGS[profile]
    (release,) = config["deploy"]["helm"]["releases"]
    assert release["chartPath"] == "charts/switchyard"
    for values_file in release.get("valuesFiles", []):
        assert (ROOT / values_file).is_file(), values_file


@pytest.mark.parametrize("profile", CONFIGS)
def test_each_artifact_sets_its_components_image_values(profile: str) -> None:
    config = CONFIGS[profile]
    (release,) = config["deploy"]["helm"]["releases"]
    templates: dict[str, str] = release["setValueTemplates"]
    wired: set[str] = set()
    for artifact in config["build"]["artifacts"]:
        service = artifact["image"].removeprefix("switchyard/")
        key, name = VALUES_KEY[service], sanitized(artifact["image"])
        for field, variable in WIRING.items():
            assert templates[f"{key}.image.{field}"] == f"{{{{.{variable}_{name}}}}}"
            wired.add(f"{key}.image.{field}")
        for field, variable in PINNING.items():
            if f"{key}.image.{field}" in templates:
                assert templates[f"{key}.image.{field}"] == f"{{{{.{variable}_{name}}}}}"
                wired.add(f"{key}.image.{field}")
    assert set(templates) == wired, f"templates for no artifact: {set(templates) - wired}"


@pytest.mark.parametrize("profile", CONFIGS)
def test_values_set_exist_in_the_chart_and_pass_its_schema(profile: str) -> None:
    values = chart_values()
    (release,) = CONFIGS[profile]["deploy"]["helm"]["releases"]
    for dotted in [*release["setValueTemplates"], *release.get("setValues", {})]:
        assert has_path(values, dotted), f"{dotted} is not in charts/switchyard/values.yaml"
    # The chart's schema is draft-07 (what Helm reads it as).
    validator = jsonschema.Draft7Validator(json.loads((CHART / "values.schema.json").read_text()))
    for values_file in release.get("valuesFiles", []):
        overrides = yaml.safe_load((ROOT / values_file).read_text())
        validator.validate(merged(values, overrides))


@pytest.mark.parametrize("profile", ["cpu", "gpu"])
def test_profiles_build_the_worker_variant_they_deploy(profile: str) -> None:
    config = CONFIGS[profile]
    (worker,) = [a for a in config["build"]["artifacts"] if a["image"].endswith("/model-worker")]
    variant = worker["docker"]["buildArgs"]["VARIANT"]
    assert variant == {"cpu": "cpu", "gpu": "cuda"}[profile]
    stages = {s.name for s in parse(dockerfile_path("model-worker")).stages}
    assert {f"builder-{variant}", f"runtime-{variant}"} <= stages
    local = config["build"]["local"]
    # kind/minikube load local images; GPU clusters pull from the registry, by digest.
    assert local["push"] is (profile == "gpu")
    (release,) = config["deploy"]["helm"]["releases"]
    assert ("modelWorker.image.digest" in release["setValueTemplates"]) is (profile == "gpu")


@pytest.mark.parametrize("profile", CONFIGS)
def test_namespace_is_one_the_k8s_overlays_prepare(profile: str) -> None:
    overlays = {}
    for kustomization in (ROOT / "k8s" / "overlays").glob("*/kustomization.yaml"):
        overlays[yaml.safe_load(kustomization.read_text())["namespace"]] = kustomization.parent
    config = CONFIGS[profile]
    (release,) = config["deploy"]["helm"]["releases"]
    assert release["namespace"] in overlays
    assert release.get("createNamespace", False) is False, "the overlay creates it, labelled"
    for forward in config.get("portForward", []):
        assert forward["namespace"] == release["namespace"]


def test_port_forward_reaches_the_gateway_service() -> None:
    values = chart_values()
    (forward,) = load_skaffold()["portForward"]
    (release,) = load_skaffold()["deploy"]["helm"]["releases"]
    # The chart's fullname is the release name when that contains the chart's name.
    assert "switchyard" in release["name"]
    assert forward["resourceType"] == "service"
    assert forward["resourceName"] == f"{release['name']}-gateway"
    assert forward["port"] == values["gateway"]["service"]["port"]


def test_patches_fail_on_a_path_that_is_not_there() -> None:
    """The patch helper is strict, so a profile patching a renamed key fails the tests."""
    with pytest.raises((KeyError, IndexError, AssertionError)):
        apply_patches({"a": {"b": 1}}, [{"op": "replace", "path": "/a/c", "value": 2}])
