"""The platform under observation and a real Prometheus scraping it, started once for the
observability tests; two rounds of traffic with a scrape before, between and after."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.observability.platform import ObservedPlatform, Traffic, start_observed
from tests.observability.prometheus import Prometheus
from tests.support.fixtures import stop_platform


@dataclass
class Observed:
    platform: ObservedPlatform
    prometheus: Prometheus


@pytest.fixture(scope="session")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Observed]:
    obs = start_observed(tmp_path_factory.mktemp("observed"))
    prometheus = None
    try:
        prometheus = Prometheus(tmp_path_factory.mktemp("prometheus"), obs.targets)
        prometheus.wait_all_up()
        traffic = Traffic(obs.platform)
        for _ in range(2):
            traffic.round()
            prometheus.wait_scraped_after(time.time())
        yield Observed(obs, prometheus)
    finally:
        if prometheus is not None:
            prometheus.stop()
        stop_platform(obs.platform)
