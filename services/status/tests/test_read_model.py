"""The read model as a projection that trusts nothing: any arrival order, a forward-only state
machine, each event id once, a customer bound to the order, times capped at now, TTL."""

import sqlite3
import threading
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from kafka_common.events import Envelope, Event
from kafka_common.shop import ids, topics
from kafka_common.shop.events import Pizza, PizzaOrdered, PizzaStatus
from pizza_status.read_model import ReadModel
from pizza_status.store import ROWS_PER_INSERT

PIZZA = Pizza(sauce="Pesto", cheese="Gouda", main_topping="Pork", extra_toppings=("Onion",))
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime = NOW):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def model(clock):
    return ReadModel(clock=clock)


def event(payload, at, event_id=None):
    return Event(
        Envelope(
            id=event_id or ids.new_order_id(),
            type=payload.TYPE,
            source="/tests",
            time=at,
            schema_version=1,
            order_id=payload.order_id,
        ),
        payload,
    )


def ordered(order_id, at=NOW, customer="c0ffee", event_id=None):
    return event(PizzaOrdered(order_id=order_id, customer_id=customer, username="ada", pizza=PIZZA), at, event_id)


def status(order_id, code, at=NOW, event_id=None):
    return event(PizzaStatus(order_id=order_id, status=code), at, event_id)


def seconds(n):
    return NOW + timedelta(seconds=n)


def timeline(model, oid):
    return [e["status"] for e in model.order(oid)["events"]]


def ignored(reason):
    return (
        REGISTRY.get_sample_value("pizza_read_model_events_ignored_total", {"component": "status", "reason": reason})
        or 0.0
    )


def test_an_order_and_its_timeline(model):
    oid = ids.new_order_id()
    model.apply_ordered(ordered(oid, NOW - timedelta(seconds=10)))
    for n, code in enumerate((200, 300, 400), start=1):
        model.apply_status(status(oid, code, NOW - timedelta(seconds=10 - n)))
    order = model.order(oid)
    assert order["status"] == 400 and order["status_text"] == "Your pizza was delivered"
    assert timeline(model, oid) == [100, 200, 300, 400]
    assert order["order"] == {"sauce": "Pesto", "cheese": "Gouda", "main_topping": "Pork", "extra_toppings": ["Onion"]}
    assert [o["order_id"] for o in model.orders_of("c0ffee")] == [oid]


def test_status_events_before_the_order_arrive_in_any_order(model):
    oid = ids.new_order_id()
    model.apply_status(status(oid, 300, seconds(-1)))
    model.apply_status(status(oid, 200, seconds(-2)))
    assert model.order(oid) is None
    model.apply_ordered(ordered(oid, seconds(-3)))
    order = model.order(oid)
    assert order["status"] == 300 and order["updated_at"] == "2026-11-25T11:59:59.000000Z"
    assert timeline(model, oid) == [100, 200, 300]


def test_status_never_goes_back(model):
    oid = ids.new_order_id()
    model.apply_ordered(ordered(oid))
    model.apply_status(status(oid, 300))
    model.apply_status(status(oid, 200))
    assert model.order(oid)["status"] == 300
    assert timeline(model, oid) == [100, 200, 300]  # the late 200 is history, not the state


def test_an_error_after_delivery_is_recorded_but_does_not_replace_delivered(model):
    oid = ids.new_order_id()
    model.apply_ordered(ordered(oid, seconds(-4)))
    for n, code in enumerate((200, 300, 400), start=1):
        model.apply_status(status(oid, code, seconds(-4 + n)))
    before = ignored("after_final")
    model.apply_status(status(oid, -100, seconds(0)))
    order = model.order(oid)
    assert order["status"] == 400 and order["updated_at"] == "2026-11-25T11:59:59.000000Z"
    assert timeline(model, oid) == [100, 200, 300, 400, -100]
    assert ignored("after_final") == before + 1


def test_an_error_is_final_too(model):
    oid = ids.new_order_id()
    model.apply_ordered(ordered(oid))
    model.apply_status(status(oid, -100))
    model.apply_status(status(oid, 400))
    assert model.order(oid)["status"] == -100


