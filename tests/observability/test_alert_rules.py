"""The chart's alert rules, as its PrometheusRule renders them: promtool checks them and
runs tests/observability/rules/, which must fire and not fire every alert; each alert's
runbook annotation names a section of docs/runbook.md."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.render import render
from tests.observability.catalog import ROOT

RULE_TESTS = Path(__file__).parent / "rules"
RUNBOOK = ROOT / "docs" / "runbook.md"
pytestmark = pytest.mark.skipif(not shutil.which("promtool"), reason="needs promtool")


def rendered_groups() -> list[dict[str, Any]]:
    rules = render("observability-all").of_kind("PrometheusRule")
    assert len(rules) == 1
    groups: list[dict[str, Any]] = rules[0]["spec"]["groups"]
    return groups


def alerts() -> list[dict[str, Any]]:
    return [r for g in rendered_groups() for r in g["rules"] if "alert" in r]


@pytest.fixture(scope="module")
def rules_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rules")
    (out / "rules.yaml").write_text(yaml.safe_dump({"groups": rendered_groups()}))
    for test in RULE_TESTS.glob("*.yaml"):
        shutil.copy(test, out / test.name)
    return out


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], cwd=cwd, capture_output=True, text=True)


def test_promtool_checks_the_rendered_rules(rules_dir: Path) -> None:
    result = promtool("check", "rules", "rules.yaml", cwd=rules_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in result.stdout


def test_promtool_unit_tests_pass(rules_dir: Path) -> None:
    tests = sorted(p.name for p in RULE_TESTS.glob("*.yaml"))
    result = promtool("test", "rules", *tests, cwd=rules_dir)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    cases: dict[str, set[bool]] = {}
    for path in RULE_TESTS.glob("*.yaml"):
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                cases.setdefault(case["alertname"], set()).add(bool(case.get("exp_alerts")))
    for alert in alerts():
        assert cases.get(alert["alert"]) == {True, False}, alert["alert"]


def github_anchor(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_alert_has_a_runbook_section() -> None:
    anchors = {
        github_anchor(line.lstrip("#"))
        for line in RUNBOOK.read_text().splitlines()
        if line.startswith("#")
    }
    for alert in alerts():
        runbook = alert["annotations"]["runbook"]
        doc, _, anchor = runbook.partition("#")
        assert doc == "docs/runbook.md" and anchor in anchors, f"{alert['alert']}: {runbook}"
        assert alert["labels"]["severity"] in ("warning", "critical")
        assert 'namespace="sy"' in alert["expr"], "every query is scoped to the release"
