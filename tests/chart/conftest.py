from __future__ import annotations

import pytest

from tests.chart.render import SCENARIOS, Rendered, render

_cache: dict[str, Rendered] = {}


def rendered_scenario(scenario: str) -> Rendered:
    """Each scenario is rendered once per test session."""
    if scenario not in _cache:
        _cache[scenario] = render(scenario)
    return _cache[scenario]


@pytest.fixture(params=SCENARIOS)
def rendered(request: pytest.FixtureRequest) -> Rendered:
    return rendered_scenario(request.param)
