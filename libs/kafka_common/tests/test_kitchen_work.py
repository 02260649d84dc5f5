"""The kitchen's uncommitted work on its own, with stand-in clients (the loop's tests cover the rest)."""

from fakes import Record, kitchen_loop, now

from kafka_common.kitchen_work import OFFSETS_ONLY_WAIT_S, Work
from kafka_common.shop.events import PizzaOrdered
from kafka_common.shop.kitchen import Step


def in_progress(partition: int, offset: int, seconds: float) -> Work:
    return Work(Record(partition, offset), Step(seconds=seconds), received=now(), due=now() + seconds, order_key=None)


def test_a_poll_waits_no_longer_than_the_next_step_in_progress():
    loop, _, _ = kitchen_loop()
    work = loop.uncommitted
    assert work.poll_timeout(0.5) == 0.5
    work.in_flight[(PizzaOrdered.TOPIC, 0)] = in_progress(0, 1, 60.0)
    work.in_flight[(PizzaOrdered.TOPIC, 1)] = in_progress(1, 1, 0.0)
    assert work.poll_timeout(0.5) == 0.0


def test_a_poll_waits_no_longer_than_offsets_only_may_be_held():
    loop, _, _ = kitchen_loop()
    work = loop.uncommitted
    work.batch.add_offset(PizzaOrdered.TOPIC, 0, 5)  # a record that produced nothing
    work.commit_pending(hold_offsets_only=True)
    assert work.batch and 0.0 < work.poll_timeout(60.0) <= OFFSETS_ONLY_WAIT_S


def test_a_step_due_is_committed_and_its_partition_resumed_one_not_due_stays_in_progress():
    loop, consumer, producers = kitchen_loop()
    work = loop.uncommitted
    work.in_flight[(PizzaOrdered.TOPIC, 0)] = Work(
        Record(0, 3), Step(seconds=9), received=now() - 10, due=now() - 1, order_key=None
    )  # due already
    work.in_flight[(PizzaOrdered.TOPIC, 1)] = in_progress(1, 8, 60.0)
    work.commit_pending()
    assert producers.made[0].calls.count("commit_transaction") == 1
    assert list(work.in_flight) == [(PizzaOrdered.TOPIC, 1)] and not work.batch
    assert consumer.calls.count("resume") == 1 and consumer.calls.count("store_offsets") == 1


def test_abandoning_gives_up_the_steps_of_those_partitions_only():
    loop, _, _ = kitchen_loop()
    work = loop.uncommitted
    work.in_flight[(PizzaOrdered.TOPIC, 0)] = in_progress(0, 1, 60.0)
    work.in_flight[(PizzaOrdered.TOPIC, 1)] = in_progress(1, 1, 60.0)
    work.abandon([(PizzaOrdered.TOPIC, 0), (PizzaOrdered.TOPIC, 2)], "partition revoked")
    assert list(work.in_flight) == [(PizzaOrdered.TOPIC, 1)]
    work.abandon_all("shutting down")
    assert not work.in_flight
