"""Order and customer ids: 32 hex digits for an order, 1-64 hex digits for a customer."""

from __future__ import annotations

import re
import uuid
from typing import Annotated

from pydantic import StringConstraints

ORDER_ID_PATTERN = r"^[0-9a-f]{32}$"
CUSTOMER_ID_PATTERN = r"^[0-9a-f]{1,64}$"
ORDER_ID = re.compile(ORDER_ID_PATTERN)
CUSTOMER_ID = re.compile(CUSTOMER_ID_PATTERN)

OrderId = Annotated[str, StringConstraints(pattern=ORDER_ID_PATTERN)]
CustomerId = Annotated[str, StringConstraints(pattern=CUSTOMER_ID_PATTERN)]


def new_order_id() -> str:
    return uuid.uuid4().hex


def is_order_id(value: str) -> bool:
    return ORDER_ID.match(value) is not None


def is_customer_id(value: str) -> bool:
    return CUSTOMER_ID.match(value) is not None
