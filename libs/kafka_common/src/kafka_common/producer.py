"""Producers: idempotent (acks=all), delivery reports logged like the original's.

EventProducer.send() waits for the broker's acknowledgement, so a caller
(the webapp) answers only once the event is durable. The kitchen loop's
consume -> produce goes through a transactional producer instead
(transactions.Checkpoint).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from confluent_kafka import KafkaException

from kafka_common import events, metrics
from kafka_common.clients import ClientErrors, build_producer
from kafka_common.config import ClientConfig
from kafka_common.logging import KEY_PREFIX_BYTES, bounded_text, debug_enabled, get_logger, record_fields


class ProduceError(Exception):
    """Kafka did not acknowledge the event in time; nothing may be assumed written."""


@dataclass(frozen=True)
class Delivered:
    topic: str
    partition: int
    offset: int


def log_delivery(log, err, msg) -> None:
    """The original's delivery report: topic, partition, offset, key, value (at DEBUG); a failure at ERROR."""
    if err is not None:
        log.error(
            "event not delivered",
            topic=msg.topic(),
            order_id=bounded_text(msg.key(), KEY_PREFIX_BYTES),
            error=err.str(),
        )
        return
    if debug_enabled():  # at INFO the caller's own line names the record ("order placed")
        log.debug("event produced", **record_fields(msg))


class EventProducer:
    """Send events and wait for the acknowledgement; safe to share between threads."""

    def __init__(self, config: ClientConfig, component: str, source: str | None = None, message_timeout_s: float = 5.0):
        self.component = component
        self.source = source or f"/pizza-shop/{component}"
        self._log = get_logger("producer")
        # delivery.timeout: librdkafka gives up (and reports) within this bound,
        # so a caller never waits forever while Kafka is down.
        self._producer = build_producer(
            config, component, {"message.timeout.ms": str(int(message_timeout_s * 1000))}, ClientErrors(component)
        )
        self._timeout = message_timeout_s
        self._poller_stop = threading.Event()
        self._poller = threading.Thread(target=self._serve_callbacks, name="producer-callbacks", daemon=True)
        self._poller.start()

    def _serve_callbacks(self) -> None:
        while not self._poller_stop.is_set():
            self._producer.poll(0.1)

    def send(self, payload: events.Payload) -> Delivered:
        """Produce one event and block until Kafka acknowledged it (or raise ProduceError)."""
        key, value, headers = events.encode(payload, self.source)
        done = threading.Event()
        outcome: dict = {}

        def on_delivery(err, msg):
            outcome["err"], outcome["msg"] = err, msg
            log_delivery(self._log, err, msg)
            done.set()

        try:
            self._producer.produce(payload.TOPIC, key=key, value=value, headers=headers, on_delivery=on_delivery)
        except (KafkaException, BufferError) as exc:
            metrics.EVENTS_FAILED.labels(self.component, payload.TOPIC, "produce").inc()
            raise ProduceError(str(exc)) from exc
        # The message timeout bounds delivery; the margin covers callback scheduling.
        if not done.wait(self._timeout + 2.0):
            metrics.EVENTS_FAILED.labels(self.component, payload.TOPIC, "produce").inc()
            raise ProduceError("Kafka did not acknowledge the event in time")
        if outcome["err"] is not None:
            metrics.EVENTS_FAILED.labels(self.component, payload.TOPIC, "produce").inc()
            raise ProduceError(outcome["err"].str())
        msg = outcome["msg"]
        metrics.EVENTS_PRODUCED.labels(self.component, payload.TOPIC).inc()
        return Delivered(msg.topic(), msg.partition(), msg.offset())

    def cluster_reachable(self, timeout: float = 2.0) -> bool:
        try:
            self._producer.list_topics(timeout=timeout)
            return True
        except KafkaException:
            return False

    def close(self, timeout: float = 5.0) -> int:
        """Flush what is queued; returns how many events were left undelivered."""
        self._poller_stop.set()
        self._poller.join(timeout=1.0)
        remaining = self._producer.flush(timeout)
        self._log.info("producer flushed", undelivered=remaining)
        return remaining
