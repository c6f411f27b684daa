"""The Grafana dashboards' one source: ``python charts/switchyard/dashboards/generate.py``
writes ``*.json`` beside it (Grafana schema 39); tests/observability checks they are current
and evaluates every query against a real Prometheus scraping the platform.

Every dashboard has a data source variable and namespace and model filters; a panel whose
description starts with "Conditional:" may have no data (GPU metrics, features not there yet).
Worker series get ``model`` and ``pool`` from the ServiceMonitor (pod labels), see
docs/metrics.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCHEMA_VERSION = 39
NS = 'namespace=~"$namespace"'
NS_MODEL = f'{NS}, model=~"$model"'
RATE = "$__rate_interval"
DS = {"type": "prometheus", "uid": "${datasource}"}
CONDITIONAL_GPU = (
    "Conditional: needs NVIDIA's DCGM exporter on the GPU nodes (its pod labels arrive as "
    "exported_namespace); no data on CPU-only clusters."
)


def q(expr: str, legend: str = "") -> dict[str, str]:
    return {"expr": expr, "legendFormat": legend or "__auto"}


def quantiles(metric: str, selector: str, by: str) -> list[dict[str, str]]:
    """p50 and p99 of a histogram, by ``by``."""
    return [
        q(f"histogram_quantile({p}, sum by ({by}, le) "
          f"(rate({metric}_bucket{{{selector}}}[{RATE}])))", f"p{int(p * 100)} {{{{{by}}}}}")
        for p in (0.5, 0.99)
    ]  # fmt: skip


def rate(metric: str, selector: str, by: str = "") -> str:
    group = f"sum by ({by}) " if by else "sum "
    return f"{group}(rate({metric}{{{selector}}}[{RATE}]))"


def panel(kind: str, title: str, targets: list[dict[str, str]], unit: str = "short",
          description: str = "", width: int = 12) -> dict[str, Any]:  # fmt: skip
    p: dict[str, Any] = {"type": kind, "title": title, "datasource": DS,
                         "description": description, "width": width,
                         "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                         "targets": [{"refId": chr(65 + i), "datasource": DS, **t}
                                     for i, t in enumerate(targets)]}  # fmt: skip
    return p


def ts(title: str, targets: list[dict[str, str]], unit: str = "short", **kw: Any) -> dict[str, Any]:
    return panel("timeseries", title, targets, unit, **kw)


def stat(title: str, targets: list[dict[str, str]], unit: str = "", **kw: Any) -> dict[str, Any]:
    return panel("stat", title, targets, unit or "short", width=kw.pop("width", 6), **kw)


def variables(namespace_metric: str, model_metric: str) -> list[dict[str, Any]]:
    def query(name: str, expr: str, **extra: Any) -> dict[str, Any]:
        return {"name": name, "label": name.capitalize(), "type": "query", "datasource": DS,
                "query": {"query": expr, "refId": name}, "definition": expr, "refresh": 2,
                "sort": 1, **extra}  # fmt: skip

    return [
        {"name": "datasource", "label": "Data source", "type": "datasource",
         "query": "prometheus", "current": {}},
        query("namespace", f"label_values({namespace_metric}, namespace)"),
        query("model", f"label_values({model_metric}{{{NS}}}, model)", multi=True,
              includeAll=True, allValue=".*"),
    ]  # fmt: skip


def dashboard(uid: str, title: str, panels: list[dict[str, Any]],
              namespace_metric: str = "switchyard_gateway_requests_total",
              model_metric: str = "switchyard_gateway_requests_total",
              ) -> dict[str, Any]:  # fmt: skip
    """Lay the panels out left to right, 8 high, wrapping at Grafana's 24 columns."""
    x = y = 0
    laid = []
    for i, p in enumerate(panels, start=1):
        p = dict(p)
        w = p.pop("width")
        if x + w > 24:
            x, y = 0, y + 8
        laid.append({"id": i, "gridPos": {"h": 8, "w": w, "x": x, "y": y}, **p})
        x += w
    return {
        "uid": uid, "title": title, "tags": ["switchyard"], "editable": True,
        "schemaVersion": SCHEMA_VERSION, "time": {"from": "now-1h", "to": "now"},
        "refresh": "30s", "templating": {"list": variables(namespace_metric, model_metric)},
        "panels": laid,
    }  # fmt: skip


GW = "switchyard_gateway"
WK = "switchyard_worker"


