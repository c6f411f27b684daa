"""The chart's Grafana dashboards against a real Prometheus scraping the platform: every
query of every panel parses and returns data (unless its panel is documented as
conditional), every metric a dashboard, alert or autoscaler uses exists, the JSON is what
its generator writes, and a picture of each dashboard is drawn from the query results
(``SWITCHYARD_WRITE_PICTURES=1`` writes them to docs/dashboards/)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.render import render
from tests.observability import dashboards as dash
from tests.observability.catalog import ROOT, parse_exposition
from tests.observability.conftest import Observed
from tests.observability.platform import MODEL, NAMESPACE, scrape
from tests.observability.prometheus import PromQLError

# What a user picks in Grafana; ``$__rate_interval`` covers the whole test run.
VARIABLES = {"namespace": NAMESPACE, "model": MODEL, "__rate_interval": "5m",
             "datasource": "prometheus"}  # fmt: skip
ADAPTER = ROOT / "k8s" / "addons" / "prometheus-adapter-values.yaml"
SELECTOR = re.compile(r"(\w+)\{([^}]*)\}")


def test_the_json_is_what_the_generator_writes() -> None:
    expected = dash.generator().render()
    actual = {p.name: p.read_text() for p in dash.DASHBOARDS.glob("*.json")}
    assert actual == expected, "run: python charts/switchyard/dashboards/generate.py"


def test_every_dashboard_filters_by_datasource_namespace_and_model() -> None:
    for name, board in dash.load().items():
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource", name
        assert {"namespace", "model"} <= set(variables), name
        assert variables["model"]["includeAll"] and variables["model"]["multi"], name
        for panel in board["panels"]:
            if panel["type"] != "text":
                assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
    for q in dash.queries(dash.load()):
        for metric, selector in SELECTOR.findall(q.expr):
            assert 'namespace=~"$namespace"' in selector, f"{q.panel['title']}: {metric}"


@pytest.fixture(scope="module")
def results(observed: Observed) -> dict[str, dict[int, list[str]]]:
    """Every panel's queries, evaluated: dashboard -> panel id -> lines for its picture."""
    prometheus = observed.prometheus
    out: dict[str, dict[int, list[str]]] = {}
    failures = []
    for q in dash.queries(dash.load()):
        expr = dash.substitute(q.expr, VARIABLES)
        try:
            result = prometheus.query(expr)
        except PromQLError as exc:
            failures.append(f"{q.dashboard} / {q.panel['title']}: does not parse: {exc}")
            continue
        if not result and not q.conditional:
            failures.append(f"{q.dashboard} / {q.panel['title']}: no data for {expr}")
        legend = next(t["legendFormat"] for t in q.panel["targets"] if t["expr"] == q.expr)
        lines = dash.summarize(result, legend) or ["no data (conditional)"]
        out.setdefault(q.dashboard, {}).setdefault(q.panel["id"], []).extend(lines)
    assert not failures, "\n".join(failures)
    return out


def test_every_panel_query_returns_data(results: dict[str, dict[int, list[str]]]) -> None:
    boards = dash.load()
    for name, board in boards.items():
        for panel in board["panels"]:
            if panel["type"] != "text":
                assert panel["id"] in results[name], f"{name} / {panel['title']} not evaluated"


def test_variable_queries_offer_the_platform(observed: Observed) -> None:
    for name, board in dash.load().items():
        for var in board["templating"]["list"]:
            if var["type"] != "query":
                continue
            m = re.fullmatch(r"label_values\((.+), (\w+)\)", var["query"]["query"])
            assert m, var["query"]["query"]
            match = dash.substitute(m[1], VARIABLES)
            values = observed.prometheus.api(f"label/{m[2]}/values", **{"match[]": match})
            assert VARIABLES[var["name"]] in values, f"{name}: ${var['name']} offers {values}"


def used_metrics() -> dict[str, set[str]]:
    """Metric names the dashboards (but DCGM's), the alerts and the autoscalers use."""
    used: dict[str, set[str]] = {}
    for q in dash.queries(dash.load()):
        for m in dash.metric_names(q.expr):
            if not m.startswith("DCGM_"):
                used.setdefault(m, set()).add(f"dashboard {q.dashboard}")
    for scenario in ("observability-all", "keda"):
        rendered = render(scenario)
        for rule in rendered.of_kind("PrometheusRule"):
            for group in rule["spec"]["groups"]:
                for r in group["rules"]:
                    for m in dash.metric_names(r["expr"]):
                        used.setdefault(m, set()).add(f"alert {r.get('alert')}")
        for hpa in rendered.of_kind("HorizontalPodAutoscaler"):
            for metric in hpa["spec"]["metrics"]:
                if metric["type"] == "Pods":
                    name = metric["pods"]["metric"]["name"]
                    used.setdefault(name, set()).add(f"HPA {hpa['metadata']['name']}")
        for so in rendered.of_kind("ScaledObject"):
            for trigger in so["spec"]["triggers"]:
                for m in dash.metric_names(trigger["metadata"].get("query", "")):
                    used.setdefault(m, set()).add(f"ScaledObject {so['metadata']['name']}")
    adapter = yaml.safe_load(ADAPTER.read_text())
    for rule in adapter["rules"]["custom"]:
        for m in dash.metric_names(rule["seriesQuery"]):
            used.setdefault(m, set()).add("prometheus-adapter rule")
    return used


def test_every_metric_used_exists_in_the_services(observed: Observed) -> None:
    exported: set[str] = set()
    for target in observed.platform.targets:
        for name, fam in parse_exposition(scrape(target.url)).items():
            exported.add(name)
            if fam.type == "histogram":
                exported |= {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
    used = used_metrics()
    assert any(u.startswith("alert") for s in used.values() for u in s)
    assert any(u.startswith("HPA") for s in used.values() for u in s)
    assert any(u.startswith("prometheus-adapter") for s in used.values() for u in s)
    missing = {m: sorted(where) for m, where in used.items() if m not in exported}
    assert not missing, f"used but not exported: {missing}"


def test_pictures_of_each_dashboard(
    results: dict[str, dict[int, list[str]]], tmp_path: Path
) -> None:
    out = dash.PICTURES if os.environ.get("SWITCHYARD_WRITE_PICTURES") else tmp_path
    for name, board in dash.load().items():
        values: dict[int, Any] = {
            pid: "\n".join(lines[:6]) for pid, lines in results.get(name, {}).items()
        }
        for panel in board["panels"]:
            if panel["type"] == "text":
                values[panel["id"]] = panel["options"]["content"][:60] + "..."
        dash.draw(board, values, out / f"{name}.png")
        assert (out / f"{name}.png").stat().st_size > 10_000
