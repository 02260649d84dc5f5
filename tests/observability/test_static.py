"""Static checks of the dashboards and Prometheus rules: they parse, every query uses the
datasource variable and metrics the services export, every alert is documented and has
promtool unit tests that see it fire and stay quiet."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
import yaml
from obs_checks import (
    CLUSTER_ONLY,
    DASHBOARDS,
    DOC,
    PROMETHEUS_SYNTHETIC,
    RULE_FILES,
    RULE_TESTS,
    dashboard_targets,
    exported_metric_names,
    load_dashboards,
    load_rules,
    metric_names,
    panels,
    selectors,
)

DS_UIDS = {"${datasource}", "$datasource"}


def test_there_is_something_to_check():
    assert len(DASHBOARDS) >= 2 and len(RULE_FILES) >= 2 and len(RULE_TESTS) >= 1
    assert sum(1 for _ in dashboard_targets()) >= 30


def test_scanner_finds_selectors_and_nothing_else():
    expr = (
        'sum by (le, job) (rate(a_bucket{x="b{c}", job=~"$job"}[5m] offset 15m)) / on (x) group_left () b '
        'unless c > 0.05 and {__name__=~"pizza_.+"} or vector(0) * 1e3 and label_replace(d, "s", "${1}", "s", "(.)")'
    )
    assert selectors(expr) == [
        ("a_bucket", 'a_bucket{x="b{c}", job=~"$job"}'),
        ("b", "b"),
        ("c", "c"),
        (None, '{__name__=~"pizza_.+"}'),
        ("d", "d"),
    ]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_structure(path):
    board = json.loads(path.read_text())
    assert board["uid"].startswith("pizza-shop-") and board["title"]
    assert 36 <= board["schemaVersion"] <= 41
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("namespace", "job"):
        var = variables[name]
        assert var["type"] == "query" and var["includeAll"] and var["multi"]
        assert var["datasource"]["uid"] in DS_UIDS
    # Outside Kubernetes there is no namespace label: "All" must match the empty value.
    assert variables["namespace"]["allValue"] == ".*"
    ids = [p["id"] for p in board["panels"]] + [p["id"] for r in board["panels"] for p in r.get("panels", [])]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels(board):
        assert panel.get("title") and panel.get("description"), f"panel {panel.get('id')} needs a title and description"
        assert panel["datasource"]["uid"] in DS_UIDS, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] in DS_UIDS, (panel["title"], target["refId"])
            assert target["expr"].strip()


def test_dashboard_uids_are_unique():
    uids = [b["uid"] for b in load_dashboards().values()]
    assert len(uids) == len(set(uids))


@pytest.mark.parametrize(
    "dashboard,title,ref,expr", list(dashboard_targets()), ids=lambda v: v if isinstance(v, str) and len(v) < 60 else ""
)
def test_dashboard_query_uses_exported_metrics_and_variables(dashboard, title, ref, expr):
    known = exported_metric_names() | CLUSTER_ONLY | PROMETHEUS_SYNTHETIC
    names = metric_names(expr)
    assert names, f"{title}/{ref}: no metric in {expr}"
    assert names <= known, f"{title}/{ref}: unknown metrics {sorted(names - known)}"
    for name, text in selectors(expr):
        if name in CLUSTER_ONLY:
            assert 'namespace=~"$namespace"' in text, f"{title}/{ref}: {text} must filter by namespace"
        else:
            # Two installs never mix: every shop selector filters by namespace and job.
            assert 'namespace=~"$namespace"' in text and 'job=~"$job"' in text, f"{title}/{ref}: {text}"


def test_rule_files_pass_promtool_check(promtool):
    result = subprocess.run([promtool, "check", "rules", *map(str, RULE_FILES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", RULE_TESTS, ids=lambda p: p.name)
def test_rule_unit_tests(promtool, path):
    result = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_use_exported_metrics():
    rules = load_rules()
    recorded = {r["record"] for r in rules if "record" in r}
    known = exported_metric_names() | PROMETHEUS_SYNTHETIC | recorded
    for rule in rules:
        names = metric_names(rule["expr"])
        assert names <= known, f"{rule.get('alert') or rule.get('record')}: unknown {sorted(names - known)}"
    for record in recorded:
        assert re.fullmatch(r"[a-z_]+:[a-z_]+:[a-z0-9_]+", record), f"{record}: use level:metric:operation"


def test_every_alert_is_documented_and_labelled():
    doc = DOC.read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", doc, re.M)
    }
    alerts = [r for r in load_rules() if "alert" in r]
    assert len(alerts) >= 7
    for rule in alerts:
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], name
        anchor = f"docs/observability.md#{name.lower()}"
        assert annotations["runbook"].startswith(anchor), f"{name}: runbook should start with {anchor}"
        assert name.lower() in anchors, f"{name}: no '### {name}' section in docs/observability.md"


def test_every_alert_has_a_firing_and_a_quiet_unit_test():
    fires, quiet = set(), set()
    for path in RULE_TESTS:
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                (fires if case.get("exp_alerts") else quiet).add(case["alertname"])
    alerts = {r["alert"] for r in load_rules() if "alert" in r}
    assert alerts <= fires, f"never seen firing: {sorted(alerts - fires)}"
    assert alerts <= quiet, f"never seen quiet: {sorted(alerts - quiet)}"
