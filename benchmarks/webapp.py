"""Webapp: concurrent customers place orders and read them back through the JSON API.

pizza-status and pizza-webapp (gunicorn, its default WEB_CONCURRENCY=2 workers
x WEB_THREADS=4 threads) run as real processes; no kitchen, so every order
stays "received". Each client thread logs in with its own requests.Session and
repeats: POST /api/orders (answers once Kafka acknowledged the event), then
GET /api/orders/<id> (the webapp asks status with wait_for=<partition:offset>
of that order, so this is the read-your-writes path). Bounded by a total
number of orders and by time, whichever comes first.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field

import requests

from benchmarks.harness import Distribution, Environment, wait_ready
from kafka_common import menu


@dataclass
class WebResult:
    clients: int
    elapsed: float = 0.0
    post: list[float] = field(default_factory=list)
    get: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def rate(self, kind: str) -> float:
        return len(getattr(self, kind)) / self.elapsed if self.elapsed else float("nan")

    def distribution(self, kind: str) -> Distribution:
        return Distribution.of(getattr(self, kind))


def pizza(rng: random.Random) -> dict:
    return {"sauce": rng.choice(menu.SAUCES), "cheese": rng.choice(menu.CHEESES),
            "main_topping": rng.choice(menu.MAIN_TOPPINGS),
            "extra_toppings": rng.sample(menu.EXTRA_TOPPINGS, rng.randint(0, 3))}


class Client(threading.Thread):
    def __init__(self, index: int, base: str, budget: _Budget, result: WebResult, lock: threading.Lock,
                 warmup: int, warm: threading.Barrier):
        super().__init__(name=f"client-{index}", daemon=True)
        self.base, self.budget, self.result, self.lock = base, budget, result, lock
        self.warmup, self.warm = warmup, warm
        self.rng = random.Random(index)
        self.http = requests.Session()
        reply = self.http.post(f"{base}/api/login", json={"username": f"bench{index}"}, timeout=10)
        reply.raise_for_status()

    def _error(self, what: str) -> None:
        with self.lock:
            self.result.errors[what] = self.result.errors.get(what, 0) + 1

    def round_trip(self, record: bool) -> None:
        began = time.perf_counter()
        try:
            reply = self.http.post(f"{self.base}/api/orders", json=pizza(self.rng), timeout=15)
        except requests.RequestException as exc:
            self._error(f"POST {type(exc).__name__}")
            return
        posted = time.perf_counter()
        if reply.status_code != 201:
            self._error(f"POST {reply.status_code}")
            return
        order_id = reply.json()["order_id"]
        try:
            reply = self.http.get(f"{self.base}/api/orders/{order_id}", timeout=15)
        except requests.RequestException as exc:
            self._error(f"GET {type(exc).__name__}")
            return
        read = time.perf_counter()
        if reply.status_code != 200:
            self._error(f"GET {reply.status_code}")
            return
        if record:
            with self.lock:
                self.result.post.append(posted - began)
                self.result.get.append(read - posted)

    def run(self) -> None:
        for _ in range(self.warmup):
            self.round_trip(record=False)
        try:
            self.warm.wait(60)
        except threading.BrokenBarrierError:
            return
        self.budget.started.wait()
        while self.budget.take():
            self.round_trip(record=True)


class _Budget:
    """Shared by the clients: at most `orders` round trips, none started after `seconds`."""

    def __init__(self, orders: int, seconds: float):
        self.left, self.seconds = orders, seconds
        self.lock = threading.Lock()
        self.started = threading.Event()
        self.deadline = float("inf")

    def start(self) -> None:
        self.deadline = time.perf_counter() + self.seconds
        self.started.set()

    def take(self) -> bool:
        with self.lock:
            if self.left <= 0 or time.perf_counter() >= self.deadline:
                return False
            self.left -= 1
            return True


def run(env: Environment, clients: int, orders: int, seconds: float, warmup: int = 2) -> WebResult:
    status = env.service("status")
    procs = [status]
    try:
        wait_ready([status])
        webapp = env.service("webapp", {"STATUS_URL": status.api_url("")})
        procs.append(webapp)
        wait_ready([webapp])
        result = WebResult(clients)
        budget = _Budget(orders, seconds)
        lock = threading.Lock()
        warm = threading.Barrier(clients + 1)
        threads = [Client(i, webapp.url(""), budget, result, lock, warmup, warm) for i in range(clients)]
        for t in threads:
            t.start()
        # Warm-up round trips (each worker's first producer, first connections) are not counted.
        warm.wait(90)
        began = time.perf_counter()
        budget.start()
        for t in threads:
            t.join(seconds + 60)
        result.elapsed = time.perf_counter() - began
        return result
    finally:
        env.stop_services(procs)

