"""The fold on its own, no database: the rows and outcome a batch gives, and what it keeps in memory
between batches (committed, read back after a batch that was not written, expired by the purge)."""

from datetime import UTC, datetime, timedelta

from kafka_common.events import Envelope, Event
from kafka_common.shop.events import Pizza, PizzaOrdered, PizzaStatus
from kafka_common.timestamps import format_utc
from pizza_status.fold import Fold, Order, fold_timeline

PIZZA = Pizza(sauce="Pesto", cheese="Gouda", main_topping="Pork", extra_toppings=())
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
STARTED = format_utc(NOW - timedelta(minutes=10))
BATCH = (format_utc(NOW), format_utc(NOW - timedelta(hours=2)))  # (now, TTL cutoff)


def at(seconds: float) -> str:
    return format_utc(NOW + timedelta(seconds=seconds))


def event(payload, seconds: float, event_id: str) -> Event:
    envelope = Envelope(
        id=event_id,
        type=payload.TYPE,
        source="/tests",
        time=NOW + timedelta(seconds=seconds),
        schema_version=1,
        order_id=payload.order_id,
    )
    return Event(envelope, payload)


def ordered(order_id: str, seconds: float, event_id: str, customer: str = "c0ffee") -> Event:
    return event(PizzaOrdered(order_id=order_id, customer_id=customer, username="ada", pizza=PIZZA), seconds, event_id)


def status(order_id: str, code: int, seconds: float, event_id: str) -> Event:
    return event(PizzaStatus(order_id=order_id, status=code), seconds, event_id)


def test_a_new_order_gives_its_row_and_its_timeline_rows():
    fold = Fold({}, STARTED)
    changes = fold.fold([status("o1", 200, -8, "e2"), ordered("o1", -9, "e1"), status("o1", 400, -5, "e4")], *BATCH)
    assert changes.timeline_rows == [("o1", 200, at(-8), "e2"), ("o1", 100, at(-9), None), ("o1", 400, at(-5), "e4")]
    assert changes.new_orders == [("o1", "e1", "c0ffee", "ada", PIZZA.to_json(), 400, at(-9), at(-5))]
    assert changes.status_updates == []
    assert dict(changes.outcome.by_status) == {400: 1}
    assert changes.outcome.delivered_after == [4.0]
    assert "o1" not in fold.orders  # kept only once written
    fold.committed(changes)
    assert fold.orders["o1"].stored_status == 400 and fold.orders["o1"].updated_at is None


def test_a_known_order_gives_an_update_and_moves_its_count():
    fold = Fold({}, STARTED)
    fold.committed(fold.fold([ordered("o1", -9, "e1")], *BATCH))
    changes = fold.fold([status("o1", 200, -8, "e2"), status("o1", 300, -7, "e3")], *BATCH)
    assert changes.new_orders == [] and changes.status_updates == [(300, at(-7), "o1")]
    assert {code: n for code, n in changes.outcome.by_status.items() if n} == {100: -1, 300: 1}


def test_what_it_ignores_is_counted_not_written():
    fold = Fold({}, STARTED)
    fold.committed(fold.fold([ordered("o1", -9, "e1"), status("o1", 400, -8, "e2")], *BATCH))
    changes = fold.fold(
        [
            ordered("o1", -9, "e1"),  # duplicate
            ordered("o1", -7, "e5", customer="bad"),  # second order
            status("o1", 400, -6, "e2"),  # duplicate
            status("o1", 400, -6, "e6"),  # repeated
            status("o1", -100, -5, "e7"),  # after final: in the timeline only
        ],
        *BATCH,
    )
    assert changes.timeline_rows == [("o1", -100, at(-5), "e7")]
    assert changes.new_orders == [] and changes.status_updates == []
    assert dict(changes.outcome.ignored) == {"duplicate": 2, "second_order": 1, "repeated": 1, "after_final": 1}
    assert changes.outcome.second_orders == [("o1", "e5")]


def test_times_are_capped_at_now_and_events_before_the_cutoff_left_out():
    fold = Fold({}, STARTED)
    now, cutoff = BATCH
    changes = fold.fold([ordered("old", -3 * 3600, "e1"), ordered("future", 3600, "e2")], now, cutoff)
    assert [row[0] for row in changes.new_orders] == ["future"] and list(changes.touched) == ["future"]
    assert changes.timeline_rows == [("future", 100, now, None)]


def test_a_delivery_before_the_start_is_not_timed():
    fold = Fold({}, STARTED)
    changes = fold.fold([ordered("o1", -3600, "e1"), status("o1", 400, -1800, "e2")], *BATCH)
    assert changes.outcome.delivered_after == [] and changes.new_orders[0][5] == 400


def test_orders_read_back_replace_or_forget_what_a_batch_changed():
    """After a batch that was not written: an order the tables hold is kept as they hold it,
    one they hold nothing of is forgotten."""
    fold = Fold({}, STARTED)
    fold.committed(fold.fold([ordered("kept", -9, "e1"), status("waiting", 200, -9, "e2")], *BATCH))
    fold.fold([status("kept", 200, -8, "e3"), ordered("waiting", -7, "e4")], *BATCH)
    assert fold.orders["kept"].status == 200  # changed in place as the batch was folded
    fold.reloaded(
        {"kept": Order("kept", event_id="e1", stored_status=100, timeline={100: at(-9)}), "waiting": Order("waiting")}
    )
    assert fold.orders["kept"].status == 100 and fold.orders["kept"].timeline == {100: at(-9)}
    assert "waiting" not in fold.orders


def test_expired_names_the_orders_the_purge_changes():
    fold = Fold({}, STARTED)
    fold.committed(
        fold.fold(
            [
                ordered("old", -3600, "e1"),
                status("old", 200, -60, "e2"),
                ordered("new", -60, "e3"),
                status("waiting-old", 200, -3600, "e4"),
                status("waiting-old", 300, -60, "e5"),
                status("waiting-new", 200, -60, "e6"),
            ],
            *BATCH,
        )
    )
    assert sorted(fold.expired(at(-1800))) == ["old", "waiting-old"]


def test_fold_timeline_runs_the_timeline_in_time_order_through_the_state_machine():
    assert fold_timeline({100: at(0)}) == (100, at(0))
    assert fold_timeline({300: at(2), 100: at(0), 200: at(1)}) == (300, at(2))
    assert fold_timeline({-100: at(3), 400: at(2), 100: at(0)}) == (400, at(2))  # the first final one stays
    assert fold_timeline({200: at(0), 100: at(0), -100: at(0)}) == (-100, at(0))  # one instant: the usual order