def test_final_status_among_early_events_is_the_first_to_arrive(model):
    """Events before the order are replayed through the same state machine, in time order."""
    oid = ids.new_order_id()
    model.apply_status(status(oid, -100, seconds(-1)))
    model.apply_status(status(oid, 400, seconds(-2)))
    model.apply_ordered(ordered(oid, seconds(-3)))
    assert model.order(oid)["status"] == 400
    assert timeline(model, oid) == [100, 400, -100]


def test_the_same_event_id_is_applied_once(model):
    oid = ids.new_order_id()
    first = ordered(oid)
    model.apply_ordered(first)
    again = status(oid, 200)
    before = ignored("duplicate")
    model.apply_status(again)
    model.apply_status(again)
    model.apply_ordered(first)
    assert timeline(model, oid) == [100, 200]
    assert len(model.orders_of("c0ffee")) == 1
    assert ignored("duplicate") == before + 2


def test_an_event_id_is_unique_within_its_order_only(model):
    """Reusing a real event's id for another order (or as a status of the same order) hides nothing:
    whichever of them is applied first, the other still counts."""
    first, second = ids.new_order_id(), ids.new_order_id()
    shared = ids.new_order_id()
    model.apply_status(status(second, 200, event_id=shared))
    model.apply_ordered(ordered(first, seconds(-2), event_id=shared))
    model.apply_status(status(first, 400, seconds(-1), event_id=shared))
    model.apply_ordered(ordered(second, seconds(-3)))
    assert model.order(first)["status"] == 400 and model.order(second)["status"] == 200


def test_an_order_cooked_twice_shows_each_status_once(model):
    """A duplicated pizza-ordered gets cooked again: new event ids, the same statuses."""
    oid = ids.new_order_id()
    model.apply_ordered(ordered(oid, seconds(-9)))
    for round_ in (0, 4):
        for n, code in enumerate((200, 300, 400), start=1):
            model.apply_status(status(oid, code, seconds(-9 + round_ + n)))
    order = model.order(oid)
    assert order["status"] == 400
    assert [(e["status"], e["at"][17:19]) for e in order["events"]] == [
        (100, "51"),
        (200, "52"),
        (300, "53"),
        (400, "54"),
    ]


def test_a_second_pizza_ordered_never_changes_the_customer(model):
    oid = ids.new_order_id()
    model.apply_ordered(ordered(oid, seconds(-5), customer="0a0a"))
    model.apply_status(status(oid, 400, seconds(-4)))
    before = ignored("second_order")
    model.apply_ordered(ordered(oid, seconds(-1), customer="bad"))  # forged: another customer
    model.apply_ordered(ordered(oid, seconds(-1), customer="0a0a"))  # a new id for the same order
    order = model.order(oid)
    assert order["customer_id"] == "0a0a" and order["status"] == 400
    assert order["ordered_at"] == "2026-11-25T11:59:55.000000Z"
    assert timeline(model, oid) == [100, 400]
    assert model.orders_of("bad") == []
    assert ignored("second_order") == before + 2


def test_a_future_ce_time_counts_as_now(model, clock):
    honest, forged = ids.new_order_id(), ids.new_order_id()
    model.apply_ordered(ordered(honest, seconds(-1)))
    model.apply_ordered(ordered(forged, datetime(9999, 12, 31, tzinfo=UTC)))
    model.apply_status(status(honest, 200, datetime(9999, 12, 31, tzinfo=UTC)))
    assert model.order(forged)["ordered_at"] == "2026-11-25T12:00:00.000000Z"
    assert model.order(honest)["events"][-1]["at"] == "2026-11-25T12:00:00.000000Z"
    # Newest first, and the forged order is purged with the others once the TTL has passed.
    assert [o["order_id"] for o in model.orders_of("c0ffee")] == [forged, honest]
    clock.now = NOW + timedelta(hours=2, seconds=1)
    assert model.purge() == 2
    assert model.order(forged) is None


