"""Structured logging: JSON lines in containers (LOG_FORMAT=json), short readable lines otherwise.

The hot path is structlog's own: a level-filtering bound logger (a call below
the level is a no-op), a few processors and a renderer writing straight to
stdout (orjson for JSON), no round trip through the standard library's
logging. Standard-library loggers (gunicorn, waitress, librdkafka via
confluent-kafka) are routed through the same renderer, so a container prints
one format only.

Every line carries the service. A line written while a record is handled
(between handling() and done_with()) also carries its topic, partition, offset and
order_id, and in JSON a bounded prefix of its value (all of it at DEBUG): one
context variable set per record, read only when a line is really written.

Console lines are for people: local time, level, the message with order ids
cut to 8 characters, the record as topic[partition]@offset, the value only at
DEBUG. JSON lines keep every field in full.

A line is written (and flushed) at once, except on a thread inside
lines_held(): a loop turn writes its INFO and DEBUG lines in one write when the
turn ends, or earlier with write_held_lines() before a call that may block (a
write and a flush per line were a sixth of a kitchen's CPU). A WARNING or worse
is never held: it writes what the thread holds, then itself. flush_held_lines()
writes every thread's held lines (before an abrupt exit).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import IO, Any

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

VALUE_PREFIX_BYTES = 256  # what a log line shows of a record's value (all of it at DEBUG)
KEY_PREFIX_BYTES = 64
SHORT_ID = 8  # console: an order id shown as its first 8 hex digits


class _Settings:
    service = "unknown"
    json = False
    debug = False


_SETTINGS = _Settings()


class HandledRecord:
    """The record being handled on this thread, and whether a line about it was written (told)."""

    __slots__ = ("msg", "told")

    def __init__(self, msg: Any):
        self.msg = msg
        self.told = False


_HANDLING: ContextVar[HandledRecord | None] = ContextVar("pizza_record_handled", default=None)


def bounded_text(raw: bytes | None, limit: int) -> str | None:
    """A record's bytes as text for a log line: at most `limit` bytes, marked when cut."""
    if raw is None:
        return None
    if len(raw) <= limit:
        return raw.decode(errors="replace")
    return raw[:limit].decode(errors="replace") + f"... ({len(raw)} bytes)"


def record_coordinates(msg: Any) -> dict[str, Any]:
    """topic/partition/offset/order_id of a confluent_kafka Message: what every line about it carries."""
    key = msg.key()
    return {
        "topic": msg.topic(),
        "partition": msg.partition(),
        "offset": msg.offset(),
        "order_id": bounded_text(key, KEY_PREFIX_BYTES) if key else None,
    }


def record_fields(msg: Any) -> dict[str, Any]:
    """The coordinates plus the value, as the original logs them.

    A value is logged whole only at DEBUG; otherwise its first VALUE_PREFIX_BYTES:
    a hostile megabyte-sized record must not become megabyte-sized log lines.
    """
    fields = record_coordinates(msg)
    value = msg.value()
    if not value:
        fields["value"] = None
    elif _SETTINGS.debug:
        fields["value"] = value.decode(errors="replace")
    else:
        fields["value"] = bounded_text(value, VALUE_PREFIX_BYTES)
    return fields


def handling(msg: Any) -> tuple[HandledRecord, Token]:
    """From now on, lines written on this thread carry the record's coordinates (until done_with)."""
    record = HandledRecord(msg)
    return record, _HANDLING.set(record)


def done_with(token: Token) -> None:
    _HANDLING.reset(token)


