"""Event schemas and their wire format: the one place that defines what is on each topic.

Values are UTF-8 JSON of the payload models below. The envelope travels in the
CloudEvents Kafka binding's headers (binary content mode): ce_specversion,
ce_id, ce_source, ce_type, ce_time, ce_subject (the order_id) plus the
extension ce_schemaversion, and content-type. The record key is the order_id.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from kafka_common import menu, topics

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
TYPE_PREFIX = "com.pizzashop."

OrderId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
CustomerId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{1,64}$")]
MAX_EXTRA_TOPPINGS = len(menu.EXTRA_TOPPINGS)
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


class Pizza(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sauce: Literal[menu.SAUCES]  # type: ignore[valid-type]
    cheese: Literal[menu.CHEESES]  # type: ignore[valid-type]
    main_topping: Literal[menu.MAIN_TOPPINGS]  # type: ignore[valid-type]
    extra_toppings: tuple[Literal[menu.EXTRA_TOPPINGS], ...] = Field(  # type: ignore[valid-type]
        default=(), max_length=MAX_EXTRA_TOPPINGS
    )

    @field_validator("extra_toppings")
    @classmethod
    def _no_repeats(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("extra toppings must not repeat")
        return value

    def seed(self) -> int:
        """The original's kitchen seed: last 4 hex digits of md5("sauce@cheese@extras@main")."""
        import hashlib

        recipe = f"{self.sauce}@{self.cheese}@{','.join(self.extra_toppings)}@{self.main_topping}"
        return int(hashlib.md5(recipe.encode()).hexdigest()[-4:], 16)


class PizzaOrdered(Payload):
    TOPIC = topics.PIZZA_ORDERED
    TYPE = TYPE_PREFIX + "pizza.ordered"

    customer_id: CustomerId
    username: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    pizza: Pizza


class PizzaAssembled(Payload):
    TOPIC = topics.PIZZA_ASSEMBLED
    TYPE = TYPE_PREFIX + "pizza.assembled"

    customer_id: CustomerId
    pizza: Pizza


class PizzaBaked(Payload):
    TOPIC = topics.PIZZA_BAKED
    TYPE = TYPE_PREFIX + "pizza.baked"

    # Carried so that delivery can deliver even without the early warning
    # (a restart, a rebalance, or pizza-baked overtaking pizza-ordered).
    customer_id: CustomerId


class PizzaStatus(Payload):
    TOPIC = topics.PIZZA_STATUS
    TYPE = TYPE_PREFIX + "pizza.status"

    status: int

    @field_validator("status")
    @classmethod
    def _known_status(cls, value: int) -> int:
        if value not in menu.STATUS_TEXT:
            raise ValueError(f"unknown status code {value}")
        return value

    @property
    def status_text(self) -> str:
        return menu.status_text(self.status)


PAYLOAD_BY_TOPIC: dict[str, type[Payload]] = {
    model.TOPIC: model for model in (PizzaOrdered, PizzaAssembled, PizzaBaked, PizzaStatus)
}


@dataclass(frozen=True)
class Envelope:
    id: str
    type: str
    source: str
    time: datetime
    schema_version: int
    order_id: str


@dataclass(frozen=True)
class Event:
    envelope: Envelope
    payload: Payload

    @property
    def order_id(self) -> str:
        return self.payload.order_id


def new_order_id() -> str:
    return uuid.uuid4().hex


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
    time = time or datetime.now(UTC)
    spec, src, ce_type, schema, content_type = _fixed_headers(payload.TYPE, source, payload.SCHEMA_VERSION)
    headers = [
        spec,
        ("ce_id", (event_id or str(uuid.uuid4())).encode()),
        src,
        ce_type,
        ("ce_time", time.isoformat(timespec="microseconds").replace("+00:00", "Z").encode()),
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
        time = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidEvent(f"ce_time {_prefix(raw)!r} is not an RFC 3339 time") from exc
    if time.tzinfo is None:
        raise InvalidEvent("ce_time has no time zone")
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
    h = {}
    for name, raw in headers or ():
        try:
            h[name] = raw.decode() if raw is not None else None
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
