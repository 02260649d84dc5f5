"""The read model: orders, their current status and timeline, projected from the topics.

Anything with write access to the topics can put records on them, so the model
trusts nothing it reads beyond the schema:
- Each order is a small state machine. Its status only moves forward
  (100 -> 200 -> 300 -> 400); delivered and errors (negative codes) are final.
  A status that arrives after a final one is recorded in the timeline but does
  not replace it: an error after "delivered" does not undo the delivery.
- Each event id is applied once per order, and the timeline holds each status
  once, so a duplicated record or an order cooked twice shows once, and
  replaying the log into an existing database changes nothing. The fold checks
  both against what the model keeps of every order in memory; the timeline's
  one status per order is a constraint of its table too (a unique index). The
  event ids are not indexed: no query looks them up, and the index would add
  a fifth to a rebuild's time.
- An order's customer never changes: a second pizza-ordered for a known order
  id is ignored and counted, whoever it names.
- Times are ce_time capped at the moment the event is applied (its batch's start):
  a producer can date an event in the past (it then only expires sooner), never in
  the future, where it would sort first and escape the TTL purge.

Events are applied a batch at a time (the projection loop's poll batch, or a
single event on its own): apply_ordered and apply_status only stage an event;
the batch is then folded through the state machine in Python, in arrival
order, over the orders it touches, and written with a few statements per kind
of change (rows inserted ROWS_PER_INSERT to a statement), in one transaction.
Times are ce_time's canonical text (Envelope.time_text), compared as text,
which sorts as the times do: no datetime is formatted per event. The fold
reads no table: the model keeps what it needs of every order the tables hold
(event ids, statuses, times) in memory, bounded like the tables by the TTL
purge, and loaded from them on start. A batch is all or nothing: if writing
it fails, nothing of it is applied (the orders it touched are read back from
the tables), and the projection loop applies its events again one per batch
to find the one at fault.
Metrics and log lines about a batch come out once it is committed.

While the projection replays the log (bulk_load), the tables have no secondary
index and no unique index: building them once, when it has caught up, costs
less than keeping them up to date row by row. Readers are not served before
(the service is not ready), and the fold in memory refuses what the unique
indexes would, so they are built without a conflict.

One SQLite connection behind a lock, held while a batch is written (milliseconds):
the projection thread writes, HTTP threads read, and every statement is
parameterised. Rebuilt from the log on every start, so it may live in memory
(the default) or in a scratch file.
"""

from __future__ import annotations

import collections
import functools
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from itertools import chain

import msgspec
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
SCHEMA_VERSION = 4
TABLES = """
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
-- The timeline: each status of an order once, at the time it first arrived, with the id of the
-- status event that brought it (none for 100, which the order itself brings). Rows of orders not
-- (yet) known wait here for their pizza-ordered. Event ids are unique per order (the fold sees to
-- it): all of an order's events are in one partition per topic, in the order they were written,
-- so no one can make a real event look like a duplicate by writing its id first, not even when
-- rebuilding.
CREATE TABLE IF NOT EXISTS order_events (
    order_id TEXT NOT NULL,
    status   INTEGER NOT NULL,
    at       TEXT NOT NULL,
    event_id TEXT
);
"""
# Built once a bulk load has caught up (see above); the unique one is the timeline's constraint.
INDEXES = """
CREATE INDEX IF NOT EXISTS orders_by_customer ON orders (customer_id, ordered_at);
CREATE INDEX IF NOT EXISTS orders_by_time ON orders (ordered_at);
CREATE UNIQUE INDEX IF NOT EXISTS order_events_status ON order_events (order_id, status);
"""
INDEX_NAMES = ("orders_by_customer", "orders_by_time", "order_events_status")
# What the fold needs of some orders (their ids as a JSON array), or of all of them.
SELECT_ORDERS = "SELECT order_id, event_id, status, ordered_at FROM orders"
SELECT_TIMELINES = "SELECT order_id, status, at, event_id FROM order_events"
OF_THESE = " WHERE order_id IN (SELECT value FROM json_each(?))"
# Plain INSERTs: the fold has already left out whatever the tables' constraints refuse, so a
# conflict here is a bug or a changed database, and fails the batch rather than hiding it.
INSERT_TIMELINE = "INSERT INTO order_events (order_id, status, at, event_id)"
INSERT_ORDER = "INSERT INTO orders (order_id, event_id, customer_id, username, pizza, status, ordered_at, updated_at)"
ROWS_PER_INSERT = 100  # rows per INSERT statement: per row, half the cost of one statement per row
UPDATE_STATUS = "UPDATE orders SET status = ?, updated_at = ? WHERE order_id = ?"
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


