"""Small helpers for assertions against a real broker (also usable without pytest)."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes | None
    headers: dict[str, bytes] = field(default_factory=dict)
    timestamp_ms: int | None = None

    def json(self) -> Any:
        return None if self.value is None else json.loads(self.value)

    def text(self) -> str | None:
        return None if self.value is None else self.value.decode("utf-8", "replace")

    def header(self, name: str) -> str | None:
        raw = self.headers.get(name)
        return None if raw is None else raw.decode("utf-8", "replace")


class RecordsTimeout(AssertionError):
    """The condition on a topic's records did not hold in time; carries what was read."""

    def __init__(self, message: str, records: list[Record]):
        super().__init__(message)
        self.records = records


def unique_name(prefix: str = "t", hint: str = "") -> str:
    """A name no other test uses: prefix-hint-<8 hex>, valid as a topic or group name."""
    hint = re.sub(r"[^A-Za-z0-9._-]+", "-", hint).strip("-")[:40]
    return "-".join(p for p in (prefix, hint, uuid.uuid4().hex[:8]) if p)


def create_topic(
    config: Mapping[str, Any],
    name: str,
    partitions: int = 6,
    topic_config: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> str:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(dict(config))
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=-1, config=dict(topic_config or {}))],
        request_timeout=timeout,
    )
    futures[name].result(timeout=timeout)
    return name


def read_records(
    config: Mapping[str, Any],
    topics: str | Sequence[str],
    *,
    until: Callable[[list[Record]], bool] | None = None,
    timeout: float = 30.0,
    isolation_level: str = "read_committed",
) -> list[Record]:
    """Read a topic (or topics) from the beginning, without a consumer group.

    until=None: read up to the end of every partition as of now (for read_committed,
    the last stable offset) and return what was read.
    until=f: read (waiting for new records) until f(records) is true and return the
    records; raise RecordsTimeout (an AssertionError) with the records after timeout.
    """
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    names = [topics] if isinstance(topics, str) else list(topics)
    consumer = Consumer(
        {
            **dict(config),
            "group.id": unique_name("reader"),  # never joined or committed: partitions are assigned
            "enable.auto.commit": False,
            "isolation.level": isolation_level,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
        }
    )
    records: list[Record] = []
    deadline = time.monotonic() + timeout
    try:
        assignment = []
        for name in names:
            md = consumer.list_topics(name, timeout=max(1.0, deadline - time.monotonic()))
            meta = md.topics.get(name)
            if meta is None or meta.error is not None:
                raise AssertionError(f"topic {name} does not exist ({meta.error if meta else 'no metadata'})")
            assignment += [TopicPartition(name, p, OFFSET_BEGINNING) for p in meta.partitions]
        consumer.assign(assignment)
        at_end: set[tuple[str, int]] = set()
        while True:
            if until is not None and until(records):
                return records
            if until is None and len(at_end) == len(assignment):
                return records
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                what = "the end of the topics" if until is None else "the condition"
                raise RecordsTimeout(
                    f"{names}: {what} not reached within {timeout:.0f} s; {len(records)} records read", records
                )
            msg = consumer.poll(min(0.5, remaining))
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    at_end.add((msg.topic(), msg.partition()))
                    continue
                raise AssertionError(f"reading {names}: {msg.error()}")
            at_end.discard((msg.topic(), msg.partition()))
            key = msg.key()
            ts_type, ts = msg.timestamp()
            records.append(
                Record(
                    topic=msg.topic(),
                    partition=msg.partition(),
                    offset=msg.offset(),
                    key=None if key is None else key.decode("utf-8", "replace"),
                    value=msg.value(),
                    headers={k: (v or b"") for k, v in (msg.headers() or [])},
                    timestamp_ms=ts if ts_type else None,
                )
            )
    finally:
        consumer.close()


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll condition() until it returns something truthy (returned) or fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = condition()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")
        time.sleep(interval)
