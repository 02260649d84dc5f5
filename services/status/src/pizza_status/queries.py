"""What HTTP threads ask of the read model: a customer's orders, one order, the oldest open order's
age; and read-your-writes, waiting until the projection has applied a given record.

It exists so that the answers' shape (what query_api returns as JSON) is apart from how the
tables are written. Queries read under the store's lock, so they see a batch whole or not at all.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable
from datetime import datetime

from kafka_common.shop import topics
from kafka_common.shop.status import STATUS_OUT_FOR_DELIVERY, STATUS_RECEIVED, status_text
from kafka_common.timestamps import parse_utc as _parse
from pizza_status.fold import timeline_rank
from pizza_status.store import Store


class Queries:
    """The read model's answers, from its tables."""

    def __init__(self, store: Store, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._clock = clock

    def orders_of(self, customer_id: str, limit: int = 100) -> list[dict]:
        with self._store.reading() as db:
            rows = db.execute(
                "SELECT * FROM orders WHERE customer_id = ? ORDER BY ordered_at DESC LIMIT ?", (customer_id, limit)
            ).fetchall()
        return [self._order(row) for row in rows]

    def order(self, order_id: str) -> dict | None:
        with self._store.reading() as db:
            row = db.execute("SELECT * FROM orders WHERE order_id = ?", (order_id,)).fetchone()
            if row is None:
                return None
            timeline = db.execute("SELECT status, at FROM order_events WHERE order_id = ?", (order_id,)).fetchall()
        order = self._order(row)
        order["events"] = [
            {"status": e["status"], "status_text": status_text(e["status"]), "at": e["at"]}
            for e in sorted(timeline, key=lambda e: (e["at"], timeline_rank(e["status"])))
        ]
        return order

    def oldest_open_age_seconds(self) -> float:
        """How long the oldest order still short of delivered (100, 200, 300) has waited."""
        with self._store.reading() as db:
            row = db.execute(
                "SELECT min(ordered_at) AS oldest FROM orders WHERE status BETWEEN ? AND ?",
                (STATUS_RECEIVED, STATUS_OUT_FOR_DELIVERY),
            ).fetchone()
        if row["oldest"] is None:
            return 0.0
        return max(0.0, (self._clock() - _parse(row["oldest"])).total_seconds())

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


class AppliedPositions:
    """Read-your-writes: the last record applied (and visible to queries) of each partition."""

    def __init__(self) -> None:
        self._applied: dict[tuple[str, int], int] = {}
        self._changed = threading.Condition()

    def applied(self, topic: str, partition: int, offset: int) -> None:
        with self._changed:
            self._applied[(topic, partition)] = offset
            self._changed.notify_all()

    def wait_for(self, partition: int, offset: int, timeout: float) -> bool:
        """Block until the pizza-ordered record at partition:offset is applied (or timeout)."""
        key = (topics.PIZZA_ORDERED, partition)
        with self._changed:
            return self._changed.wait_for(lambda: self._applied.get(key, -1) >= offset, timeout)