@functools.lru_cache(maxsize=8)
def _values(insert: str, width: int, rows: int) -> str:
    """INSERT ... VALUES with placeholders for `rows` rows of `width` values."""
    row = "(" + ", ".join("?" * width) + ")"
    return f"{insert} VALUES {', '.join([row] * rows)}"


def _insert(db: sqlite3.Connection, insert: str, rows: list[tuple]) -> None:
    """INSERT these rows (tuples of one width), ROWS_PER_INSERT of them per statement."""
    if not rows:
        return
    width, whole = len(rows[0]), len(rows) - len(rows) % ROWS_PER_INSERT
    if whole:
        db.executemany(
            _values(insert, width, ROWS_PER_INSERT),
            [tuple(chain.from_iterable(rows[i : i + ROWS_PER_INSERT])) for i in range(0, whole, ROWS_PER_INSERT)],
        )
    db.executemany(_values(insert, width, 1), rows[whole:])


class _Order(msgspec.Struct, gc=False):
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


class _Outcome:
    """What a batch does besides its rows: counters, gauges, histogram and log lines, published
    once it is committed (a batch that fails and is applied again must not count twice)."""

    def __init__(self) -> None:
        self.ignored: collections.Counter[str] = collections.Counter()
        self.by_status: collections.Counter[int] = collections.Counter()
        self.delivered_after: list[float] = []  # seconds from order to delivery
        self.second_orders: list[tuple[str, str]] = []  # (order_id, event_id)

    def publish(self) -> None:
        for reason, n in self.ignored.items():
            EVENTS_IGNORED.labels(COMPONENT, reason).inc(n)
        for status, delta in self.by_status.items():
            if delta:
                _orders_by_status(status).inc(delta)
        if self.delivered_after:
            end_to_end = metrics.ORDER_END_TO_END_SECONDS.labels(COMPONENT)
            for seconds in self.delivered_after:
                end_to_end.observe(seconds)
        for order_id, event_id in self.second_orders:
            log.warning(
                "second pizza-ordered for a known order ignored: an order's customer never changes",
                order_id=order_id,
                event_id=event_id,
            )


