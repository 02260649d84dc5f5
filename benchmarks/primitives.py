"""Kafka round trips that every order pays, measured with the library's own client settings.

- produce + ack: kafka_common.producer.EventProducer.send(), what POST /api/orders
  waits for (idempotent, acks=all, linger.ms=5, lz4), one event at a time.
- transaction: what the consume loop does per batch (runner.ConsumerService._commit):
  begin, produce 2 events, send_offsets_to_transaction, commit_transaction;
  timed as a whole and the commit alone.
- commit -> visible: from commit_transaction() returning until a read_committed
  consumer (assigned, polling) receives the record: the wait of the next hop.

All on a topic of the benchmark's own (pizza-benchmark), so no service sees it.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field

from confluent_kafka import Consumer, TopicPartition

from benchmarks.harness import Distribution, Environment, make_order
from kafka_common import events
from kafka_common.shop import ids
from kafka_common.shop.events import PizzaStatus
from kafka_common.shop.status import STATUS_IN_OVEN

TOPIC = "pizza-benchmark"


@dataclass
class PrimitiveResult:
    produce_ack: list[float] = field(default_factory=list)
    transaction: list[float] = field(default_factory=list)
    offsets: list[float] = field(default_factory=list)
    commit: list[float] = field(default_factory=list)
    visible: list[float] = field(default_factory=list)

    def rows(self) -> list[tuple[str, Distribution]]:
        return [
            ("produce + ack (EventProducer.send)", Distribution.of(self.produce_ack)),
            ("transaction: begin..commit, 2 events + offsets", Distribution.of(self.transaction)),
            ("  of which send_offsets_to_transaction()", Distribution.of(self.offsets)),
            ("  of which commit_transaction()", Distribution.of(self.commit)),
            ("commit -> visible to a read_committed consumer", Distribution.of(self.visible)),
        ]


def ensure_topic(config: dict) -> None:
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(config)
    future = admin.create_topics([NewTopic(TOPIC, num_partitions=6, replication_factor=-1)])[TOPIC]
    try:
        future.result(30)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise


def run(env: Environment, n: int) -> PrimitiveResult:
    import random

    from kafka_common.clients import ClientErrors, build_producer
    from kafka_common.config import ClientConfig
    from kafka_common.kitchen_clients import TXN_RETRY_BACKOFF
    from kafka_common.producer import EventProducer

    config = env.client_config()
    ensure_topic(config)
    client_config = ClientConfig(dict(config), {})
    result = PrimitiveResult()
    rng = random.Random(7)

    # produce + ack, sequentially, as a webapp thread does it
    sender = EventProducer(client_config, "benchmark")
    try:
        for i in range(n + 5):
            began = time.perf_counter()
            sender.send(make_order(rng))
            if i >= 5:  # the first sends connect and fetch the producer id
                result.produce_ack.append(time.perf_counter() - began)
    finally:
        sender.close()

    # transactions, and how soon a read_committed consumer sees their output
    tx = build_producer(
        client_config,
        "benchmark",
        {
            "transactional.id": f"pizza-benchmark-{uuid.uuid4().hex[:8]}",
            "transaction.timeout.ms": "15000",
            # as the kitchen's producer (kitchen_clients.build_kitchen_clients)
            **{prop: value for prop, value in TXN_RETRY_BACKOFF.items() if prop not in config},
        },
        ClientErrors("benchmark"),
    )
    tx.init_transactions(30)
    group = Consumer({**config, "group.id": "pizza-benchmark-txn", "enable.auto.commit": False})
    reader = Consumer(
        {
            **config,
            "group.id": "pizza-benchmark-reader",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    try:
        meta = reader.list_topics(TOPIC, timeout=10)
        start = []
        for p in meta.topics[TOPIC].partitions:
            _, high = reader.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=10)
            start.append(TopicPartition(TOPIC, p, high))
        reader.assign(start)
        seen: dict[str, float] = {}
        stop = threading.Event()

        def read():
            while not stop.is_set():
                msg = reader.poll(0.05)
                if msg is not None and not msg.error():
                    seen.setdefault(msg.key().decode(), time.perf_counter())

        thread = threading.Thread(target=read, daemon=True)
        thread.start()
        time.sleep(1.0)  # the reader has fetched its (empty) partitions and is waiting in a fetch
        for i in range(n + 5):
            order_id = ids.new_order_id()
            began = time.perf_counter()
            tx.begin_transaction()
            for payload in (make_order(rng), PizzaStatus(order_id=order_id, status=STATUS_IN_OVEN)):
                key, value, headers = events.encode(payload, "/pizza-shop/benchmark")
                # every record of the transaction on the same partition, keyed by this order_id
                tx.produce(TOPIC, key=order_id.encode(), value=value, headers=headers)
            before_offsets = time.perf_counter()
            tx.send_offsets_to_transaction([TopicPartition(TOPIC, i % 6, i)], group.consumer_group_metadata(), 10)
            before_commit = time.perf_counter()
            tx.commit_transaction(10)
            committed = time.perf_counter()
            deadline = committed + 10
            while order_id not in seen and time.perf_counter() < deadline:
                time.sleep(0.0005)
            if i >= 5:
                result.transaction.append(committed - began)
                result.offsets.append(before_commit - before_offsets)
                result.commit.append(committed - before_commit)
                if order_id in seen:
                    result.visible.append(max(0.0, seen[order_id] - committed))
        stop.set()
        thread.join(5)
    finally:
        reader.close()
        group.close()
        tx.flush(5)
    return result
