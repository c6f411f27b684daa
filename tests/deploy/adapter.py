"""The prometheus-adapter rules shipped in k8s/addons, and the series each one reads."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.deploy.dockerfiles import ROOT

VALUES = ROOT / "k8s" / "addons" / "prometheus-adapter-values.yaml"


def adapter_rules() -> list[dict[str, Any]]:
    values = yaml.safe_load(VALUES.read_text())
    rules = values["rules"]["custom"]
    assert isinstance(rules, list)
    return rules


def rule_series(rule: dict[str, Any]) -> str:
    """The one metric name a rule's seriesQuery selects (``name{labels}``)."""
    match = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{.*\}", rule["seriesQuery"].strip())
    assert match, f"{rule['seriesQuery']}: select one metric by name"
    return match.group(1)


def series_of_service(service: str) -> list[str]:
    """The adapter series a service exports (``model-worker`` exports ``switchyard_worker_*``)."""
    prefix = "switchyard_worker_" if service == "model-worker" else f"switchyard_{service}_"
    return [s for s in map(rule_series, adapter_rules()) if s.startswith(prefix)]
