"""What both loops do with each record they receive: count it, log it once, time it."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from confluent_kafka import Message, TopicPartition

from kafka_common import metrics
from kafka_common.logging import KEY_PREFIX_BYTES, about_record, bounded_text, debug_enabled, record_fields


class _Counters:
    """One service's per-topic metric children, looked up once instead of by label on every record."""

    def __init__(self, component: str):
        self.component = component
        self.consumed: dict[str, Any] = {}
        self.seconds: dict[str, Any] = {}

    def of(self, topic: str) -> tuple[Any, Any]:
        consumed = self.consumed.get(topic)
        if consumed is None:
            consumed = self.consumed[topic] = metrics.EVENTS_CONSUMED.labels(self.component, topic)
            self.seconds[topic] = metrics.PROCESSING_SECONDS.labels(self.component, topic)
        return consumed, self.seconds[topic]


_COUNTERS: dict[str, _Counters] = {}


@contextmanager
def receiving(component: str, log: Any, msg: Message, replay: bool = False) -> Iterator[None]:
    """Count, log and time one record; every log line inside carries its coordinates.

    One line per record at INFO (the chronology): whatever the handling logs about
    it (a kitchen step's "Preparing order ...", say), or else "event received". At
    DEBUG "event received" comes first, with the whole value. A replayed record (a
    projection catching up) is logged at debug only: at info, logging would take
    most of a rebuild's time.
    """
    counters = _COUNTERS.get(component) or _COUNTERS.setdefault(component, _Counters(component))
    consumed, seconds = counters.of(msg.topic())
    consumed.inc()
    with about_record(msg) as handling:
        if debug_enabled():
            log.debug("event received", **record_fields(msg))
        started = time.perf_counter()
        try:
            yield
        finally:
            seconds.observe(time.perf_counter() - started)
            if not handling.told and not replay:
                log.info("event received")


def record_key(msg: Message) -> str | None:
    return bounded_text(msg.key(), KEY_PREFIX_BYTES) if msg.key() else None


def describe(partitions: Iterable[TopicPartition]) -> list[str]:
    return [f"{p.topic}[{p.partition}]" for p in partitions]


def by_topic(consumes: Iterable[str], handlers: Mapping) -> tuple[dict, dict]:
    """A loop's {topic: event model} and {topic: handler}, covering exactly the topics it consumes."""
    models = {model.TOPIC: model for model in handlers}
    if set(models) != set(consumes):
        raise ValueError(f"handlers for {sorted(models)} but KafkaUsage consumes {sorted(consumes)}")
    return models, {model.TOPIC: handler for model, handler in handlers.items()}
