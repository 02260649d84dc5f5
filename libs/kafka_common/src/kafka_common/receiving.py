"""What both loops do with each record they receive: count it, log it, time it."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from contextlib import contextmanager

from confluent_kafka import Message, TopicPartition

from kafka_common import metrics
from kafka_common.logging import KEY_PREFIX_BYTES, bounded_text, event_context, record_fields


@contextmanager
def receiving(component: str, log, msg: Message, replay: bool = False):
    """Count, log and time one record; every log line inside carries its coordinates.

    A replayed record (a projection catching up) is logged at debug: at info,
    logging would take half of a rebuild's time.
    """
    metrics.EVENTS_CONSUMED.labels(component, msg.topic()).inc()
    with event_context(msg.topic(), msg.partition(), msg.offset(), record_key(msg)):
        (log.debug if replay else log.info)("event received", **record_fields(msg))
        started = time.perf_counter()
        try:
            yield
        finally:
            metrics.PROCESSING_SECONDS.labels(component, msg.topic()).observe(time.perf_counter() - started)


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
