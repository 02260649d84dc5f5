"""UTC timestamps as text: RFC 3339 with a Z, microseconds; the one format every part writes and reads."""

from __future__ import annotations

import time
from datetime import UTC, datetime

_second_text: tuple[int, str] = (-1, "")  # the last second formatted by now_utc_text, and its text


def now_utc_text() -> str:
    """format_utc() of now, for a record's time: the second's text is formatted once per second,
    about a quarter of the cost of building and formatting a datetime for every record."""
    global _second_text
    second, nanos = divmod(time.time_ns(), 1_000_000_000)
    cached_second, text = _second_text
    if second != cached_second:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second_text = (second, text)
    return f"{text}.{nanos // 1000:06d}Z"


def format_utc(moment: datetime | None = None) -> str:
    """2026-01-01T12:00:04.123456Z (now when moment is None); a naive moment is taken as UTC."""
    if moment is None:
        return now_utc_text()
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
