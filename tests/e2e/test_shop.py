"""The whole shop end to end: five services as real processes on the session's real broker.

The services are started as `make run` starts them (their console scripts,
ports from the environment); the kitchen runs fast with a small KITCHEN_TIME_SCALE.
Orders of other tests may flow through the same topics: every assertion
looks at this test's own orders only.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from confluent_kafka import Producer

from kafka_common import events
from kafka_common.shop import events as shop_events
from kafka_common.shop import ids, topics
from kafka_common.shop.events import Pizza, PizzaBaked
from kafka_common.shop.status import STATUS_DELIVERED, STATUS_IN_OVEN, STATUS_OUT_FOR_DELIVERY, STATUS_RECEIVED
from shop_testing.customer import Customer
from shop_testing.helpers import wait_until

pytestmark = pytest.mark.slow
FULL_JOURNEY = [STATUS_RECEIVED, STATUS_IN_OVEN, STATUS_OUT_FOR_DELIVERY, STATUS_DELIVERED]
FAST_KITCHEN = "0.02"


def start_services(service_process, *names, env=None):
    return {name: service_process(f"pizza-{name}", name=name, env=env) for name in names}


def start_shop(service_process, time_scale=FAST_KITCHEN, kitchen=("assemble", "bake", "delivery")):
    procs = start_services(service_process, "status", *kitchen, env={"KITCHEN_TIME_SCALE": time_scale})
    # A customer here places up to 8 orders before the first is delivered: above the default cap.
    procs["webapp"] = service_process(
        "pizza-webapp",
        name="webapp",
        env={"STATUS_URL": procs["status"].api_url(""), "WEB_CONCURRENCY": "2", "MAX_OPEN_ORDERS_PER_CUSTOMER": "10"},
    )
    return procs


def status_api(proc, order_id):
    reply = requests.get(proc.api_url(f"/api/orders/{order_id}"), timeout=10)
    return reply.json() if reply.status_code == 200 else None


def journey(order: dict) -> list[int]:
    return [e["status"] for e in order["events"]]


def status_events(read_topic, order_ids, until_delivered=True):
    """(order_id, status) of every committed pizza-status record of these orders."""
    wanted = set(order_ids)

    def all_delivered(records):
        seen = {r.key for r in records if r.key in wanted and r.json()["status"] == STATUS_DELIVERED}
        return seen == wanted

    records = read_topic(topics.PIZZA_STATUS, until=all_delivered if until_delivered else None, timeout=120)
    return Counter((r.key, r.json()["status"]) for r in records if r.key in wanted)


def test_concurrent_customers_all_get_their_pizza_with_the_full_timeline(service_process, read_topic):
    shop = start_shop(service_process)
    customers = [Customer(shop["webapp"].url(""), f"customer{i}") for i in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        placed = [(c, pool.submit(c.order, n)) for n in range(3) for c in customers]
        owner = {future.result(): c for c, future in placed}
    order_ids = list(owner)
    assert len(order_ids) == 12
    for customer in customers:  # each sees exactly their own three, at once (read-your-writes)
        assert {o["order_id"] for o in customer.listed()} == {oid for oid, c in owner.items() if c is customer}
    for order_id, customer in owner.items():
        wait_until(
            lambda oid=order_id: (o := status_api(shop["status"], oid)) and o["status"] == 400,
            120,
            f"order {order_id} delivered",
        )
        seen = customer.get(order_id)
        assert seen["status"] == STATUS_DELIVERED and seen["status_text"] == "Your pizza was delivered"
        assert journey(seen) == FULL_JOURNEY
    counts = status_events(read_topic, order_ids)
    assert all(counts[(oid, s)] == 1 for oid in order_ids for s in FULL_JOURNEY[1:])


def test_baked_before_ordered_is_still_delivered(kafka_config, service_process, read_topic):
    delivery = start_services(service_process, "delivery", env={"KITCHEN_TIME_SCALE": FAST_KITCHEN})["delivery"]
    order_id = ids.new_order_id()
    key, value, headers = events.encode(PizzaBaked(order_id=order_id, customer_id="c0ffee"), "/tests")
    producer = Producer(kafka_config)
    producer.produce(topics.PIZZA_BAKED, key=key, value=value, headers=headers)
    producer.flush(10)
    assert status_events(read_topic, [order_id]) == Counter({(order_id, STATUS_DELIVERED): 1})
    # Console lines cut order ids to their first 8 digits (order=c4ea2ac5…).
    delivery.wait_for_log(rf"baked before its early warning arrived.*order={order_id[:8]}")


def test_sigterm_to_one_of_two_bake_replicas_mid_bake_loses_and_repeats_nothing(service_process, read_topic):
    # Baking takes 10-19 kitchen seconds: at 0.2 that is 2-4 s, long enough to stop a replica mid-bake.
    shop = start_shop(service_process, time_scale="0.2", kitchen=("assemble", "delivery"))
    bakers = [service_process("pizza-bake", name=f"bake-{n}", env={"KITCHEN_TIME_SCALE": "0.2"}) for n in (1, 2)]
    customer = Customer(shop["webapp"].url(""), "hungry")
    order_ids = [customer.order(n) for n in range(8)]
    wait_until(lambda: all("baking" in b.log_text() for b in bakers), 60, "both replicas baking")
    victim, survivor = bakers
    victim.terminate()
    assert victim.wait(timeout=30) == 0
    log = victim.log_text()
    assert "shutdown requested" in log and "consumer closed, left the group" in log
    assert "step abandoned, not committed" in log  # it really was stopped mid-bake
    counts = status_events(read_topic, order_ids)
    for order_id in order_ids:  # each status change exactly once: none lost, none repeated
        assert [counts[(order_id, s)] for s in FULL_JOURNEY[1:]] == [1, 1, 1], order_id
    for order_id in order_ids:
        order = wait_until(lambda oid=order_id: (o := customer.get(oid))["status"] == 400 and o, 60, "delivered")
        assert journey(order) == FULL_JOURNEY
    assert "partitions assigned" in survivor.log_text()


def test_status_replicas_agree_rebuild_from_the_log_and_survive_kill_9(service_process):
    shop = start_shop(service_process)
    customer = Customer(shop["webapp"].url(""), "reader")
    order_ids = [customer.order(n) for n in range(3)]
    for order_id in order_ids:
        wait_until(lambda oid=order_id: (o := status_api(shop["status"], oid)) and o["status"] == 400, 120, "delivered")
    late = service_process("pizza-status", name="status-late")  # ready only once caught up with the log
    for order_id in order_ids:
        assert status_api(late, order_id) == status_api(shop["status"], order_id)
    listing = f"/api/orders?customer_id={customer.customer_id}"
    assert (
        requests.get(late.api_url(listing), timeout=10).json()
        == requests.get(shop["status"].api_url(listing), timeout=10).json()
    )
    before = {oid: status_api(shop["status"], oid) for oid in order_ids}
    shop["status"].kill()
    restarted = service_process(
        "pizza-status",
        name="status-restarted",
        http_port=shop["status"].http_port,
        env={"API_PORT": str(shop["status"].api_port)},
    )
    assert {oid: status_api(restarted, oid) for oid in order_ids} == before
    assert all(customer.get(oid)["status"] == STATUS_DELIVERED for oid in order_ids)  # the webapp reads it again


def test_kitchen_times_follow_the_original_recipe_seed():
    pizza = Pizza(sauce="Tomato", cheese="Mozzarella", main_topping="Pepperoni", extra_toppings=("Mushroom", "Onion"))
    import hashlib

    seed = int(hashlib.md5(b"Tomato@Mozzarella@Mushroom,Onion@Pepperoni").hexdigest()[-4:], 16)
    assert pizza.seed() == seed
    from pizza_assemble.handlers import assembling_seconds
    from pizza_bake.handlers import baking_seconds
    from pizza_delivery.handlers import delivery_seconds

    order = shop_events.PizzaOrdered(order_id=ids.new_order_id(), customer_id="ab", username="x", pizza=pizza)
    assert assembling_seconds(order) == seed % 5 + 2
    assert (
        baking_seconds(shop_events.PizzaAssembled(order_id=order.order_id, customer_id="ab", pizza=pizza))
        == seed % 10 + 10
    )
    assert delivery_seconds("ab") == 0xAB % 10 + 5
