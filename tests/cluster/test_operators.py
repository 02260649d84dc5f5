"""The operators of the local cluster acting on what the chart declares (scripts/cluster/operators.sh):
prometheus-operator turns the chart's ServiceMonitor and PrometheusRule into scrape jobs and rules
of a real Prometheus, KEDA scales a kitchen Deployment on the lag of its consumer group through the
external metrics API, and kube-network-policies enforces the chart's NetworkPolicies.

These run first on the release of the `installed` fixture (test_shop.py continues on it), so they
leave it as they found it: every Deployment back at its resting size, no pod restarted.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from collections.abc import Iterator

import pytest
import requests
import yaml
from kube import INSTANCE, NAMESPACE, RELEASE, REPO, RUN, get, is_ready, kubectl, pods
from shop import COMPONENTS, Load, component_pods, deployments, rolled_out, webapp_url

from shop_testing.customer import Customer
from shop_testing.helpers import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

CHART_DIR = REPO / "helm" / "pizza-shop"
AUTOSCALED = "assemble"  # helm/pizza-shop/ci/local-cluster-operators-values.yaml
# What the dashboards' template variables stand for here: every shop job of the release's namespace.
DASHBOARD_VARIABLES = {
    "$namespace": NAMESPACE,
    "$job": f"{RELEASE}-.*",
    "$__rate_interval": "1m",
    "$__range": "15m",
}
# Panels whose query is empty on this cluster, and why.
LEGITIMATELY_EMPTY = {
    "Container restarts in range by pod (cluster only)": (
        "kube_pod_container_status_restarts_total comes from kube-state-metrics, which this cluster does not run"
    ),
}
# Panels of counters that only exist once something happened: empty is right while their metric has
# no series at all (a broken query on an existing metric still fails).
EMPTY_UNTIL_IT_HAPPENS = {
    "Kafka client errors": "pizza_kafka_client_errors_total",
    "Kafka client errors by error": "pizza_kafka_client_errors_total",
}


# --------------------------------------------------------------------------- helpers


def prometheus_url() -> str:
    svc = get("service", "-n", "monitoring", "prometheus")
    return f"http://{svc['spec']['clusterIP']}:{svc['spec']['ports'][0]['port']}"


def prometheus(path: str, **params: str) -> dict | list:
    reply = requests.get(f"{prometheus_url()}/api/v1/{path}", params=params, timeout=30)
    body = reply.json()
    assert body["status"] == "success", f"{path} {params}: {body}"
    return body["data"]


def query(expr: str) -> list[dict]:
    return prometheus("query", query=expr)["result"]


def shop_pods() -> set[str]:
    return {
        p["metadata"]["name"]
        for p in pods(NAMESPACE, INSTANCE)
        if p["metadata"]["labels"]["app.kubernetes.io/component"] != "test" and is_ready(p)
    }


def in_webapp(python: str, timeout: float = 60) -> str:
    """Run Python in a webapp pod: it has the shop's Kafka client and may talk to Kafka and status."""
    return kubectl(
        "exec", "-n", NAMESPACE, f"deploy/{RELEASE}-webapp", "--", "python", "-c", python, timeout=timeout
    ).stdout


