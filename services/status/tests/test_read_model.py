"""The read model as a projection: any arrival order, idempotent, TTL, read-your-writes."""

import threading
from datetime import UTC, datetime, timedelta

from kafka_common import events, topics
from kafka_common.events import Envelope, Event, Pizza, PizzaOrdered, PizzaStatus
from pizza_status.read_model import ReadModel

PIZZA = Pizza(sauce="Pesto", cheese="Gouda", main_topping="Pork", extra_toppings=("Onion",))


def event(payload, at, event_id=None):
    return Event(Envelope(id=event_id or events.new_order_id(), type=payload.TYPE, source="/tests", time=at,
                          schema_version=1, order_id=payload.order_id), payload)


def ordered(order_id, at, customer="c0ffee"):
    return event(PizzaOrdered(order_id=order_id, customer_id=customer, username="ada", pizza=PIZZA), at)


def status(order_id, code, at):
    return event(PizzaStatus(order_id=order_id, status=code), at)


def test_an_order_and_its_timeline():
    now = datetime.now(UTC)
    model, oid = ReadModel(), events.new_order_id()
    model.apply_ordered(ordered(oid, now))
    for n, code in enumerate((200, 300, 400), start=1):
        model.apply_status(status(oid, code, now + timedelta(seconds=n)))
    order = model.order(oid)
    assert order["status"] == 400 and order["status_text"] == "Your pizza was delivered"
    assert [e["status"] for e in order["events"]] == [100, 200, 300, 400]
    assert order["order"] == {"sauce": "Pesto", "cheese": "Gouda", "main_topping": "Pork", "extra_toppings": ["Onion"]}
    assert [o["order_id"] for o in model.orders_of("c0ffee")] == [oid]


def test_status_events_before_the_order_arrive_in_any_order():
    now = datetime.now(UTC)
    model, oid = ReadModel(), events.new_order_id()
    model.apply_status(status(oid, 300, now + timedelta(seconds=2)))
    model.apply_status(status(oid, 200, now + timedelta(seconds=1)))
    assert model.order(oid) is None
    model.apply_ordered(ordered(oid, now))
    order = model.order(oid)
    assert order["status"] == 300
    assert [e["status"] for e in order["events"]] == [100, 200, 300]


def test_status_never_goes_back_and_an_error_is_final():
    now = datetime.now(UTC)
    model, oid = ReadModel(), events.new_order_id()
    model.apply_ordered(ordered(oid, now))
    model.apply_status(status(oid, 300, now))
    model.apply_status(status(oid, 200, now))
    assert model.order(oid)["status"] == 300
    model.apply_status(status(oid, -100, now))
    model.apply_status(status(oid, 400, now))
    assert model.order(oid)["status"] == -100


def test_the_same_event_twice_is_applied_once():
    now = datetime.now(UTC)
    model, oid = ReadModel(), events.new_order_id()
    model.apply_ordered(ordered(oid, now))
    again = status(oid, 200, now)
    model.apply_status(again)
    model.apply_status(again)
    assert [e["status"] for e in model.order(oid)["events"]] == [100, 200]


def test_orders_older_than_the_ttl_are_dropped():
    now = datetime.now(UTC)
    model = ReadModel(ttl_hours=2)
    old, new = events.new_order_id(), events.new_order_id()
    model.apply_ordered(ordered(old, now - timedelta(hours=3)))  # replayed from the log: never stored
    model.apply_ordered(ordered(new, now - timedelta(hours=1)))
    assert model.order(old) is None and model.order(new) is not None
    model.ttl = timedelta(minutes=30)
    assert model.purge() == 1
    assert model.order(new) is None


def test_oldest_open_order_age():
    now = datetime.now(UTC)
    model = ReadModel()
    assert model.oldest_open_age_seconds() == 0.0
    waiting, done = events.new_order_id(), events.new_order_id()
    model.apply_ordered(ordered(done, now - timedelta(minutes=30)))
    model.apply_status(status(done, 400, now))
    model.apply_ordered(ordered(waiting, now - timedelta(minutes=20)))
    assert 20 * 60 <= model.oldest_open_age_seconds() < 21 * 60


def test_wait_for_returns_once_the_record_is_applied():
    model = ReadModel()
    assert model.wait_for(3, 7, timeout=0.01) is False
    threading.Timer(0.05, model.applied, (topics.PIZZA_ORDERED, 3, 7)).start()
    assert model.wait_for(3, 7, timeout=10) is True
    assert model.wait_for(3, 5, timeout=0) is True
