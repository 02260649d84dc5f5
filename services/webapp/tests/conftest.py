"""Unit-test doubles for the webapp: a producer and a status service that live in memory.

Integration tests (test_webapp_kafka.py) use the real broker instead.
"""

from __future__ import annotations

import itertools
import threading

import pytest

from kafka_common import events
from kafka_common.health import Health
from kafka_common.producer import Delivered, ProduceError
from kafka_common.shop.status import STATUS_RECEIVED, status_text
from pizza_webapp.app import create_app
from pizza_webapp.status_client import StatusUnavailable


class FakeProducer:
    def __init__(self):
        self.sent = []
        self.fail_with: str | None = None
        self.reachable = True
        self.reachable_calls = 0
        self.closed = False
        self._offsets = itertools.count(40)
        self._lock = threading.Lock()

    def send(self, payload):
        if self.fail_with:
            raise ProduceError(self.fail_with)
        key, value, headers = events.encode(payload, "/tests/webapp")
        events.decode(type(payload), key.encode(), value, headers)  # what the webapp sends passes its schema
        with self._lock:
            self.sent.append(payload)
            return Delivered(payload.TOPIC, 3, next(self._offsets))

    def cluster_reachable(self, timeout: float = 2.0) -> bool:
        self.reachable_calls += 1
        return self.reachable

    def close(self, timeout: float = 5.0) -> int:
        self.closed = True
        return 0


class FakeStatus:
    """The status service's read model, as the webapp's StatusClient would return it."""

    def __init__(self):
        self.orders_by_id: dict[str, dict] = {}
        self.down = False
        self.calls: list[tuple] = []

    def add(
        self,
        order_id: str,
        customer_id: str,
        username: str = "alice",
        status: int = STATUS_RECEIVED,
        ordered_at: str = "2026-01-01T12:00:00Z",
        events: list | None = None,
        **pizza,
    ) -> dict:
        order = {
            "order_id": order_id,
            "customer_id": customer_id,
            "username": username,
            "status": status,
            "status_text": status_text(status),
            "order": {
                "sauce": "Tomato",
                "cheese": "Mozzarella",
                "main_topping": "Pepperoni",
                "extra_toppings": [],
                **pizza,
            },
            "ordered_at": ordered_at,
            "updated_at": ordered_at,
            "events": events
            if events is not None
            else [{"status": 100, "status_text": status_text(100), "at": ordered_at}],
        }
        self.orders_by_id[order_id] = order
        return order

    def orders(self, customer_id: str, wait_for: str | None = None) -> list[dict]:
        self.calls.append(("orders", customer_id, wait_for))
        if self.down:
            raise StatusUnavailable("down")
        mine = [
            {k: v for k, v in o.items() if k != "events"}
            for o in self.orders_by_id.values()
            if o["customer_id"] == customer_id
        ]
        return sorted(mine, key=lambda o: o["ordered_at"], reverse=True)

    def order(self, order_id: str, wait_for: str | None = None) -> dict | None:
        self.calls.append(("order", order_id, wait_for))
        if self.down:
            raise StatusUnavailable("down")
        return self.orders_by_id.get(order_id)


@pytest.fixture
def producer():
    return FakeProducer()


@pytest.fixture
def status():
    return FakeStatus()


@pytest.fixture
def health():
    return Health()


@pytest.fixture
def app(producer, status, health):
    app = create_app(producer_factory=lambda: producer, status=status, secret_key="test-secret", health=health)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def login():
    def login(client, username: str = "alice") -> dict:
        response = client.post("/api/login", json={"username": username})
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    return login


@pytest.fixture
def customer(client, login):
    return login(client)


@pytest.fixture
def pizza() -> dict:
    return {"sauce": "Pesto", "cheese": "Gouda", "main_topping": "Chicken", "extra_toppings": ["Onion", "Eggs"]}
