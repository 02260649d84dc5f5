"""A real Prometheus scrapes the five real services while orders flow; every dashboard
query and every rule must be valid PromQL and (but for a short, justified list) return
data. This is what proves that the dashboards show the metrics the services export,
with the label values they really use."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests
from obs_checks import RULE_FILES, dashboard_targets, load_rules, selectors, substitute

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

PROMETHEUS = "/usr/bin/prometheus"
SERVICES = ("status", "assemble", "bake", "delivery", "webapp")
JOB = "pizza-shop-{}"  # what the chart's ServiceMonitor makes: <fullname>-<component>
ORDER = {"sauce": "Tomato", "cheese": "Mozzarella", "main_topping": "Pepperoni", "extra_toppings": ["Mushroom"]}

# Dashboard queries that may return nothing in this run, and why. Keep it short.
ALLOWED_EMPTY_PANELS = {
    (
        "pizza-shop-overview.json",
        "Container restarts in range by pod (cluster only)",
        "A",
    ): "kube-state-metrics and the pod label exist only in Kubernetes",
    ("pizza-shop-overview.json", "Kafka client errors", "A"): "a healthy broker gives the clients no errors to report",
    (
        "pizza-shop-kafka.json",
        "Kafka client errors by error",
        "A",
    ): "a healthy broker gives the clients no errors to report",
}
# Selectors inside alert rules that may select nothing in a healthy run, and why.
ALLOWED_EMPTY_SELECTORS = {
    'pizza_http_request_duration_seconds_count{component="webapp", status=~"5.."}': "this run provokes 4xx, never 5xx (a 503 needs Kafka to refuse the order)",
}


class Prom:
    def __init__(self, url: str):
        self.url = url

    def query(self, expr: str) -> list:
        resp = requests.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        body = resp.json()
        assert resp.status_code == 200 and body["status"] == "success", f"{expr}\n-> {body}"
        return body["data"]["result"]

    def value(self, expr: str) -> float:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else float("nan")

    def wait(self, what: str, check, timeout: float = 60.0, interval: float = 0.5):
        deadline = time.monotonic() + timeout
        while True:
            try:
                outcome = check()
            except requests.RequestException:
                outcome = None
            if outcome:
                return outcome
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(interval)  # polling interval of a condition, not a fixed wait


@pytest.fixture
def shop(service_process):
    """The five services on free ports; the kitchen runs 50 times faster than real time."""
    fast = {"KITCHEN_TIME_SCALE": "0.02"}
    procs = {"status": service_process("pizza-status", env=fast)}
    for name in ("assemble", "bake", "delivery"):
        procs[name] = service_process(f"pizza-{name}", env=fast)
    procs["webapp"] = service_process(
        "pizza-webapp",
        env={
            **fast,
            "STATUS_URL": procs["status"].api_url("").rstrip("/"),
            "SECRET_KEY": uuid.uuid4().hex,
            "WEB_CONCURRENCY": "2",
        },
    )
    return procs


@pytest.fixture
def prometheus(shop, tmp_path):
    from local_kafka.broker import free_port

    assert Path(PROMETHEUS).is_file(), "prometheus not found: apt-get install prometheus (Debian/Ubuntu)"
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in RULE_FILES],
        "scrape_configs": [
            {
                "job_name": JOB.format(name),
                "metrics_path": "/metrics",
                "static_configs": [{"targets": [f"127.0.0.1:{proc.http_port}"]}],
            }
            for name, proc in shop.items()
        ],
    }
    (tmp_path / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    log = (tmp_path / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=1h",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    prom = Prom(f"http://127.0.0.1:{port}")
    try:

        def ready():
            assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()[-3000:]
            return requests.get(f"{prom.url}/-/ready", timeout=2).status_code == 200

        prom.wait("Prometheus to be ready", ready)

        def all_up():
            targets = requests.get(f"{prom.url}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
            return len(targets) == len(SERVICES) and all(t["health"] == "up" for t in targets)

        prom.wait("every service to be scraped", all_up)
        yield prom
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def place_orders(webapp, prom: Prom, count: int) -> list[str]:
    session = requests.Session()
    resp = session.post(webapp.url("/api/login"), json={"username": f"obs-{uuid.uuid4().hex[:6]}"}, timeout=10)
    assert resp.status_code == 200, resp.text
    ids = []
    for _ in range(count):
        resp = session.post(webapp.url("/api/orders"), json=ORDER, timeout=15)
        assert resp.status_code == 201, resp.text
        ids.append(resp.json()["order_id"])

    def delivered():
        return all(session.get(webapp.url(f"/api/orders/{i}"), timeout=10).json().get("status") == 400 for i in ids)

    prom.wait(f"{count} orders to be delivered", delivered, timeout=90)
    return ids


def client_errors(webapp) -> None:
    """4xx answers the dashboards' error panels should show: not logged in, invalid order."""
    assert requests.post(webapp.url("/api/orders"), json=ORDER, timeout=10).status_code == 401
    session = requests.Session()
    session.post(webapp.url("/api/login"), json={"username": "obs-invalid"}, timeout=10)
    assert session.post(webapp.url("/api/orders"), json={**ORDER, "sauce": "Ketchup"}, timeout=10).status_code == 400


