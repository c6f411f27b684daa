"""docs/metrics.md against what the running services export, and the naming conventions."""

from __future__ import annotations

import re

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from switchyard_common.registration import RegistrationMetrics
from switchyard_gateway.discovery.base import DiscoveryMetrics
from tests.observability.catalog import METRICS_DOC, Family, parse_doc, parse_exposition
from tests.observability.conftest import Observed
from tests.observability.platform import scrape

CONDITIONAL = "Only in some deployments"
SERVICES = ("gateway", "model_worker", "worker", "session", "webhook")
# Labels that would be unbounded (one series per tenant, key, conversation, URL, ...).
UNBOUNDED = {"tenant", "key", "key_id", "api_key", "user", "conversation", "conversation_id",
             "response_id", "item_id", "url", "path", "endpoint_id", "request_id", "trace_id",
             "session_id", "event_id"}  # fmt: skip
# Documented exceptions: the tenant label only when the operator turns it on ("all" otherwise).
TENANT_LABELLED = {
    "switchyard_gateway_tenant_requests_total",
    "switchyard_gateway_tenant_tokens_total",
}
# A generous bound on series per family in this run (models x routes x statuses at most).
MAX_SERIES = 60
TIME_WORDS = re.compile(r"(^|_)(duration|latency|time|age|wait)(_|$)")


@pytest.fixture(scope="module")
def live(observed: Observed) -> dict[str, Family]:
    families: dict[str, Family] = {}
    for target in observed.platform.targets:
        for name, fam in parse_exposition(scrape(target.url)).items():
            if name in families:
                families[name].labels |= fam.labels
                families[name].series = max(families[name].series, fam.series)
            else:
                families[name] = fam
    return families


def conditional_families() -> dict[str, Family]:
    """The families only some deployments have, from the code that defines them."""
    families: dict[str, Family] = {}
    for build in (RegistrationMetrics, *(
        lambda r, b=b: DiscoveryMetrics(r, b) for b in ("consul", "kubernetes"))):  # fmt: skip
        registry = CollectorRegistry()
        build(registry)
        families.update(parse_exposition(generate_latest(registry).decode()))
    return families


def test_every_exported_family_is_documented_with_its_type_and_labels(
    live: dict[str, Family],
) -> None:
    doc = parse_doc(METRICS_DOC.read_text())
    missing = sorted(set(live) - set(doc))
    assert not missing, f"not in docs/metrics.md: {missing}"
    for name, fam in live.items():
        row = doc[name]
        assert row.type == fam.type, f"{name}: documented as {row.type}, exported as {fam.type}"
        assert fam.labels <= row.labels, f"{name}: labels {fam.labels - row.labels} undocumented"
        if fam.series:  # with samples, every documented label is seen
            assert fam.labels == row.labels, f"{name}: documented {row.labels}, got {fam.labels}"


def test_nothing_documented_that_does_not_exist(live: dict[str, Family]) -> None:
    doc = parse_doc(METRICS_DOC.read_text())
    conditional = conditional_families()
    for name, row in doc.items():
        if row.section == CONDITIONAL:
            assert name in conditional, f"{name}: documented but defined nowhere"
            assert row.type == conditional[name].type
        else:
            assert name in live, f"{name}: documented but no service exports it"
    assert set(conditional) <= set(doc), "a conditional family is undocumented"


def test_names_units_and_labels_follow_the_conventions(live: dict[str, Family]) -> None:
    for name, fam in live.items():
        service = re.match(rf"switchyard_({'|'.join(SERVICES)})_", name)
        assert service, f"{name}: not switchyard_<service>_..."
        assert (fam.type == "counter") == name.endswith("_total"), f"{name}: _total iff counter"
        assert not re.search(r"_(ms|milliseconds|kb|mb|kilobytes|megabytes)(_|$)", name), name
        if TIME_WORDS.search(name.removesuffix("_total")):
            assert name.removesuffix("_total").endswith("_seconds"), f"{name}: not in seconds"
        unbounded = fam.labels & UNBOUNDED - ({"tenant"} if name in TENANT_LABELLED else set())
        assert not unbounded, f"{name}: unbounded labels {unbounded}"
        assert fam.series <= MAX_SERIES, f"{name}: {fam.series} series"


def test_the_traffic_reached_every_service(live: dict[str, Family]) -> None:
    """The checks above saw labelled series, not only empty families."""
    for name in ("switchyard_gateway_requests_total", "switchyard_worker_requests_total",
                 "switchyard_session_http_requests_total", "switchyard_webhook_deliveries_total",
                 "switchyard_gateway_rate_limited_total"):  # fmt: skip
        assert live[name].series > 0, name
