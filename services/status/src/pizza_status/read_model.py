"""The read model: orders, their current status and timeline, projected from the topics.

One SQLite connection behind a lock: the projection thread writes, HTTP
threads read, and every statement is parameterised. Rebuilt from the log on
every start, so it may live in memory (the default) or in a scratch file.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta

from kafka_common import metrics, topics
from kafka_common.events import Event, PizzaOrdered, PizzaStatus
from kafka_common.menu import STATUS_DELIVERED, STATUS_OUT_FOR_DELIVERY, STATUS_RECEIVED, status_text

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    order_id    TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    username    TEXT NOT NULL,
    pizza       TEXT NOT NULL,
    status      INTEGER NOT NULL,
    ordered_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_by_customer ON orders (customer_id, ordered_at);
CREATE INDEX IF NOT EXISTS orders_by_time ON orders (ordered_at);
CREATE TABLE IF NOT EXISTS order_events (
    event_id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL,
    status   INTEGER NOT NULL,
    at       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_order ON order_events (order_id, at);
"""
PURGE_EVERY_S = 60.0
COMPONENT = "status"


def progress(status: int) -> int:
    """Statuses only move forward; an error (negative) is final."""
    return 10_000 if status < 0 else status


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class ReadModel:
    def __init__(self, path: str = ":memory:", ttl_hours: float = 2.0):
        self.ttl = timedelta(hours=ttl_hours)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        if path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()
        self._applied: dict[tuple[str, int], int] = {}
        self._applied_changed = threading.Condition()
        self._started = datetime.now(UTC)
        self._last_purge = time.monotonic()

    # -- writes (projection thread) -----------------------------------------------------------
    def apply_ordered(self, event: Event) -> None:
        order: PizzaOrdered = event.payload
        at = event.envelope.time
        if self._expired(at):
            return
        with self._lock, self._db:
            self._db.execute("INSERT OR IGNORE INTO order_events (event_id, order_id, status, at) VALUES (?, ?, ?, ?)",
                             (event.envelope.id, order.order_id, STATUS_RECEIVED, _iso(at)))
            known = self._db.execute("SELECT 1 FROM orders WHERE order_id = ?", (order.order_id,)).fetchone()
            if known:
                return
            # Status events may have been applied first (another topic): start from the furthest one.
            status, updated = self._furthest_status(order.order_id)
            self._db.execute(
                "INSERT INTO orders (order_id, customer_id, username, pizza, status, ordered_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (order.order_id, order.customer_id, order.username, order.pizza.model_dump_json(),
                 status, _iso(at), updated))
        metrics.ORDERS_BY_STATUS.labels(COMPONENT, str(status)).inc()
        self._maybe_purge()

    def apply_status(self, event: Event) -> None:
        change: PizzaStatus = event.payload
        at = event.envelope.time
        if self._expired(at):
            return
        with self._lock, self._db:
            inserted = self._db.execute(
                "INSERT OR IGNORE INTO order_events (event_id, order_id, status, at) VALUES (?, ?, ?, ?)",
                (event.envelope.id, change.order_id, change.status, _iso(at))).rowcount
            row = self._db.execute("SELECT status, ordered_at FROM orders WHERE order_id = ?",
                                   (change.order_id,)).fetchone()
            if not inserted or row is None or progress(change.status) <= progress(row["status"]):
                return
            self._db.execute("UPDATE orders SET status = ?, updated_at = ? WHERE order_id = ?",
                             (change.status, _iso(at), change.order_id))
        metrics.ORDERS_BY_STATUS.labels(COMPONENT, str(row["status"])).dec()
        metrics.ORDERS_BY_STATUS.labels(COMPONENT, str(change.status)).inc()
        if change.status == STATUS_DELIVERED and at >= self._started:
            ordered_at = datetime.fromisoformat(row["ordered_at"].replace("Z", "+00:00"))
            metrics.ORDER_END_TO_END_SECONDS.labels(COMPONENT).observe(max(0.0, (at - ordered_at).total_seconds()))
        self._maybe_purge()

    def _furthest_status(self, order_id: str) -> tuple[int, str | None]:
        rows = self._db.execute("SELECT status, at FROM order_events WHERE order_id = ?", (order_id,)).fetchall()
        best = max(rows, key=lambda r: progress(r["status"]))
        return best["status"], best["at"]

    def _expired(self, at: datetime) -> bool:
        return at < datetime.now(UTC) - self.ttl

    def _maybe_purge(self) -> None:
        if time.monotonic() - self._last_purge >= PURGE_EVERY_S:
            self.purge()

    def purge(self) -> int:
        """Drop orders (and stray events) older than ORDER_TTL_HOURS."""
        self._last_purge = time.monotonic()
        cutoff = _iso(datetime.now(UTC) - self.ttl)
        with self._lock, self._db:
            gone = self._db.execute("SELECT status, count(*) AS n FROM orders WHERE ordered_at < ? GROUP BY status",
                                    (cutoff,)).fetchall()
            self._db.execute("DELETE FROM orders WHERE ordered_at < ?", (cutoff,))
            self._db.execute("DELETE FROM order_events WHERE at < ? AND order_id NOT IN (SELECT order_id FROM orders)",
                             (cutoff,))
        for row in gone:
            metrics.ORDERS_BY_STATUS.labels(COMPONENT, str(row["status"])).dec(row["n"])
        return sum(row["n"] for row in gone)

    def oldest_open_age_seconds(self) -> float:
        """How long the oldest order still short of delivered (100, 200, 300) has waited."""
        with self._lock:
            row = self._db.execute("SELECT min(ordered_at) AS oldest FROM orders WHERE status BETWEEN ? AND ?",
                                   (STATUS_RECEIVED, STATUS_OUT_FOR_DELIVERY)).fetchone()
        if row["oldest"] is None:
            return 0.0
        oldest = datetime.fromisoformat(row["oldest"].replace("Z", "+00:00"))
        return max(0.0, (datetime.now(UTC) - oldest).total_seconds())

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
                "SELECT * FROM orders WHERE customer_id = ? ORDER BY ordered_at DESC LIMIT ?",
                (customer_id, limit)).fetchall()
        return [self._order(row) for row in rows]

    def order(self, order_id: str) -> dict | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM orders WHERE order_id = ?", (order_id,)).fetchone()
            if row is None:
                return None
            timeline = self._db.execute(
                "SELECT status, at FROM order_events WHERE order_id = ? ORDER BY at, status", (order_id,)).fetchall()
        order = self._order(row)
        order["events"] = [{"status": e["status"], "status_text": status_text(e["status"]), "at": e["at"]}
                           for e in sorted(timeline, key=lambda e: (e["at"], progress(e["status"])))]
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
