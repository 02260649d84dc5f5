"""The read model: orders, their current status and timeline, projected from the topics.

ReadModel coordinates three parts, each in a module of its own:
- fold: every order as a state machine, in memory; what a batch of events changes.
- store: the tables in SQLite, written a batch per transaction.
- queries: what HTTP threads read, and read-your-writes.

Events are applied a batch at a time (the projection loop's poll batch, or a
single event on its own): apply_ordered and apply_status only stage an event;
the batch is then folded through the state machine in Python, in arrival
order, over the orders it touches, and written with a few statements per kind
of change, in one transaction. A batch is all or nothing: if writing
it fails, nothing of it is applied (the orders it touched are read back from
the tables), and the projection loop applies its events again one per batch
to find the one at fault.
Metrics and log lines about a batch come out once it is committed.
"""

from __future__ import annotations

import functools
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from prometheus_client import Counter, Gauge

from kafka_common import metrics
from kafka_common.events import Event
from kafka_common.logging import get_logger
from kafka_common.shop.events import PizzaOrdered, PizzaStatus
from kafka_common.timestamps import format_utc as _iso
from pizza_status.fold import Fold, Outcome
from pizza_status.queries import AppliedPositions, Queries
from pizza_status.store import Store

PURGE_EVERY_S = 60.0
COMPONENT = "status"

EVENTS_IGNORED = Counter(
    "pizza_read_model_events_ignored_total",
    "Events the read model did not apply: reason=duplicate (event id seen before), repeated (status already "
    "in the timeline), after_final (recorded, but the order was already delivered or failed), "
    "second_order (a pizza-ordered for a known order id)",
    ["component", "reason"],
)

log = get_logger(__name__)


@functools.lru_cache(maxsize=64)
def _orders_by_status(status: int) -> Gauge:
    """The gauge's child for one status, looked up once."""
    return metrics.ORDERS_BY_STATUS.labels(COMPONENT, str(status))


def _publish(outcome: Outcome) -> None:
    """A committed batch's counters, gauges, histogram and log lines."""
    for reason, n in outcome.ignored.items():
        EVENTS_IGNORED.labels(COMPONENT, reason).inc(n)
    for status, delta in outcome.by_status.items():
        if delta:
            _orders_by_status(status).inc(delta)
    if outcome.delivered_after:
        end_to_end = metrics.ORDER_END_TO_END_SECONDS.labels(COMPONENT)
        for seconds in outcome.delivered_after:
            end_to_end.observe(seconds)
    for order_id, event_id in outcome.second_orders:
        log.warning(
            "second pizza-ordered for a known order ignored: an order's customer never changes",
            order_id=order_id,
            event_id=event_id,
        )


class ReadModel:
    """What handlers.py and query_api.py use: events in (a batch at a time), answers out. It owns the
    order of things: fold, write, then keep and publish only what was committed; purge on the side."""

    def __init__(
        self,
        path: str = ":memory:",
        ttl_hours: float = 2.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        *,
        bulk_load: bool = False,
    ):
        """bulk_load: the log is about to be replayed into it; call caught_up() when it has been."""
        self.ttl = timedelta(hours=ttl_hours)
        self._clock = clock
        self._store = Store(path, bulk_load=bulk_load)
        self._fold = Fold(self._store.load(), started=_iso(clock()))  # every order the tables hold
        self._staged: list[Event] | None = None  # the open batch's events
        self._batch_now: tuple[str, str] | None = None  # the open batch's (now, TTL cutoff) as text
        self._positions = AppliedPositions()
        self._queries = Queries(self._store, clock)
        self._last_purge = time.monotonic()

    # -- writes (projection thread) -----------------------------------------------------------
    def caught_up(self) -> None:
        """The log has been replayed: build the indexes a bulk load left out (before readers are served)."""
        self._store.build_indexes()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Apply the events handed over inside it (the projection loop's poll batch) as one: one
        fold, a few statements and one transaction, written when the block exits. If the block
        raises, none of them is applied; if writing fails, none is and the error is raised."""
        if self._staged is not None:
            raise RuntimeError("read model batches do not nest")
        self._staged, self._batch_now = [], self._now()
        try:
            yield
            staged, self._staged = self._staged, None
            self._apply(staged)
        finally:
            self._staged = self._batch_now = None

    def apply_ordered(self, event: Event[PizzaOrdered]) -> None:
        self._stage(event)

    def apply_status(self, event: Event[PizzaStatus]) -> None:
        self._stage(event)

    def _now(self) -> tuple[str, str]:
        """(now, the TTL's cutoff) as canonical text."""
        now = self._clock()
        return _iso(now), _iso(now - self.ttl)

    def _stage(self, event: Event) -> None:
        if self._staged is not None:
            self._staged.append(event)
        else:
            self._batch_now = self._now()
            try:
                self._apply([event])  # on its own: a batch of one
            finally:
                self._batch_now = None

    def _apply(self, staged: list[Event]) -> None:
        if staged:
            assert self._batch_now is not None, "a batch without its time"
            try:
                changes = self._fold.fold(staged, *self._batch_now)
                with self._store.transaction():
                    self._store.write(changes.timeline_rows, changes.new_orders, changes.status_updates)
            except BaseException:
                # The fold changed the orders in memory as it went: read them back as the tables still hold them.
                self._fold.reloaded(self._store.load({event.order_id for event in staged}))
                raise
            self._fold.committed(changes)
            _publish(changes.outcome)
        self._maybe_purge()

    def _maybe_purge(self) -> None:
        """After a batch is committed: a failure here must not look like the batch's (it would be applied again)."""
        if time.monotonic() - self._last_purge >= PURGE_EVERY_S:
            try:
                self.purge()
            except sqlite3.Error as exc:
                log.error("purging expired orders failed: trying again in a minute", error=str(exc))

    def purge(self) -> int:
        """Drop orders and their timelines older than ORDER_TTL_HOURS."""
        self._last_purge = time.monotonic()
        cutoff = _iso(self._clock() - self.ttl)
        gone = self._store.purge(cutoff)
        # The same in memory: the orders gone, and the waiting timelines that lost rows read back.
        self._fold.reloaded(self._store.load(set(self._fold.expired(cutoff))))
        for status, n in gone:
            _orders_by_status(status).dec(n)
        return sum(n for _, n in gone)

    # -- read-your-writes -------------------------------------------------------------------------
    def applied(self, topic: str, partition: int, offset: int) -> None:
        self._positions.applied(topic, partition, offset)

    def wait_for(self, partition: int, offset: int, timeout: float) -> bool:
        """Block until the pizza-ordered record at partition:offset is applied (or timeout)."""
        return self._positions.wait_for(partition, offset, timeout)

    # -- queries (HTTP threads) -------------------------------------------------------------------
    def orders_of(self, customer_id: str, limit: int = 100) -> list[dict]:
        return self._queries.orders_of(customer_id, limit)

    def order(self, order_id: str) -> dict | None:
        return self._queries.order(order_id)

    def oldest_open_age_seconds(self) -> float:
        """How long the oldest order still short of delivered (100, 200, 300) has waited."""
        return self._queries.oldest_open_age_seconds()
