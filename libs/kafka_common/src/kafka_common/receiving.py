"""What both loops do with each record they receive: count it, log it once, time it."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka import Message, TopicPartition

from kafka_common import metrics
from kafka_common.logging import KEY_PREFIX_BYTES, bounded_text, debug_enabled, done_with, handling, record_fields


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


class receiving:  # noqa: N801 - used as a context manager, like a function
    """Count, log and time one record; every log line inside carries its coordinates.

    One line per record at INFO (the chronology): whatever the handling logs about
    it (a kitchen step's "Preparing order ...", say), or else "event received". At
    DEBUG "event received" comes first, with the whole value. A replayed record (a
    projection catching up) is logged at debug only: at info, logging would take
    most of a rebuild's time. A class, not a generator: this runs for every record.
    """

    __slots__ = ("log", "msg", "replay", "_seconds", "_handling", "_token", "_started")

    def __init__(self, component: str, log: Any, msg: Message, replay: bool = False):
        self.log, self.msg, self.replay = log, msg, replay
        counters = _COUNTERS.get(component) or _COUNTERS.setdefault(component, _Counters(component))
        consumed, self._seconds = counters.of(msg.topic())
        consumed.inc()

    def __enter__(self) -> None:
        self._handling, self._token = handling(self.msg)
        if debug_enabled():
            self.log.debug("event received", **record_fields(self.msg))
        self._started = time.perf_counter()

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._seconds.observe(time.perf_counter() - self._started)
            if not self._handling.told and not self.replay:
                self.log.info("event received")
        finally:
            done_with(self._token)


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
