"""pizza-webapp as a real gunicorn process against a real Kafka broker.

What lives in the server is tested here: the gevent workers under slow and
hostile clients, the produce bound during a broker outage, logouts that reach
every worker and replica, probes, logs and metrics across workers.
"""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.multiprocess import MultiProcessCollector

from kafka_common.events import decode
from kafka_common.shop import topics
from kafka_common.shop.events import PizzaOrdered
from shop_testing.helpers import read_records, wait_until

pytestmark = pytest.mark.kafka

PIZZA = {
    "sauce": "Buffalo",
    "cheese": "Gruyere",
    "main_topping": "Vegan meat",
    "extra_toppings": ["Black olives", "Green pepper"],
}
# Bounds, not expectations: a hang fails the test instead of blocking it.
HTTP_TIMEOUT_S = 20.0
# What a customer's client waits at most (the clients gave up after 15 s): an order
# during an outage must be answered before this. The webapp's own bound is 5 s.
CUSTOMER_TIMEOUT_S = 12.0
RECOVERY_S = 90.0
STALLED_CONNECTIONS = 64


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def webapp_env(tmp_path: Path, name: str = "metrics", **extra) -> dict:
    return {
        "SECRET_KEY": "integration-test-key",
        # No status service here: ordering must not need it.
        "STATUS_URL": f"http://127.0.0.1:{unused_port()}",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / name),
        "WEB_CONCURRENCY": "2",
        **extra,
    }


def customer(webapp, username: str = "integration") -> requests.Session:
    session = requests.Session()
    response = session.post(webapp.url("/api/login"), json={"username": username}, timeout=HTTP_TIMEOUT_S)
    assert response.status_code == 200, response.text
    session.customer_id = response.json()["customer_id"]
    return session


def place(
    webapp,
    session: requests.Session,
    pizza: dict = PIZZA,
    fresh_connection: bool = False,
    timeout: float = HTTP_TIMEOUT_S,
) -> requests.Response:
    headers = {"Connection": "close"} if fresh_connection else {}
    return session.post(webapp.url("/api/orders"), json=pizza, headers=headers, timeout=timeout)


def status_of(url: str) -> int:
    # A new connection each time, so that either worker may answer.
    return requests.get(url, headers={"Connection": "close"}, timeout=HTTP_TIMEOUT_S).status_code


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
    assert event.payload.customer_id == session.customer_id
    assert event.payload.username == "integration-alice"
    assert event.payload.pizza.as_dict() == PIZZA
    assert event.envelope.source == "/pizza-shop/webapp"

    # SIGTERM: the workers flush their producers and the master exits 0.
    assert webapp.stop(timeout=30) == 0
    log = webapp.log_text()
    assert "worker exiting: flushing the producer" in log
    assert "producer flushed" in log


def test_broker_outage_orders_get_503_in_time_and_none_is_cooked_later(service_process, dedicated_kafka, tmp_path):
    webapp = service_process(
        "pizza-webapp",
        env=webapp_env(tmp_path, WEB_CONCURRENCY="1", MAX_OPEN_ORDERS_PER_CUSTOMER="0"),
        bootstrap=dedicated_kafka.bootstrap,
    )
    session = customer(webapp, "integration-outage")
    before = place(webapp, session)
    assert before.status_code == 201, before.text

    dedicated_kafka.stop()
    # More orders at once than the worker has Kafka threads: queued ones must be answered in time too.
    others = [customer(webapp, f"outage-{i}") for i in range(24)]
    with ThreadPoolExecutor(len(others)) as pool:
        failed = list(pool.map(lambda s: place(webapp, s, timeout=CUSTOMER_TIMEOUT_S), others))
    assert {r.status_code for r in failed} == {503}, [r.text for r in failed]
    assert all(list(r.json()) == ["error"] and "nothing was ordered" in r.json()["error"] for r in failed)
    # Liveness and readiness: the broker is every replica's problem, not this pod's.
    assert status_of(webapp.url("/healthz")) == 200
    assert status_of(webapp.url("/readyz")) == 200

    dedicated_kafka.start()
    after = wait_until(
        lambda: (r := place(webapp, session)).status_code == 201 and r,
        RECOVERY_S,
        "an order accepted again after the broker came back",
    )
    # Everything the worker's producer still held would be written by now or at its flush on SIGTERM.
    assert webapp.stop(timeout=30) == 0
    expected = {before.json()["order_id"], after.json()["order_id"]}
    records = read_records({"bootstrap.servers": dedicated_kafka.bootstrap}, topics.PIZZA_ORDERED)
    # Exactly the two acknowledged orders: nothing from a 503 reached the kitchen's topic.
    assert sorted(r.key for r in records) == sorted(expected)


