"""Whatever one record does, it is dead-lettered or skipped: event times, sizes, duplicates, log lines."""

import logging

import pytest
from fakes import Record, kitchen_loop

from kafka_common import events
from kafka_common.clients import ClientLog
from kafka_common.consume import Handles
from kafka_common.dead_letters import MAX_VALUE_BYTES, dead_letter
from kafka_common.dedupe import DoneOrders
from kafka_common.logging import VALUE_PREFIX_BYTES, record_fields
from kafka_common.shop import ids
from kafka_common.shop.events import Pizza, PizzaOrdered, PizzaStatus
from kafka_common.shop.kitchen import Step

ORDER = PizzaOrdered(
    order_id=ids.new_order_id(),
    customer_id="c0ffee",
    username="u",
    pizza=Pizza(sauce="Tomato", cheese="Mozzarella", main_topping="Pepperoni"),
)


def with_time(ce_time: str):
    key, value, headers = events.encode(ORDER, "/t")
    return key.encode(), value, [(n, ce_time.encode() if n == "ce_time" else v) for n, v in headers]


@pytest.mark.parametrize(
    "ce_time",
    ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00", "1969-12-31T23:59:59Z", "2999-01-01T00:00:00Z"],
)
def test_event_times_outside_a_sane_window_are_invalid_events(ce_time):
    with pytest.raises(events.InvalidEvent):
        events.decode(PizzaOrdered, *with_time(ce_time))


def test_an_overflowing_time_is_dead_lettered_and_the_partition_moves_on():
    loop, _, _ = kitchen_loop()
    key, value, headers = with_time("9999-12-31T23:59:59-05:00")
    loop._on_message(Record(0, 3, key, value, headers), loop.uncommitted.batch)
    [dead] = loop.uncommitted.batch.outputs
    assert dead.topic == "pizza-dlq" and "out of range" in dict(dead.headers)["dlq_error"].decode()
    assert loop.uncommitted.batch.offsets == {(PizzaOrdered.TOPIC, 0): 4}


def test_any_exception_while_decoding_is_dead_lettered(monkeypatch):
    loop, _, _ = kitchen_loop()
    monkeypatch.setattr(events.Decoder, "__call__", lambda *a: (_ for _ in ()).throw(OverflowError("boom")))
    loop._on_message(Record(0, 0), loop.uncommitted.batch)
    assert "OverflowError: boom" in dict(loop.uncommitted.batch.outputs[0].headers)["dlq_error"].decode()


def test_a_dead_letter_of_a_huge_record_is_truncated_and_keeps_its_coordinates():
    value = b"x" * 1_000_000
    record = dead_letter("pizza-ordered", 2, 99, b"k", value, [("h", b"v")], "bake", "invalid", "pizza-dlq")
    headers = dict(record.headers)
    assert len(record.value) == MAX_VALUE_BYTES
    assert headers["dlq_value_truncated"] == b"1000000"
    assert (headers["dlq_source_topic"], headers["dlq_source_partition"], headers["dlq_source_offset"]) == (
        b"pizza-ordered",
        b"2",
        b"99",
    )
    assert headers["h"] == b"v"


def test_log_lines_carry_a_bounded_prefix_of_a_value():
    logging.getLogger().setLevel(logging.INFO)
    fields = record_fields(Record(0, 0, value=b"y" * 1_000_000))
    assert len(fields["value"]) < VALUE_PREFIX_BYTES + 40 and fields["value"].endswith("(1000000 bytes)")


def test_a_duplicate_order_is_skipped_once_done():
    done = []
    loop, _, _ = kitchen_loop(
        handlers={
            PizzaOrdered: Handles(
                lambda e: done.append(e) or Step(emit=(PizzaStatus(order_id=e.order_id, status=200),)),
                once_per_order=True,
            )
        }
    )
    key, value, headers = events.encode(ORDER, "/t")
    loop._on_message(Record(0, 0, key.encode(), value, headers), loop.uncommitted.batch)
    loop._on_message(Record(0, 1, key.encode(), value, headers), loop.uncommitted.batch)  # same batch
    loop.uncommitted.commit_pending()
    loop._on_message(Record(0, 2, key.encode(), value, headers), loop.uncommitted.batch)  # after the commit
    assert len(done) == 1
    assert loop.uncommitted.batch.offsets == {(PizzaOrdered.TOPIC, 0): 3} and loop.uncommitted.batch.outputs == []


def test_done_orders_are_bounded_in_number_and_age():
    clock = [0.0]
    done = DoneOrders(forget_after_s=10, max_orders=2, clock=lambda: clock[0])
    for order in ("a", "b", "c"):
        done.add("t", order)
    assert not done.seen("t", "a") and done.seen("t", "c") and len(done) == 2
    clock[0] = 11
    assert not done.seen("t", "c")


def test_librdkafka_log_lines_are_aggregated(caplog):
    log = ClientLog(every_s=60)
    with caplog.at_level(logging.INFO, logger="librdkafka"):
        for i in range(500):
            log.log(logging.WARNING, "%s [%s] %s", "FAIL", "rdkafka#consumer-1", f"Connect failed {i}")
        log.log(logging.WARNING, "%s [%s] %s", "REQTMOUT", "rdkafka#consumer-1", "timed out")
    assert len(caplog.records) == 2


def too_large():
    from confluent_kafka import KafkaError, KafkaException

    return KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE, "Message size too large"))


def test_an_output_kafka_refuses_for_good_is_not_redone_for_ever():
    loop, consumer, producers = kitchen_loop(
        {"produce": [too_large()]},
        handlers={PizzaOrdered: Handles(lambda e: Step(emit=(PizzaStatus(order_id=e.order_id, status=200),)))},
    )
    key, value, headers = events.encode(ORDER, "/t")
    loop._on_message(Record(0, 5, key.encode(), value, headers), loop.uncommitted.batch)
    loop.uncommitted.commit_pending()  # aborted: the output was refused
    assert consumer.calls.count("seek") == 1
    loop._on_message(Record(0, 5, key.encode(), value, headers), loop.uncommitted.batch)  # redone
    [dead] = loop.uncommitted.batch.outputs
    assert dead.topic == "pizza-dlq" and b"refused its output" in dict(dead.headers)["dlq_error"]
    loop.uncommitted.commit_pending()
    assert producers.made[0].calls.count("commit_transaction") == 1


def test_a_dead_letter_kafka_refuses_is_counted_and_skipped():
    loop, _, _ = kitchen_loop({"produce": [too_large()]})
    loop._on_message(Record(0, 9, value=b"not json"), loop.uncommitted.batch)  # invalid: a dead letter
    loop.uncommitted.commit_pending()  # the dead letter is refused
    loop._on_message(Record(0, 9, value=b"not json"), loop.uncommitted.batch)
    assert loop.uncommitted.batch.outputs == [] and loop.uncommitted.batch.offsets == {(PizzaOrdered.TOPIC, 0): 10}
