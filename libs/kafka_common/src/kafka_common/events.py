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
import os
import re
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
# The headers in the order encode() writes them: what almost every record carries.
ENCODED_HEADERS = (
    "ce_specversion",
    "ce_id",
    "ce_source",
    "ce_type",
    "ce_time",
    "ce_subject",
    "ce_schemaversion",
    "content-type",
)
# ce_time as format_utc() writes it: its text is its canonical UTC form, and sorts as the times do.
CANONICAL_TIME = re.compile(rb"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")
EPOCH_TEXT = format_utc(EPOCH)


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
    time: datetime  # in UTC
    schema_version: int
    order_id: str
    # The same instant as format_utc writes it: text that sorts as the times do, which a
    # projection stores and compares without formatting a datetime per event. Derived from
    # time when not given.
    time_text: str = ""

    def __post_init__(self) -> None:
        if not self.time_text:
            msgspec.structs.force_setattr(self, "time_text", format_utc(self.time))


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


def new_event_id() -> str:
    """A random (version 4) UUID as text: 122 bits of os.urandom, formatted directly. The same as
    str(uuid.uuid4()), which builds a UUID object first and costs four times as much per event."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_UUID_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


# The variant nibble's top two bits are 10 (RFC 9562): its other two bits stay random.
_UUID_VARIANT = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}


def encode(
    payload: Payload, source: str, event_id: str | None = None, time: datetime | None = None
) -> tuple[str, bytes, list[tuple[str, bytes]]]:
    """Turn a payload into (key, value, headers) for Producer.produce()."""
    spec, src, ce_type, schema, content_type = _fixed_headers(payload.TYPE, source, payload.SCHEMA_VERSION)
    order_id = payload.order_id
    headers = [
        spec,
        ("ce_id", (event_id or new_event_id()).encode()),
        src,
        ce_type,
        ("ce_time", format_utc(time).encode()),
        ("ce_subject", order_id.encode()),
        schema,
        content_type,
    ]
    return order_id, _json.encode(payload), headers


class Decoder:
    """Decodes the records of one payload model: decoder(key, value, headers) -> Event, or raises InvalidEvent.

    A record exactly as encode() writes it (its eight headers in encode()'s order, this model's
    type and schema version, a canonical ce_time) is taken on a fast path that compares the
    fixed headers at once and reads the others by position; anything else, valid or not, goes
    the general way, which says what is wrong. The fast path accepts nothing the general one
    refuses, and builds the same event (a test holds it to that).
    """

    def __init__(self, model: type[Payload]) -> None:
        self.model = model
        self._json = msgspec.json.Decoder(model)
        self._type = model.TYPE.encode()
        self._schema_version = str(model.SCHEMA_VERSION).encode()
        self._fixed = (_SPEC_VERSION, self._type, self._schema_version)

    def __call__(self, key: bytes | None, value: bytes | None, headers: Any) -> Event:
        return self._fast(key, value, headers) or self._general(key, value, headers)

    def _fast(self, key: bytes | None, value: bytes | None, headers: Any) -> Event | None:
        if value is None or headers is None or len(headers) != 8:
            return None
        (n0, spec), (n1, ce_id), (n2, source), (n3, ce_type), (n4, ce_time), (n5, _), (n6, version), (n7, _) = headers
        if (n0, n1, n2, n3, n4, n5, n6, n7) != ENCODED_HEADERS or (spec, ce_type, version) != self._fixed:
            return None
        if not (ce_id and source and ce_time):
            return None
        time = _canonical_event_time(ce_time)
        if time is None:
            return None
        try:
            payload = self._json.decode(value)
            envelope = Envelope(
                id=ce_id.decode(),
                type=self.model.TYPE,
                source=source.decode(),
                time=time[0],
                schema_version=self.model.SCHEMA_VERSION,
                order_id=payload.order_id,
                time_text=time[1],
            )
        except (msgspec.MsgspecError, UnicodeDecodeError):
            return None
        if key is not None and key != payload.order_id.encode():
            return None
        return Event(envelope, payload)

    def _general(self, key: bytes | None, value: bytes | None, headers: Any) -> Event:
        model = self.model
        spec, ce_id, source, ce_type, ce_time, raw_version = _by_name(headers)
        if not (spec and ce_id and source and ce_type and ce_time):
            h = dict(headers) if headers else {}
            raise InvalidEvent("missing CloudEvents headers: " + ", ".join(n for n in REQUIRED_HEADERS if not h.get(n)))
        if spec != _SPEC_VERSION:
            raise InvalidEvent(f"unsupported ce_specversion {_shown(spec)!r}")
        if ce_type != self._type:
            raise InvalidEvent(f"ce_type {_shown(ce_type)!r} is not the expected {model.TYPE}")
        version = (
            model.SCHEMA_VERSION if not raw_version or raw_version == self._schema_version else _version(raw_version)
        )
        if version > model.SCHEMA_VERSION:
            raise InvalidEvent(
                f"schema version {version} is newer than this service understands ({model.SCHEMA_VERSION})"
            )
        time, time_text = _event_time(_text("ce_time", ce_time))
        if value is None:
            raise InvalidEvent("record has no value")
        try:
            payload = self._json.decode(value)
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
            time_text=time_text,
        )
        return Event(envelope, payload)


_DECODERS: dict[type[Payload], Decoder] = {}
_SPEC_VERSION = SPEC_VERSION.encode()


def decoder(model: type[Payload]) -> Decoder:
    """The Decoder of this model (one per process)."""
    return _DECODERS.get(model) or _DECODERS.setdefault(model, Decoder(model))


def decode(model: type[Payload], key: bytes | None, value: bytes | None, headers: Any) -> Event:
    """Validate a consumed record against the schema expected on its topic; raises InvalidEvent."""
    return decoder(model)(key, value, headers)


_Headers = tuple[bytes | None, bytes | None, bytes | None, bytes | None, bytes | None, bytes | None]


def _by_name(headers: Any) -> _Headers:
    """The envelope headers in any order; of a name given twice the last counts, and a header
    without a value counts as missing."""
    h: dict[str, bytes | None] = dict(headers) if headers else {}
    return (
        h.get("ce_specversion"),
        h.get("ce_id"),
        h.get("ce_source"),
        h.get("ce_type"),
        h.get("ce_time"),
        h.get("ce_schemaversion"),
    )


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


_latest_allowed = EPOCH_TEXT  # now + MAX_FUTURE as text, as of when it was last needed


def _canonical_event_time(raw: bytes) -> tuple[datetime, str] | None:
    """_event_time() of a ce_time in the canonical form (format_utc's, as every event this project
    writes carries): its text is already the canonical text, and the window is checked on the text
    (it sorts as the times do), so no clock read or conversion per record. None for any other
    text, or one this cannot accept: _event_time() then decides, and gives the reason."""
    global _latest_allowed
    if CANONICAL_TIME.fullmatch(raw) is None:
        return None
    text = raw.decode("ascii")
    try:
        time = datetime.fromisoformat(text)  # checks the ranges (no 30 February); Z is UTC
    except ValueError:
        return None
    if text < EPOCH_TEXT:
        return None
    # The bound grows with the clock: read the clock only when a time passes it (a clock stepped
    # back leaves it ahead by as much until then, well inside the day's leeway).
    if text > _latest_allowed:
        _latest_allowed = format_utc(datetime.now(UTC) + MAX_FUTURE)
        if text > _latest_allowed:
            return None
    return time, text


def _event_time(raw: str) -> tuple[datetime, str]:
    """ce_time in UTC, and as canonical text; a time outside [EPOCH, now + MAX_FUTURE] is not a real event's time.

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
    return utc, format_utc(utc)


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
