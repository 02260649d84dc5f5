"""The shop as the cluster tests see it: its Deployments and pods, customers ordering in the
background, and the check that every accepted order was delivered exactly once."""

from __future__ import annotations

import threading
import time
from collections import Counter

import requests
from kube import INSTANCE, NAMESPACE, RELEASE, get, is_ready, pods

from kafka_common.shop.status import STATUS_DELIVERED, STATUS_IN_OVEN, STATUS_OUT_FOR_DELIVERY, STATUS_RECEIVED
from shop_testing.customer import Customer, pizza
from shop_testing.helpers import wait_until

COMPONENTS = ("webapp", "status", "assemble", "bake", "delivery")
KITCHEN = ("assemble", "bake", "delivery")
JOURNEY = [STATUS_RECEIVED, STATUS_IN_OVEN, STATUS_OUT_FOR_DELIVERY, STATUS_DELIVERED]
# How long the tests wait for a fast kitchen to deliver every order after a disruption
# before calling an order lost (not a bound the shop promises).
DELIVERY_TIMEOUT_S = 300


def component_pods(component: str) -> list[dict]:
    return pods(NAMESPACE, f"{INSTANCE},app.kubernetes.io/component={component}")


def deployments() -> dict[str, dict]:
    items = get("deployments", "-n", NAMESPACE, "-l", INSTANCE)["items"]
    return {d["metadata"]["labels"]["app.kubernetes.io/component"]: d for d in items}


def rolled_out(component: str) -> bool:
    d = deployments()[component]
    status, want = d["status"], d["spec"]["replicas"]
    return (
        status.get("observedGeneration") == d["metadata"]["generation"]
        and status.get("updatedReplicas") == want
        and status.get("readyReplicas") == want
        and status.get("replicas") == want
    )


def all_rolled_out() -> bool:
    return all(rolled_out(c) for c in COMPONENTS)


def webapp_url() -> str:
    """The webapp's Service by its ClusterIP: kube-proxy's rules serve the host too."""
    svc = get("service", "-n", NAMESPACE, f"{RELEASE}-webapp")
    return f"http://{svc['spec']['clusterIP']}:{svc['spec']['ports'][0]['port']}"


def statuses(customer: Customer, order_id: str) -> list[int]:
    return [e["status"] for e in customer.get(order_id)["events"]]


class Load:
    """Customers ordering steadily in the background. An order counts once the webapp answered
    201 (durably in Kafka); a request the webapp refused or that failed in flight (a pod going
    away) is counted apart: it was never accepted."""

    def __init__(self, customers: int = 3, interval: float = 0.4):
        base = webapp_url()
        self.customers = [Customer(base, f"load-{i}-{int(time.time())}") for i in range(customers)]
        self.interval = interval
        self.refused: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load", daemon=True)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            customer = self.customers[n % len(self.customers)]
            try:
                reply = customer.http.post(f"{customer.base}/api/orders", json=pizza(n), timeout=15)
                if reply.status_code == 201:
                    customer.orders.append(reply.json()["order_id"])
                else:
                    self.refused[f"HTTP {reply.status_code}"] += 1
            except requests.RequestException as exc:
                self.refused[type(exc).__name__] += 1
            n += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    @property
    def accepted(self) -> int:
        return sum(len(c.orders) for c in self.customers)

    def wait_for_orders(self, count: int) -> None:
        target = self.accepted + count
        wait_until(lambda: self.accepted >= target, 120, f"{count} more accepted orders", interval=0.5)

    def check_every_order_delivered_once(self) -> None:
        """Every accepted order ends delivered, its timeline each status exactly once, in order."""

        def undelivered():
            return [(c, o) for c in self.customers for o in c.orders if c.get(o)["status"] != STATUS_DELIVERED]

        try:
            wait_until(lambda: not undelivered(), DELIVERY_TIMEOUT_S, "every accepted order delivered", interval=2)
        except AssertionError:
            stuck = {o: c.get(o)["status"] for c, o in undelivered()}
            raise AssertionError(
                f"{len(stuck)} of {self.accepted} accepted orders not delivered within "
                f"{DELIVERY_TIMEOUT_S} s (order: last status): {stuck}"
            ) from None
        for c in self.customers:
            listed = [o["order_id"] for o in c.listed()]
            assert Counter(listed) == Counter(c.orders), f"{c.username}: listed orders differ from the accepted ones"
            for order_id in c.orders:
                assert statuses(c, order_id) == JOURNEY, f"order {order_id}: {statuses(c, order_id)}"
        print(
            f"\n{self.accepted} orders accepted, each delivered once; refused or failed in flight: "
            f"{dict(self.refused) or 0}"
        )


class ReadyWatch:
    """Samples every Deployment's ready pods while a disruption runs: the fewest seen per component."""

    def __init__(self):
        self.fewest = {c: 99 for c in COMPONENTS}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ready-watch", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            by_component = Counter(
                p["metadata"]["labels"]["app.kubernetes.io/component"] for p in pods(NAMESPACE, INSTANCE) if is_ready(p)
            )
            for c in COMPONENTS:
                self.fewest[c] = min(self.fewest[c], by_component[c])
            self._stop.wait(0.5)

    def __enter__(self) -> ReadyWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
