"""pizza-webapp as a real gunicorn process against a real Kafka broker."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import requests
from prometheus_client.multiprocess import MultiProcessCollector

from kafka_common import topics
from kafka_common.events import PizzaOrdered, decode
from local_kafka.testing import read_records, wait_until
from pizza_webapp.validation import customer_id_for

pytestmark = pytest.mark.kafka

PIZZA = {"sauce": "Buffalo", "cheese": "Gruyere", "main_topping": "Vegan meat",
         "extra_toppings": ["Black olives", "Green pepper"]}
# Bounds, not expectations: the producer gives up after 5 s (message timeout) plus a margin.
HTTP_TIMEOUT_S = 20.0
RECOVERY_S = 90.0


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def webapp_env(tmp_path: Path, **extra) -> dict:
    return {
        "SECRET_KEY": "integration-test-key",
        # No status service here: ordering must not need it.
        "STATUS_URL": f"http://127.0.0.1:{unused_port()}",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "WEB_CONCURRENCY": "2",
        **extra,
    }


def customer(webapp, username: str = "integration") -> requests.Session:
    session = requests.Session()
    response = session.post(webapp.url("/api/login"), json={"username": username}, timeout=HTTP_TIMEOUT_S)
    assert response.status_code == 200, response.text
    return session


def place(webapp, session: requests.Session, pizza: dict = PIZZA, fresh_connection: bool = False) -> requests.Response:
    headers = {"Connection": "close"} if fresh_connection else {}
    return session.post(webapp.url("/api/orders"), json=pizza, headers=headers, timeout=HTTP_TIMEOUT_S)



def ready(webapp) -> bool:
    try:
        return requests.get(webapp.url("/readyz"), timeout=5).status_code == 200
    except requests.RequestException:
        return False


def test_order_through_the_webapp_is_a_valid_pizza_ordered_event(service_process, read_topic, tmp_path):
    webapp = service_process("pizza-webapp", env=webapp_env(tmp_path))
    session = customer(webapp, "integration-alice")
    response = place(webapp, session)
    assert response.status_code == 201, response.text
    order_id = response.json()["order_id"]

    records = read_topic(topics.PIZZA_ORDERED, until=lambda rs: any(r.key == order_id for r in rs))
    [record] = [r for r in records if r.key == order_id]
    event = decode(PizzaOrdered, record.key.encode(), record.value, list(record.headers.items()))
    assert event.payload.order_id == order_id
    assert event.payload.customer_id == customer_id_for("integration-alice")
    assert event.payload.username == "integration-alice"
    assert event.payload.pizza.model_dump(mode="json") == PIZZA
    assert event.envelope.source == "/pizza-shop/webapp"

    # SIGTERM: the workers flush their producers and the master exits 0.
    assert webapp.stop(timeout=30) == 0
    log = webapp.log_text()
    assert "worker exiting: flushing the producer" in log
    assert "producer flushed" in log


def test_broker_down_means_503_and_the_order_never_appears(service_process, dedicated_kafka, tmp_path):
    webapp = service_process("pizza-webapp", env=webapp_env(tmp_path, WEB_CONCURRENCY="1"),
                             bootstrap=dedicated_kafka.bootstrap)
    session = customer(webapp, "integration-outage")
    before = place(webapp, session)
    assert before.status_code == 201, before.text

    dedicated_kafka.stop()
    failed = place(webapp, session)  # bounded by HTTP_TIMEOUT_S: a hang fails the test
    assert failed.status_code == 503, failed.text
    assert list(failed.json()) == ["error"]

    dedicated_kafka.start()
    wait_until(lambda: ready(webapp), RECOVERY_S, "webapp ready again after the broker came back")
    after = place(webapp, session)
    assert after.status_code == 201, after.text

    expected = {before.json()["order_id"], after.json()["order_id"]}
    config = {"bootstrap.servers": dedicated_kafka.bootstrap}
    read_records(config, topics.PIZZA_ORDERED, until=lambda rs: expected <= {r.key for r in rs})
    # Read again up to the end: exactly the two acknowledged orders, nothing from the 503.
    records = read_records(config, topics.PIZZA_ORDERED)
    assert sorted(r.key for r in records) == sorted(expected)


def _per_worker_orders(metrics_dir: Path) -> dict[str, float]:
    counts = {}
    for path in sorted(metrics_dir.glob("counter_*.db")):
        for metric in MultiProcessCollector.merge([str(path)], accumulate=True):
            for sample in metric.samples:
                if sample.name == "pizza_orders_placed_total" and sample.value:
                    counts[path.name] = sample.value
    return counts


def _scraped_orders(webapp) -> float:
    # A new connection each time, so that either worker may answer the scrape.
    text = requests.get(webapp.url("/metrics"), headers={"Connection": "close"}, timeout=HTTP_TIMEOUT_S).text
    for line in text.splitlines():
        if line.startswith('pizza_orders_placed_total{component="webapp"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_add_up_across_two_workers(service_process, tmp_path):
    webapp = service_process("pizza-webapp", env=webapp_env(tmp_path, WEB_CONCURRENCY="2"))
    metrics_dir = tmp_path / "metrics"
    session = customer(webapp, "integration-metrics")
    placed = 0
    # New connections until both workers have taken orders (the kernel picks the worker).
    while len(_per_worker_orders(metrics_dir)) < 2:
        assert placed < 60, f"all {placed} orders went to one worker: {_per_worker_orders(metrics_dir)}"
        assert place(webapp, session, fresh_connection=True).status_code == 201
        placed += 1
    per_worker = _per_worker_orders(metrics_dir)
    assert sum(per_worker.values()) == placed
    for _ in range(6):
        assert _scraped_orders(webapp) == placed
    # Latency histograms are aggregated too: one observation per 201 on the order route.
    text = requests.get(webapp.url("/metrics"), timeout=HTTP_TIMEOUT_S).text
    count = [line for line in text.splitlines()
             if line.startswith("pizza_http_request_duration_seconds_count")
             and 'route="/api/orders"' in line and 'status="201"' in line]
    assert len(count) == 1 and float(count[0].rsplit(" ", 1)[1]) == placed
