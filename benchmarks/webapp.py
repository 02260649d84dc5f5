"""Webapp: concurrent customers place orders and read them back through the JSON API.

pizza-status and pizza-webapp (gunicorn, its default WEB_CONCURRENCY=2 gevent
workers) run as real processes; no kitchen, so every order
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
from kafka_common.shop import menu


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
    return {
        "sauce": rng.choice(menu.SAUCES),
        "cheese": rng.choice(menu.CHEESES),
        "main_topping": rng.choice(menu.MAIN_TOPPINGS),
        "extra_toppings": rng.sample(menu.EXTRA_TOPPINGS, rng.randint(0, 3)),
    }


class Client(threading.Thread):
    def __init__(
        self,
        index: int,
        base: str,
        budget: _Budget,
        result: WebResult,
        lock: threading.Lock,
        warmup: int,
        warm: threading.Barrier,
    ):
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
        # No kitchen here: every order stays open, so the open-order cap is lifted.
        webapp = env.service("webapp", {"STATUS_URL": status.api_url(""), "MAX_OPEN_ORDERS_PER_CUSTOMER": "0"})
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


# --------------------------------------------------------------------------- stalled clients

STALLED_HEAD = (
    b"POST /api/orders HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n{"
)


@dataclass
class StalledResult:
    stalled: int
    opened: int
    healthz: list[float] = field(default_factory=list)
    orders: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)


def open_stalled(port: int, count: int) -> list:
    """Connections that send the headers of an order and one byte of its body, then nothing."""
    import socket

    conns = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(STALLED_HEAD)
        conns.append(sock)
    return conns


def stalled_clients(env: Environment, stalled: int, samples: int, timeout: float = 10.0) -> StalledResult:
    """/healthz and POST /api/orders latency, one request at a time, while `stalled` connections
    hold a request body open. A request that gets no answer within `timeout` counts as an error."""
    status = env.service("status")
    procs = [status]
    try:
        wait_ready([status])
        webapp = env.service("webapp", {"STATUS_URL": status.url(""), "MAX_OPEN_ORDERS_PER_CUSTOMER": "0"})
        procs.append(webapp)
        wait_ready([webapp])
        http = requests.Session()
        http.post(webapp.url("/api/login"), json={"username": "patient"}, timeout=timeout).raise_for_status()
        rng = random.Random(1)
        for _ in range(3):  # warm: producers connected, first connections made
            http.post(webapp.url("/api/orders"), json=pizza(rng), timeout=timeout)
        conns = open_stalled(webapp.http_port, stalled)
        result = StalledResult(stalled, len(conns))
        time.sleep(1.0)  # let the server take them in
        try:
            for _ in range(samples):
                for kind, call in (
                    ("healthz", lambda: requests.get(webapp.url("/healthz"), timeout=timeout)),
                    ("orders", lambda: http.post(webapp.url("/api/orders"), json=pizza(rng), timeout=timeout)),
                ):
                    began = time.perf_counter()
                    try:
                        reply = call()
                    except requests.RequestException as exc:
                        result.errors[f"{kind} {type(exc).__name__}"] = (
                            result.errors.get(f"{kind} {type(exc).__name__}", 0) + 1
                        )
                        continue
                    if reply.status_code not in (200, 201):
                        result.errors[f"{kind} {reply.status_code}"] = (
                            result.errors.get(f"{kind} {reply.status_code}", 0) + 1
                        )
                        continue
                    getattr(result, kind).append(time.perf_counter() - began)
        finally:
            for sock in conns:
                sock.close()
        return result
    finally:
        env.stop_services(procs)


def main(argv: list[str] | None = None) -> int:
    """python -m benchmarks.webapp [--stalled 64] [--samples 50]: the stalled-clients measurement."""
    import argparse
    import tempfile
    from pathlib import Path

    from kafka_common.logging import configure_logging

    parser = argparse.ArgumentParser(prog="python -m benchmarks.webapp", description=main.__doc__)
    parser.add_argument("--stalled", type=int, default=64, help="connections stalled in their body (default 64)")
    parser.add_argument("--samples", type=int, default=50, help="requests of each kind (default 50)")
    parser.add_argument("--timeout", type=float, default=10.0, help="client timeout per request, s (default 10)")
    args = parser.parse_args(argv)
    configure_logging("benchmark", level="WARNING")
    env = Environment(log_dir=Path(tempfile.mkdtemp(prefix="pizza-bench-webapp-")), log_format="json")
    try:
        env.start()
        r = stalled_clients(env, args.stalled, args.samples, args.timeout)
    finally:
        env.stop()
    print(
        f"{r.opened} connections stalled in their body; {args.samples} requests of each kind, one at a time, "
        f"client timeout {args.timeout:.0f} s"
    )
    for kind, label in (("healthz", "GET /healthz"), ("orders", "POST /api/orders")):
        d = Distribution.of(getattr(r, kind))
        print(
            f"  {label:18} answered {d.n:3}  p50 {d.p50 * 1000:8.1f} ms  p99 {d.p99 * 1000:8.1f} ms  "
            f"max {d.max * 1000:8.1f} ms"
        )
    print(f"  errors: {', '.join(f'{k}: {v}' for k, v in sorted(r.errors.items())) or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
