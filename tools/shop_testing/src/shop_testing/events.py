"""Events as a handler receives them, without a broker: for plain unit tests of handlers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from kafka_common.events import Envelope, Event, Payload


def received(payload: Payload, source: str = "test") -> Event:
    """The Event a consume loop hands to a handler for this payload (a fresh envelope, now)."""
    envelope = Envelope(
        id=str(uuid.uuid4()),
        type=payload.TYPE,
        source=source,
        time=datetime.now(UTC),
        schema_version=payload.SCHEMA_VERSION,
        order_id=payload.order_id,
    )
    return Event(envelope, payload)
