"""The read model: orders, their current status and timeline, projected from the topics.

Anything with write access to the topics can put records on them, so the model
trusts nothing it reads beyond the schema:
- Each order is a small state machine. Its status only moves forward
  (100 -> 200 -> 300 -> 400); delivered and errors (negative codes) are final.
  A status that arrives after a final one is recorded in the timeline but does
  not replace it: an error after "delivered" does not undo the delivery.
- Each event id is applied once per order, and the timeline holds each status
  once, so a duplicated record or an order cooked twice shows once. Both are
  constraints of the tables in SQLite, so replaying the log into an existing
  database changes nothing.
- An order's customer never changes: a second pizza-ordered for a known order
  id is ignored and counted, whoever it names.
- Times are ce_time capped at the moment the event is applied: a producer can
  date an event in the past (it then only expires sooner), never in the future,
  where it would sort first and escape the TTL purge.

One SQLite connection behind a lock: the projection thread writes, HTTP
threads read, and every statement is parameterised. Rebuilt from the log on
every start, so it may live in memory (the default) or in a scratch file.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from prometheus_client import Counter, Gauge

from kafka_common import metrics
from kafka_common.events import Event
from kafka_common.logging import get_logger
from kafka_common.shop import topics
from kafka_common.shop.events import PizzaOrdered, PizzaStatus
from kafka_common.shop.status import STATUS_DELIVERED, STATUS_OUT_FOR_DELIVERY, STATUS_RECEIVED, is_final, status_text
from kafka_common.timestamps import format_utc as _iso
from kafka_common.timestamps import parse_utc as _parse

# A projection: a database of an older layout is dropped and rebuilt from the log.
SCHEMA_VERSION = 2
SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    order_id    TEXT PRIMARY KEY,
    event_id    TEXT NOT NULL,          -- of the pizza-ordered that made it: the only one applied
    customer_id TEXT NOT NULL,
    username    TEXT NOT NULL,
    pizza       TEXT NOT NULL,
    status      INTEGER NOT NULL,
    ordered_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_by_customer ON orders (customer_id, ordered_at);
CREATE INDEX IF NOT EXISTS orders_by_time ON orders (ordered_at);
-- The timeline: each status of an order once, at the time it first arrived, with the id of the
-- status event that brought it (none for 100, which the order itself brings). Rows of orders not
-- (yet) known wait here for their pizza-ordered. Event ids are unique per order: all of an
-- order's events are in one partition per topic, in the order they were written, so no one can
-- make a real event look like a duplicate by writing its id first, not even when rebuilding.
CREATE TABLE IF NOT EXISTS order_events (
    order_id TEXT NOT NULL,
    status   INTEGER NOT NULL,
    at       TEXT NOT NULL,
    event_id TEXT,
    PRIMARY KEY (order_id, status),
    UNIQUE (order_id, event_id)
) WITHOUT ROWID;
"""
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
    """The gauge's child for one status, looked up once (a label look-up per event is a rebuild's cost)."""
    return metrics.ORDERS_BY_STATUS.labels(COMPONENT, str(status))


def advances(current: int, new: int) -> bool:
    """The state machine: does `new` replace `current` as an order's status?"""
    if is_final(current):
        return False
    return is_final(new) or new > current


def timeline_rank(status: int) -> int:
    """Tie-break for events at the same instant: the order they normally happen in."""
    return 10_000 if status < 0 else status


