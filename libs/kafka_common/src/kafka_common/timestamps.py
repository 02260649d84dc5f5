"""UTC timestamps as text: RFC 3339 with a Z, microseconds; the one format every part writes and reads."""

from __future__ import annotations

from datetime import UTC, datetime


def format_utc(moment: datetime | None = None) -> str:
    """2026-01-01T12:00:04.123456Z (now when moment is None); a naive moment is taken as UTC."""
    moment = datetime.now(UTC) if moment is None else moment
    if moment.tzinfo is UTC:  # the usual case (a consumed event's time, now): no conversion, no search
        return moment.isoformat(timespec="microseconds")[:-6] + "Z"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_utc(text: str) -> datetime:
    """An RFC 3339 time ("Z" or an offset) as an aware datetime; raises ValueError.

    A time without a zone is refused: it would be read in this machine's zone.
    Not converted to UTC here: 9999-12-31T23:59:59-05:00 parses, converting it overflows.
    """
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone")
    return moment
