"""An event's wire format: a payload model as JSON in the value, its envelope in CloudEvents headers.

Values are UTF-8 JSON of a Payload model (the shop's are in kafka_common.shop.events).
The envelope travels in the CloudEvents Kafka binding's headers (binary content mode): ce_specversion,
ce_id, ce_source, ce_type, ce_time, ce_subject (the order_id) plus the
extension ce_schemaversion, and content-type. The record key is the order_id.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from kafka_common.shop.ids import OrderId
from kafka_common.timestamps import format_utc, parse_utc

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_FUTURE = timedelta(days=1)  # clocks disagree by seconds; a day ahead is no real event


class InvalidEvent(ValueError):
    """A record that is not a valid event of its topic: it belongs in the dead-letter topic."""


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    TOPIC: ClassVar[str]
    TYPE: ClassVar[str]
    SCHEMA_VERSION: ClassVar[int] = 1

    order_id: OrderId


@dataclass(frozen=True)
class Envelope:
    id: str
    type: str
    source: str
    time: datetime
    schema_version: int
    order_id: str


P = TypeVar("P", bound="Payload", covariant=True)


@dataclass(frozen=True)
class Event(Generic[P]):
    """A consumed event: Event[PizzaOrdered] is what a handler of pizza-ordered receives."""

    envelope: Envelope
    payload: P

    @property
    def order_id(self) -> str:
        return self.payload.order_id


@functools.lru_cache(maxsize=64)
def _fixed_headers(ce_type: str, source: str, schema_version: int) -> tuple[tuple[str, bytes], ...]:
    """The headers that are the same for every event of a type from a source, encoded once."""
    return (
        ("ce_specversion", SPEC_VERSION.encode()),
        ("ce_source", source.encode()),
        ("ce_type", ce_type.encode()),
        ("ce_schemaversion", str(schema_version).encode()),
        ("content-type", CONTENT_TYPE.encode()),
    )


def encode(payload: Payload, source: str, event_id: str | None = None, time: datetime | None = None):
    """Turn a payload into (key, value, headers) for Producer.produce()."""
    spec, src, ce_type, schema, content_type = _fixed_headers(payload.TYPE, source, payload.SCHEMA_VERSION)
    headers = [
        spec,
        ("ce_id", (event_id or str(uuid.uuid4())).encode()),
        src,
        ce_type,
        ("ce_time", format_utc(time).encode()),
        ("ce_subject", payload.order_id.encode()),
        schema,
        content_type,
    ]
    return payload.order_id, payload.model_dump_json().encode(), headers


def _event_time(raw: str) -> datetime:
    """ce_time in UTC; a time outside [EPOCH, now + MAX_FUTURE] is not a real event's time.

    The window check comes before the UTC conversion: 9999-12-31T23:59:59-05:00
    parses, but converting it overflows datetime (OverflowError, not ValueError).
    """
    try:
        time = parse_utc(raw)
    except ValueError as exc:
        raise InvalidEvent(f"ce_time {_prefix(raw)!r} is not an RFC 3339 time with a zone") from exc
    try:
        utc = time.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise InvalidEvent(f"ce_time {raw!r} is out of range") from exc
    if utc < EPOCH or utc > datetime.now(UTC) + MAX_FUTURE:
        raise InvalidEvent(f"ce_time {raw!r} is before the epoch or more than a day in the future")
    return utc


def _prefix(text: str, limit: int = 64) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def decode(model: type[Payload], key: bytes | None, value: bytes | None, headers) -> Event:
    """Validate a consumed record against the schema expected on its topic; raises InvalidEvent."""
    h: dict[str, str] = {}  # a header without a value counts as missing
    for name, raw in headers or ():
        if raw is None:
            continue
        try:
            h[name] = raw.decode()
        except UnicodeDecodeError as exc:
            raise InvalidEvent(f"header {name} is not UTF-8") from exc
    missing = [n for n in ("ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time") if not h.get(n)]
    if missing:
        raise InvalidEvent("missing CloudEvents headers: " + ", ".join(missing))
    if h["ce_specversion"] != SPEC_VERSION:
        raise InvalidEvent(f"unsupported ce_specversion {_prefix(h['ce_specversion'])!r}")
    if h["ce_type"] != model.TYPE:
        raise InvalidEvent(f"ce_type {_prefix(h['ce_type'])!r} is not the expected {model.TYPE}")
    try:
        version = int(h.get("ce_schemaversion") or model.SCHEMA_VERSION)
    except ValueError as exc:
        raise InvalidEvent("ce_schemaversion is not an integer") from exc
    if version > model.SCHEMA_VERSION:
        raise InvalidEvent(f"schema version {version} is newer than this service understands ({model.SCHEMA_VERSION})")
    time = _event_time(h["ce_time"])
    if value is None:
        raise InvalidEvent("record has no value")
    try:
        payload = model.model_validate_json(value)
    except ValidationError as exc:
        errors = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors())
        raise InvalidEvent(f"invalid {model.TYPE}: {errors}") from exc
    if key is not None and key.decode(errors="replace") != payload.order_id:
        raise InvalidEvent("record key does not match the event's order_id")
    envelope = Envelope(
        id=h["ce_id"],
        type=h["ce_type"],
        source=h["ce_source"],
        time=time,
        schema_version=version,
        order_id=payload.order_id,
    )
    return Event(envelope, payload)