class ReadModel:
    def __init__(self, path: str = ":memory:", ttl_hours: float = 2.0, clock=lambda: datetime.now(UTC)):
        self.ttl = timedelta(hours=ttl_hours)
        self._clock = clock
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._durable = path != ":memory:"
        if self._durable:
            self._db.execute("PRAGMA journal_mode=WAL")
        if self._db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            self._db.executescript("DROP TABLE IF EXISTS orders; DROP TABLE IF EXISTS order_events;")
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()
        self._in_batch = False
        self._applied: dict[tuple[str, int], int] = {}
        self._applied_changed = threading.Condition()
        self._started = clock()
        self._last_purge = time.monotonic()

    # -- writes (projection thread) -----------------------------------------------------------
    @contextmanager
    def batch(self) -> Iterator[None]:
        """Apply the events of one poll batch in one SQLite transaction (the projection loop calls
        this): one commit per batch instead of one per event is most of a rebuild's speed. Readers
        wait for the batch (milliseconds); each event within it is still all or nothing (_writing)."""
        with self._lock:
            self._db.execute("BEGIN")
            self._in_batch = True
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")
            finally:
                self._in_batch = False

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Each event all or nothing: a crash or an error never leaves half an event applied (its id
        recorded but not its effect, which a replay would then skip as a duplicate). Within a batch
        a savepoint per event; alone, a transaction of its own in a database file (an in-memory
        database dies with the process, so it is spared the cost)."""
        if self._in_batch:  # the projection thread, holding the lock
            self._db.execute("SAVEPOINT event")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK TO event")
                self._db.execute("RELEASE event")
                raise
            self._db.execute("RELEASE event")
            return
        with self._lock, self._db:
            if self._durable:
                self._db.execute("BEGIN")
            yield

    def apply_ordered(self, event: Event[PizzaOrdered]) -> None:
        order = event.payload
        at, now = self._trusted_time(event)
        if at < now - self.ttl:
            return
        with self._writing():
            known = self._db.execute("SELECT event_id FROM orders WHERE order_id = ?", (order.order_id,)).fetchone()
            if known is not None:
                if known["event_id"] == event.envelope.id:
                    EVENTS_IGNORED.labels(COMPONENT, "duplicate").inc()
                else:
                    EVENTS_IGNORED.labels(COMPONENT, "second_order").inc()
                    log.warning(
                        "second pizza-ordered for a known order ignored: an order's customer never changes",
                        order_id=order.order_id,
                        event_id=event.envelope.id,
                    )
                return
            at_iso = _iso(at)
            self._db.execute(
                "INSERT OR IGNORE INTO order_events (order_id, status, at) VALUES (?, ?, ?)",
                (order.order_id, STATUS_RECEIVED, at_iso),
            )
            # Status events may have been applied first (another topic): run them through the state machine.
            status, updated = self._fold_timeline(order.order_id)
            self._db.execute(
                "INSERT INTO orders (order_id, event_id, customer_id, username, pizza, status, ordered_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    order.order_id,
                    event.envelope.id,
                    order.customer_id,
                    order.username,
                    order.pizza.to_json(),
                    status,
                    at_iso,
                    updated,
                ),
            )
        _orders_by_status(status).inc()
        self._maybe_purge()

    def apply_status(self, event: Event[PizzaStatus]) -> None:
        change = event.payload
        at, now = self._trusted_time(event)
        if at < now - self.ttl:
            return
        with self._writing():
            at_iso = _iso(at)
            if not self._record(event.envelope.id, change.order_id, change.status, at_iso):
                return
            row = self._db.execute(
                "SELECT status, ordered_at FROM orders WHERE order_id = ?", (change.order_id,)
            ).fetchone()
            if row is None:
                return  # its pizza-ordered has not arrived (yet): the timeline row waits for it
            if not advances(row["status"], change.status):
                if is_final(row["status"]):
                    EVENTS_IGNORED.labels(COMPONENT, "after_final").inc()
                return
            self._db.execute(
                "UPDATE orders SET status = ?, updated_at = ? WHERE order_id = ?",
                (change.status, at_iso, change.order_id),
            )
        _orders_by_status(row["status"]).dec()
        _orders_by_status(change.status).inc()
        if change.status == STATUS_DELIVERED and at >= self._started:
            elapsed = (at - _parse(row["ordered_at"])).total_seconds()
            metrics.ORDER_END_TO_END_SECONDS.labels(COMPONENT).observe(max(0.0, elapsed))
        self._maybe_purge()

    def _trusted_time(self, event: Event) -> tuple[datetime, datetime]:
        """(the event's time as the model uses it, now): ce_time, but never later than now."""
        now = self._clock()
        return min(event.envelope.time, now), now

    def _record(self, event_id: str, order_id: str, status: int, at: str) -> bool:
        """Add a status event to its order's timeline; False (and counted) if its id was applied
        before or the timeline already has this status (an order cooked twice, say)."""
        try:
            if self._db.execute(
                "INSERT INTO order_events (order_id, status, at, event_id) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (order_id, event_id) DO NOTHING",
                (order_id, status, at, event_id),
            ).rowcount:
                return True
            EVENTS_IGNORED.labels(COMPONENT, "duplicate").inc()
        except sqlite3.IntegrityError:  # PRIMARY KEY (order_id, status)
            EVENTS_IGNORED.labels(COMPONENT, "repeated").inc()
        return False

    def _fold_timeline(self, order_id: str) -> tuple[int, str]:
        """Replay an order's timeline (in time order) through the state machine."""
        rows = self._db.execute("SELECT status, at FROM order_events WHERE order_id = ?", (order_id,)).fetchall()
        status, updated = STATUS_RECEIVED, None
        for row in sorted(rows, key=lambda r: (r["at"], timeline_rank(r["status"]))):
            if updated is None and row["status"] == STATUS_RECEIVED:
                updated = row["at"]
            elif advances(status, row["status"]):
                status, updated = row["status"], row["at"]
        # apply_ordered records the order's 100 before folding: a timeline is never empty.
        assert updated is not None, f"order {order_id} has no timeline"
        return status, updated

    def _maybe_purge(self) -> None:
        if time.monotonic() - self._last_purge >= PURGE_EVERY_S:
            self.purge()

    def purge(self) -> int:
        """Drop orders and their timelines older than ORDER_TTL_HOURS."""
        self._last_purge = time.monotonic()
        cutoff = _iso(self._clock() - self.ttl)
        with self._writing():
            gone = self._db.execute(
                "SELECT status, count(*) AS n FROM orders WHERE ordered_at < ? GROUP BY status", (cutoff,)
            ).fetchall()
            self._db.execute(
                "DELETE FROM order_events WHERE order_id IN (SELECT order_id FROM orders WHERE ordered_at < ?)",
                (cutoff,),
            )
            self._db.execute("DELETE FROM orders WHERE ordered_at < ?", (cutoff,))
            # Timeline rows still waiting for an order that never came.
            self._db.execute(
                "DELETE FROM order_events WHERE at < ? AND order_id NOT IN (SELECT order_id FROM orders)", (cutoff,)
            )
        for row in gone:
            _orders_by_status(row["status"]).dec(row["n"])
        return sum(row["n"] for row in gone)

    def oldest_open_age_seconds(self) -> float:
        """How long the oldest order still short of delivered (100, 200, 300) has waited."""
        with self._lock:
            row = self._db.execute(
                "SELECT min(ordered_at) AS oldest FROM orders WHERE status BETWEEN ? AND ?",
                (STATUS_RECEIVED, STATUS_OUT_FOR_DELIVERY),
            ).fetchone()
        if row["oldest"] is None:
            return 0.0
        return max(0.0, (self._clock() - _parse(row["oldest"])).total_seconds())

    # -- read-your-writes -------------------------------------------------------------------------
    def applied(self, topic: str, partition: int, offset: int) -> None:
        with self._applied_changed:
            self._applied[(topic, partition)] = offset
            self._applied_changed.notify_all()

    def wait_for(self, partition: int, offset: int, timeout: float) -> bool:
        """Block until the pizza-ordered record at partition:offset is applied (or timeout)."""
        key = (topics.PIZZA_ORDERED, partition)
        with self._applied_changed:
            return self._applied_changed.wait_for(lambda: self._applied.get(key, -1) >= offset, timeout)

    # -- queries (HTTP threads) -------------------------------------------------------------------
    def orders_of(self, customer_id: str, limit: int = 100) -> list[dict]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM orders WHERE customer_id = ? ORDER BY ordered_at DESC LIMIT ?", (customer_id, limit)
            ).fetchall()
        return [self._order(row) for row in rows]

    def order(self, order_id: str) -> dict | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM orders WHERE order_id = ?", (order_id,)).fetchone()
            if row is None:
                return None
            timeline = self._db.execute(
                "SELECT status, at FROM order_events WHERE order_id = ?", (order_id,)
            ).fetchall()
        order = self._order(row)
        order["events"] = [
            {"status": e["status"], "status_text": status_text(e["status"]), "at": e["at"]}
            for e in sorted(timeline, key=lambda e: (e["at"], timeline_rank(e["status"])))
        ]
        return order

    @staticmethod
    def _order(row: sqlite3.Row) -> dict:
        return {
            "order_id": row["order_id"],
            "customer_id": row["customer_id"],
            "username": row["username"],
            "status": row["status"],
            "status_text": status_text(row["status"]),
            "order": json.loads(row["pizza"]),
            "ordered_at": row["ordered_at"],
            "updated_at": row["updated_at"],
        }