def poison_event(bootstrap: str) -> None:
    """An event that fails validation: the kitchen dead-letters it, the read model counts it as failed."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce("pizza-ordered", key=f"poison-{uuid.uuid4().hex[:8]}", value=b"{this is not json")
    assert producer.flush(15) == 0


def test_dashboards_and_rules_against_live_services(shop, prometheus, kafka_bootstrap):
    prom, webapp = prometheus, shop["webapp"]
    # Wave 1 creates the counters; wave 2 moves them, so rates and increases are not zero.
    first = place_orders(webapp, prom, 3)
    client_errors(webapp)
    poison_event(kafka_bootstrap)
    second = place_orders(webapp, prom, 3)
    total = len(first) + len(second)

    # Prometheus has scraped the final state, the dead letters included, and evaluated the rules.
    prom.wait(
        "deliveries in Prometheus",
        lambda: prom.value("max(sum by (instance) (pizza_order_end_to_end_seconds_count))") >= total,
    )
    prom.wait(
        "dead letters in Prometheus", lambda: prom.value('sum(pizza_dlq_events_total{topic="pizza-ordered"})') >= 2
    )  # assemble + delivery
    # rate() and increase() need two samples: wait until every shop series has been scraped twice.
    prom.wait(
        "every series scraped twice",
        lambda: min(len(series["values"]) for series in prom.query('{__name__=~"pizza_.+"}[2m]')) >= 2,
    )
    records = [r["record"] for r in load_rules() if "record" in r]
    try:
        prom.wait("every recording rule to have data", lambda: all(prom.query(r) for r in records), timeout=30)
    except AssertionError:
        pass  # reported below with every other query that has no data

    # Every shop job exports pizza_* series: the dashboards' job variable lists them all.
    jobs = requests.get(
        f"{prom.url}/api/v1/label/job/values", params={"match[]": '{__name__=~"pizza_.+"}'}, timeout=10
    ).json()["data"]
    assert sorted(jobs) == sorted(JOB.format(s) for s in SERVICES)

    empty = [f"recording rule {r}" for r in records if not prom.query(r)]
    for dashboard, title, ref, expr in dashboard_targets():
        result = prom.query(substitute(expr))  # asserts valid PromQL
        if not result and (dashboard, title, ref) not in ALLOWED_EMPTY_PANELS:
            empty.append(f"{dashboard} / {title} / {ref}: {substitute(expr)}")

    rules = requests.get(f"{prom.url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    loaded = {r["name"]: r for g in rules for r in g["rules"]}
    for rule in load_rules():
        name = rule.get("alert") or rule["record"]
        assert loaded[name]["health"] == "ok", f"{name}: {loaded[name].get('lastError')}"
        prom.query(rule["expr"])  # valid PromQL; an alert's expression is empty while all is well
        for _metric, text in selectors(rule["expr"]):
            if text not in ALLOWED_EMPTY_SELECTORS and not prom.query(text) and f"{name}: {text}" not in empty:
                empty.append(f"{name}: {text}")
    assert not empty, "queries without data:\n" + "\n".join(empty)

    # A healthy run raises no alert but the one it provoked on purpose (the dead letters).
    # Pending alerts are not raised: an alert with `for:` may be pending for a moment
    # (e.g. orders placed before the first delivery), which is what `for:` absorbs.
    firing = {
        a["labels"]["alertname"]
        for a in requests.get(f"{prom.url}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
        if a["state"] == "firing"
    }
    assert firing <= {"PizzaDeadLetters"}, firing
    prom.wait(
        "PizzaDeadLetters to fire",
        lambda: any(
            a["labels"]["alertname"] == "PizzaDeadLetters" and a["state"] == "firing"
            for a in requests.get(f"{prom.url}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
        ),
    )
