"""bake's rule, as plain calls: an assembled pizza in, pizza-baked and status 300 out."""

from kafka_common.shop.events import Pizza, PizzaAssembled, PizzaBaked, PizzaStatus
from kafka_common.shop.ids import new_order_id
from kafka_common.shop.status import STATUS_OUT_FOR_DELIVERY
from pizza_bake.handlers import bake, baking_seconds
from shop_testing.events import received

CLASSIC = Pizza(sauce="Tomato", cheese="Mozzarella", main_topping="Pepperoni", extra_toppings=("Mushroom", "Onion"))
PLAIN = Pizza(sauce="Pesto", cheese="Gouda", main_topping="Chicken")


def assembled(pizza: Pizza, customer_id: str = "c0ffee") -> PizzaAssembled:
    return PizzaAssembled(order_id=new_order_id(), customer_id=customer_id, pizza=pizza)


def test_baking_takes_the_originals_time_seed_mod_10_plus_10():
    assert baking_seconds(assembled(CLASSIC)) == 33980 % 10 + 10 == 10
    assert baking_seconds(assembled(PLAIN)) == 32422 % 10 + 10 == 12


def test_a_baked_pizza_carries_its_customer_to_delivery_and_status_out_for_delivery():
    pizza = assembled(PLAIN, customer_id="ab12")
    step = bake(received(pizza))
    assert step.name == "bake"
    assert step.seconds == 12
    assert step.emit == (
        PizzaBaked(order_id=pizza.order_id, customer_id="ab12"),
        PizzaStatus(order_id=pizza.order_id, status=STATUS_OUT_FOR_DELIVERY),
    )
