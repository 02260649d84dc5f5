"""Order status codes: the number on pizza-status, its text for customers, its short name.

The short name is stable and meant for machines: the webapp's pages use it as
their CSS class (status-oven, badge-delivered, ...), its script reads the same
table from the page. Negative codes are errors; 400 and errors are final.
"""

from __future__ import annotations

from dataclasses import dataclass

STATUS_RECEIVED = 100
STATUS_IN_OVEN = 200
STATUS_OUT_FOR_DELIVERY = 300
STATUS_DELIVERED = 400
STATUS_DELIVERY_UNRESOLVED = -100


@dataclass(frozen=True)
class Status:
    code: int
    text: str
    name: str


STATUSES: tuple[Status, ...] = (
    Status(STATUS_RECEIVED, "Order received and being prepared", "received"),
    Status(STATUS_IN_OVEN, "Your pizza is in the oven", "oven"),
    Status(STATUS_OUT_FOR_DELIVERY, "Your pizza is out for delivery", "delivery"),
    Status(STATUS_DELIVERED, "Your pizza was delivered", "delivered"),
    Status(STATUS_DELIVERY_UNRESOLVED, "Delivery could not resolve the order", "error"),
)
BY_CODE = {s.code: s for s in STATUSES}
# Name of each non-error code, for the webapp's script (errors are "error", anything else "unknown").
NAMES = {s.code: s.name for s in STATUSES if s.code >= 0}


def status_text(code: int) -> str:
    known = BY_CODE.get(code)
    if known is not None:
        return known.text
    return "Something went wrong with your order" if code < 0 else "Unknown status"


def status_name(code: object) -> str:
    """ "received", "oven", "delivery", "delivered"; "error" for a negative code; else "unknown"."""
    if not isinstance(code, int) or isinstance(code, bool):
        return "unknown"
    if code < 0:
        return "error"
    return NAMES.get(code, "unknown")


def is_final(code: int) -> bool:
    """Delivered, or an error: nothing follows."""
    return code >= STATUS_DELIVERED or code < 0
