"""Order and customer ids: 32 hex digits for an order, 1-64 hex digits for a customer."""

from __future__ import annotations

import re
import uuid
from typing import Annotated

from msgspec import Meta

# \Z, not $: in Python's re, $ also matches before a trailing newline ("...\n" is no id).
ORDER_ID_PATTERN = r"^[0-9a-f]{32}\Z"
CUSTOMER_ID_PATTERN = r"^[0-9a-f]{1,64}\Z"
ORDER_ID = re.compile(ORDER_ID_PATTERN)
CUSTOMER_ID = re.compile(CUSTOMER_ID_PATTERN)

# Checked when an event is decoded (msgspec validates on decode, not on construction).
OrderId = Annotated[str, Meta(pattern=ORDER_ID_PATTERN)]
CustomerId = Annotated[str, Meta(pattern=CUSTOMER_ID_PATTERN)]


def new_order_id() -> str:
    return uuid.uuid4().hex


def is_order_id(value: str) -> bool:
    return ORDER_ID.match(value) is not None


def is_customer_id(value: str) -> bool:
    return CUSTOMER_ID.match(value) is not None
