"""Each failure path of the transaction code, with a scripted stand-in producer.

The rule under test: every failure ends COMMITTED or ABORTED (the loop redoes an
aborted batch), a fenced producer stops the service cleanly, and no transaction
is begun while an abort is incomplete.
"""

import threading

import pytest
from fakes import USAGE, Record, checkpoint, fatal, fenced, kitchen_loop, requires_abort, timed_out

from kafka_common import events
from kafka_common.consume import POLL_TIMEOUT_S, Handles
from kafka_common.kitchen_work import OFFSETS_ONLY_WAIT_S
from kafka_common.shop import ids
from kafka_common.shop.events import PizzaOrdered, PizzaStatus
from kafka_common.shop.kitchen import Step
from kafka_common.shop.status import STATUS_IN_OVEN
from kafka_common.transactions import Batch, Outcome, OutputRecord, TransactionFenced

TXN_CALLS = {
    "begin_transaction",
    "produce",
    "send_offsets_to_transaction",
    "commit_transaction",
    "abort_transaction",
    "init_transactions",
}


def batch():
    b = Batch()
    b.outputs.append(OutputRecord(PizzaStatus.TOPIC, b"k", b"{}", []))
    b.add_offset(PizzaOrdered.TOPIC, 0, 41)
    return b


def txn_calls(producer):
    return [c for c in producer.calls if c in TXN_CALLS]


def no_begin_before_abort_completes(calls):
    """After a failed abort_transaction, the next transaction call is abort_transaction again."""
    for i, call in enumerate(calls[:-1]):
        if call == "abort_transaction" and calls[i + 1] == "begin_transaction":
            continue
        if call == "abort_transaction" and calls[i + 1] != "abort_transaction":
            return False
    return True


def test_a_clean_batch_commits_outputs_and_offsets_in_one_transaction():
    cp, producers = checkpoint()
    assert cp.commit(batch(), lambda: "metadata") is Outcome.COMMITTED
    assert txn_calls(producers.made[0]) == [
        "begin_transaction",
        "produce",
        "send_offsets_to_transaction",
        "commit_transaction",
    ]


def test_send_offsets_timing_out_is_retried_then_the_batch_commits():
    cp, producers = checkpoint({"send_offsets_to_transaction": [timed_out()]})
    assert cp.commit(batch(), lambda: "metadata") is Outcome.COMMITTED
    assert txn_calls(producers.made[0]).count("send_offsets_to_transaction") == 2


def test_send_offsets_timing_out_every_time_aborts_the_batch():
    cp, producers = checkpoint({"send_offsets_to_transaction": [timed_out()] * 3})
    assert cp.commit(batch(), lambda: "metadata") is Outcome.ABORTED
    calls = txn_calls(producers.made[0])
    assert calls[-1] == "abort_transaction" and "commit_transaction" not in calls


def test_an_abortable_error_aborts_at_once():
    cp, producers = checkpoint({"commit_transaction": [requires_abort()]})
    assert cp.commit(batch(), lambda: "metadata") is Outcome.ABORTED
    assert txn_calls(producers.made[0])[-2:] == ["commit_transaction", "abort_transaction"]


def test_an_abort_that_times_out_is_retried_until_it_completes_before_anything_else(monkeypatch):
    monkeypatch.setattr("kafka_common.transactions.ABORT_RETRY_PAUSE_S", 0)
    cp, producers = checkpoint(
        {
            "send_offsets_to_transaction": [requires_abort()],
            "abort_transaction": [timed_out(), timed_out(), timed_out()],
        }
    )
    assert cp.commit(batch(), lambda: "metadata") is Outcome.ABORTED
    assert cp.commit(batch(), lambda: "metadata") is Outcome.COMMITTED
    calls = txn_calls(producers.made[0])
    assert calls.count("abort_transaction") == 4  # three timed out, the fourth completed
    assert no_begin_before_abort_completes(calls)
    assert calls[-4:] == ["begin_transaction", "produce", "send_offsets_to_transaction", "commit_transaction"]


def test_an_abort_still_failing_at_shutdown_is_abandoned_not_retried_forever():
    stop = threading.Event()
    stop.set()
    cp, producers = checkpoint(
        {"commit_transaction": [requires_abort()], "abort_transaction": [timed_out()] * 100}, stop=stop
    )
    assert cp.commit(batch(), lambda: "metadata") is Outcome.ABORTED
    assert txn_calls(producers.made[0]).count("abort_transaction") == 1