def test_orders_older_than_the_ttl_are_dropped(model):
    old, new = ids.new_order_id(), ids.new_order_id()
    model.apply_ordered(ordered(old, NOW - timedelta(hours=3)))  # replayed from the log: never stored
    model.apply_ordered(ordered(new, NOW - timedelta(hours=1)))
    model.apply_status(status(new, 200, NOW - timedelta(minutes=50)))
    assert model.order(old) is None and model.order(new) is not None
    model.ttl = timedelta(minutes=30)
    assert model.purge() == 1
    assert model.order(new) is None
    assert model._store.db.execute("SELECT count(*) FROM order_events").fetchone()[0] == 0


def test_status_events_of_an_order_that_never_comes_are_purged(model, clock):
    model.apply_status(status(ids.new_order_id(), 200, seconds(-1)))
    clock.now = NOW + timedelta(hours=3)
    model.purge()
    assert model._store.db.execute("SELECT count(*) FROM order_events").fetchone()[0] == 0


def test_replaying_the_log_into_the_same_database_changes_nothing(tmp_path, clock):
    path = str(tmp_path / "orders.sqlite")
    oid = ids.new_order_id()
    log = [
        ordered(oid, seconds(-5)),
        status(oid, 200, seconds(-4)),
        status(oid, 300, seconds(-3)),
        status(oid, 400, seconds(-2)),
        ordered(oid, seconds(-1), customer="bad"),
        status(oid, -100, seconds(-1)),
    ]

    def replay(model):
        for e in log:
            (model.apply_ordered if isinstance(e.payload, PizzaOrdered) else model.apply_status)(e)
        return model.order(oid)

    first = replay(ReadModel(path, clock=clock))
    clock.now = NOW + timedelta(minutes=10)  # a restart later, same file
    again = replay(ReadModel(path, clock=clock))
    assert again == first and first["status"] == 400 and first["customer_id"] == "c0ffee"
    assert [e["status"] for e in first["events"]] == [100, 200, 300, 400, -100]
    fresh = replay(ReadModel(clock=clock))  # a rebuild from scratch gives the same answer
    assert fresh == first


def test_an_event_that_fails_halfway_leaves_nothing_behind_in_a_file(tmp_path, clock):
    """A crash between recording an event and applying it would make the replay skip it."""
    model = ReadModel(str(tmp_path / "orders.sqlite"), clock=clock)
    oid = ids.new_order_id()
    model.apply_ordered(ordered(oid))
    model._store.db.execute("CREATE TEMP TRIGGER crash BEFORE UPDATE ON orders BEGIN SELECT RAISE(ABORT, 'crash'); END")
    oven = status(oid, 200)
    with pytest.raises(sqlite3.DatabaseError, match="crash"):
        model.apply_status(oven)
    model._store.db.execute("DROP TRIGGER crash")
    model.apply_status(oven)  # the replay after the restart
    assert model.order(oid)["status"] == 200 and timeline(model, oid) == [100, 200]


def test_a_database_of_an_older_layout_is_rebuilt(tmp_path, clock):
    path = tmp_path / "orders.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE orders (order_id TEXT PRIMARY KEY, customer_id TEXT)")
        db.execute("INSERT INTO orders VALUES ('x', 'y')")
    model = ReadModel(str(path), clock=clock)
    oid = ids.new_order_id()
    model.apply_ordered(ordered(oid))
    assert model.order("x") is None and model.order(oid)["status"] == 100


def test_oldest_open_order_age(model):
    assert model.oldest_open_age_seconds() == 0.0
    waiting, done = ids.new_order_id(), ids.new_order_id()
    model.apply_ordered(ordered(done, NOW - timedelta(minutes=30)))
    model.apply_status(status(done, 400, NOW))
    model.apply_ordered(ordered(waiting, NOW - timedelta(minutes=20)))
    assert model.oldest_open_age_seconds() == 20 * 60


def test_wait_for_returns_once_the_record_is_applied(model):
    assert model.wait_for(3, 7, timeout=0.01) is False
    threading.Timer(0.05, model.applied, (topics.PIZZA_ORDERED, 3, 7)).start()
    assert model.wait_for(3, 7, timeout=10) is True
    assert model.wait_for(3, 5, timeout=0) is True


