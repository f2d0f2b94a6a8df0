"""deploy/: the Prometheus rules pass promtool's check and their own unit tests, every alert
is tested and names a RUNBOOK.md section that exists, and every dashboard expression parses
and reads only metrics Tenantry exports (or the rules record)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

import tenantry.metrics  # noqa: F401 (every metric registered)
from tests.conftest import ROOT
from tests.fixtures.servers import _unavailable

PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "tenantry.json"
METRIC = re.compile(r"\b(tenantry(?:_[a-z0-9]+)+|tenantry:[a-z0-9_:]+)\b")
SUFFIXES = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        _unavailable("promtool (apt-get install prometheus)", "TENANTRY_TEST_REQUIRE_PROMTOOL")
    return str(found)


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((PROMETHEUS / "rules.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def alerts() -> list[dict[str, Any]]:
    return [rule for rule in rules() if "alert" in rule]


def exported() -> set[str]:
    names = set()
    for family in REGISTRY.collect():
        for suffix in SUFFIXES.get(family.type, [""]):
            names.add(family.name + suffix)
    return names | {rule["record"] for rule in rules() if "record" in rule}


def github_anchor(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_promtool_checks_the_rules_and_runs_their_tests(promtool: str) -> None:
    for command in (["check", "rules", "rules.yml"], ["test", "rules", "tests.yml"]):
        result = subprocess.run(
            [promtool, *command], cwd=PROMETHEUS, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_tested_has_a_severity_and_a_runbook_section() -> None:
    tests = yaml.safe_load((PROMETHEUS / "tests.yml").read_text())["tests"]
    tested = {case["alertname"] for test in tests for case in test["alert_rule_test"]}
    headings = (ROOT / "RUNBOOK.md").read_text().splitlines()
    anchors = {github_anchor(line.lstrip("#")) for line in headings if line.startswith("#")}
    for alert in alerts():
        name = alert["alert"]
        assert name in tested, f"{name} has no promtool test"
        assert alert["labels"]["severity"] in {"page", "ticket"}, name
        assert alert["annotations"]["summary"], name
        document, _, anchor = alert["annotations"]["runbook"].partition("#")
        assert document == "RUNBOOK.md" and anchor in anchors, f"{name}: no section #{anchor}"


def test_the_rules_read_only_exported_metrics() -> None:
    for rule in rules():
        unknown = set(METRIC.findall(rule["expr"])) - exported()
        assert not unknown, f"{rule.get('alert') or rule.get('record')} reads {unknown}"


def dashboard_expressions() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]


def test_every_panel_reads_exported_metrics() -> None:
    titles = {title for title, _ in dashboard_expressions()}
    for needed in ("Signup attempts", "funnel", "Provisioning", "Magic-link", "Error codes"):
        assert any(needed.lower() in title.lower() for title in titles), needed
    for title, expression in dashboard_expressions():
        names = set(METRIC.findall(expression))
        assert names, f"{title}: {expression} reads no Tenantry metric"
        assert not names - exported(), f"{title} reads {names - exported()}"


def test_every_panel_expression_parses(promtool: str, tmp_path: Path) -> None:
    """promtool parses each expression as a recording rule's."""
    recorded = [
        {"record": f"dashboard:panel{n}", "expr": expression}
        for n, (_, expression) in enumerate(dashboard_expressions())
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": recorded}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
