"""Orders a kitchen step has already done, so that a duplicate record is not cooked twice.

A duplicate pizza-ordered (the same record produced twice, or a forged second
order for an existing order id) would otherwise assemble, bake and deliver the
same order again. The loop asks DoneOrders before handling a record whose
handler is registered once_per_order, and records an order as done only when
its step is committed (an aborted batch is redone, not skipped).

The bound: at most MAX_ORDERS order ids per topic (32 hex characters each,
~140 bytes with the dict entry and its time: ~28 MB at the default 200,000), each
forgotten after ORDER_TTL_HOURS (the read model drops orders then too) or
when the oldest must make room. It catches duplicates that reach the same
replica within that window; a duplicate that arrives after its partition moved
to another replica is not caught (that replica never saw the first one). The
kitchen topics keep 24 h: a complete check would replay them on assignment,
which this bounded, in-memory check trades for start-up time.
"""

from __future__ import annotations

import time

MAX_ORDERS = 200_000


class DoneOrders:
    def __init__(self, forget_after_s: float, max_orders: int = MAX_ORDERS, clock=time.monotonic):
        self.forget_after_s = forget_after_s
        self.max_orders = max_orders
        self._clock = clock
        # Per topic: order id -> when it was done, oldest first (a plain dict keeps insertion
        # order in half the memory of an OrderedDict).
        self._done: dict[str, dict[str, float]] = {}

    def seen(self, topic: str, order_id: str) -> bool:
        done = self._done.get(topic)
        if not done or order_id not in done:
            return False
        if self._clock() - done[order_id] > self.forget_after_s:
            del done[order_id]
            return False
        return True

    def add(self, topic: str, order_id: str) -> None:
        done = self._done.setdefault(topic, {})
        now = self._clock()
        done.pop(order_id, None)  # a repeated order moves to the end
        done[order_id] = now
        while done:
            oldest, at = next(iter(done.items()))
            if len(done) <= self.max_orders and now - at <= self.forget_after_s:
                break
            del done[oldest]

    def __len__(self) -> int:
        return sum(len(d) for d in self._done.values())