# -- processors ------------------------------------------------------------------------------------
def _add_service_and_record(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    event_dict.setdefault("service", _SETTINGS.service)
    handling = _HANDLING.get()
    if handling is not None:
        handling.told = True
        if "topic" not in event_dict:
            msg = handling.msg
            fields = record_fields(msg) if (_SETTINGS.json or _SETTINGS.debug) else record_coordinates(msg)
            fields.update(event_dict)  # what the line says itself wins
            return fields
    return event_dict


def _orjson_dumps(value: Any, **_: Any) -> bytes:
    return orjson.dumps(value, default=repr)


_ORDER_ID = re.compile(rf"\b([0-9a-f]{{{SHORT_ID}}})[0-9a-f]{{{32 - SHORT_ID}}}\b")
_CONSOLE_SKIP = frozenset({"event", "timestamp", "level", "service", "topic", "partition", "offset", "order_id"})


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return _ORDER_ID.sub(r"\1…", text)


def _console_renderer(_: WrappedLogger, __: str, event_dict: EventDict) -> str:
    """22:14:02 [info ] Preparing order 0ea448ac…, assembling time is 4 second(s)"""
    parts = [
        event_dict.get("timestamp", ""),
        f"[{event_dict.get('level', ''):<5}]",
        _short(str(event_dict.get("event", ""))),
    ]
    topic = event_dict.get("topic")
    if topic is not None:
        parts.append(f"{topic}[{event_dict.get('partition')}]@{event_dict.get('offset')}")
    order_id = event_dict.get("order_id")
    if order_id and str(order_id)[:SHORT_ID] not in parts[2]:
        parts.append(f"order={_short(order_id)}")
    exception = event_dict.pop("exception", None)
    for key, value in event_dict.items():
        if key not in _CONSOLE_SKIP and value is not None:
            parts.append(f"{key}={_short(value)}")
    line = " ".join(parts)
    return f"{line}\n{exception}" if exception else line


class _Stamper:
    """The line's time: the formatted second is cached, only the fraction is new on each line."""

    def __init__(self, utc: bool):
        self.utc = utc
        self._cached: tuple[int, str] = (-1, "")

    def __call__(self, _: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        now = time.time()
        second = int(now)
        cached_second, text = self._cached
        if second != cached_second:
            if self.utc:
                text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            else:
                text = time.strftime("%H:%M:%S", time.localtime(second))
            self._cached = (second, text)  # one assignment: threads see a consistent pair
        event_dict["timestamp"] = f"{text}.{int((now - second) * 1_000_000):06d}Z" if self.utc else text
        return event_dict


class _Output:
    """Where every line goes: stdout, one write per line or per held batch (see module doc)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[int, list] = {}  # thread ident -> its lines not yet written
        self._file: IO[Any] = sys.stdout
        self._newline: Any = "\n"

    def to(self, file: IO[Any], newline: Any) -> None:
        self.flush_held()
        self._file, self._newline = file, newline

    def write(self, line: Any) -> None:
        held = self._held.get(threading.get_ident())
        if held is not None:
            held.append(line)
            return
        with self._lock:
            self._file.write(line + self._newline)
            self._file.flush()

    def write_now(self, line: Any) -> None:
        held = self._held.get(threading.get_ident())
        if held is not None:
            held.append(line)
            self.write_held()
            return
        self.write(line)

    def write_held(self) -> None:
        """This thread's held lines, now; it goes on holding."""
        held = self._held.get(threading.get_ident())
        if held:
            self._write_all(held[:])
            held.clear()

    def hold(self) -> None:
        self._held.setdefault(threading.get_ident(), [])

    def release(self) -> None:
        self._write_all(self._held.pop(threading.get_ident(), None))

    def flush_held(self) -> None:
        for ident in list(self._held):
            self._write_all(self._held.pop(ident, None))

    def _write_all(self, lines: list | None) -> None:
        if not lines:
            return
        newline = self._newline
        with self._lock:
            self._file.write(newline.join(lines) + newline)
            self._file.flush()


_OUTPUT = _Output()


class _HeldLogger:
    """structlog's logger: the rendered line to _OUTPUT; WARNING and worse never held."""

    def msg(self, message: Any) -> None:
        _OUTPUT.write(message)

    def urgent(self, message: Any) -> None:
        _OUTPUT.write_now(message)

    log = debug = info = msg
    warn = warning = fatal = failure = err = error = critical = exception = urgent


class _HeldLoggerFactory:
    def __call__(self, *args: Any) -> _HeldLogger:
        return _HeldLogger()


class _Handler(logging.Handler):
    """Standard-library records (librdkafka, gunicorn...) through the same output, in order."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            line: str | bytes = text.encode() if isinstance(_OUTPUT._newline, bytes) else text
            if record.levelno >= logging.WARNING:
                _OUTPUT.write_now(line)
            else:
                _OUTPUT.write(line)
        except Exception:
            self.handleError(record)


@contextmanager
def lines_held() -> Iterator[None]:
    """The lines this thread logs below WARNING are written together when the block ends."""
    _OUTPUT.hold()
    try:
        yield
    finally:
        _OUTPUT.release()


def write_held_lines() -> None:
    """Inside lines_held(): write what this thread holds now (before a call that may block)."""
    _OUTPUT.write_held()


def flush_held_lines() -> None:
    """Write every thread's held lines now (the process is about to exit)."""
    _OUTPUT.flush_held()


def _shared(fmt: str) -> list[Processor]:
    return [_add_service_and_record, structlog.processors.add_log_level, _Stamper(utc=fmt == "json")]


_LEVEL_OF_METHOD = {"warn": "warning", "exception": "error"}  # as structlog's add_log_level


class _LineFields:
    """_shared() as one processor, for the service's own lines (two per record in a kitchen)."""

    def __init__(self, stamp: _Stamper):
        self._stamp = stamp

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        event_dict = _add_service_and_record(logger, method_name, event_dict)
        event_dict["level"] = _LEVEL_OF_METHOD.get(method_name, method_name)
        return self._stamp(logger, method_name, event_dict)


def _tracebacks_if_any(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    if "exc_info" in event_dict:
        return structlog.processors.dict_tracebacks(logger, method_name, event_dict)
    return event_dict


def _render_json(_: WrappedLogger, __: str, event_dict: EventDict) -> bytes:
    return orjson.dumps(event_dict, default=repr)


def configure_logging(service: str, fmt: str | None = None, level: str | None = None) -> None:
    fmt = (fmt or os.environ.get("LOG_FORMAT", "console")).lower()
    level_name = (level or os.environ.get("LOG_LEVEL", "INFO")).upper()
    level_no = logging.getLevelName(level_name)
    if not isinstance(level_no, int):
        level_no = logging.INFO
    _SETTINGS.service = service
    _SETTINGS.json = fmt == "json"
    _SETTINGS.debug = level_no <= logging.DEBUG
    shared = _shared(fmt)
    stdout_bytes = getattr(sys.stdout, "buffer", None)
    if fmt == "json":
        # Exceptions become structured fields (type, value, frames), not a text blob.
        native_chain: list[Processor] = [_tracebacks_if_any, _render_json]
        foreign_chain: list[Processor] = [
            structlog.processors.dict_tracebacks,
            structlog.processors.JSONRenderer(serializer=lambda v, **_: _orjson_dumps(v).decode()),
        ]
        if stdout_bytes is not None:
            _OUTPUT.to(stdout_bytes, b"\n")
        else:
            native_chain = foreign_chain
            _OUTPUT.to(sys.stdout, "\n")
    else:
        native_chain = foreign_chain = [structlog.processors.format_exc_info, _console_renderer]
        _OUTPUT.to(sys.stdout, "\n")
    structlog.configure(
        processors=[_LineFields(_Stamper(utc=fmt == "json")), *native_chain],
        logger_factory=_HeldLoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(level_no),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *foreign_chain],
    )
    handler = _Handler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level_no)
    for noisy in ("waitress.queue", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(name: str = "pizza") -> Any:
    """A structlog logger; the name is kept for call sites, the service names every line."""
    return structlog.get_logger(name)


def debug_enabled() -> bool:
    return _SETTINGS.debug
