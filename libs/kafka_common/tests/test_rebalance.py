"""Rebalance callbacks of the consume loop, with stand-in clients (the broker tests cover the rest)."""

import time

from confluent_kafka import TopicPartition

from kafka_common import events
from kafka_common.events import PizzaOrdered, PizzaStatus
from kafka_common.health import Health
from kafka_common.runner import ConsumerService, Step, _Batch, _Work
from kafka_common.usage import KafkaUsage

USAGE = KafkaUsage(component="unit", consumes=(PizzaOrdered.TOPIC,), produces=(PizzaStatus.TOPIC,), group="g",
                   transactional=True)


class Recorder:
    """Records calls to any method; the consume loop's clients, minus Kafka."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        def call(*args, **kwargs):
            self.calls.append(name)
            return None
        return call

    def called(self, name):
        return name in self.calls


class Record:
    def __init__(self, partition, offset):
        self._partition, self._offset = partition, offset

    def topic(self):
        return PizzaOrdered.TOPIC

    def partition(self):
        return self._partition

    def offset(self):
        return self._offset

    def key(self):
        return b"k"


def service_with_finished_work():
    service = ConsumerService(USAGE, {PizzaOrdered: lambda e: None}, client_config=None, health=Health(),
                              install_signals=False, time_scale=0)
    service.consumer, service.producer = Recorder(), Recorder()
    service._assigned = {(PizzaOrdered.TOPIC, 0), (PizzaOrdered.TOPIC, 1)}
    status = PizzaStatus(order_id=events.new_order_id(), status=200)
    batch = _Batch()
    service._finish(_Work(Record(0, 41), Step(emit=(status,)), received=time.monotonic(), due=time.monotonic()), batch)
    service._batch = batch
    return service


def test_revoke_commits_finished_work_while_the_partitions_are_still_owned():
    service = service_with_finished_work()
    service._on_revoke(service.consumer, [TopicPartition(PizzaOrdered.TOPIC, 0)])
    assert [c for c in service.producer.calls if "transaction" in c or c == "produce"] == [
        "begin_transaction", "produce", "send_offsets_to_transaction", "commit_transaction"]
    assert not service._batch
    assert service._assigned == {(PizzaOrdered.TOPIC, 1)}


def test_lost_partitions_commit_nothing_and_rewind_what_is_still_assigned():
    service = service_with_finished_work()
    service._batch.add_offset(Record(1, 7))
    service._on_lost(service.consumer, [TopicPartition(PizzaOrdered.TOPIC, 0)])
    assert not service.producer.called("commit_transaction")
    assert service.consumer.calls.count("seek") == 1  # partition 1 only: 0 is gone
    assert not service._batch


def test_a_committed_batch_is_never_committed_again_on_revoke():
    service = service_with_finished_work()
    service._commit_pending()  # the end of a loop turn
    service._on_revoke(service.consumer, [TopicPartition(PizzaOrdered.TOPIC, 0)])  # e.g. during close()
    assert service.producer.calls.count("commit_transaction") == 1
    assert service.producer.calls.count("produce") == 1