class ReadModel:
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
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        if path != ":memory:":
            # Rebuilt from the log on every start: a commit need not wait for the disk (WAL keeps it consistent).
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        if self._db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            self._db.executescript("DROP TABLE IF EXISTS orders; DROP TABLE IF EXISTS order_events;")
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self._db.executescript(TABLES)
        self._bulk_load = bulk_load
        if bulk_load:
            for name in INDEX_NAMES:
                self._db.execute(f"DROP INDEX IF EXISTS {name}")
        else:
            self._db.executescript(INDEXES)
        self._live = self._load()  # every order the tables hold, as the fold needs it
        self._lock = threading.Lock()
        self._staged: list[Event] | None = None  # the open batch's events
        self._batch_now: tuple[str, str] | None = None  # the open batch's (now, TTL cutoff) as text
        self._applied: dict[tuple[str, int], int] = {}
        self._applied_changed = threading.Condition()
        self._started = _iso(clock())
        self._last_purge = time.monotonic()

    # -- writes (projection thread) -----------------------------------------------------------
    def caught_up(self) -> None:
        """The log has been replayed: build the indexes a bulk load left out (before readers are served)."""
        if self._bulk_load:
            with self._lock:
                self._db.executescript(INDEXES)
            self._bulk_load = False

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
            try:
                with self._transaction():
                    outcome, touched = self._write(staged)
            except BaseException:
                # The fold changed the orders in memory as it went: read them back as the tables still hold them.
                self._reload({event.order_id for event in staged})
                raise
            for order in touched.values():
                order.stored_status = order.status if order.event_id is not None else None
                order.updated_at = None
            self._live.update(touched)
            outcome.publish()
        self._maybe_purge()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """Readers wait while it is open; a failure anywhere in it leaves the tables as they were."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                yield
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def _write(self, staged: list[Event]) -> tuple[_Outcome, dict[str, _Order]]:
        """Fold the batch's events, in arrival order, into the orders they touch; write the changes."""
        assert self._batch_now is not None, "a batch without its time"
        now, cutoff = self._batch_now
        live = self._live
        orders: dict[str, _Order] = {}
        outcome = _Outcome()
        timeline_rows: list[tuple[str, int, str, str | None]] = []
        new_orders: dict[str, PizzaOrdered] = {}
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
            order = orders.get(order_id)
            if order is None:
                order = orders[order_id] = live.get(order_id) or _Order(order_id)
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
                new_orders[order_id] = payload
        _insert(self._db, INSERT_TIMELINE, timeline_rows)
        inserts, updates = [], []
        for order in orders.values():
            made = new_orders.get(order.order_id)
            if made is not None:
                inserts.append(
                    (order.order_id, order.event_id, made.customer_id, made.username, made.pizza.to_json())
                    + (order.status, order.ordered_at, order.updated_at)
                )
                outcome.by_status[order.status] += 1
            elif order.updated_at is not None and order.stored_status is not None:
                updates.append((order.status, order.updated_at, order.order_id))
                outcome.by_status[order.stored_status] -= 1
                outcome.by_status[order.status] += 1
        _insert(self._db, INSERT_ORDER, inserts)
        self._db.executemany(UPDATE_STATUS, updates)
        return outcome, orders

    def _reload(self, order_ids: Iterable[str]) -> None:
        """Read these orders back from the tables into memory (dropping those the tables hold nothing of)."""
        with self._lock:
            loaded = self._load(set(order_ids))
        for order_id, order in loaded.items():
            if order.event_id is not None or order.timeline:
                self._live[order_id] = order
            else:
                self._live.pop(order_id, None)

    def _load(self, order_ids: set[str] | None = None) -> dict[str, _Order]:
        """These orders (all when None) as the tables hold them: an order they hold nothing of has an
        _Order of its own when asked for, none when loading all."""
        orders = {} if order_ids is None else {order_id: _Order(order_id) for order_id in order_ids}
        cursor = self._db.cursor()
        cursor.row_factory = None  # plain tuples: thousands of rows
        where, params = ("", ()) if order_ids is None else (OF_THESE, (json.dumps(list(order_ids)),))
        for order_id, event_id, status, ordered_at in cursor.execute(SELECT_ORDERS + where, params):
            order = orders.get(order_id) or orders.setdefault(order_id, _Order(order_id))
            order.event_id, order.status, order.stored_status, order.ordered_at = event_id, status, status, ordered_at
        for order_id, status, at, event_id in cursor.execute(SELECT_TIMELINES + where, params):
            order = orders.get(order_id) or orders.setdefault(order_id, _Order(order_id))
            order.timeline[status] = at
            if event_id is not None:
                order.event_ids += (event_id,)
        return orders

    def _fold_status(
        self, order: _Order, event_id: str, status: int, at: str, timeline_rows: list, outcome: _Outcome
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
        with self._transaction():
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
        # The same in memory: the orders gone, and the waiting timelines that lost rows read back.
        expired = [
            order_id
            for order_id, order in self._live.items()
            if (order.ordered_at if order.event_id is not None else min(order.timeline.values(), default="")) < cutoff
        ]
        self._reload(expired)
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
