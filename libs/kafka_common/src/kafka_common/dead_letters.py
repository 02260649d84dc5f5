"""Dead letters: a record that cannot be processed, copied to pizza-dlq with its coordinates.

A dead letter always fits: a record close to the broker's size limit would
make its copy (value plus the dlq_* headers) too large (MSG_SIZE_TOO_LARGE),
the transaction would abort and the same record would come back for ever.
Values above MAX_VALUE_BYTES are cut to that prefix, marked with
dlq_value_truncated (the original size); the coordinates always say where
the whole record still is (until the source topic's retention removes it).
"""

from __future__ import annotations

from kafka_common.timestamps import format_utc
from kafka_common.transactions import OutputRecord

MAX_VALUE_BYTES = 64 * 1024  # far below the default 1 MB message.max.bytes, with every header
MAX_KEY_BYTES = 1024
MAX_HEADERS_BYTES = 16 * 1024  # the source record's own headers, copied while they fit
MAX_ERROR_BYTES = 2048


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