def test_a_batch_is_folded_in_arrival_order(model):
    """Within one batch, events see the ones before them: as if applied one at a time."""
    oid, waiting = ids.new_order_id(), ids.new_order_id()
    cooked = status(oid, 200, seconds(-8))
    with model.batch():
        model.apply_status(status(oid, 300, seconds(-7)))  # before its order, in the same batch
        model.apply_ordered(ordered(oid, seconds(-9)))
        model.apply_status(cooked)
        model.apply_status(cooked)  # a duplicate
        model.apply_status(status(oid, 300, seconds(-6)))  # cooked twice
        model.apply_status(status(oid, 400, seconds(-5)))
        model.apply_ordered(ordered(oid, seconds(-4), customer="bad"))
        model.apply_status(status(oid, -100, seconds(-3)))  # after delivery
        model.apply_status(status(waiting, 200, seconds(-2)))
        assert model.order(oid) is None  # nothing is visible before the batch is written
    order = model.order(oid)
    assert order["status"] == 400 and order["customer_id"] == "c0ffee"
    assert order["updated_at"] == "2026-11-25T11:59:55.000000Z"
    assert [(e["status"], e["at"][17:19]) for e in order["events"]] == [
        (100, "51"),
        (200, "52"),
        (300, "53"),
        (400, "55"),
        (-100, "57"),
    ]
    assert model.order(waiting) is None
    model.apply_ordered(ordered(waiting, seconds(-3)))
    assert model.order(waiting)["status"] == 200


def test_a_batch_counts_what_it_ignored_once_it_is_written(model):
    oid = ids.new_order_id()
    before = {reason: ignored(reason) for reason in ("duplicate", "repeated", "after_final", "second_order")}
    again = status(oid, 200, seconds(-3))
    with model.batch():
        model.apply_ordered(ordered(oid, seconds(-4)))
        model.apply_status(again)
        model.apply_status(again)
        model.apply_status(status(oid, 200, seconds(-2)))
        model.apply_status(status(oid, -100, seconds(-1)))
        model.apply_status(status(oid, 400, seconds(0)))
        model.apply_ordered(ordered(oid, seconds(0), customer="bad"))
    after = {reason: ignored(reason) - before[reason] for reason in before}
    assert after == {"duplicate": 1, "repeated": 1, "after_final": 1, "second_order": 1}


def test_a_batch_is_all_or_nothing(model):
    """A batch whose write fails leaves nothing of any of its events behind, nor any count of them:
    the projection loop then applies them one at a time, and only the one at fault fails."""
    first, broken, last = (ids.new_order_id() for _ in range(3))
    model.apply_ordered(ordered(first, seconds(-5)))
    model._store.db.execute(
        f"CREATE TEMP TRIGGER crash BEFORE INSERT ON orders WHEN NEW.order_id = '{broken}' "
        "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
    )
    batch = [
        status(first, 200, seconds(-4)),
        ordered(broken, seconds(-3)),
        status(broken, 200, seconds(-2)),
        ordered(last, seconds(-1)),
        status(first, 200, seconds(-1)),  # repeated: not counted, as the batch is not applied
    ]
    repeated = ignored("repeated")
    with pytest.raises(sqlite3.DatabaseError, match="disk full"):
        with model.batch():
            for e in batch:
                (model.apply_ordered if isinstance(e.payload, PizzaOrdered) else model.apply_status)(e)
    assert model.order(first)["status"] == 100 and model.order(broken) is None and model.order(last) is None
    assert model._store.db.execute("SELECT count(*) FROM order_events").fetchone()[0] == 1
    assert ignored("repeated") == repeated
    failed = []
    for e in batch:
        try:
            with model.batch():
                (model.apply_ordered if isinstance(e.payload, PizzaOrdered) else model.apply_status)(e)
        except sqlite3.DatabaseError:
            failed.append(e)
    assert failed == [batch[1]]
    assert model.order(first)["status"] == 200 and model.order(last)["status"] == 100
    assert model.order(broken) is None  # its status waits in the timeline, its 100 is not there
    assert [
        row[0] for row in model._store.db.execute("SELECT status FROM order_events WHERE order_id = ?", (broken,))
    ] == [200]
    assert ignored("repeated") == repeated + 1
    model._store.db.execute("DROP TRIGGER crash")
    model.apply_ordered(batch[1])  # redone later: nothing of the failed attempt is in the way
    assert timeline(model, broken) == [100, 200] and model.order(broken)["status"] == 200


