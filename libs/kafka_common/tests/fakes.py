"""Stand-in Kafka clients for unit tests of the loop's own logic (the broker tests cover Kafka)."""

from __future__ import annotations

import threading
import time

from confluent_kafka import KafkaError, KafkaException

from kafka_common.bounded import KafkaCalls
from kafka_common.consume import KitchenLoop
from kafka_common.dedupe import DoneOrders
from kafka_common.health import Health
from kafka_common.kitchen_clients import KitchenClients
from kafka_common.logging import get_logger
from kafka_common.shop.events import PizzaOrdered, PizzaStatus
from kafka_common.transactions import Checkpoint
from kafka_common.usage import KafkaUsage

USAGE = KafkaUsage(
    component="unit", consumes=(PizzaOrdered.TOPIC,), produces=(PizzaStatus.TOPIC,), group="g", transactional=True
)


def timed_out(what="timed out"):
    return KafkaException(KafkaError(KafkaError._TIMED_OUT, what, retriable=True))


def requires_abort(what="abortable"):
    return KafkaException(KafkaError(KafkaError._STATE, what, txn_requires_abort=True))


def fatal(what="INVALID_TXN_STATE", code=KafkaError.INVALID_TXN_STATE):
    return KafkaException(KafkaError(code, what, fatal=True))


def fenced():
    return KafkaException(KafkaError(KafkaError._FENCED, "fenced by a newer instance", fatal=True))


class FakeProducer:
    """Records every call; `script` maps a method to outcomes, one per call (an exception is raised)."""

    def __init__(self, script=None, name="producer"):
        self.name = name
        self.calls: list[str] = []
        self.script = {k: list(v) for k, v in (script or {}).items()}

    def __getattr__(self, method):
        def call(*args, **kwargs):
            self.calls.append(method)
            outcomes = self.script.get(method)
            if outcomes:
                outcome = outcomes.pop(0)
                if isinstance(outcome, BaseException):
                    raise outcome
                return outcome
            return 0 if method == "flush" else None

        return call


class Recorder:
    """Records calls to any method: a consumer, minus Kafka."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        def call(*args, **kwargs):
            self.calls.append(name)
            return None

        return call

    def called(self, name):
        return name in self.calls


class Producers:
    """A producer factory handing out scripted fakes in turn, remembering each."""

    def __init__(self, *scripts):
        self.scripts = list(scripts) or [None]
        self.made: list[FakeProducer] = []

    def __call__(self):
        script = self.scripts[min(len(self.made), len(self.scripts) - 1)]
        producer = FakeProducer(script, name=f"producer-{len(self.made)}")
        self.made.append(producer)
        return producer


def checkpoint(*scripts, stop=None):
    producers = Producers(*scripts)
    cp = Checkpoint("unit", producers, KafkaCalls(), stop or threading.Event(), get_logger("unit"))
    return cp, producers


def kitchen_loop(*producer_scripts, handlers=None, time_scale=0.0):
    from kafka_common.consume import Handles

    producers = Producers(*producer_scripts)
    consumer = Recorder()
    loop = KitchenLoop(
        USAGE,
        handlers or {PizzaOrdered: Handles(lambda e: None)},
        KitchenClients(consumer, producers),
        health=Health(),
        calls=KafkaCalls(),
        stop=threading.Event(),
        time_scale=time_scale,
        done_orders=DoneOrders(3600),
    )
    loop._assigned.update({(PizzaOrdered.TOPIC, 0), (PizzaOrdered.TOPIC, 1)})  # the set its work shares
    return loop, consumer, producers


class Record:
    """A consumed record as confluent_kafka.Message presents it."""

    def __init__(self, partition, offset, key=b"k", value=b"{}", headers=None, topic=PizzaOrdered.TOPIC):
        self._partition, self._offset, self._key = partition, offset, key
        self._value, self._headers, self._topic = value, headers, topic

    def topic(self):
        return self._topic

    def partition(self):
        return self._partition

    def offset(self):
        return self._offset

    def key(self):
        return self._key

    def value(self):
        return self._value

    def headers(self):
        return self._headers

    def error(self):
        return None


def now():
    return time.monotonic()
