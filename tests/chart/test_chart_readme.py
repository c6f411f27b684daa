"""The chart README's values table documents every key of values.yaml, with its default."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import yaml

from tests.chart.render import CHART, SCENARIOS

# Maps documented whole (their keys are Kubernetes' own or free-form).
LEAF_MAPS = {"resources", "probes", "nodeSelector", "requests", "limits"}
ROW = re.compile(r"^\| `([^`]+)` \| `(.*)` \| (.+) \|$")


def leaves(node: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in node.items():
        if isinstance(value, dict) and value and key not in LEAF_MAPS:
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _table() -> dict[str, tuple[Any, str]]:
    rows = {}
    for line in (CHART / "README.md").read_text().splitlines():
        m = ROW.match(line)
        if m:
            assert m.group(1) not in rows, f"{m.group(1)} documented twice"
            rows[m.group(1)] = (json.loads(m.group(2)), m.group(3).strip())
    return rows


def test_every_value_is_documented_with_its_default() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    table = _table()
    expected = dict(leaves(values))
    assert set(table) == set(expected), {
        "undocumented": sorted(set(expected) - set(table)),
        "not in values.yaml": sorted(set(table) - set(expected)),
    }
    for key, value in expected.items():
        default, description = table[key]
        assert default == value, key
        assert len(description) > 3, key
    # Every top-level key has a row.
    assert {k.split(".")[0] for k in table} == set(values)


def test_readme_names_every_scenario() -> None:
    text = (CHART / "README.md").read_text()
    for scenario in SCENARIOS[1:]:
        assert scenario in text


def test_the_readme_gpu_example_installs() -> None:
    """The GPU values in the top-level README's "Deploy to Kubernetes" are valid values."""
    from tests.chart.render import ROOT, pools, render

    text = (ROOT / "README.md").read_text()
    (block,) = [
        b for b in re.findall(r"```yaml\n(.*?)```", text, flags=re.S) if "gpu-values.yaml" in b
    ]
    r = render("readme-gpu", yaml.safe_load(block))
    (pool,) = pools(r)
    spec = r.get("Deployment", f"rel-switchyard-model-worker-{pool['name']}")["spec"]["template"][
        "spec"
    ]
    assert [c["name"] for c in spec["containers"]] == ["model-worker", "engine"]
    assert spec["containers"][1]["resources"]["limits"]["nvidia.com/gpu"] == 1
