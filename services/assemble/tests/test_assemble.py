"""assemble's rule, as plain calls: pizza-ordered in, an assembled pizza and status 200 out."""

import msgspec

from kafka_common.shop.events import Pizza, PizzaAssembled, PizzaOrdered, PizzaStatus
from kafka_common.shop.ids import new_order_id
from kafka_common.shop.status import STATUS_IN_OVEN
from pizza_assemble.handlers import assemble, assembling_seconds
from shop_testing.events import received

# md5("Tomato@Mozzarella@Mushroom,Onion@Pepperoni")[-4:] is 0x84bc = 33980; md5 of
# "Pesto@Gouda@@Chicken" ends in 0x7ea6 = 32422.
CLASSIC = Pizza(sauce="Tomato", cheese="Mozzarella", main_topping="Pepperoni", extra_toppings=("Mushroom", "Onion"))
PLAIN = Pizza(sauce="Pesto", cheese="Gouda", main_topping="Chicken")


def ordered(pizza: Pizza = CLASSIC, customer_id: str = "c0ffee") -> PizzaOrdered:
    return PizzaOrdered(order_id=new_order_id(), customer_id=customer_id, username="ann", pizza=pizza)


def test_assembling_takes_the_originals_time_seed_mod_5_plus_2():
    assert (CLASSIC.seed(), PLAIN.seed()) == (33980, 32422)
    assert assembling_seconds(ordered(CLASSIC)) == 33980 % 5 + 2 == 2
    assert assembling_seconds(ordered(PLAIN)) == 32422 % 5 + 2 == 4


def test_an_order_becomes_an_assembled_pizza_for_the_oven_and_status_in_oven():
    order = ordered(PLAIN, customer_id="ab12")
    step = assemble(received(order))
    assert step.name == "assemble"
    assert step.seconds == 4
    assert step.emit == (
        PizzaAssembled(order_id=order.order_id, customer_id="ab12", pizza=PLAIN),
        PizzaStatus(order_id=order.order_id, status=STATUS_IN_OVEN),
    )
    assert step.started and step.done  # logged by the loop, with the order's fields


def test_the_extra_toppings_order_is_part_of_the_recipe():
    # The seed hashes the toppings as listed: the same toppings in another order is another recipe.
    swapped = msgspec.structs.replace(CLASSIC, extra_toppings=("Onion", "Mushroom"))
    assert swapped.seed() != CLASSIC.seed()
