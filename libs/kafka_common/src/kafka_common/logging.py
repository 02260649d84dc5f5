"""Structured logging: JSON lines in containers (LOG_FORMAT=json), readable console output otherwise.

Every line carries the service; lines about an event also carry order_id,
topic, partition and offset, bound through contextvars by event_context().
Standard-library loggers (gunicorn, waitress, librdkafka via confluent-kafka)
are routed through the same renderer so a container prints one format only.
"""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager

import structlog
from structlog.typing import Processor

_SERVICE = {"name": "unknown"}


def _add_service(_, __, event_dict):
    event_dict.setdefault("service", _SERVICE["name"])
    return event_dict


def configure_logging(service: str, fmt: str | None = None, level: str | None = None) -> None:
    _SERVICE["name"] = service
    fmt = (fmt or os.environ.get("LOG_FORMAT", "console")).lower()
    level_name = (level or os.environ.get("LOG_LEVEL", "INFO")).upper()
    level_no = logging.getLevelName(level_name)
    if not isinstance(level_no, int):
        level_no = logging.INFO
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        _add_service,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer_chain: list[Processor]
    if fmt == "json":
        # Exceptions become structured fields (type, value, frames), not a text blob.
        renderer_chain = [structlog.processors.dict_tracebacks, structlog.processors.JSONRenderer()]
    else:
        renderer_chain = [structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer_chain],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level_no)
    for noisy in ("waitress.queue", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(name: str = "pizza"):
    return structlog.stdlib.get_logger(name)


@contextmanager
def event_context(topic: str, partition: int, offset: int, key: str | None):
    """Bind the fields of one record to every log line written while handling it."""
    with structlog.contextvars.bound_contextvars(topic=topic, partition=partition, offset=offset, order_id=key):
        yield


VALUE_PREFIX_BYTES = 256  # what a log line shows of a record's value (all of it at DEBUG)
KEY_PREFIX_BYTES = 64


def bounded_text(raw: bytes | None, limit: int) -> str | None:
    """A record's bytes as text for a log line: at most `limit` bytes, marked when cut."""
    if raw is None:
        return None
    if len(raw) <= limit:
        return raw.decode(errors="replace")
    return raw[:limit].decode(errors="replace") + f"... ({len(raw)} bytes)"


def record_fields(msg) -> dict:
    """topic/partition/offset/key/value of a confluent_kafka Message, as the original logs them.

    A value is logged whole only at DEBUG; otherwise its first VALUE_PREFIX_BYTES:
    a hostile megabyte-sized record must not become megabyte-sized log lines.
    """
    key = msg.key()
    value = msg.value()
    limit = None if logging.getLogger().isEnabledFor(logging.DEBUG) else VALUE_PREFIX_BYTES
    return {
        "topic": msg.topic(),
        "partition": msg.partition(),
        "offset": msg.offset(),
        "order_id": bounded_text(key, KEY_PREFIX_BYTES),
        "value": (value.decode(errors="replace") if limit is None else bounded_text(value, limit)) if value else None,
    }
