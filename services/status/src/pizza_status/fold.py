"""The fold: every order as a small state machine, run over a batch of events in memory.

It exists so that what the read model believes of an order can be read, and tested, apart from
how it is stored: given a batch's events and what it keeps of the orders, it returns the rows to
write and what to count, and imports no database.

Anything with write access to the topics can put records on them, so the fold
trusts nothing it reads beyond the schema:
- Each order is a small state machine. Its status only moves forward
  (100 -> 200 -> 300 -> 400); delivered and errors (negative codes) are final.
  A status that arrives after a final one is recorded in the timeline but does
  not replace it: an error after "delivered" does not undo the delivery.
- Each event id is applied once per order, and the timeline holds each status
  once, so a duplicated record or an order cooked twice shows once, and
  replaying the log into an existing database changes nothing. The fold checks
  both against what it keeps of every order in memory; the timeline's
  one status per order is a constraint of its table too (a unique index). The
  event ids are not indexed: no query looks them up, and the index would add
  a fifth to a rebuild's time.
- An order's customer never changes: a second pizza-ordered for a known order
  id is ignored and counted, whoever it names.
- Times are ce_time capped at the moment the event is applied (its batch's start):
  a producer can date an event in the past (it then only expires sooner), never in
  the future, where it would sort first and escape the TTL purge.

A batch is folded in arrival order, over the orders it touches. Times are
ce_time's canonical text (Envelope.time_text), compared as text, which sorts as
the times do: no datetime is formatted per event. The fold reads no table: it
keeps what it needs of every order the tables hold (event ids, statuses, times)
in memory, bounded like the tables by the TTL purge, loaded from them on start,
and read back from them for the orders of a batch that was not written.
"""

from __future__ import annotations

import collections

import msgspec

from kafka_common.events import Event
from kafka_common.shop.events import PizzaOrdered, PizzaStatus
from kafka_common.shop.status import STATUS_DELIVERED, STATUS_RECEIVED, is_final
from kafka_common.timestamps import parse_utc as _parse

# The rows a batch writes, as the store's statements take them.
TimelineRow = tuple[str, int, str, str | None]  # order_id, status, at, event_id (None for 100)
# order_id, event_id, customer_id, username, pizza (JSON), status, ordered_at, updated_at
OrderRow = tuple[str, str | None, str, str, str, int, str, str | None]
StatusUpdate = tuple[int, str, str]  # status, updated_at, order_id


def advances(current: int, new: int) -> bool:
    """The state machine: does `new` replace `current` as an order's status?"""
    if is_final(current):
        return False
    return is_final(new) or new > current


def timeline_rank(status: int) -> int:
    """Tie-break for events at the same instant: the order they normally happen in."""
    return 10_000 if status < 0 else status


def fold_timeline(timeline: dict[int, str]) -> tuple[int, str]:
    """An order's (status, updated_at): its timeline {status: at}, in time order, through the state machine."""
    if len(timeline) == 1 and STATUS_RECEIVED in timeline:  # the usual case: the order before its statuses
        return STATUS_RECEIVED, timeline[STATUS_RECEIVED]
    status, updated = STATUS_RECEIVED, None
    for code, at in sorted(timeline.items(), key=lambda item: (item[1], timeline_rank(item[0]))):
        if updated is None and code == STATUS_RECEIVED:
            updated = at
        elif advances(status, code):
            status, updated = code, at
    # An order's pizza-ordered puts its 100 in the timeline before folding: a timeline is never empty.
    assert updated is not None, "an order without a timeline"
    return status, updated


class Order(msgspec.Struct, gc=False):
    """One order as the fold sees it: what the tables hold (kept in memory between batches), then
    each of the open batch's events folded in.

    Every live order is one of these, so the garbage collector must not walk them all again and
    again: neither they (gc=False: they reference no container that could lead back to them) nor
    what they hold (a dict of ints and strings, a tuple of strings) are tracked."""

    order_id: str
    event_id: str | None = None  # of its pizza-ordered; None while the order is not known
    status: int = STATUS_RECEIVED
    stored_status: int | None = None  # the status in the orders table before the batch
    ordered_at: str = ""
    updated_at: str | None = None  # set when the batch changes the status
    timeline: dict[int, str] = {}  # status -> at
    event_ids: tuple[str, ...] = ()  # of the status events in the timeline (a few)


class Outcome:
    """What a batch does besides its rows: what to count, observe and log, once it is committed
    (a batch that fails and is applied again must not count twice)."""

    def __init__(self) -> None:
        # reason -> events: duplicate, repeated, after_final, second_order
        self.ignored: collections.Counter[str] = collections.Counter()
        self.by_status: collections.Counter[int] = collections.Counter()  # orders per status: the change
        self.delivered_after: list[float] = []  # seconds from order to delivery
        self.second_orders: list[tuple[str, str]] = []  # (order_id, event_id)