def overview() -> dict[str, Any]:
    requests = f"{GW}_requests_total"
    return dashboard("switchyard-overview", "Switchyard / Platform overview", [
        ts("Requests/s by model", [q(rate(requests, NS_MODEL, "model"), "{{model}}")], "reqps"),
        ts("Error ratio by model (non-2xx)", [q(
            rate(requests, NS_MODEL + ', status!~"2.."', "model") + " / "
            + rate(requests, NS_MODEL, "model"), "{{model}}")], "percentunit"),
        ts("Latency p50 / p99 by model",
           quantiles(f"{GW}_request_duration_seconds", NS_MODEL, "model"), "s"),
        ts("Time to first token p50 / p99 by model (streams)",
           quantiles(f"{GW}_time_to_first_token_seconds", NS_MODEL, "model"), "s"),
        ts("Tokens/s by model and kind",
           [q(rate(f"{GW}_tokens_total", NS_MODEL, "model, kind"), "{{model}} {{kind}}")]),
        stat("Healthy instances per model",
             [q(f"max by (model) ({GW}_healthy_instances{{{NS_MODEL}}})", "{{model}}")]),
        stat("Requests in flight (gateways)", [q(f"sum({GW}_in_flight_requests{{{NS}}})")]),
    ])  # fmt: skip


def gateway() -> dict[str, Any]:
    return dashboard("switchyard-gateway", "Switchyard / Gateway", [
        ts("Breaker state per instance (0 closed, 1 half-open, 2 open)", [q(
            f"max by (exported_instance) ({GW}_breaker_state{{{NS}}})",
            "{{exported_instance}}")]),
        ts("Retries/s by reason", [q(rate(f"{GW}_retries_total", NS, "reason"), "{{reason}}")]),
        ts("Rate-limit rejections/s by kind",
           [q(rate(f"{GW}_rate_limited_total", NS, "kind"), "{{kind}}")]),
        ts("Backpressure rejections/s by scope",
           [q(rate(f"{GW}_backpressure_rejections_total", NS, "scope"), "{{scope}}")]),
        ts("Cache hit ratio", [q(
            rate(f"{GW}_cache_lookups_total", NS + ', result="hit"') + " / "
            + rate(f"{GW}_cache_lookups_total", NS), "hit ratio")], "percentunit",
           description="NaN until the first lookup: the cache is opt-in per request or key."),
        ts("Gateway overhead p50 / p99 by route",
           quantiles(f"{GW}_overhead_seconds", NS, "route"), "s"),
        ts("In flight per gateway", [q(f"sum by (pod) ({GW}_in_flight_requests{{{NS}}})",
                                       "{{pod}}")]),
        ts("Requests/s by model and status",
           [q(rate(f"{GW}_requests_total", NS_MODEL, "model, status"), "{{model}} {{status}}")],
           "reqps"),
        ts("Store failures served open/s",
           [q(rate(f"{GW}_dependency_errors_total", NS, "dependency"), "{{dependency}}")]),
    ])  # fmt: skip


def workers() -> dict[str, Any]:
    return dashboard("switchyard-model-workers", "Switchyard / Model-workers", [
        ts("Queue depth per pod", [q(f"sum by (pod) ({WK}_queue_depth{{{NS_MODEL}}})",
                                     "{{pod}}")]),
        ts("In flight per pod (of capacity)", [
            q(f"sum by (pod) ({WK}_requests_in_flight{{{NS_MODEL}}})", "{{pod}}"),
            q(f"sum by (pod) ({WK}_capacity{{{NS_MODEL}}})", "{{pod}} capacity")]),
        ts("Time to first token p50 / p99 by model",
           quantiles(f"{WK}_time_to_first_token_seconds", NS_MODEL, "model"), "s"),
        ts("Inter-token latency p50 / p99 by model",
           quantiles(f"{WK}_inter_token_latency_seconds", NS_MODEL, "model"), "s"),
        ts("Generated tokens/s per pool",
           [q(rate(f"{WK}_completion_tokens_total", NS_MODEL, "model, pool"),
              "{{model}} / {{pool}}")]),
        ts("Queue wait p99 by model",
           quantiles(f"{WK}_queue_wait_seconds", NS_MODEL, "model")[1:], "s"),
        ts("Admission rejections/s by reason",
           [q(rate(f"{WK}_rejected_requests_total", NS_MODEL, "reason"), "{{reason}}")]),
        ts("Finished generations/s by finish reason",
           [q(rate(f"{WK}_generations_total", NS_MODEL, "finish_reason"), "{{finish_reason}}")]),
        ts("GPU utilisation", [q('avg by (Hostname, gpu) '
                                 '(DCGM_FI_DEV_GPU_UTIL{exported_namespace=~"$namespace"})',
                                 "{{Hostname}} GPU {{gpu}}")], "percent",
           description=CONDITIONAL_GPU),
        ts("GPU memory used", [q('sum by (Hostname, gpu) '
                                 '(DCGM_FI_DEV_FB_USED{exported_namespace=~"$namespace"})',
                                 "{{Hostname}} GPU {{gpu}}")], "decmbytes",
           description=CONDITIONAL_GPU),
    ], namespace_metric=f"{WK}_queue_depth", model_metric=f"{WK}_queue_depth")  # fmt: skip