def test_a_fatal_error_replaces_the_producer_which_fences_the_old_one():
    cp, producers = checkpoint({"send_offsets_to_transaction": [fatal()]}, None)
    assert cp.commit(batch(), lambda: "metadata") is Outcome.ABORTED
    old, new = producers.made
    assert "abort_transaction" not in old.calls  # an unusable producer is not asked for anything more
    assert txn_calls(new) == ["init_transactions"]  # same transactional.id: aborts what the old one left open
    assert cp.commit(batch(), lambda: "metadata") is Outcome.COMMITTED
    assert txn_calls(new)[-1] == "commit_transaction"


def test_a_fatal_error_during_abort_replaces_the_producer_too():
    cp, producers = checkpoint({"commit_transaction": [requires_abort()], "abort_transaction": [fatal()]}, None)
    assert cp.commit(batch(), lambda: "metadata") is Outcome.ABORTED
    assert len(producers.made) == 2 and txn_calls(producers.made[1]) == ["init_transactions"]


def test_a_fenced_producer_is_replaced_once_but_a_twin_that_keeps_fencing_stops_the_service():
    # Once: a broker that aborted the transaction past its timeout also bumps the epoch.
    cp, producers = checkpoint({"commit_transaction": [fenced()]}, None)
    assert cp.commit(batch(), lambda: "metadata") is Outcome.ABORTED
    assert len(producers.made) == 2 and txn_calls(producers.made[1]) == ["init_transactions"]
    assert "abort_transaction" not in producers.made[0].calls
    assert cp.commit(batch(), lambda: "metadata") is Outcome.COMMITTED
    # Again and again: another live process has the same INSTANCE_ID.
    cp, _ = checkpoint({"commit_transaction": [fenced()]})
    assert cp.commit(batch(), lambda: "metadata") is Outcome.ABORTED
    assert cp.commit(batch(), lambda: "metadata") is Outcome.ABORTED
    with pytest.raises(TransactionFenced):
        cp.commit(batch(), lambda: "metadata")
    cp, _ = checkpoint({"init_transactions": [fenced()]})
    with pytest.raises(TransactionFenced):
        cp.init()


def test_init_transactions_waits_for_kafka():
    cp, producers = checkpoint({"init_transactions": [timed_out(), timed_out()]})
    assert cp.init()
    assert producers.made[0].calls.count("init_transactions") == 3


def test_after_kafka_was_unreachable_a_batch_waits_until_the_cluster_answers():
    cp, producers = checkpoint({"list_topics": [timed_out()]})
    cp._last_unreachable = lambda: float("inf")
    assert cp.commit(batch(), lambda: "metadata") is Outcome.ABORTED
    assert txn_calls(producers.made[0]) == []  # nothing begun while the coordinator may be gone
    assert cp.commit(batch(), lambda: "metadata") is Outcome.COMMITTED


def test_the_loop_rewinds_an_aborted_batch_and_records_nothing_as_done():
    order_id = ids.new_order_id()
    loop, consumer, producers = kitchen_loop(
        {"commit_transaction": [requires_abort()]},
        handlers={PizzaOrdered: Handles(lambda e: Step(), once_per_order=True)},
    )
    key, value, headers = events.encode(
        PizzaOrdered(
            order_id=order_id,
            customer_id="c0ffee",
            username="u",
            pizza={"sauce": "Tomato", "cheese": "Mozzarella", "main_topping": "Pepperoni"},
        ),
        "/t",
    )
    loop._on_message(Record(0, 5, key.encode(), value, headers), loop.uncommitted.batch)
    loop.uncommitted.commit_pending()
    assert consumer.calls.count("seek") == 1
    assert not loop.done_orders.seen(PizzaOrdered.TOPIC, order_id)  # redone, not skipped
    loop._on_message(Record(0, 5, key.encode(), value, headers), loop.uncommitted.batch)
    loop.uncommitted.commit_pending()
    assert loop.done_orders.seen(PizzaOrdered.TOPIC, order_id)
    loop._on_message(Record(0, 6, key.encode(), value, headers), loop.uncommitted.batch)  # an exact duplicate
    assert loop.uncommitted.batch.outputs == [] and loop.uncommitted.batch.offsets == {(PizzaOrdered.TOPIC, 0): 7}


def test_usage_names_the_transactional_id_after_the_instance():
    assert USAGE.transactional_id({"INSTANCE_ID": "unit-0"}) == "pizza-unit-unit-0"


class Hang:
    """A call that never returns until released (librdkafka ignoring its timeout)."""

    def __init__(self):
        self.release = threading.Event()

    def __call__(self, *args):
        self.release.wait(30)


