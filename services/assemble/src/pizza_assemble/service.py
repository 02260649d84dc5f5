"""Assemble: a pizza-ordered event becomes an assembled pizza, sent on to the oven."""

from kafka_common import topics
from kafka_common.events import Event, PizzaAssembled, PizzaOrdered, PizzaStatus
from kafka_common.logging import get_logger
from kafka_common.menu import STATUS_IN_OVEN
from kafka_common.runner import Step
from kafka_common.service import serve
from kafka_common.usage import KafkaUsage

KAFKA_USAGE = KafkaUsage(
    component="assemble",
    consumes=(topics.PIZZA_ORDERED,),
    produces=(topics.PIZZA_ASSEMBLED, topics.PIZZA_STATUS),
    group="pizza-assemble",
    transactional=True,
)
HTTP_PORT = 8002
log = get_logger("assemble")


def assembling_seconds(order: PizzaOrdered) -> int:
    return order.pizza.seed() % 5 + 2


def assemble(event: Event) -> Step:
    order: PizzaOrdered = event.payload
    seconds = assembling_seconds(order)
    log.info(f"Preparing order {order.order_id}, assembling time is {seconds} second(s)")
    return Step(
        name="assemble",
        seconds=seconds,
        emit=(
            PizzaAssembled(order_id=order.order_id, customer_id=order.customer_id, pizza=order.pizza),
            PizzaStatus(order_id=order.order_id, status=STATUS_IN_OVEN),
        ),
        done_message=f"Order {order.order_id} is assembled!",
    )


def main() -> None:
    serve(KAFKA_USAGE, HTTP_PORT, lambda: {"handlers": {PizzaOrdered: assemble}})