SESSION = "switchyard_session_http"
TURNS = 'method="POST", route=~"/v1/conversations/.+/items|/v1/responses"'


def conversations() -> dict[str, Any]:
    return dashboard("switchyard-conversations", "Switchyard / Conversations", [
        ts("Turns/s (items and stored responses written)",
           [q(rate(f"{SESSION}_requests_total", f"{NS}, {TURNS}"), "turns")]),
        ts("Context build time p50 / p99", quantiles(
            f"{SESSION}_request_duration_seconds", f'{NS}, route="/v1/context"', "route"), "s"),
        ts("Store latency p99 by route", quantiles(
            f"{SESSION}_request_duration_seconds", NS, "route")[1:], "s"),
        ts("Session requests/s by route and status",
           [q(rate(f"{SESSION}_requests_total", NS, "route, status"), "{{route}} {{status}}")]),
        ts("Responses API requests/s by model (gateway)",
           [q(rate(f"{GW}_requests_total", f'{NS_MODEL}, route="responses"', "model"),
              "{{model}}")], "reqps",
           description="Conditional: data once Responses API requests were made."),
        ts("Context truncations/s by model (gateway)",
           [q(rate(f"{GW}_context_truncations_total", NS_MODEL, "model"), "{{model}} turns"),
            q(rate(f"{GW}_context_dropped_items_total", NS_MODEL, "model"),
              "{{model}} items left out")],
           description="Conditional: data once a turn was truncated (truncation='auto')."),
    ], namespace_metric=f"{SESSION}_requests_total")  # fmt: skip


WH = "switchyard_webhook"
BG = "switchyard_session_background"


def webhooks() -> dict[str, Any]:
    return dashboard("switchyard-webhooks", "Switchyard / Webhooks", [
        ts("Queue lag (oldest pending delivery)",
           [q(f"max({WH}_oldest_pending_age_seconds{{{NS}}})", "lag")], "s"),
        ts("Deliveries/s by outcome",
           [q(rate(f"{WH}_deliveries_total", NS, "outcome"), "{{outcome}}")]),
        stat("Dead letters", [q(f"max({WH}_dead_letter_deliveries{{{NS}}})")]),
        stat("Disabled endpoints", [q(f"max({WH}_disabled_endpoints{{{NS}}})")]),
        ts("Delivery attempt duration p50 / p99",
           quantiles(f"{WH}_attempt_duration_seconds", NS, "namespace"), "s"),
        ts("Events published/s by type",
           [q(rate(f"{WH}_events_published_total", NS, "type"), "{{type}}")]),
        ts("Background responses queued and running",
           [q(f"max by (status) ({BG}_responses{{{NS}}})", "{{status}}"),
            q(f"max({BG}_expired_leases{{{NS}}})", "lease ran out, not taken up")]),
        ts("Oldest background response by status",
           [q(f"max by (status) ({BG}_oldest_age_seconds{{{NS}}})", "{{status}}")], "s"),
        ts("Background responses ended/s by outcome (gateways)",
           [q(rate(f"{GW}_background_responses_total", NS, "outcome"), "{{outcome}}")]),
    ], namespace_metric=f"{WH}_deliveries_total")  # fmt: skip


DASHBOARDS = {"switchyard-overview": overview, "switchyard-gateway": gateway,
              "switchyard-model-workers": workers, "switchyard-conversations": conversations,
              "switchyard-webhooks": webhooks}  # fmt: skip


def render() -> dict[str, str]:
    """File name to JSON text, as written."""
    return {f"{name}.json": json.dumps(build(), indent=2) + "\n"
            for name, build in DASHBOARDS.items()}  # fmt: skip


def main() -> int:
    for name, text in render().items():
        (HERE / name).write_text(text)
    print(f"wrote {len(DASHBOARDS)} dashboards to {HERE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
