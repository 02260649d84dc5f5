"""Dead letters: a record that cannot be processed, copied to pizza-dlq with its coordinates.

A dead letter always fits: a record close to the broker's size limit would
make its copy (value plus the dlq_* headers) too large (MSG_SIZE_TOO_LARGE),
the transaction would abort and the same record would come back for ever.
Values above MAX_VALUE_BYTES are cut to that prefix, marked with
dlq_value_truncated (the original size); the coordinates always say where
the whole record still is (until the source topic's retention removes it).

DeadLetters routes a kitchen loop's failed records there, in the transaction
of the batch they belong to, and remembers the records whose output Kafka
refused for good: redone, such a record is dead-lettered instead of refused
again for ever; one whose dead letter itself was refused is counted and
skipped (nothing else can take it).
"""

from __future__ import annotations

from confluent_kafka import Message

from kafka_common import metrics
from kafka_common.timestamps import format_utc
from kafka_common.transactions import Batch, OutputRecord

MAX_VALUE_BYTES = 64 * 1024  # far below the default 1 MB message.max.bytes, with every header
MAX_KEY_BYTES = 1024
MAX_HEADERS_BYTES = 16 * 1024  # the source record's own headers, copied while they fit
MAX_ERROR_BYTES = 2048
MAX_REMEMBERED_REFUSALS = 500  # records of aborted batches redone as dead letters (one batch's worth)
OUTPUT_REFUSED = "Kafka refused its output: "
DEAD_LETTER_REFUSED = "Kafka refused its dead letter: "


def dead_letter(
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: list | None,
    component: str,
    error: str,
    dlq_topic: str,
) -> OutputRecord:
    copied, size = [], 0
    for name, raw in headers or ():
        size += len(name) + len(raw or b"")
        if size > MAX_HEADERS_BYTES or name.startswith("dlq_"):
            continue
        copied.append((name, raw))
    extra = [
        ("dlq_source_topic", topic.encode()),
        ("dlq_source_partition", str(partition).encode()),
        ("dlq_source_offset", str(offset).encode()),
        ("dlq_service", component.encode()),
        ("dlq_error", error.encode()[:MAX_ERROR_BYTES]),
        ("dlq_time", format_utc().encode()),
    ]
    if value is not None and len(value) > MAX_VALUE_BYTES:
        extra.append(("dlq_value_truncated", str(len(value)).encode()))
        value = value[:MAX_VALUE_BYTES]
    if key is not None and len(key) > MAX_KEY_BYTES:
        extra.append(("dlq_key_truncated", str(len(key)).encode()))
        key = key[:MAX_KEY_BYTES]
    return OutputRecord(dlq_topic, key, value, copied + extra)


class DeadLetters:
    """A kitchen loop's records that cannot be done: dead-lettered in their batch's transaction."""

    def __init__(self, component: str, log, topic: str):
        self.component = component
        self.log = log
        self.topic = topic
        # Records whose output Kafka refused for good: handled differently when redone.
        self._refused: dict[tuple[str, int, int], str] = {}

    def send(self, msg: Message, failure: str, error: str, batch: Batch) -> None:
        """Copy the record to the dead-letter topic and move its offset on, both in `batch`.
        failure: the events_failed reason (invalid, processing, undeliverable)."""
        metrics.EVENTS_FAILED.labels(self.component, msg.topic(), failure).inc()
        self.log.error("event sent to the dead-letter topic", error=error[:512], dlq_topic=self.topic)
        source = (msg.topic(), msg.partition(), msg.offset())
        record = dead_letter(*source, msg.key(), msg.value(), msg.headers(), self.component, error, self.topic)
        record.source = source
        batch.outputs.append(record)
        batch.dead_letters.append(msg.topic())
        batch.add_offset(*source)

    def remember_refusals(self, aborted: Batch) -> None:
        """The records of an aborted batch whose output (or dead letter) Kafka refused for good."""
        for record, reason in aborted.undeliverable:
            if record.source is not None and len(self._refused) < MAX_REMEMBERED_REFUSALS:
                prefix = DEAD_LETTER_REFUSED if record.topic == self.topic else OUTPUT_REFUSED
                self._refused[record.source] = f"{prefix}{reason}"

    def redo_if_refused(self, msg: Message, batch: Batch) -> bool:
        """A record redone after Kafka refused its output: dead-lettered (or, if its dead letter
        was what Kafka refused, counted and skipped). False for any other record."""
        if not self._refused:  # the usual case: no per-record look-up
            return False
        reason = self._refused.pop((msg.topic(), msg.partition(), msg.offset()), None)
        if reason is None:
            return False
        if reason.startswith(DEAD_LETTER_REFUSED):
            metrics.EVENTS_FAILED.labels(self.component, msg.topic(), "undeliverable").inc()
            self.log.error("record skipped: Kafka refused its dead letter", error=reason[:512])
            batch.add_offset(msg.topic(), msg.partition(), msg.offset())
        else:
            self.send(msg, "undeliverable", reason, batch)
        return True