def test_a_hung_send_offsets_leaves_its_producer_behind_and_a_new_one_takes_over(monkeypatch):
    monkeypatch.setattr("kafka_common.transactions.TXN_CALL_TIMEOUT_S", 0.1)
    cp, producers = checkpoint()
    cp.calls.grace_s = 0.1
    hang = Hang()
    producers.made[0].send_offsets_to_transaction = hang
    try:
        assert cp.commit(batch(), lambda: "metadata") is Outcome.ABORTED
        old, new = producers.made
        assert "abort_transaction" not in old.calls  # a stuck producer is asked nothing more
        assert txn_calls(new) == ["init_transactions"]  # fences the stuck one
        assert cp.commit(batch(), lambda: "metadata") is Outcome.COMMITTED
    finally:
        hang.release.set()


def test_too_many_hung_calls_ask_for_the_process_to_be_replaced(monkeypatch):
    from kafka_common.transactions import MAX_ABANDONED_PRODUCERS, ClientWedged

    monkeypatch.setattr("kafka_common.transactions.TXN_CALL_TIMEOUT_S", 0.05)
    hang = Hang()
    cp, producers = checkpoint()
    cp.calls.grace_s = 0.05
    monkeypatch.setattr(cp, "_make_producer", lambda: setattr(p := producers(), "commit_transaction", hang) or p)
    producers.made[0].commit_transaction = hang
    try:
        for _ in range(MAX_ABANDONED_PRODUCERS):
            assert cp.commit(batch(), lambda: "metadata") is Outcome.ABORTED
        with pytest.raises(ClientWedged):
            cp.commit(batch(), lambda: "metadata")
    finally:
        hang.release.set()


def test_between_batches_a_fresh_producer_starts_as_soon_as_kafka_is_back():
    cp, producers = checkpoint({"list_topics": [timed_out()]})
    cp._last_unreachable = lambda: float("inf") if len(producers.made) == 1 else 0.0
    cp.renew_after_outage()  # still away: nothing changes
    assert len(producers.made) == 1
    cp._probed_at = 0.0
    cp.renew_after_outage()  # back: a new producer, ready before the next batch
    assert len(producers.made) == 2 and txn_calls(producers.made[1]) == ["init_transactions"]


def ordered_record(partition, offset):
    order = PizzaOrdered(
        order_id=ids.new_order_id(),
        customer_id="c0ffee",
        username="u",
        pizza={"sauce": "Tomato", "cheese": "Mozzarella", "main_topping": "Pepperoni"},
    )
    key, value, headers = events.encode(order, "/t")
    return Record(partition, offset, key.encode(), value, headers)


def test_offsets_of_records_that_produce_nothing_wait_for_a_batch_with_outputs(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr("kafka_common.consume.time.monotonic", lambda: clock[0])
    emit: list = []
    loop, consumer, producers = kitchen_loop(handlers={PizzaOrdered: Handles(lambda e: Step(emit=tuple(emit)))})
    commits = lambda: producers.made[0].calls.count("commit_transaction")  # noqa: E731

    loop._on_message(ordered_record(0, 5), loop.uncommitted.batch)  # produces nothing (an early warning)
    loop.uncommitted.commit_pending(hold_offsets_only=True)
    assert commits() == 0 and loop.uncommitted.poll_timeout(POLL_TIMEOUT_S) <= OFFSETS_ONLY_WAIT_S
    emit.append(PizzaStatus(order_id=ids.new_order_id(), status=STATUS_IN_OVEN))
    loop._on_message(ordered_record(1, 9), loop.uncommitted.batch)  # has an output: both offsets go with it
    assert loop.uncommitted.batch.offsets == {(PizzaOrdered.TOPIC, 0): 6, (PizzaOrdered.TOPIC, 1): 10}
    loop.uncommitted.commit_pending(hold_offsets_only=True)
    assert commits() == 1 and not loop.uncommitted.batch

    emit.clear()
    loop._on_message(ordered_record(0, 6), loop.uncommitted.batch)
    loop.uncommitted.commit_pending(hold_offsets_only=True)
    clock[0] += OFFSETS_ONLY_WAIT_S / 2
    loop.uncommitted.commit_pending(hold_offsets_only=True)
    assert commits() == 1
    clock[0] += OFFSETS_ONLY_WAIT_S / 2  # waited long enough: committed alone
    loop.uncommitted.commit_pending(hold_offsets_only=True)
    assert commits() == 2 and loop.uncommitted.poll_timeout(POLL_TIMEOUT_S) == POLL_TIMEOUT_S

    loop._on_message(ordered_record(0, 7), loop.uncommitted.batch)
    loop.uncommitted.commit_pending()  # on revoke, at shutdown: at once
    assert commits() == 3
