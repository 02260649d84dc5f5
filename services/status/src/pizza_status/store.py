"""The read model's tables in SQLite: schema, batched writes, the TTL purge, and what the fold loads.

It exists so that the layout and how it is written fast live in one place, apart from what the
rows mean (the fold) and who asks for them (the queries).

One SQLite connection behind a lock, held while a batch is written (milliseconds):
the projection thread writes, HTTP threads read, and every statement is
parameterised. Rebuilt from the log on every start, so it may live in memory
(the default) or in a scratch file.

A batch is written with a few statements per kind of change (rows inserted
ROWS_PER_INSERT to a statement), in one transaction.

While the projection replays the log (bulk_load), the tables have no secondary
index and no unique index: building them once, when it has caught up, costs
less than keeping them up to date row by row. Readers are not served before
(the service is not ready), and the fold in memory refuses what the unique
indexes would, so they are built without a conflict.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from itertools import chain

from pizza_status.fold import Order, OrderRow, StatusUpdate, TimelineRow

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
# The event ids have none: no query looks them up, and the fold refuses a repeated one itself.
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


@functools.lru_cache(maxsize=8)
def _values(insert: str, width: int, rows: int) -> str:
    """INSERT ... VALUES with placeholders for `rows` rows of `width` values."""
    row = "(" + ", ".join("?" * width) + ")"
    return f"{insert} VALUES {', '.join([row] * rows)}"


def _insert(db: sqlite3.Connection, insert: str, rows: Sequence[tuple[object, ...]]) -> None:
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


class Store:
    """The tables behind one connection and its lock."""

    def __init__(self, path: str, *, bulk_load: bool) -> None:
        """bulk_load: the log is about to be replayed into it; call build_indexes() when it has been."""
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.row_factory = sqlite3.Row  # the queries take columns by name
        if path != ":memory:":
            # Rebuilt from the log on every start: a commit need not wait for the disk (WAL keeps it consistent).
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
        if self.db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            self.db.executescript("DROP TABLE IF EXISTS orders; DROP TABLE IF EXISTS order_events;")
            self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self.db.executescript(TABLES)
        self._bulk_load = bulk_load
        if bulk_load:
            for name in INDEX_NAMES:
                self.db.execute(f"DROP INDEX IF EXISTS {name}")
        else:
            self.db.executescript(INDEXES)
        self._lock = threading.Lock()

    def build_indexes(self) -> None:
        """The indexes a bulk load left out, if it did (before readers are served)."""
        if self._bulk_load:
            with self._lock:
                self.db.executescript(INDEXES)
            self._bulk_load = False

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """The connection for a query, while no batch is being written."""
        with self._lock:
            yield self.db

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Readers wait while it is open; a failure anywhere in it leaves the tables as they were."""
        with self._lock:
            self.db.execute("BEGIN")
            try:
                yield
                self.db.execute("COMMIT")
            except BaseException:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise

    def write(
        self, timeline_rows: list[TimelineRow], new_orders: list[OrderRow], status_updates: list[StatusUpdate]
    ) -> None:
        """A folded batch's rows, inside transaction()."""
        _insert(self.db, INSERT_TIMELINE, timeline_rows)
        _insert(self.db, INSERT_ORDER, new_orders)
        self.db.executemany(UPDATE_STATUS, status_updates)

    def load(self, order_ids: Collection[str] | None = None) -> dict[str, Order]:
        """These orders (all when None) as the tables hold them, as the fold needs them: an order they
        hold nothing of has an Order of its own when asked for, none when loading all."""
        orders = {} if order_ids is None else {order_id: Order(order_id) for order_id in order_ids}
        with self._lock:
            cursor = self.db.cursor()
            cursor.row_factory = None  # plain tuples: thousands of rows
            where, params = ("", ()) if order_ids is None else (OF_THESE, (json.dumps(list(orders)),))
            for order_id, event_id, status, ordered_at in cursor.execute(SELECT_ORDERS + where, params):
                order = orders.get(order_id) or orders.setdefault(order_id, Order(order_id))
                order.event_id, order.ordered_at = event_id, ordered_at
                order.status = order.stored_status = status
            for order_id, status, at, event_id in cursor.execute(SELECT_TIMELINES + where, params):
                order = orders.get(order_id) or orders.setdefault(order_id, Order(order_id))
                order.timeline[status] = at
                if event_id is not None:
                    order.event_ids += (event_id,)
        return orders

    def purge(self, cutoff: str) -> list[tuple[int, int]]:
        """Drop the orders ordered before cutoff with their timelines, and the timeline rows before it still
        waiting for their order: (status, count) of the orders dropped."""
        with self.transaction():
            gone = self.db.execute(
                "SELECT status, count(*) AS n FROM orders WHERE ordered_at < ? GROUP BY status", (cutoff,)
            ).fetchall()
            self.db.execute(
                "DELETE FROM order_events WHERE order_id IN (SELECT order_id FROM orders WHERE ordered_at < ?)",
                (cutoff,),
            )
            self.db.execute("DELETE FROM orders WHERE ordered_at < ?", (cutoff,))
            # Timeline rows still waiting for an order that never came.
            self.db.execute(
                "DELETE FROM order_events WHERE at < ? AND order_id NOT IN (SELECT order_id FROM orders)", (cutoff,)
            )
        return [(row["status"], row["n"]) for row in gone]
