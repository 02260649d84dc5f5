"""Assemble: a pizza-ordered event becomes an assembled pizza, sent on to the oven."""

from kafka_common.app import App
from kafka_common.events import Event
from kafka_common.shop import topics
from kafka_common.shop.events import PizzaAssembled, PizzaOrdered, PizzaStatus
from kafka_common.shop.kitchen import Step
from kafka_common.shop.status import STATUS_IN_OVEN
from kafka_common.usage import KafkaUsage

KAFKA_USAGE = KafkaUsage(
    component="assemble",
    consumes=(topics.PIZZA_ORDERED,),
    produces=(topics.PIZZA_ASSEMBLED, topics.PIZZA_STATUS),
    group="pizza-assemble",
    transactional=True,
)
app = App(KAFKA_USAGE)


def assembling_seconds(order: PizzaOrdered) -> int:
    return order.pizza.seed() % 5 + 2


@app.handles(PizzaOrdered, once_per_order=True)
def assemble(event: Event[PizzaOrdered]) -> Step:
    order = event.payload
    seconds = assembling_seconds(order)
    return Step(
        name="assemble",
        seconds=seconds,
        emit=(
            PizzaAssembled(order_id=order.order_id, customer_id=order.customer_id, pizza=order.pizza),
            PizzaStatus(order_id=order.order_id, status=STATUS_IN_OVEN),
        ),
        started="preparing the order: assembling",
        done="order assembled",
    )


def main() -> None:
    app.run()
