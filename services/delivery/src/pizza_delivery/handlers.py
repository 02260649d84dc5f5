"""Delivery: learns of each order early (pizza-ordered), delivers it once baked (pizza-baked).

The early warning only saves time: pizza-baked carries the customer, so an
order is delivered even when this replica never saw its pizza-ordered (a
restart, a rebalance, or pizza-baked arriving first). As in the original,
such a delivery takes twice as long.
"""

import time
from collections.abc import Callable

from kafka_common.app import App
from kafka_common.config import env_number
from kafka_common.events import Event
from kafka_common.logging import get_logger
from kafka_common.shop import topics
from kafka_common.shop.events import PizzaBaked, PizzaOrdered, PizzaStatus
from kafka_common.shop.kitchen import Step
from kafka_common.shop.status import STATUS_DELIVERED, STATUS_DELIVERY_UNRESOLVED
from kafka_common.usage import RANGE, KafkaUsage

KAFKA_USAGE = KafkaUsage(
    component="delivery",
    consumes=(topics.PIZZA_ORDERED, topics.PIZZA_BAKED),
    produces=(topics.PIZZA_STATUS,),
    group="pizza-delivery",
    transactional=True,
    # Partition N of pizza-ordered and of pizza-baked hold the same orders: the range
    # assignor (broker-side, KIP-848) hands both to the same member, so its early
    # warnings are useful.
    assignment=RANGE,
)
app = App(KAFKA_USAGE)
log = get_logger("delivery")


def delivery_seconds(customer_id: str) -> int:
    return int(customer_id, 16) % 10 + 5


class Delivery:
    def __init__(self, forget_after_s: float, clock: Callable[[], float] = time.monotonic):
        self.forget_after_s = forget_after_s
        self.clock = clock
        self.expected: dict[str, tuple[str, float]] = {}  # order_id -> (customer_id, noted at)

    def early_warning(self, event: Event[PizzaOrdered]) -> Step:
        order = event.payload
        self._forget_stale()
        self.expected[order.order_id] = (order.customer_id, self.clock())
        log.info("early warning: order being prepared, planning the route")
        return Step.nothing()

    def deliver(self, event: Event[PizzaBaked]) -> Step:
        baked = event.payload
        expected = self.expected.pop(baked.order_id, None)
        if expected is not None and expected[0] != baked.customer_id:
            log.error(
                "order names two customers: it cannot be delivered",
                customer_id=baked.customer_id,
                expected_customer_id=expected[0],
            )
            return Step(name="deliver", emit=(PizzaStatus(order_id=baked.order_id, status=STATUS_DELIVERY_UNRESOLVED),))
        seconds = delivery_seconds(baked.customer_id)
        if expected is None:
            seconds *= 2
            log.warning("baked before its early warning arrived: delivery takes twice as long")
        return Step(
            name="deliver",
            seconds=seconds,
            emit=(PizzaStatus(order_id=baked.order_id, status=STATUS_DELIVERED),),
            started="out for delivery",
            done="order delivered",
        )

    def _forget_stale(self) -> None:
        # Orders that never come out of the oven must not grow memory forever.
        cutoff = self.clock() - self.forget_after_s
        while self.expected:
            order_id, (_, noted) = next(iter(self.expected.items()))
            if noted >= cutoff:
                break
            del self.expected[order_id]


def setup(app: App) -> None:
    delivery = Delivery(forget_after_s=env_number("ORDER_TTL_HOURS", 2.0, float, minimum=0.0) * 3600)
    app.handles(PizzaOrdered, delivery.early_warning)
    app.handles(PizzaBaked, delivery.deliver, once_per_order=True)


def main() -> None:
    app.run(setup)