class Changes:
    """A folded batch: the rows to write, the orders it touched (as they are once written) and its outcome."""

    __slots__ = ("timeline_rows", "new_orders", "status_updates", "touched", "outcome")

    def __init__(self) -> None:
        self.timeline_rows: list[TimelineRow] = []
        self.new_orders: list[OrderRow] = []
        self.status_updates: list[StatusUpdate] = []
        self.touched: dict[str, Order] = {}
        self.outcome = Outcome()


class Fold:
    """The orders the tables hold, as the state machine needs them, and the batches folded into them."""

    def __init__(self, orders: dict[str, Order], started: str) -> None:
        """orders: every order the tables hold; started: deliveries from then on are timed end to end."""
        self.orders = orders
        self._started = started

    def fold(self, staged: list[Event], now: str, cutoff: str) -> Changes:
        """Fold the batch's events, in arrival order, into the orders they touch: the changes to write.

        now and cutoff are the batch's start and the TTL's cutoff, as canonical text. The orders it
        keeps are changed as it goes: once the changes are written, say so (committed); if they are
        not, read the touched orders back from the tables (reloaded)."""
        orders = self.orders
        changes = Changes()
        touched, outcome, timeline_rows = changes.touched, changes.outcome, changes.timeline_rows
        made: dict[str, PizzaOrdered] = {}
        for event in staged:
            envelope, payload = event.envelope, event.payload
            # The time the model uses: ce_time, but never later than now (when the batch began), compared as
            # canonical text (which sorts as the times do). An event older than the TTL (replayed from the log,
            # its order expired) is left out.
            at = envelope.time_text
            if at > now:
                at = now
            elif at < cutoff:
                continue
            order_id = payload.order_id
            order = touched.get(order_id)
            if order is None:
                order = touched[order_id] = orders.get(order_id) or Order(order_id)
            if isinstance(payload, PizzaStatus):
                self._fold_status(order, envelope.id, payload.status, at, timeline_rows, outcome)
            elif order.event_id is not None:
                outcome.ignored["duplicate" if order.event_id == envelope.id else "second_order"] += 1
                if order.event_id != envelope.id:
                    outcome.second_orders.append((order_id, envelope.id))
            else:
                if STATUS_RECEIVED not in order.timeline:
                    order.timeline[STATUS_RECEIVED] = at
                    timeline_rows.append((order_id, STATUS_RECEIVED, at, None))
                # Status events may have been applied first (another topic): run them through the state machine.
                order.status, order.updated_at = fold_timeline(order.timeline)
                order.event_id, order.ordered_at = envelope.id, at
                made[order_id] = payload
        new_orders, status_updates = changes.new_orders, changes.status_updates
        for order in touched.values():
            ordered = made.get(order.order_id)
            if ordered is not None:
                new_orders.append(
                    (order.order_id, order.event_id, ordered.customer_id, ordered.username, ordered.pizza.to_json())
                    + (order.status, order.ordered_at, order.updated_at)
                )
                outcome.by_status[order.status] += 1
            elif order.updated_at is not None and order.stored_status is not None:
                status_updates.append((order.status, order.updated_at, order.order_id))
                outcome.by_status[order.stored_status] -= 1
                outcome.by_status[order.status] += 1
        return changes

    def _fold_status(
        self, order: Order, event_id: str, status: int, at: str, timeline_rows: list[TimelineRow], outcome: Outcome
    ) -> None:
        """One status event: into the timeline unless its id or its status is there already
        (checked in that order, as the tables' constraints would); then through the state machine."""
        if event_id in order.event_ids:
            outcome.ignored["duplicate"] += 1
            return
        if status in order.timeline:
            outcome.ignored["repeated"] += 1
            return
        order.timeline[status] = at
        order.event_ids += (event_id,)
        timeline_rows.append((order.order_id, status, at, event_id))
        if order.event_id is None:
            return  # its pizza-ordered has not arrived (yet): the timeline row waits for it
        if not advances(order.status, status):
            if is_final(order.status):
                outcome.ignored["after_final"] += 1
            return
        order.status, order.updated_at = status, at
        if status == STATUS_DELIVERED and at >= self._started:
            delivered_after = _parse(at) - _parse(order.ordered_at)
            outcome.delivered_after.append(max(0.0, delivered_after.total_seconds()))

    def committed(self, changes: Changes) -> None:
        """The changes are in the tables: what they touched is what the tables hold now."""
        for order in changes.touched.values():
            order.stored_status = order.status if order.event_id is not None else None
            order.updated_at = None
        self.orders.update(changes.touched)

    def reloaded(self, orders: dict[str, Order]) -> None:
        """These orders as the tables hold them (after a batch that was not written, or a purge): kept
        if the tables hold anything of them, forgotten if not."""
        for order_id, order in orders.items():
            if order.event_id is not None or order.timeline:
                self.orders[order_id] = order
            else:
                self.orders.pop(order_id, None)

    def expired(self, cutoff: str) -> list[str]:
        """The orders a TTL purge at this cutoff changes in the tables, to be read back (reloaded): those
        ordered before it, and those waiting for their pizza-ordered with a timeline row before it."""
        return [
            order_id
            for order_id, order in self.orders.items()
            if (order.ordered_at if order.event_id is not None else min(order.timeline.values(), default="")) < cutoff
        ]
