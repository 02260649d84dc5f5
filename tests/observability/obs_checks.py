"""Helpers of the observability tests: where dashboards and rules live, and a small
PromQL scanner that finds the metric selectors of an expression."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((REPO / "helm/pizza-shop/files/dashboards").glob("*.json"))
RULE_FILES = sorted((REPO / "helm/pizza-shop/files/prometheus-rules").glob("*.yaml"))
RULE_TESTS = sorted((Path(__file__).parent / "rules").glob("*.test.yaml"))
DOC = REPO / "docs/observability.md"

# Metrics that exist only in a Kubernetes cluster (kube-state-metrics), never in local runs.
CLUSTER_ONLY = frozenset({"kube_pod_container_status_restarts_total"})
# Series Prometheus makes itself for every target.
PROMETHEUS_SYNTHETIC = frozenset({"up"})

_KEYWORDS = frozenset(
    {
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "and",
        "or",
        "unless",
        "offset",
        "inf",
        "nan",
        "atan2",
    }
)
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})


def _skip_string(expr: str, i: int) -> int:
    quote = expr[i]
    i += 1
    while expr[i] != quote:
        i += 2 if expr[i] == "\\" else 1
    return i + 1


def _skip_until(expr: str, i: int, close: str) -> int:
    """From an opening bracket at i, return the index after its matching close (strings skipped)."""
    i += 1
    while expr[i] != close:
        i = _skip_string(expr, i) if expr[i] in "\"'`" else i + 1
    return i + 1


def selectors(expr: str) -> list[tuple[str | None, str]]:
    """Every vector selector of a PromQL expression: (metric name or None, selector text).

    Enough PromQL for the shop's expressions: strings, label matchers, ranges and
    durations, grouping label lists, function calls and keywords are told apart."""
    out: list[tuple[str | None, str]] = []
    i, n = 0, len(expr)
    while i < n:
        c = expr[i]
        if c in "\"'`":
            i = _skip_string(expr, i)
        elif c == "[":
            i = _skip_until(expr, i, "]")
        elif c == "{":  # a selector without a metric name: {__name__=~"..."}
            end = _skip_until(expr, i, "}")
            out.append((None, expr[i:end]))
            i = end
        elif c.isdigit() or (c == "." and i + 1 < n and expr[i + 1].isdigit()):
            m = re.compile(r"[0-9.]+(?:e[+-]?[0-9]+)?[a-z]*", re.I).match(expr, i)  # numbers, durations
            i = m.end()
        elif _IDENT.match(expr, i):
            m = _IDENT.match(expr, i)
            word, j = m.group(0), m.end()
            while j < n and expr[j].isspace():
                j += 1
            if word in _GROUPING and j < n and expr[j] == "(":
                i = _skip_until(expr, j, ")")  # by (a, b): label names, not metrics
            elif (
                word == "offset"
                or (j < n and expr[j] == "(")
                or word.lower() in _KEYWORDS
                or re.match(r"(by|without)\s*\(", expr[j:])
            ):  # sum by (a) (...)
                i = m.end()  # function, aggregation or keyword
            else:
                end = _skip_until(expr, j, "}") if j < n and expr[j] == "{" else m.end()
                out.append((word, expr[i:end]))
                i = end
        else:
            i += 1
    return out


def metric_names(expr: str) -> set[str]:
    return {name for name, _ in selectors(expr) if name}


def exported_metric_names() -> set[str]:
    """Every sample name the services can export: kafka_common.metrics' objects with the
    suffixes prometheus_client adds per type."""
    from prometheus_client.metrics import MetricWrapperBase

    from kafka_common import metrics

    suffixes = {
        "counter": ("_total", "_created"),
        "gauge": ("",),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
        "info": ("_info",),
    }
    names = set()
    for obj in vars(metrics).values():
        if isinstance(obj, MetricWrapperBase):
            for family in obj.describe():
                names.update(family.name + s for s in suffixes[family.type])
    return names


def load_dashboards() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in DASHBOARDS}


def panels(dashboard: dict):
    """Every panel that is not a row (rows may also nest collapsed panels)."""
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def dashboard_targets():
    """(dashboard file, panel title, refId, expr) of every query in every dashboard."""
    for name, board in load_dashboards().items():
        for panel in panels(board):
            for target in panel.get("targets", []):
                yield name, panel["title"], target["refId"], target["expr"]


def load_rules() -> list[dict]:
    rules = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                rules.append({**rule, "_file": path.name, "_group": group["name"]})
    return rules


def substitute(expr: str, rate_interval: str = "2m", range_: str = "10m") -> str:
    """Grafana's variables, as Grafana would fill them in, with every namespace and job."""
    return (
        expr.replace("$__rate_interval", rate_interval)
        .replace("$__range", range_)
        .replace("$__interval", "15s")
        .replace("${namespace}", ".*")
        .replace("$namespace", ".*")
        .replace("${job}", ".*")
        .replace("$job", ".*")
    )
