"""A customer as a script: the webapp's JSON API with a cookie jar (tests, pods check, demos)."""

from __future__ import annotations

import requests

from kafka_common.shop.menu import CHEESES, EXTRA_TOPPINGS, MAIN_TOPPINGS, SAUCES
from kafka_common.shop.status import STATUS_DELIVERED


def pizza(n: int) -> dict:
    """The n-th pizza of a fixed rotation through the menu, with 0 to 3 extra toppings."""
    return {
        "sauce": SAUCES[n % 6],
        "cheese": CHEESES[(n + 1) % 6],
        "main_topping": MAIN_TOPPINGS[(n + 2) % 6],
        "extra_toppings": list(EXTRA_TOPPINGS[: n % 4]),
    }


class Customer:
    def __init__(self, base_url: str, username: str, timeout: float = 15.0):
        self.base = base_url.rstrip("/")
        self.username = username
        self.timeout = timeout
        self.http = requests.Session()
        reply = self.http.post(f"{self.base}/api/login", json={"username": username}, timeout=timeout)
        assert reply.status_code == 200, reply.text
        self.customer_id = reply.json()["customer_id"]
        self.orders: list[str] = []  # order ids placed by this customer, oldest first

    def order(self, n: int) -> str:
        """Place pizza(n); returns its order id once the webapp answered 201."""
        reply = self.http.post(f"{self.base}/api/orders", json=pizza(n), timeout=self.timeout)
        assert reply.status_code == 201, reply.text
        self.orders.append(reply.json()["order_id"])
        return self.orders[-1]

    def listed(self) -> list[dict]:
        reply = self.http.get(f"{self.base}/api/orders", timeout=self.timeout)
        assert reply.status_code == 200, reply.text
        return reply.json()["orders"]

    def get(self, order_id: str) -> dict:
        reply = self.http.get(f"{self.base}/api/orders/{order_id}", timeout=self.timeout)
        assert reply.status_code == 200, reply.text
        return reply.json()

    def delivered(self, order_ids) -> bool:
        return all(self.get(o)["status"] == STATUS_DELIVERED for o in order_ids)
