"""delivery's rules, as plain calls: early warning, double time, two customers, stale warnings forgotten."""

import pytest

from kafka_common.shop.events import Pizza, PizzaBaked, PizzaOrdered, PizzaStatus
from kafka_common.shop.ids import new_order_id
from kafka_common.shop.status import STATUS_DELIVERED, STATUS_DELIVERY_UNRESOLVED
from pizza_delivery.handlers import Delivery, delivery_seconds
from shop_testing.events import received

PIZZA = Pizza(sauce="Tomato", cheese="Mozzarella", main_topping="Pepperoni")
CUSTOMER = "a3"  # int("a3", 16) % 10 + 5 == 8


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def delivery(clock: Clock) -> Delivery:
    return Delivery(forget_after_s=7200, clock=clock)


def ordered(order_id: str, customer_id: str = CUSTOMER) -> PizzaOrdered:
    return PizzaOrdered(order_id=order_id, customer_id=customer_id, username="ann", pizza=PIZZA)


def baked(order_id: str, customer_id: str = CUSTOMER) -> PizzaBaked:
    return PizzaBaked(order_id=order_id, customer_id=customer_id)


def test_delivery_time_is_the_customer_id_mod_10_plus_5():
    assert delivery_seconds("a3") == 8
    assert delivery_seconds("ff") == 10
    assert delivery_seconds("0") == 5


def test_an_early_warning_plans_the_route_and_emits_nothing(delivery):
    order_id = new_order_id()
    step = delivery.early_warning(received(ordered(order_id)))
    assert step.emit == () and step.name is None and step.seconds == 0
    assert order_id in delivery.expected


def test_a_baked_pizza_with_its_early_warning_is_delivered_in_normal_time(delivery):
    order_id = new_order_id()
    delivery.early_warning(received(ordered(order_id)))
    step = delivery.deliver(received(baked(order_id)))
    assert step.name == "deliver"
    assert step.seconds == 8
    assert step.emit == (PizzaStatus(order_id=order_id, status=STATUS_DELIVERED),)
    assert order_id not in delivery.expected  # used once


def test_a_pizza_baked_before_its_early_warning_is_still_delivered_in_double_time(delivery):
    order_id = new_order_id()
    step = delivery.deliver(received(baked(order_id)))
    assert step.seconds == 2 * 8
    assert step.emit == (PizzaStatus(order_id=order_id, status=STATUS_DELIVERED),)


def test_an_order_that_names_two_customers_is_not_delivered(delivery):
    order_id = new_order_id()
    delivery.early_warning(received(ordered(order_id, customer_id="a3")))
    step = delivery.deliver(received(baked(order_id, customer_id="b4")))
    assert step.seconds == 0
    assert step.emit == (PizzaStatus(order_id=order_id, status=STATUS_DELIVERY_UNRESOLVED),)
    assert order_id not in delivery.expected


def test_stale_early_warnings_are_forgotten_so_memory_does_not_grow(clock, delivery):
    stale, fresh, newest = new_order_id(), new_order_id(), new_order_id()
    delivery.early_warning(received(ordered(stale)))
    clock.now += 7000
    delivery.early_warning(received(ordered(fresh)))
    clock.now += 300  # stale is now 7300 s old (past 7200), fresh 300 s
    delivery.early_warning(received(ordered(newest)))
    assert list(delivery.expected) == [fresh, newest]
    # A forgotten order is still delivered, in double time, as one whose warning never came.
    assert delivery.deliver(received(baked(stale))).seconds == 2 * 8
