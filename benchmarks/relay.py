"""Reference pipelines for the kitchen benchmark: the same dataflow, written bare on confluent-kafka.

    python -m benchmarks.relay transactional SPEC_JSON CONFIG_JSON
    python -m benchmarks.relay naive SPEC_JSON CONFIG_JSON

SPEC_JSON: {"group": ..., "routes": {input topic: [[output topic, ce_type, [fields copied], {fields set}], ...]}}.
Each consumed record becomes its outputs (JSON values, the CloudEvents headers
the services write, the same key); nothing else: no validation, no logging,
no metrics, no deadlines, no dead letters.

- transactional: the limit for exactly-once on this broker. Per batch (what has
  arrived, up to BATCH records): produce the outputs, send_offsets_to_transaction,
  commit_transaction. The library's kitchen loop does the same plus everything it
  promises on top; the ratio of the two is what that costs.
- naive: the original demo's way, the floor. Per record: produce, flush() (wait for
  the broker's acknowledgement), commit the offset synchronously. At-least-once.

It does not import the library (which loads msgspec, structlog, prometheus_client):
its memory is the bare client's.
"""

from __future__ import annotations

import json
import signal
import sys
import uuid
from datetime import UTC, datetime

import orjson
from confluent_kafka import Consumer, Producer, TopicPartition

BATCH = 500  # as the kitchen loop's MAX_BATCH
POLL_S = 0.5


def headers(ce_type: str, order_id: str) -> list[tuple[str, bytes]]:
    now = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    return [
        ("ce_specversion", b"1.0"),
        ("ce_id", str(uuid.uuid4()).encode()),
        ("ce_source", b"/pizza-shop/relay"),
        ("ce_type", ce_type.encode()),
        ("ce_time", now.encode()),
        ("ce_subject", order_id.encode()),
        ("ce_schemaversion", b"1"),
        ("content-type", b"application/json"),
    ]


def outputs(routes: dict, msg) -> list[tuple[str, bytes, bytes, list]]:
    value = orjson.loads(msg.value())
    out = []
    for topic, ce_type, copied, fixed in routes[msg.topic()]:
        payload = {name: value[name] for name in copied}
        payload.update(fixed)
        out.append((topic, msg.key(), orjson.dumps(payload), headers(ce_type, value["order_id"])))
    return out


def run(mode: str, spec: dict, config: dict) -> None:
    routes = spec["routes"]
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    consumer = Consumer(
        {
            **config,
            "group.id": spec["group"],
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    transactional = mode == "transactional"
    # The client settings of the library's transactional producer, so that only the Python differs.
    producer_config = {
        **config,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        "retry.backoff.ms": 10,
        "retry.backoff.max.ms": 100,
    }
    if transactional:
        producer_config["transactional.id"] = spec["group"]
    producer = Producer(producer_config)
    if transactional:
        producer.init_transactions(30)
    consumer.subscribe(list(routes))
    print("relay started", flush=True)
    while not stop:
        first = consumer.poll(POLL_S)
        if first is None:
            continue
        if transactional:
            batch = [first, *consumer.consume(BATCH - 1, 0)]
            producer.begin_transaction()
            offsets: dict[tuple[str, int], int] = {}
            for msg in batch:
                if msg.error():
                    continue
                for topic, key, value, hdrs in outputs(routes, msg):
                    producer.produce(topic, key=key, value=value, headers=hdrs)
                offsets[(msg.topic(), msg.partition())] = msg.offset() + 1
            producer.send_offsets_to_transaction(
                [TopicPartition(t, p, o) for (t, p), o in offsets.items()], consumer.consumer_group_metadata(), 30
            )
            producer.commit_transaction(30)
        else:
            msg = first
            if msg.error():
                continue
            for topic, key, value, hdrs in outputs(routes, msg):
                producer.produce(topic, key=key, value=value, headers=hdrs)
            producer.flush(30)
            consumer.commit(message=msg, asynchronous=False)
    consumer.close()
    producer.flush(10)


if __name__ == "__main__":
    run(sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]))
