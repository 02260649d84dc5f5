"""The shop's customers as Locust users (the locustfile that pizza-loadgen runs).

A customer comes in (logs in under a made-up name), reads the menu, orders one to
three pizzas of their own choosing one after the other, watches each until it is
delivered, looks at their orders and logs out; then the next customer comes in.
They think between steps (--think-min/--think-max seconds) and refresh the order
page every --poll-interval seconds, as the order page does.

Besides the HTTP requests, every delivered order is one entry of its own,
"ordered -> delivered", whose time is the shop's end-to-end latency: from the
order's time to its delivery in the shop's own timeline (what the status service
recorded), so it does not depend on how often the customer looks.
"""

from __future__ import annotations

import random
import time
import uuid
from datetime import datetime
from typing import Any

from locust import HttpUser, events, task
from locust.env import Environment
from locust.stats import StatsEntry

STATUS_DELIVERED = 400  # DESIGN.md status codes; negative ones are errors
DELIVERY = "ordered -> delivered"
ORDER = "ORDER"  # request type of the delivery entry
ORDER_PAGE = "/api/orders/[id]"


@events.init_command_line_parser.add_listener
def add_options(parser: Any) -> None:
    group = parser.add_argument_group("Pizza shop customers")
    group.add_argument(
        "--think-min", type=float, default=1.0, env_var="LOADGEN_THINK_MIN", help="Shortest pause between steps (s)."
    )
    group.add_argument(
        "--think-max", type=float, default=5.0, env_var="LOADGEN_THINK_MAX", help="Longest pause between steps (s)."
    )
    group.add_argument(
        "--poll-interval",
        type=float,
        default=1.0,
        env_var="LOADGEN_POLL_INTERVAL",
        help="How often a customer refreshes an order until it is delivered (s).",
    )
    group.add_argument(
        "--delivery-timeout",
        type=float,
        default=600.0,
        env_var="LOADGEN_DELIVERY_TIMEOUT",
        help="An order not delivered after this long counts as failed (s).",
    )
    group.add_argument(
        "--max-orders",
        type=int,
        default=3,
        env_var="LOADGEN_MAX_ORDERS",
        help="A customer orders 1 to this many pizzas per visit.",
    )


class DeliveryFailed(Exception):
    """An order that ended in an error status or was not delivered in time."""


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def delivery_ms(order: dict, fallback_ms: float) -> float:
    """Ordered to delivered in the shop's timeline; the customer's own clock if the timeline lacks either end."""
    delivered = [e["at"] for e in order.get("events", []) if e.get("status") == STATUS_DELIVERED and e.get("at")]
    if delivered and order.get("ordered_at"):
        return max(0.0, (parse_time(delivered[0]) - parse_time(order["ordered_at"])).total_seconds() * 1000)
    return fallback_ms


class Customer(HttpUser):
    """One customer after another: each visit is one task."""

    def wait_time(self) -> float:
        options = self.environment.parsed_options
        if options is None:  # run as a library, without pizza-loadgen's options
            return random.uniform(1.0, 5.0)
        return random.uniform(options.think_min, max(options.think_min, options.think_max))

    @task
    def visit(self) -> None:
        name = f"customer-{uuid.uuid4().hex[:8]}"
        with self.client.post("/api/login", json={"username": name}, catch_response=True) as reply:
            if reply.status_code != 200:
                reply.failure(f"login: {what_went_wrong(reply)}")
                return
        self.wait()
        menu = self.client.get("/api/menu").json()
        for _ in range(random.randint(1, self.option("max_orders", 3))):
            self.wait()
            order_id = self.order(choose_pizza(menu))
            if order_id is None:
                break
            self.follow(order_id)
        self.wait()
        self.client.get("/api/orders")
        self.client.post("/api/logout", json={})

    def option(self, name: str, default: Any) -> Any:
        return getattr(self.environment.parsed_options, name, default)

    def order(self, pizza: dict) -> str | None:
        with self.client.post("/api/orders", json=pizza, catch_response=True) as reply:
            if reply.status_code != 201:
                reply.failure(f"order: {what_went_wrong(reply)}")
                return None
            return reply.json()["order_id"]

    def follow(self, order_id: str) -> None:
        """Refreshes the order until it is delivered, then records ordered -> delivered."""
        started = time.monotonic()
        deadline = started + self.option("delivery_timeout", 600.0)
        poll = self.option("poll_interval", 1.0)
        error: Exception | None = None
        order: dict = {}
        while True:
            with self.client.get(f"/api/orders/{order_id}", name=ORDER_PAGE, catch_response=True) as reply:
                if reply.status_code == 200:
                    order = reply.json()
                else:
                    reply.failure(f"order page: {what_went_wrong(reply)}")
            status = order.get("status", 0)
            if status == STATUS_DELIVERED:
                break
            if status < 0:
                error = DeliveryFailed(f"order {order_id}: status {status} {order.get('status_text', '')}")
                break
            if time.monotonic() > deadline:
                error = DeliveryFailed(f"order {order_id} not delivered within {deadline - started:.0f} s")
                break
            time.sleep(poll)  # gevent-patched: only this customer waits
        elapsed_ms = (time.monotonic() - started) * 1000
        self.environment.events.request.fire(
            request_type=ORDER,
            name=DELIVERY,
            response_time=elapsed_ms if error else delivery_ms(order, elapsed_ms),
            response_length=0,
            exception=error,
            context={},
        )


def what_went_wrong(reply: Any) -> str:
    """The status and the shop's error text, or the connection error when there was no answer."""
    if not reply.status_code:
        return f"no answer: {reply.error}"
    return f"{reply.status_code} {reply.text[:200]}"


def choose_pizza(menu: dict) -> dict:
    """What a customer picks from the menu: one of each, and up to three extras."""
    extras = menu["extra_toppings"]
    return {
        "sauce": random.choice(menu["sauces"]),
        "cheese": random.choice(menu["cheeses"]),
        "main_topping": random.choice(menu["main_toppings"]),
        "extra_toppings": random.sample(extras, random.randint(0, min(3, len(extras)))),
    }


_environment: list[Environment] = []


@events.init.add_listener
def remember_environment(environment: Environment, **_: Any) -> None:
    _environment.append(environment)


@events.quit.add_listener
def print_shop_summary(exit_code: int, **_: Any) -> None:
    """One line after Locust's tables: what the shop did for its customers."""
    if not _environment:
        return
    stats = _environment[-1].stats
    empty = StatsEntry(stats, "", "")
    placed = stats.entries.get(("/api/orders", "POST"), empty)
    delivered = stats.entries.get((DELIVERY, ORDER), empty)
    line = (
        f"pizza-loadgen: {placed.num_requests - placed.num_failures} orders placed, "
        f"{delivered.num_requests - delivered.num_failures} delivered, {delivered.num_failures} failed"
    )
    if delivered.num_requests:
        percentiles = ", ".join(
            f"p{int(p * 100)} {delivered.get_response_time_percentile(p):.0f} ms" for p in (0.5, 0.95, 0.99)
        )
        line += f"; ordered -> delivered {percentiles}, max {delivered.max_response_time:.0f} ms"
    line += f"; {stats.total.num_failures} failures in all (exit code {exit_code})"
    print(line, flush=True)
