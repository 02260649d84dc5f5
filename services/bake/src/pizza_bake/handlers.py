"""Bake: an assembled pizza goes into the oven and comes out ready for delivery."""

from kafka_common.app import App
from kafka_common.events import Event
from kafka_common.shop import topics
from kafka_common.shop.events import PizzaAssembled, PizzaBaked, PizzaStatus
from kafka_common.shop.kitchen import Step
from kafka_common.shop.status import STATUS_OUT_FOR_DELIVERY
from kafka_common.usage import KafkaUsage

KAFKA_USAGE = KafkaUsage(
    component="bake",
    consumes=(topics.PIZZA_ASSEMBLED,),
    produces=(topics.PIZZA_BAKED, topics.PIZZA_STATUS),
    group="pizza-bake",
    transactional=True,
)
app = App(KAFKA_USAGE)


def baking_seconds(pizza: PizzaAssembled) -> int:
    return pizza.pizza.seed() % 10 + 10


@app.handles(PizzaAssembled, once_per_order=True)
def bake(event: Event[PizzaAssembled]) -> Step:
    pizza = event.payload
    seconds = baking_seconds(pizza)
    return Step(
        name="bake",
        seconds=seconds,
        emit=(
            PizzaBaked(order_id=pizza.order_id, customer_id=pizza.customer_id),
            PizzaStatus(order_id=pizza.order_id, status=STATUS_OUT_FOR_DELIVERY),
        ),
        started="baking",
        done="order baked",
    )


def main() -> None:
    app.run()
