"""A real pizza-status over a log that someone with write access has tampered with: duplicates,
a forged pizza-ordered for another customer's order, an error after delivery, a future ce_time.
Both on rebuild (records written before the service starts) and live (written after)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests
from confluent_kafka import Producer
from prometheus_client.parser import text_string_to_metric_families

from kafka_common import events
from kafka_common.shop import ids
from kafka_common.shop.events import Pizza, PizzaOrdered, PizzaStatus
from shop_testing.helpers import wait_until

pytestmark = pytest.mark.kafka

PIZZA = Pizza(sauce="Tomato", cheese="Mozzarella", main_topping="Pepperoni", extra_toppings=())
OWNER, FORGER = "0123abcd", "badbadbad"


class Log:
    """Writes events to the shop's topics as any client with write access could."""

    def __init__(self, config: dict):
        self.producer = Producer({**config, "enable.idempotence": True})

    def write(self, payload, *, event_id: str | None = None, at: datetime | None = None, times: int = 1) -> None:
        key, value, headers = events.encode(payload, "/tests/hostile", event_id=event_id, time=at)
        for _ in range(times):
            self.producer.produce(payload.TOPIC, key=key, value=value, headers=headers)
        assert self.producer.flush(30) == 0

    def order(self, order_id: str, customer: str, **kw) -> None:
        self.write(PizzaOrdered(order_id=order_id, customer_id=customer, username="mallory", pizza=PIZZA), **kw)

    def status(self, order_id: str, code: int, **kw) -> None:
        self.write(PizzaStatus(order_id=order_id, status=code), **kw)

    def delivered_order(self, order_id: str, customer: str = OWNER) -> None:
        self.order(order_id, customer)
        for code in (200, 300, 400):
            self.status(order_id, code)

    def tamper(self, order_id: str) -> None:
        """What the issue lists: an exact duplicate, a forged order, a re-cooked order, an error after 400."""
        self.order(order_id, FORGER)
        for code in (200, 300, 400, -100):
            self.status(order_id, code)


def start_status(service_process):
    proc = service_process("pizza-status")
    return proc, proc.api_url("")  # the query API has a port of its own (API_PORT)


def get_order(base: str, order_id: str) -> dict | None:
    reply = requests.get(f"{base}/api/orders/{order_id}", timeout=5)
    return reply.json() if reply.status_code == 200 else None


def orders_of(base: str, customer: str) -> list[str]:
    reply = requests.get(f"{base}/api/orders", params={"customer_id": customer}, timeout=5)
    reply.raise_for_status()
    return [o["order_id"] for o in reply.json()["orders"]]


def ignored(proc, reason: str) -> float:
    text = requests.get(proc.url("/metrics"), timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "pizza_read_model_events_ignored_total" and sample.labels["reason"] == reason:
                return sample.value
    return 0.0


def assert_untouched(base: str, order_id: str) -> None:
    order = get_order(base, order_id)
    assert order["customer_id"] == OWNER and order["status"] == 400
    assert [e["status"] for e in order["events"]] == [100, 200, 300, 400, -100]
    assert order_id in orders_of(base, OWNER) and order_id not in orders_of(base, FORGER)


def test_a_tampered_log_does_not_change_what_status_answers(kafka_config, service_process):
    log = Log(kafka_config)
    rebuilt, live, future = (ids.new_order_id() for _ in range(3))
    # Before status starts: an order delivered, then everything the issue lists.
    ordered_id, delivered_id = ids.new_order_id(), ids.new_order_id()
    log.order(rebuilt, OWNER, event_id=ordered_id)
    log.status(rebuilt, 200)
    log.status(rebuilt, 300)
    log.status(rebuilt, 400, event_id=delivered_id)
    log.order(rebuilt, OWNER, event_id=ordered_id)  # exact duplicates (same ce_id)
    log.status(rebuilt, 400, event_id=delivered_id)
    log.tamper(rebuilt)
    # A real event's id reused for another order is that order's business, not a duplicate.
    victim = ids.new_order_id()
    log.status(victim, 200, event_id=delivered_id)
    log.order(victim, OWNER)
    # Within the library's sane window, but hours ahead: must count as now, not sort first forever.
    log.order(future, OWNER, at=datetime.now(UTC) + timedelta(hours=12))
    before = datetime.now(UTC)

    proc, base = start_status(service_process)
    assert_untouched(base, rebuilt)
    assert datetime.fromisoformat(get_order(base, future)["ordered_at"]) <= datetime.now(UTC)
    assert orders_of(base, OWNER)[0] == future  # the newest, not because of its forged time
    assert datetime.fromisoformat(get_order(base, future)["ordered_at"]) >= before

    assert ignored(proc, "second_order") >= 1 and ignored(proc, "duplicate") >= 2
    assert get_order(base, victim)["status"] == 200

    # The same, live: the service applies records as they arrive.
    log.delivered_order(live)
    wait_until(lambda: (o := get_order(base, live)) and o["status"] == 400, 60, "the live order delivered")
    forged_before = ignored(proc, "second_order")
    log.tamper(live)
    # (Other tests share the broker: counters are compared with what they were, not with zero.)
    wait_until(lambda: ignored(proc, "second_order") >= forged_before + 1, 60, "the live forged order ignored")
    wait_until(lambda: get_order(base, live)["events"][-1]["status"] == -100, 60, "the live error recorded")
    assert_untouched(base, live)
    # Nothing above was an error for the service: the tampering was ignored, not failed on.
    assert proc.running and "event could not be applied" not in proc.log_text()