def stall(port: int, head: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=HTTP_TIMEOUT_S)
    sock.sendall(head)
    return sock


def test_probes_and_orders_answer_while_64_clients_stall_in_their_body(service_process, tmp_path):
    webapp = service_process("pizza-webapp", env=webapp_env(tmp_path, MAX_OPEN_ORDERS_PER_CUSTOMER="0"))
    session = customer(webapp, "integration-patient")
    head = (
        b"POST /api/orders HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\n"
        b"Content-Length: 2048\r\nCookie: "
        + f"pizza_session={session.cookies['pizza_session']}".encode()
        + b'\r\n\r\n{"sauce": '
    )
    stalled = [stall(webapp.http_port, head) for _ in range(STALLED_CONNECTIONS // 2)]
    chunked = (
        b"POST /login HTTP/1.1\r\nHost: shop\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n5\r\nuser"
    )
    stalled += [stall(webapp.http_port, chunked) for _ in range(STALLED_CONNECTIONS // 2)]
    try:
        for _ in range(3):
            assert status_of(webapp.url("/healthz")) == 200
            assert status_of(webapp.url("/readyz")) == 200
            assert place(webapp, session, fresh_connection=True).status_code == 201
            assert status_of(webapp.url("/login")) == 200
    finally:
        for sock in stalled:
            sock.close()


def test_a_stalled_body_is_answered_408_and_the_connection_closed(service_process, tmp_path):
    webapp = service_process("pizza-webapp", env=webapp_env(tmp_path, WEB_CONCURRENCY="1", WEB_BODY_TIMEOUT_S="1"))
    sock = stall(
        webapp.http_port,
        b"POST /api/login HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
    )
    with sock:
        answer = sock.makefile("rb").read()  # until the server closes the connection
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b'{"error":"the request body did not arrive within 1 s"}' in answer


def raw_post(port: int, path: str, content_type: str, body: bytes, cookie: str = "") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=HTTP_TIMEOUT_S) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: shop\r\nContent-Type: {content_type}\r\n"
            f"Transfer-Encoding: chunked\r\nConnection: close\r\n{cookie}\r\n".encode()
            + body
        )
        return sock.makefile("rb").read()


@pytest.mark.parametrize(
    "path, content_type, expect",
    [
        ("/api/login", "application/json", b'{"error":"the request body could not be read: InvalidChunkSize"}'),
        ("/api/logout", "application/json", b'{"error":"the request body could not be read: InvalidChunkSize"}'),
        ("/api/orders", "application/json", b'{"error":"the request body could not be read: InvalidChunkSize"}'),
        ("/login", "application/x-www-form-urlencoded", b"the request body could not be read"),
        ("/logout", "application/x-www-form-urlencoded", b"the request body could not be read"),
        ("/order", "application/x-www-form-urlencoded", b"the request body could not be read"),
    ],
)
def test_a_malformed_chunked_body_is_a_400_on_every_post(service_process, tmp_path, path, content_type, expect):
    webapp = service_process("pizza-webapp", env=webapp_env(tmp_path, WEB_CONCURRENCY="1"))
    session = customer(webapp, "integration-chunks")
    cookie = f"Cookie: pizza_session={session.cookies['pizza_session']}\r\n"
    answer = raw_post(webapp.http_port, path, content_type, b"zz\r\n{}\r\n0\r\n\r\n", cookie)
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert expect in answer
    assert "Traceback" not in webapp.log_text() and "unexpected error" not in webapp.log_text()


def test_logins_are_new_customers_and_a_logout_reaches_every_worker_and_replica(service_process, tmp_path):
    first = service_process("pizza-webapp", name="webapp-a", env=webapp_env(tmp_path, "metrics-a"))
    second = service_process("pizza-webapp", name="webapp-b", env=webapp_env(tmp_path, "metrics-b"))
    ada, impostor = customer(first, "ada"), customer(second, "ada")
    assert ada.customer_id != impostor.customer_id

    def logged_in(webapp, cookie: str) -> int:
        # 400 (the order is empty) once past the login check, 401 before it; never produces.
        return requests.post(
            webapp.url("/api/orders"),
            json={},
            cookies={"pizza_session": cookie},
            headers={"Connection": "close"},
            timeout=HTTP_TIMEOUT_S,
        ).status_code

    copied = ada.cookies["pizza_session"]
    assert {logged_in(w, copied) for w in (first, second) for _ in range(4)} == {400}
    response = ada.post(first.url("/api/logout"), json={}, timeout=HTTP_TIMEOUT_S)
    assert response.status_code == 200, response.text
    # The logging-out worker refuses the copy at once; the others as soon as they read the record.
    for webapp in (first, second):
        wait_until(
            lambda w=webapp: all(logged_in(w, copied) == 401 for _ in range(6)),
            30,
            f"{webapp.name}'s workers to refuse the logged-out cookie",
        )
    assert logged_in(second, impostor.cookies["pizza_session"]) == 400  # the other "ada" is unaffected


def test_open_orders_cap_answers_429(service_process, tmp_path):
    webapp = service_process(
        "pizza-webapp", env=webapp_env(tmp_path, WEB_CONCURRENCY="1", MAX_OPEN_ORDERS_PER_CUSTOMER="2")
    )
    greedy = customer(webapp, "greedy")
    assert [place(webapp, greedy).status_code for _ in range(3)] == [201, 201, 429]
    assert "2 pizzas on their way" in place(webapp, greedy).json()["error"]
    assert place(webapp, customer(webapp, "patient")).status_code == 201


def test_probe_lines_are_debug_and_log_level_is_respected(service_process, tmp_path):
    webapp = service_process("pizza-webapp", env=webapp_env(tmp_path, WEB_CONCURRENCY="1"))
    for path in ("/healthz", "/readyz", "/metrics", "/login"):
        assert status_of(webapp.url(path)) == 200
    webapp.wait_for_log(r"path=/login")
    assert "path=/healthz" not in webapp.log_text() and "path=/metrics" not in webapp.log_text()

    quiet = service_process("pizza-webapp", name="quiet", env=webapp_env(tmp_path, "metrics-q", LOG_LEVEL="WARNING"))
    assert status_of(quiet.url("/login")) == 200
    assert quiet.stop(timeout=30) == 0
    assert "gunicorn.access" not in quiet.log_text()

    verbose = service_process(
        "pizza-webapp", name="verbose", env=webapp_env(tmp_path, "metrics-v", WEB_CONCURRENCY="1", LOG_LEVEL="DEBUG")
    )
    assert status_of(verbose.url("/healthz")) == 200
    verbose.wait_for_log(r"path=/healthz")


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
    webapp = service_process(
        "pizza-webapp", env=webapp_env(tmp_path, WEB_CONCURRENCY="2", MAX_OPEN_ORDERS_PER_CUSTOMER="0")
    )
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
    count = [
        line
        for line in text.splitlines()
        if line.startswith("pizza_http_request_duration_seconds_count")
        and 'route="/api/orders"' in line
        and 'status="201"' in line
    ]
    assert len(count) == 1 and float(count[0].rsplit(" ", 1)[1]) == placed
