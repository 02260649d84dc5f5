"""An event's wire format: a payload model as JSON in the value, its envelope in CloudEvents headers.

Values are UTF-8 JSON of a Payload model (the shop's are in kafka_common.shop.events).
The envelope travels in the CloudEvents Kafka binding's headers (binary content mode): ce_specversion,
ce_id, ce_source, ce_type, ce_time, ce_subject (the order_id) plus the
extension ce_schemaversion, and content-type. The record key is the order_id.

Payloads are msgspec Structs: decode validates every constraint of the model (in C,
one pass over the JSON); encode serialises what this process built without checking
it again.
"""

from __future__ import annotations

import functools
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Generic, Literal, TypeVar, get_args, get_origin

import msgspec

from kafka_common.shop.ids import OrderId
from kafka_common.timestamps import format_utc, parse_utc

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_FUTURE = timedelta(days=1)  # clocks disagree by seconds; a day ahead is no real event

# The envelope headers a record must carry (ce_schemaversion may be left out: version 1).
REQUIRED_HEADERS = ("ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time")


class InvalidEvent(ValueError):
    """A record that is not a valid event of its topic: it belongs in the dead-letter topic."""


# gc=False: payloads hold only strings, numbers, tuples and other payload Structs, never a
# cycle, so the garbage collector need not track the many a projection's replay creates.
class Payload(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    TOPIC: ClassVar[str]
    TYPE: ClassVar[str]
    SCHEMA_VERSION: ClassVar[int] = 1

    order_id: OrderId


class Envelope(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    id: str
    type: str
    source: str
    time: datetime
    schema_version: int
    order_id: str


P = TypeVar("P", bound="Payload", covariant=True)


class Event(msgspec.Struct, Generic[P], frozen=True, gc=False):
    """A consumed event: Event[PizzaOrdered] is what a handler of pizza-ordered receives."""

    envelope: Envelope
    payload: P

    @property
    def order_id(self) -> str:
        return self.payload.order_id


_json = msgspec.json.Encoder()


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


def encode(
    payload: Payload, source: str, event_id: str | None = None, time: datetime | None = None
) -> tuple[str, bytes, list[tuple[str, bytes]]]:
    """Turn a payload into (key, value, headers) for Producer.produce()."""
    spec, src, ce_type, schema, content_type = _fixed_headers(payload.TYPE, source, payload.SCHEMA_VERSION)
    order_id = payload.order_id
    headers = [
        spec,
        ("ce_id", (event_id or str(uuid.uuid4())).encode()),
        src,
        ce_type,
        ("ce_time", format_utc(time).encode()),
        ("ce_subject", order_id.encode()),
        schema,
        content_type,
    ]
    return order_id, _json.encode(payload), headers


class _Expected:
    """What decode compares a record of one model against, prepared once per model."""

    def __init__(self, model: type[Payload]) -> None:
        self.decoder = msgspec.json.Decoder(model)
        self.type = model.TYPE.encode()
        self.schema_version = str(model.SCHEMA_VERSION).encode()


_EXPECTED: dict[type[Payload], _Expected] = {}
_SPEC_VERSION = SPEC_VERSION.encode()


def decode(model: type[Payload], key: bytes | None, value: bytes | None, headers: Any) -> Event:
    """Validate a consumed record against the schema expected on its topic; raises InvalidEvent."""
    expected = _EXPECTED.get(model) or _EXPECTED.setdefault(model, _Expected(model))
    h: dict[str, bytes | None] = dict(headers) if headers else {}  # a header without a value counts as missing
    spec, ce_id, source, ce_type, ce_time = (
        h.get("ce_specversion"),
        h.get("ce_id"),
        h.get("ce_source"),
        h.get("ce_type"),
        h.get("ce_time"),
    )
    if not (spec and ce_id and source and ce_type and ce_time):
        raise InvalidEvent("missing CloudEvents headers: " + ", ".join(n for n in REQUIRED_HEADERS if not h.get(n)))
    if spec != _SPEC_VERSION:
        raise InvalidEvent(f"unsupported ce_specversion {_shown(spec)!r}")
    if ce_type != expected.type:
        raise InvalidEvent(f"ce_type {_shown(ce_type)!r} is not the expected {model.TYPE}")
    raw_version = h.get("ce_schemaversion")
    version = (
        model.SCHEMA_VERSION if not raw_version or raw_version == expected.schema_version else _version(raw_version)
    )
    if version > model.SCHEMA_VERSION:
        raise InvalidEvent(f"schema version {version} is newer than this service understands ({model.SCHEMA_VERSION})")
    time = _event_time(_text("ce_time", ce_time))
    if value is None:
        raise InvalidEvent("record has no value")
    try:
        payload = expected.decoder.decode(value)
    except msgspec.ValidationError as exc:
        raise InvalidEvent(f"invalid {model.TYPE}: {_reason(model, exc)}") from exc
    except msgspec.DecodeError as exc:
        raise InvalidEvent(f"invalid {model.TYPE}: value is not JSON: {exc}") from exc
    order_id = payload.order_id
    if key is not None and key != order_id.encode():
        raise InvalidEvent("record key does not match the event's order_id")
    envelope = Envelope(
        id=_text("ce_id", ce_id),
        type=model.TYPE,
        source=_text("ce_source", source),
        time=time,
        schema_version=version,
        order_id=order_id,
    )
    return Event(envelope, payload)


def _text(name: str, raw: bytes) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError as exc:
        raise InvalidEvent(f"header {name} is not UTF-8") from exc


def _version(raw: bytes) -> int:
    try:
        return int(raw)
    except ValueError as exc:
        raise InvalidEvent("ce_schemaversion is not an integer") from exc


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


def _shown(raw: bytes) -> str:
    """A header value as text for an error message: undecodable bytes replaced, long values cut."""
    return _prefix(raw.decode(errors="replace"))


_PATH_STEP = re.compile(r"\.(\w+)|\[(\d+)\]")


def _reason(model: type[Payload], exc: msgspec.ValidationError) -> str:
    """msgspec's "Invalid enum value 'Ketchup' - at `$.pizza.sauce`" as "pizza.sauce: ...; expected one of: ..."."""
    text = str(exc)
    # The path is msgspec's suffix; a value quoted in the message may contain the same words.
    message, found, where = text.rpartition(" - at `$")
    if not found or not where.endswith("`"):
        message, where = text, ""
    path = where.removesuffix("`")
    if message.startswith("Invalid enum value"):
        choices = _literal_choices(model, path)
        if choices:
            message += "; expected one of: " + ", ".join(map(str, choices))
    return f"{path.lstrip('.') or 'value'}: {message}"


def _literal_choices(model: type, path: str) -> tuple:
    """The values a Literal field at path (".pizza.extra_toppings[1]") of model allows; () when it is none."""
    kind: Any = model
    for field, _index in _PATH_STEP.findall(path):
        kind = _unannotated(kind)
        if field:
            fields = {f.name: f.type for f in msgspec.structs.fields(kind)} if isinstance(kind, type) else {}
            kind = fields.get(field)
        else:  # an item of a tuple[X, ...] or list[X]
            kind = (get_args(kind) or (None,))[0]
    kind = _unannotated(kind)
    return get_args(kind) if get_origin(kind) is Literal else ()


def _unannotated(kind: Any) -> Any:
    while hasattr(kind, "__metadata__"):  # Annotated[X, Meta(...)] -> X
        kind = kind.__origin__
    return kind
