"""Bake: an assembled pizza goes into the oven and comes out ready for delivery."""

from kafka_common import topics
from kafka_common.events import Event, PizzaAssembled, PizzaBaked, PizzaStatus
from kafka_common.logging import get_logger
from kafka_common.menu import STATUS_OUT_FOR_DELIVERY
from kafka_common.runner import Step
from kafka_common.service import serve
from kafka_common.usage import KafkaUsage

KAFKA_USAGE = KafkaUsage(
    component="bake",
    consumes=(topics.PIZZA_ASSEMBLED,),
    produces=(topics.PIZZA_BAKED, topics.PIZZA_STATUS),
    group="pizza-bake",
    transactional=True,
)
HTTP_PORT = 8003
log = get_logger("bake")


def baking_seconds(pizza: PizzaAssembled) -> int:
    return pizza.pizza.seed() % 10 + 10


def bake(event: Event) -> Step:
    pizza: PizzaAssembled = event.payload
    seconds = baking_seconds(pizza)
    log.info(f"Preparing order {pizza.order_id}, baking time is {seconds} second(s)")
    return Step(
        name="bake",
        seconds=seconds,
        emit=(
            PizzaBaked(order_id=pizza.order_id, customer_id=pizza.customer_id),
            PizzaStatus(order_id=pizza.order_id, status=STATUS_OUT_FOR_DELIVERY),
        ),
        done_message=f"Order {pizza.order_id} is baked!",
    )


def main() -> None:
    serve(KAFKA_USAGE, HTTP_PORT, lambda: {"handlers": {PizzaAssembled: bake}})
