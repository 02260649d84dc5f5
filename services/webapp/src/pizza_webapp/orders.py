"""Placing and reading orders: the shop's business, without HTTP or the session.

Command side: an order is checked against the customer's open-order cap,
becomes a PizzaOrdered event and counts as placed only once Kafka
acknowledged it within PRODUCE_BOUND_S. Query side: lists and details come
from the status service; the caller passes what the customer's session
vouches for (the position of their latest order, and that order itself) so a
customer always sees what they just ordered.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from kafka_common import metrics
from kafka_common.logging import get_logger
from kafka_common.producer import Delivered, EventProducer, ProduceError
from kafka_common.shop.events import Pizza, PizzaOrdered
from kafka_common.shop.ids import is_order_id, new_order_id
from kafka_common.shop.status import STATUS_RECEIVED, is_final, status_text
from kafka_common.timestamps import format_utc, parse_utc
from pizza_webapp.status_client import StatusClient, StatusUnavailable

COMPONENT = "webapp"
# librdkafka gives up on an order after this long (message.timeout.ms) and reports it failed
# (it scans for expired messages about once a second); EventProducer waits PRODUCER_MARGIN_S
# more for that report. A produce that starts finishes, one way or the other, within both.
MESSAGE_TIMEOUT_S = 2.0
PRODUCER_MARGIN_S = 2.0
# Once the open-order cap is checked (StatusClient bounds that call itself), the customer hears
# about their order within this bound (503 otherwise): with the check, shorter than the common
# client timeouts (10-15 s). A produce starts only if it fits before the bound; the 2 s left
# over absorb the wait for a thread of the pool on a busy worker.
PRODUCE_BOUND_S = 6.0
# How long the webapp vouches for a just-acknowledged order that status has not applied yet;
# past this, status's answer (maybe "unknown": dropped after ORDER_TTL_HOURS) is the truth.
PENDING_GRACE_S = 300.0
DEFAULT_MAX_OPEN_ORDERS = 5

log = get_logger("webapp")


class OrderRefused(Exception):
    """The order was not placed; nothing was written. str(exc) is for the customer."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


KAFKA_UNAVAILABLE = (
    "the kitchen cannot take orders right now (Kafka is unavailable); nothing was ordered, please try again"
)


