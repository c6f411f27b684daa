"""Render the chart with real Helm (helm-python-sdk, in process) and read its objects."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml
from kubernetes_validate import utils as _kubernetes_validate

# kubernetes-validate parses its schema files again on every call; parse each file once.
_kubernetes_validate.schema_contents = functools.lru_cache(maxsize=None)(
    _kubernetes_validate.schema_contents
)

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "switchyard"
RELEASE = "rel"
NAMESPACE = "sy"
# Every ci/*-values.yaml scenario, plus the defaults.
SCENARIOS = [
    "default",
    *sorted(p.name.removesuffix("-values.yaml") for p in (CHART / "ci").glob("*-values.yaml")),
]


def scenario_values(scenario: str) -> dict[str, Any]:
    if scenario == "default":
        return {}
    return yaml.safe_load((CHART / "ci" / f"{scenario}-values.yaml").read_text()) or {}


@dataclass
class Rendered:
    """One scenario's objects, and the values it was rendered with."""

    scenario: str
    values: dict[str, Any]
    # The values Helm used: the chart's defaults coalesced with the scenario's.
    merged: dict[str, Any] = field(default_factory=dict)
    objects: list[dict[str, Any]] = field(default_factory=list)
    notes: str = ""

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        return next((o for o in self.of_kind(kind) if o["metadata"]["name"] == name), None)

    def pod_templates(self) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        """(owner, pod spec with metadata) for every Deployment, Job and bare Pod."""
        for o in self.objects:
            if o["kind"] in ("Deployment", "Job"):
                yield o, o["spec"]["template"]
            elif o["kind"] == "Pod":
                yield o, o


def render(scenario: str, values: dict[str, Any] | None = None) -> Rendered:
    vals = scenario_values(scenario) if values is None else values
    with helm.Chart.load(str(CHART)) as chart:
        chart.validate_schema(vals)
        manifests = chart.render(vals, name=RELEASE, namespace=NAMESPACE, is_install=True)
        merged = chart.merge_values(vals)
    out = Rendered(scenario, vals, merged)
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            out.notes = text
            continue
        out.objects.extend(d for d in yaml.safe_load_all(text) if d)
    return out


def labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels and matchExpressions) against a label set."""
    if not labels_match(selector.get("matchLabels") or {}, labels):
        return False
    for expr in selector.get("matchExpressions") or ():
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = (
            deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        )
    return out


def pools(r: Rendered) -> list[dict[str, Any]]:
    """Each pool as the chart sees it: merged over modelWorker.poolDefaults."""
    mw = r.merged["modelWorker"]
    return [deep_merge(mw["poolDefaults"], p) for p in mw["pools"]]