def test_a_bulk_load_builds_the_same_model_and_its_indexes_once_caught_up(tmp_path, clock):
    """Replayed without indexes (the fold in memory refuses what the unique ones would), then indexed."""
    oid, waiting = ids.new_order_id(), ids.new_order_id()
    log = [
        status(oid, 200, seconds(-4)),
        ordered(oid, seconds(-5)),
        status(oid, 200, seconds(-3)),  # repeated
        status(oid, 400, seconds(-2)),
        ordered(oid, seconds(-1), customer="bad"),
        status(waiting, 300, seconds(-1)),
    ]

    def replay(model):
        with model.batch():
            for e in log[:3]:
                (model.apply_ordered if isinstance(e.payload, PizzaOrdered) else model.apply_status)(e)
        for e in log[3:]:
            (model.apply_ordered if isinstance(e.payload, PizzaOrdered) else model.apply_status)(e)
        return model

    def indexes(model):
        return {row[0] for row in model._store.db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}

    path = str(tmp_path / "orders.sqlite")
    live = replay(ReadModel(path, clock=clock))
    bulk = ReadModel(path, clock=clock, bulk_load=True)  # a restart: the same log again, into the same file
    assert not indexes(bulk) & {"orders_by_customer", "orders_by_time", "order_events_status"}
    replay(bulk)
    bulk.caught_up()
    assert indexes(bulk) == indexes(live)
    assert bulk.order(oid) == live.order(oid) and timeline(bulk, oid) == [100, 200, 400]
    fresh = replay(ReadModel(clock=clock, bulk_load=True))
    fresh.caught_up()
    assert fresh.order(oid) == live.order(oid) and fresh.orders_of("c0ffee") == live.orders_of("c0ffee")
    assert fresh._store.db.execute("SELECT count(*) FROM order_events").fetchone()[0] == 4


def test_a_batch_of_more_rows_than_one_insert_takes_is_written_whole(clock):
    """Rows go in ROWS_PER_INSERT to a statement, and the rest one by one."""
    oids = [ids.new_order_id() for _ in range(2 * ROWS_PER_INSERT + 7)]
    log = [
        e
        for n, oid in enumerate(oids)
        for e in (
            ordered(oid, seconds(-100 + n % 60), customer=f"c{n % 5}"),
            status(oid, 200 + 100 * (n % 3), seconds(-30)),
        )
    ]
    batched, one_by_one = ReadModel(clock=clock, bulk_load=True), ReadModel(clock=clock)
    with batched.batch():
        for e in log:
            (batched.apply_ordered if isinstance(e.payload, PizzaOrdered) else batched.apply_status)(e)
    batched.caught_up()
    for e in log:
        (one_by_one.apply_ordered if isinstance(e.payload, PizzaOrdered) else one_by_one.apply_status)(e)
    assert [batched.order(oid) for oid in oids] == [one_by_one.order(oid) for oid in oids]
    assert batched.orders_of("c3") == one_by_one.orders_of("c3") and len(batched.orders_of("c3")) == len(oids) // 5


def test_what_the_purge_drops_is_forgotten_in_memory_too(model, clock):
    """The fold keeps the live orders in memory: an order purged is unknown again, a waiting timeline keeps
    only its rows the purge left."""
    gone, waiting = ids.new_order_id(), ids.new_order_id()
    model.apply_ordered(ordered(gone, NOW - timedelta(hours=1)))
    model.apply_status(status(waiting, 200, NOW - timedelta(hours=1)))
    model.apply_status(status(waiting, 300, NOW))
    model.ttl = timedelta(minutes=30)
    assert model.purge() == 1
    model.apply_status(status(gone, 200, NOW))  # waits for its pizza-ordered, as for any unknown order
    assert model.order(gone) is None
    model.apply_status(status(waiting, 200, NOW, event_id="again"))  # its first 200 was purged: not a repeat
    model.apply_ordered(ordered(waiting, NOW))
    assert timeline(model, waiting) == [100, 200, 300] and model.order(waiting)["status"] == 300