def parse_time(value: object) -> datetime | None:
    """A time from the status service or the session cookie; None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        return parse_utc(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class Placed:
    """An acknowledged order, as the session remembers it (read-your-writes)."""

    order_id: str
    wait_for: str  # partition:offset of its PizzaOrdered record
    order: dict
    ordered_at: str

    def as_dict(self) -> dict:
        return {
            "order_id": self.order_id,
            "wait_for": self.wait_for,
            "order": self.order,
            "ordered_at": self.ordered_at,
        }

    @staticmethod
    def from_dict(value) -> Placed | None:
        if not isinstance(value, dict):
            return None
        try:
            return Placed(
                str(value["order_id"]), str(value["wait_for"]), dict(value["order"]), str(value["ordered_at"])
            )
        except (KeyError, TypeError, ValueError):
            return None

    def pending_view(self) -> dict | None:
        """The order as "received" while status catches up; None once past the grace period."""
        placed = parse_time(self.ordered_at)
        if placed is None or (datetime.now(UTC) - placed).total_seconds() > PENDING_GRACE_S:
            return None
        text = status_text(STATUS_RECEIVED)
        return {
            "order_id": self.order_id,
            "status": STATUS_RECEIVED,
            "status_text": text,
            "order": self.order,
            "ordered_at": self.ordered_at,
            "updated_at": self.ordered_at,
            "events": [{"status": STATUS_RECEIVED, "status_text": text, "at": self.ordered_at}],
        }


@dataclass
class JustPlaced:
    """Orders this worker placed that status may not show yet, per customer (for the cap).

    Only touched between I/O waits, so under gevent no other request interleaves; the
    reservation made before producing is what keeps a customer's concurrent orders honest.
    """

    by_customer: dict[str, dict[str, float]] = field(default_factory=dict)

    def open_ids(self, customer_id: str) -> set[str]:
        mine = self.by_customer.get(customer_id, {})
        cutoff = time.monotonic() - PENDING_GRACE_S
        for order_id in [o for o, at in mine.items() if at < cutoff]:
            del mine[order_id]
        if not mine:
            self.by_customer.pop(customer_id, None)
        return set(mine)

    def add(self, customer_id: str, order_id: str) -> None:
        self.by_customer.setdefault(customer_id, {})[order_id] = time.monotonic()

    def discard(self, customer_id: str, order_id: str) -> None:
        mine = self.by_customer.get(customer_id)
        if mine is not None:
            mine.pop(order_id, None)
            if not mine:
                del self.by_customer[customer_id]


def is_open(order: dict) -> bool:
    code = order.get("status")
    return isinstance(code, int) and not is_final(code)


def summary(order: dict) -> dict:
    return {key: order.get(key) for key in ("order_id", "status", "status_text", "order", "ordered_at", "updated_at")}


def detail(order: dict) -> dict:
    events = order.get("events")
    return {
        **summary(order),
        "events": [
            {"status": e.get("status"), "status_text": e.get("status_text"), "at": e.get("at")}
            for e in (events if isinstance(events, list) else [])
            if isinstance(e, dict)
        ],
    }


def direct(fn: Callable[[], Delivered], timeout_s: float) -> Delivered:
    """Run the produce on the calling thread (unit tests, threaded servers): it bounds itself."""
    return fn()


class Orders:
    """The shop's orders for one worker: place (command) and read (query)."""

    def __init__(
        self,
        producer: Callable[[], EventProducer],
        status: StatusClient,
        max_open: int = DEFAULT_MAX_OPEN_ORDERS,
        offload: Callable[[Callable[[], Delivered], float], Delivered] = direct,
        produce_bound_s: float = PRODUCE_BOUND_S,
    ):
        self._producer = producer  # the worker's EventProducer, created on first use
        self.status = status
        self.max_open = max_open  # 0: no cap
        # Runs the blocking produce-and-wait off the event loop (gevent's thread pool in the server);
        # raises ProduceError if it has not finished within its timeout.
        self._offload = offload
        self.produce_bound_s = produce_bound_s
        self.just_placed = JustPlaced()

    # --- command side ------------------------------------------------------------------------

    def open_orders(self, customer_id: str) -> int:
        """Open = not delivered and not in error: status's read model plus what this worker vouches for."""
        local = self.just_placed.open_ids(customer_id)
        try:
            known = self.status.orders(customer_id)
        except StatusUnavailable:
            # Ordering must not need the query side: count what this worker knows.
            log.warning("open-order cap checked without the status service", customer_id=customer_id)
            return len(local)
        known_ids = {o.get("order_id") for o in known}
        for order_id in local & known_ids:  # status has it now: its status is the truth
            self.just_placed.discard(customer_id, order_id)
        return sum(1 for o in known if is_open(o)) + len(local - known_ids)

    def place(self, customer_id: str, username: str, pizza: Pizza) -> Placed:
        """Produce PizzaOrdered and wait for Kafka's acknowledgement; raises OrderRefused."""
        if self.max_open and self.open_orders(customer_id) >= self.max_open:
            log.info("order refused: too many open orders", customer_id=customer_id, limit=self.max_open)
            raise OrderRefused(
                429,
                f"you already have {self.max_open} pizzas on their way; "
                "please wait until one is delivered before ordering more",
            )
        event = PizzaOrdered(order_id=new_order_id(), customer_id=customer_id, username=username, pizza=pizza)
        self.just_placed.add(customer_id, event.order_id)  # reserve the slot before waiting
        deadline = time.monotonic() + self.produce_bound_s

        def produce() -> Delivered:
            # Queued behind other orders for too long: librdkafka's own bound would not end
            # before the deadline any more. Never start what the customer will hear failed.
            if time.monotonic() + MESSAGE_TIMEOUT_S + PRODUCER_MARGIN_S > deadline:
                raise ProduceError("no time left to produce within the bound")
            return self._producer().send(event)

        try:
            delivered = self._offload(produce, max(deadline - time.monotonic(), 0.0))
        except ProduceError as exc:
            self.just_placed.discard(customer_id, event.order_id)
            log.warning("order not placed: Kafka did not acknowledge it", order_id=event.order_id, error=str(exc))
            raise OrderRefused(503, KAFKA_UNAVAILABLE) from None
        except BaseException:
            self.just_placed.discard(customer_id, event.order_id)
            raise
        metrics.ORDERS_PLACED.labels(COMPONENT).inc()
        log.info(
            "order placed",
            order_id=event.order_id,
            customer_id=customer_id,
            topic=delivered.topic,
            partition=delivered.partition,
            offset=delivered.offset,
        )
        return Placed(event.order_id, f"{delivered.partition}:{delivered.offset}", pizza.as_dict(), format_utc())

    # --- query side --------------------------------------------------------------------------

    def list(self, customer_id: str, latest: Placed | None) -> list[dict]:
        """The customer's orders, newest first; raises StatusUnavailable."""
        found = self.status.orders(customer_id, latest.wait_for if latest else None)
        orders = [summary(o) for o in found if o.get("customer_id") == customer_id]
        pending = latest.pending_view() if latest else None
        if pending and not any(o["order_id"] == pending["order_id"] for o in orders):
            orders.insert(0, summary(pending))
        return orders

    def get(self, customer_id: str, order_id: str, latest: Placed | None) -> dict | None:
        """The order's detail, or None for an unknown order or another customer's; raises StatusUnavailable."""
        if not is_order_id(order_id):
            return None
        found = self.status.order(order_id, latest.wait_for if latest else None)
        if found is not None:
            return detail(found) if found.get("customer_id") == customer_id else None
        return self.pending(order_id, latest)

    @staticmethod
    def pending(order_id: str, latest: Placed | None) -> dict | None:
        if latest is None or latest.order_id != order_id:
            return None
        return latest.pending_view()