def chart_rules() -> list[dict]:
    rules = []
    for path in sorted((CHART_DIR / "files" / "prometheus-rules").glob("*.yaml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules += group["rules"]
    return rules


def dashboard_queries() -> list[tuple[str, str]]:
    found = []
    for path in sorted((CHART_DIR / "files" / "dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    found.append((f"{path.stem}: {panel['title']}", target["expr"]))
    return found


def with_variables(expr: str) -> str:
    for name, value in sorted(DASHBOARD_VARIABLES.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(name, value)
    assert not re.search(r"\$[a-z_]", expr), f"an unknown dashboard variable in {expr}"
    return expr


def metric_names(expr: str) -> set[str]:
    """The series an expression selects (metric names, recorded or scraped)."""
    words = set(re.findall(r"\b([a-z_][a-z0-9_:]*)\s*(?:\{|\[|\)|$|\s)", expr))
    return {w for w in words if w.startswith(("pizza_", "namespace_")) or w == "up"}


def delivered_orders(count: int) -> None:
    load = Load(customers=2, interval=0.1)
    with load:
        load.wait_for_orders(count)
    load.check_every_order_delivered_once()


# --------------------------------------------------------------------------- prometheus-operator


def test_prometheus_scrapes_every_shop_pod_through_the_chart_service_monitor(installed):
    kubectl("get", "servicemonitor", "-n", NAMESPACE, RELEASE)

    def scraped() -> set[str]:
        targets = prometheus("targets", state="active")["activeTargets"]
        return {
            t["labels"]["pod"]
            for t in targets
            if t["scrapePool"].startswith(f"serviceMonitor/{NAMESPACE}/{RELEASE}/") and t["health"] == "up"
        }

    started = time.monotonic()
    expected = shop_pods()
    assert len(expected) >= len(COMPONENTS), expected
    wait_until(lambda: scraped() >= expected, 120, "every shop pod scraped and up", interval=2)
    print(f"\nevery shop pod ({len(expected)}) scraped through the ServiceMonitor {time.monotonic() - started:.0f} s")
    # Each target is labelled as the dashboards and alerts expect: job = the Service's name.
    jobs = {r["metric"]["job"] for r in query(f'up{{namespace="{NAMESPACE}"}}')}
    assert jobs == {f"{RELEASE}-{c}" for c in COMPONENTS}, jobs


def test_the_chart_alert_and_recording_rules_load_and_evaluate():
    expected = {r.get("alert") or r["record"] for r in chart_rules()}

    def loaded() -> dict[str, dict]:
        groups = prometheus("rules")["groups"]
        return {r["name"]: r for g in groups if g["name"].startswith("pizza-shop.") for r in g["rules"]}

    rules = wait_until(lambda: (r := loaded()).keys() >= expected and r, 120, "the chart's rules loaded", interval=2)
    # Evaluated at least once, without error.
    wait_until(lambda: all(r["health"] == "ok" for r in loaded().values()), 60, "every rule evaluated once", interval=2)
    for name, rule in loaded().items():
        assert rule.get("lastError", "") == "", f"{name}: {rule['lastError']}"
    print(f"\n{len(rules)} rules loaded: {sorted(rules)}")


def test_a_dead_letter_fires_the_dead_letters_alert():
    """An event that is not one (bad JSON, no CloudEvents headers) on pizza-ordered: assemble dead-
    letters it and carries on; PizzaDeadLetters (no `for:`) fires on the next evaluation."""
    started = time.monotonic()
    in_webapp(
        "import os; from confluent_kafka import Producer\n"
        "p = Producer({'bootstrap.servers': os.environ['KAFKA_BOOTSTRAP_SERVERS']})\n"
        "p.produce('pizza-ordered', key=b'not-an-order', value=b'not an event')\n"
        "assert p.flush(30) == 0"
    )

    def firing() -> list[dict]:
        return [
            a
            for a in prometheus("alerts")["alerts"]
            if a["labels"]["alertname"] == "PizzaDeadLetters"
            and a["labels"].get("namespace") == NAMESPACE
            and a["state"] == "firing"
        ]

    alerts = wait_until(firing, 120, "PizzaDeadLetters firing", interval=1)
    print(f"\nPizzaDeadLetters firing {time.monotonic() - started:.0f} s after the bad record: {alerts[0]['labels']}")
    assert {a["labels"]["topic"] for a in alerts} == {"pizza-ordered"}
    # The shop kept serving: orders still go through.
    delivered_orders(3)


def test_every_dashboard_query_and_every_rule_returns_data():
    delivered_orders(6)  # fresh rates and latencies for the rate windows
    # A client error for the error-ratio panels: a customer asks for an order that does not exist.
    customer = Customer(webapp_url(), "dashboard-reader")
    assert 400 <= customer.http.get(f"{customer.base}/api/orders/no-such-order", timeout=15).status_code < 500
    empty: dict[str, str] = {}

    for title, expr in dashboard_queries():
        panel = title.split(": ", 1)[1]
        promql = with_variables(expr)
        if panel in LEGITIMATELY_EMPTY:
            assert query(promql) == [], f"{title} has data now: drop it from LEGITIMATELY_EMPTY"
            empty[title] = LEGITIMATELY_EMPTY[panel]
            continue
        metric = EMPTY_UNTIL_IT_HAPPENS.get(panel)
        if metric and not query(f'{metric}{{namespace="{NAMESPACE}"}}'):
            assert query(promql) == [], title
            empty[title] = f"no {metric} series: it never happened since the pods started"
            continue
        wait_until(lambda promql=promql: query(promql), 60, f"data for {title}: {promql}", interval=2)

    for rule in chart_rules():
        if "record" in rule:
            wait_until(lambda r=rule: query(r["record"]), 60, f"the recorded {rule['record']}", interval=2)
        else:
            # An alert's expression is empty while it does not fire; every series it compares exists.
            for name in metric_names(rule["expr"]):
                assert query(f'{name}{{namespace="{NAMESPACE}"}}'), f"{rule['alert']}: no {name}"
    print(f"\n{len(dashboard_queries())} dashboard queries and {len(chart_rules())} rules checked; empty: {empty}")


# --------------------------------------------------------------------------- KEDA


def partitions(topic: str) -> int:
    out = in_webapp(
        "import os; from confluent_kafka.admin import AdminClient\n"
        "a = AdminClient({'bootstrap.servers': os.environ['KAFKA_BOOTSTRAP_SERVERS']})\n"
        f"print(len(a.list_topics('{topic}', timeout=20).topics['{topic}'].partitions))"
    )
    return int(out.strip())


class ReplicaWatch:
    """Samples the autoscaled Deployment and KEDA's lag metric, as the HPA controller reads it
    through the aggregation layer: (seconds, desired replicas, ready replicas, lag)."""

    def __init__(self, component: str, metric_path: str):
        self.name = f"{RELEASE}-{component}"
        self.metric_path = metric_path
        self.samples: list[tuple[float, int, int, float]] = []
        self.started = time.monotonic()

    def lag(self) -> float:
        value = json.loads(kubectl("get", "--raw", self.metric_path).stdout)["items"][0]["value"]
        return float(value[:-1]) / 1000 if value.endswith("m") else float(value)  # a quantity: "12" or "1500m"

    def sample(self) -> tuple[int, int]:
        d = get("deployment", "-n", NAMESPACE, self.name)
        desired, ready = d["spec"]["replicas"], d["status"].get("readyReplicas", 0)
        self.samples.append((time.monotonic() - self.started, desired, ready, self.lag()))
        return desired, ready

    def first(self, condition, after: float = 0) -> float:
        return next(t for t, desired, ready, lag in self.samples if t >= after and condition(desired, ready, lag))


def test_keda_scales_a_kitchen_out_on_a_backlog_and_back_in_without_losing_an_order():
    scaled_object = get("scaledobject", "-n", NAMESPACE, f"{RELEASE}-{AUTOSCALED}")
    conditions = {c["type"]: c["status"] for c in scaled_object["status"]["conditions"]}
    assert conditions.get("Ready") == "True", scaled_object["status"]
    low, high = scaled_object["spec"]["minReplicaCount"], scaled_object["spec"]["maxReplicaCount"]
    topic = scaled_object["spec"]["triggers"][0]["metadata"]["topic"]
    assert high <= partitions(topic), "the chart caps KEDA at the partition count"
    hpa = get("hpa", "-n", NAMESPACE, f"keda-hpa-{RELEASE}-{AUTOSCALED}")
    assert hpa["spec"]["maxReplicas"] == high
    # The HPA reads KEDA's metric through the aggregation layer, as the HPA controller does.
    metric = hpa["spec"]["metrics"][0]["external"]["metric"]
    selector = urllib.parse.quote(",".join(f"{k}={v}" for k, v in metric["selector"]["matchLabels"].items()))
    path = f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{NAMESPACE}/{metric['name']}?labelSelector={selector}"
    assert json.loads(kubectl("get", "--raw", path).stdout)["items"][0]["metricName"] == metric["name"]
    wait_until(lambda: rolled_out(AUTOSCALED), 120, f"{AUTOSCALED} at rest", interval=1)

    watch = ReplicaWatch(AUTOSCALED, path)
    assert watch.sample() == (low, low)
    # A backlog: twenty customers ordering as fast as the webapp takes their orders (each may
    # have 5 open), until KEDA has the kitchen at its cap and every new member is Ready
    # (rebalanced in under load).
    with Load(customers=10, interval=0) as first, Load(customers=10, interval=0) as second:
        wait_until(lambda: watch.sample() == (high, high), 300, f"{AUTOSCALED} scaled out to {high}", interval=0.5)
        first.wait_for_orders(20)
    loaded_until = time.monotonic() - watch.started
    wait_until(lambda: watch.sample()[0] == low, 300, f"{AUTOSCALED} scaled back in to {low}", interval=1)
    wait_until(lambda: rolled_out(AUTOSCALED), 120, f"{AUTOSCALED} at rest again", interval=1)

    out_started = watch.first(lambda desired, ready, lag: desired > low)
    out_ready = watch.first(lambda desired, ready, lag: ready == high)
    drained = watch.first(lambda desired, ready, lag: lag == 0, after=loaded_until)
    in_done = watch.first(lambda desired, ready, lag: desired == low, after=out_ready)
    peak = max(desired for _, desired, _, _ in watch.samples)
    assert peak == high, f"scaled past or short of the cap: {watch.samples}"
    print(
        f"\nKEDA {AUTOSCALED} {low}->{high} (lag peak {max(s[3] for s in watch.samples):.0f}): first scale-out "
        f"{out_started:.0f} s after the load began, {high} Ready at {out_ready:.0f} s; load stopped at "
        f"{loaded_until:.0f} s, lag 0 at {drained:.0f} s, back to {low} at {in_done:.0f} s; "
        f"{first.accepted + second.accepted} orders"
    )
    first.check_every_order_delivered_once()
    second.check_every_order_delivered_once()
    rebalances = query(
        f'sum(increase(pizza_consumer_rebalances_total{{namespace="{NAMESPACE}", group="pizza-{AUTOSCALED}"}}[10m]))'
    )
    print(f"rebalances of pizza-{AUTOSCALED} meanwhile: {rebalances[0]['value'][1] if rebalances else 0}")


# --------------------------------------------------------------------------- NetworkPolicies


def netpol_unsupported() -> str | None:
    marker = RUN / "kube-network-policies.unsupported"
    return marker.read_text().strip() if marker.is_file() else None


def connects(pod: str, host: str, port: int, namespace: str = NAMESPACE) -> bool:
    python = (
        "import socket, sys\n"
        f"try: socket.create_connection(({host!r}, {port}), timeout=5).close()\n"
        "except OSError as e: print(e); sys.exit(3)"
    )
    proc = kubectl("exec", "-n", namespace, pod, "--", "python", "-c", python, check=False, timeout=60)
    assert proc.returncode in (0, 3), proc.stderr
    return proc.returncode == 0


OUTSIDER = "netpol-outsider"


@pytest.fixture
def outsider() -> Iterator[str]:
    """A pod in the shop's namespace that no policy lets in: the shop's own image, other labels."""
    image = component_pods("status")[0]["spec"]["containers"][0]["image"]
    restricted = {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": OUTSIDER, "namespace": NAMESPACE, "labels": {"app.kubernetes.io/name": OUTSIDER}},
        "spec": {
            "containers": [
                {"name": "probe", "image": image, "command": ["sleep", "600"], "securityContext": restricted}
            ],
            "terminationGracePeriodSeconds": 0,
        },
    }
    kubectl("apply", "-f", "-", input=json.dumps(pod))
    kubectl("wait", "-n", NAMESPACE, f"pod/{OUTSIDER}", "--for=condition=Ready", "--timeout=120s", timeout=150)
    yield OUTSIDER
    kubectl("delete", "pod", "-n", NAMESPACE, OUTSIDER, "--wait=false")


def test_network_policies_let_only_the_allowed_paths_through(outsider):
    reason = netpol_unsupported()
    if reason:
        pytest.skip(f"NetworkPolicies are not enforced on this cluster: {reason}")
    status_api = f"{RELEASE}-status.{NAMESPACE}.svc.cluster.local"
    kafka = "kafka-0.kafka.kafka.svc.cluster.local"
    webapp = component_pods("webapp")[0]["metadata"]["name"]
    kitchen = component_pods("bake")[0]["metadata"]["name"]
    assert connects(webapp, status_api, 8081), "webapp -> status API"
    assert connects(kitchen, kafka, 9092), "bake -> Kafka"
    assert not connects(outsider, status_api, 8081), "an outsider reached the status API"
    assert not connects(outsider, kafka, 9092), "an outsider reached Kafka"
    # The shop still serves after the probes.
    assert requests.get(f"{webapp_url()}/api/menu", timeout=10).status_code == 200
    assert all(rolled_out(c) for c in deployments())


def test_operators_left_the_release_at_rest():
    for component in deployments():
        assert rolled_out(component), component
    restarted = [
        p["metadata"]["name"]
        for p in pods(NAMESPACE, INSTANCE)
        if any(s["restartCount"] for s in p["status"].get("containerStatuses", []))
    ]
    assert restarted == []
