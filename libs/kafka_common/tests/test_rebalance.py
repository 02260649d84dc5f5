"""Rebalance callbacks of the kitchen loop, with stand-in clients (the broker tests cover the rest)."""

from confluent_kafka import TopicPartition
from fakes import Record, kitchen_loop, now

from kafka_common.kitchen_work import Work
from kafka_common.shop import ids
from kafka_common.shop.events import PizzaOrdered, PizzaStatus
from kafka_common.shop.kitchen import Step


def loop_with_finished_work():
    loop, consumer, producers = kitchen_loop()
    status = PizzaStatus(order_id=ids.new_order_id(), status=200)
    loop.uncommitted.finish(
        Work(Record(0, 41), Step(emit=(status,)), received=now(), due=now(), order_key=None), loop.uncommitted.batch
    )
    return loop, consumer, producers.made[0]


def test_revoke_commits_finished_work_while_the_partitions_are_still_owned():
    loop, consumer, producer = loop_with_finished_work()
    loop._on_revoke(consumer, [TopicPartition(PizzaOrdered.TOPIC, 0)])
    assert [c for c in producer.calls if "transaction" in c or c == "produce"] == [
        "begin_transaction",
        "produce",
        "send_offsets_to_transaction",
        "commit_transaction",
    ]
    assert not loop.uncommitted.batch
    assert loop._assigned == {(PizzaOrdered.TOPIC, 1)}


def test_lost_partitions_commit_nothing_and_rewind_what_is_still_assigned():
    loop, consumer, producer = loop_with_finished_work()
    loop.uncommitted.batch.add_offset(PizzaOrdered.TOPIC, 1, 7)
    loop._on_lost(consumer, [TopicPartition(PizzaOrdered.TOPIC, 0)])
    assert "commit_transaction" not in producer.calls
    assert consumer.calls.count("seek") == 1  # partition 1 only: 0 is gone
    assert not loop.uncommitted.batch


def test_a_committed_batch_is_never_committed_again_on_revoke():
    loop, consumer, producer = loop_with_finished_work()
    loop.uncommitted.commit_pending()  # the end of a loop turn
    loop._on_revoke(consumer, [TopicPartition(PizzaOrdered.TOPIC, 0)])  # e.g. during close()
    assert producer.calls.count("commit_transaction") == 1
    assert producer.calls.count("produce") == 1


def test_a_partition_given_up_mid_step_is_resumed_so_it_is_fetched_if_it_comes_back():
    loop, consumer, _ = kitchen_loop()
    record = Record(0, 5)
    loop.uncommitted.in_flight[(record.topic(), 0)] = Work(
        record, Step(seconds=10), received=now(), due=now() + 10, order_key=None
    )
    loop._on_revoke(consumer, [TopicPartition(PizzaOrdered.TOPIC, 0)])
    assert "resume" in consumer.calls
    assert not loop.uncommitted.in_flight and (PizzaOrdered.TOPIC, 0) not in loop._assigned
