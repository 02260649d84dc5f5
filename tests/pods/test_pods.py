"""What `helm install` would start, run for real: every pod the chart renders, under podman.

The chart is rendered against the session's Kafka broker (tests/pods/conftest.py) and
kubelet.py runs each Deployment's pod as its spec says (image, env from the
rendered ConfigMaps and Secret, user, read-only root, dropped capabilities,
emptyDir tmpfs, memory and CPU limits) and probes it on the spec's schedule.
The tests run in file order on one set of pods, as a release lives:

1. every pod starts; startup, readiness and liveness probes pass within what the spec allows;
2. orders placed through the webapp pod are delivered (memory measured idle and under load);
3. the kitchen pods are stopped as kubelet stops them (SIGTERM, grace period) while orders are
   in flight: each exits 0 with its graceful-shutdown log; replacements deliver every order;
4. the status pod is SIGKILLed and replaced: it rebuilds the read model from Kafka, and the
   webapp's pages show every order again;
5. the chart's `helm test` pod passes against the running pods;
6. image sizes and memory use are reported (artifacts/pods-report.txt);
7. every pod stops gracefully on SIGTERM within its terminationGracePeriodSeconds.

docs/pods.md says how to run it and what it proves.
"""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from kubelet import REPO, Container

from kafka_common.menu import STATUS_DELIVERED, STATUS_IN_OVEN, STATUS_OUT_FOR_DELIVERY, STATUS_RECEIVED
from local_kafka.customer import Customer
from local_kafka.testing import wait_until

# A cold image build takes minutes; with cached images the module runs in about two.
pytestmark = [pytest.mark.slow, pytest.mark.kafka, pytest.mark.timeout(1800)]

COMPONENTS = ("webapp", "status", "assemble", "bake", "delivery")
KITCHEN = ("assemble", "bake", "delivery")
FULL_JOURNEY = [STATUS_RECEIVED, STATUS_IN_OVEN, STATUS_OUT_FOR_DELIVERY, STATUS_DELIVERED]
# Not a pod-spec bound: how long the test waits for a fast kitchen (KITCHEN_TIME_SCALE 0.1,
# an order takes 2-4 s) before it calls an order lost.
DELIVERY_TIMEOUT_S = 120
# The rendered Deployments set no progressDeadlineSeconds: Kubernetes' default is how long a
# rollout (and `helm install --wait`) waits for a pod to become ready.
PROGRESS_DEADLINE_S = 600
REPORT_FILE = REPO / "artifacts" / "pods-report.txt"

GRACEFUL_LOG = {
    # kafka_common's KitchenRunner (runner.py), ProjectionRunner, and gunicorn + the webapp.
    "assemble": ["shutdown requested", "shutting down: no new work is taken", "consumer closed, left the group",
                 "producer flushed", "shutdown complete"],
    "status": ["shutdown requested", "shutting down", "consumer closed", "shutdown complete"],
    # gunicorn's graceful stop: each worker flushes its producer, then the master exits 0.
    "webapp": ["Handling signal: term", "worker exiting: flushing the producer", "producer flushed",
               "worker exited", "Shutting down: Master"],
}
GRACEFUL_LOG["bake"] = GRACEFUL_LOG["delivery"] = GRACEFUL_LOG["assemble"]

REPORT: dict[str, dict] = {"probes": {}, "memory_idle": {}, "memory_load": {}, "shutdown": {}}



class Shop:
    def __init__(self, kubelet):
        self.kubelet = kubelet
        self.pods: dict[str, Container] = {}
        self.customers: list[Customer] = []
        self.base = f"http://127.0.0.1:{kubelet.port_of('pizza-shop-webapp')}"

    def start(self, component: str) -> Container:
        self.pods[component] = self.kubelet.start("Deployment", f"pizza-shop-{component}")
        return self.pods[component]

    def customer(self, username: str) -> Customer:
        c = Customer(self.base, username)
        self.customers.append(c)
        return c

    def all_orders(self) -> dict[str, list[str]]:
        return {c.username: list(c.orders) for c in self.customers}

    def check_probes(self) -> None:
        for name, pod in self.pods.items():
            assert not pod.state.violations, f"{name}: {pod.state.violations}\n{pod.log_tail()}"


@pytest.fixture(scope="module")
def shop(kubelet) -> Shop:
    """The five Deployments' pods, started together as `helm install` starts them."""
    s = Shop(kubelet)
    deployments = sorted(d["metadata"]["name"] for d in kubelet.deployments())
    assert deployments == sorted(f"pizza-shop-{c}" for c in COMPONENTS)
    for component in COMPONENTS:
        s.start(component)
    return s


def wait_started_and_ready(pod: Container) -> tuple[float, float]:
    started = pod.wait_started()
    ready = pod.wait_ready(PROGRESS_DEADLINE_S)
    return started, ready


class MemorySampler:
    """The highest working set of each container while it runs (sampled about twice a second)."""

    def __init__(self, pods: dict[str, Container]):
        self.pods = pods
        self.peak = dict.fromkeys(pods, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, pod in self.pods.items():
                self.peak[name] = max(self.peak[name], pod.memory_working_set())
            self._stop.wait(0.5)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=30)


def assert_graceful_log(component: str, pod: Container) -> None:
    """The log shows the component's shutdown steps in order."""
    messages = [str(r.get("event", "")) for r in pod.json_logs()]
    position = 0
    for step in GRACEFUL_LOG[component]:
        while position < len(messages) and not messages[position].startswith(step):
            position += 1
        assert position < len(messages), (
            f"{component}: graceful-shutdown step {step!r} missing or out of order in the log:\n{pod.log_tail(30)}")
        position += 1


def stop_and_check(component: str, pod: Container) -> float:
    took, code = pod.stop()
    grace = pod.spec.grace
    assert code == 0, f"{component} exited {code} after SIGTERM (took {took:.1f} s)\n{pod.log_tail(30)}"
    assert took < grace, f"{component} took {took:.1f} s to stop; grace period {grace:.0f} s"
    assert_graceful_log(component, pod)
    REPORT["shutdown"].setdefault(component, []).append(round(took, 2))
    return took


def mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


# --- the tests, in the order a release lives ----------------------------------------------------

def test_every_pod_starts_and_passes_its_probes(shop):
    """startup within initialDelay + period x failureThreshold; then ready; liveness passing."""
    with ThreadPoolExecutor(len(shop.pods)) as pool:
        timings = dict(zip(shop.pods, pool.map(wait_started_and_ready, shop.pods.values()), strict=True))
    for name, pod in shop.pods.items():
        startup = pod.spec.probes["startup"]
        started, ready = timings[name]
        assert started <= startup.startup_bound
        # liveness runs after startup: wait for its first result, which must be a success.
        pod.wait_for("a liveness probe", lambda s: any(k == "liveness" for _, k, _, _ in s.history),
                     started + pod.spec.probes["liveness"].period + pod.spec.probes["liveness"].timeout + 5)
        first_liveness = next(ok for _, k, ok, _ in pod.state.history if k == "liveness")
        assert first_liveness, f"{name}: first liveness probe failed: {pod.state.history}"
        REPORT["probes"][name] = {"started_s": round(started, 1), "ready_s": round(ready, 1),
                                  "startup_bound_s": startup.startup_bound}

        # The pod spec was applied: the running process's identity, capabilities and limits.
        data = pod.inspect()
        proc = dict(line.split(":", 1) for line in Path(f"/proc/{data['State']['Pid']}/status").read_text().splitlines())
        assert proc["Uid"].split() == ["10001"] * 4 and proc["Gid"].split() == ["10001"] * 4
        assert "10001" in proc["Groups"].split()                        # fsGroup
        assert int(proc["CapEff"], 16) == int(proc["CapBnd"], 16) == 0  # capabilities drop ALL
        assert proc["NoNewPrivs"].strip() == "1"                         # allowPrivilegeEscalation false
        assert proc["Seccomp"].strip() == "2"                            # RuntimeDefault: a filter
        host = data["HostConfig"]
        assert host["ReadonlyRootfs"] is True
        assert host["Memory"] == pod.spec.memory_limit == 256 * 2**20
        assert host["NanoCpus"] == 10**9
    shop.check_probes()
    print("\nprobes (seconds after container start):")
    for name, t in REPORT["probes"].items():
        print(f"  {name:9} startup passed {t['started_s']:5.1f} (bound {t['startup_bound_s']:.0f}), ready {t['ready_s']:5.1f}")


def test_orders_placed_through_the_webapp_pod_are_delivered(shop):
    for name, pod in shop.pods.items():
        REPORT["memory_idle"][name] = pod.memory_working_set()
    customers = [shop.customer(f"pods-{i}") for i in range(4)]

    def order_many(customer: Customer) -> list[str]:
        return [customer.order(n) for n in range(10)]

    with MemorySampler(shop.pods) as sampler, ThreadPoolExecutor(len(customers)) as pool:
        placed = dict(zip([c.username for c in customers], pool.map(order_many, customers), strict=True))
        for c in customers:
            wait_until(lambda c=c: c.delivered(placed[c.username]), DELIVERY_TIMEOUT_S, interval=0.5, what=
                       f"{c.username}'s orders to be delivered")
    REPORT["memory_load"] = dict(sampler.peak)
    for c in customers:
        for order_id in placed[c.username]:
            order = c.get(order_id)
            assert order["status"] == STATUS_DELIVERED
            assert [e["status"] for e in order["events"]] == FULL_JOURNEY, order
    shop.check_probes()


def test_kitchen_pods_stop_gracefully_and_no_order_is_lost(shop):
    customer = shop.customer("pods-kitchen")
    first = [customer.order(n) for n in range(8)]
    # Stop while the kitchen is busy: as soon as one of them is in the oven.
    wait_until(lambda: any(customer.get(o)["status"] == STATUS_IN_OVEN for o in first), DELIVERY_TIMEOUT_S,
               "an order in the oven")
    kitchen = {name: shop.pods[name] for name in KITCHEN}
    with ThreadPoolExecutor(len(kitchen)) as pool:
        list(pool.map(lambda item: stop_and_check(*item), kitchen.items()))
    in_flight = [o for o in first if customer.get(o)["status"] != STATUS_DELIVERED]
    assert in_flight, "every order was delivered before the kitchen stopped: nothing was in flight"
    # Orders taken while the kitchen is down wait in Kafka.
    later = [customer.order(n) for n in range(8, 11)]
    assert all(customer.get(o)["status"] == STATUS_RECEIVED for o in later)

    # New pods from the same spec, as the Deployment's ReplicaSet would make.
    for name in KITCHEN:
        shop.start(name)
    for name in KITCHEN:
        wait_started_and_ready(shop.pods[name])
    wait_until(lambda: customer.delivered(first + later), DELIVERY_TIMEOUT_S, "every order to be delivered", 0.5)
    for order_id in first + later:
        assert [e["status"] for e in customer.get(order_id)["events"]] == FULL_JOURNEY
    print(f"\nkitchen stopped with {len(in_flight)} of {len(first)} orders in flight; "
          f"all {len(first) + len(later)} delivered after the restart; "
          f"stop took {', '.join(f'{k} {v[-1]:.1f} s' for k, v in REPORT['shutdown'].items())}")
    shop.check_probes()


ORDER_ROW = re.compile(r'<a href="/orders/([0-9a-f]+)">\s*<span class="badge[^"]*">([^<]+)</span>')


def test_status_pod_killed_and_replaced_rebuilds_the_read_model(shop):
    orders = shop.all_orders()
    assert sum(len(v) for v in orders.values()) >= 40
    status = shop.pods["status"]
    status.kill()
    assert status.inspect()["State"]["ExitCode"] == 137
    # Meanwhile the webapp says so instead of showing nothing.
    someone = Customer(shop.base, "pods-0")
    assert someone.http.get(f"{shop.base}/api/orders", timeout=15).status_code == 503
    page = someone.http.get(f"{shop.base}/orders", timeout=15)
    assert page.status_code == 503 and "temporarily unavailable" in page.text

    replacement = shop.start("status")
    started, ready = wait_started_and_ready(replacement)
    REPORT["probes"]["status (replacement)"] = {"started_s": round(started, 1), "ready_s": round(ready, 1),
                                                "startup_bound_s": replacement.spec.probes["startup"].startup_bound}
    rebuilt = [r for r in replacement.json_logs() if str(r.get("event", "")).startswith("starting: rebuilding")]
    assert rebuilt, replacement.log_tail()

    # Fresh sessions: nothing vouched for by a session cookie, everything from the read model.
    for username, order_ids in orders.items():
        c = Customer(shop.base, username)
        listed = c.http.get(f"{shop.base}/api/orders", timeout=15)
        assert listed.status_code == 200, listed.text
        by_id = {o["order_id"]: o for o in listed.json()["orders"]}
        assert set(order_ids) <= set(by_id), f"{username}: missing {set(order_ids) - set(by_id)}"
        assert all(by_id[o]["status"] == STATUS_DELIVERED for o in order_ids)
        page = c.http.get(f"{shop.base}/orders", timeout=15)
        assert page.status_code == 200
        rows = dict(ORDER_ROW.findall(page.text))
        assert set(order_ids) <= set(rows), f"{username}: my-orders page lacks {set(order_ids) - set(rows)}"
        assert {rows[o] for o in order_ids} == {"Your pizza was delivered"}
        for order_id in order_ids:
            detail = c.get(order_id)
            assert [e["status"] for e in detail["events"]] == FULL_JOURNEY
    print(f"\nstatus killed; replacement ready after {ready:.1f} s with all "
          f"{sum(len(v) for v in orders.values())} orders")
    shop.check_probes()


def test_helm_test_pod_passes(shop, kubelet):
    (pod_name,) = [p["metadata"]["name"] for p in kubelet.release.of_kind("Pod")]
    pod = kubelet.start("Pod", pod_name)
    deadline = float(pod.spec.active_deadline or 600)
    from kubelet import podman

    waited = podman("wait", pod.name, timeout=deadline, check=False)
    code = waited.stdout.strip()
    logs = pod.logs()
    assert code == "0", f"helm test pod exited {code!r}:\n{logs[-3000:]}"
    assert "delivered" in logs.lower(), logs


def test_image_sizes_and_memory_report(shop, images):
    lines = ["pizza-shop pods under podman (tests/pods)", "", "image sizes:"]
    for name in COMPONENTS:
        lines.append(f"  localhost/pizza-{name}: {images[name]['Size'] / 1e6:.1f} MB")
    lines += ["", "probes (seconds after container start):"]
    for name, t in REPORT["probes"].items():
        lines.append(f"  {name:22} startup passed {t['started_s']:5.1f} s (spec allows {t['startup_bound_s']:.0f} s), "
                     f"ready {t['ready_s']:5.1f} s")
    limits = {mib(p.spec.memory_limit) for p in shop.pods.values()}
    lines += ["", f"memory working set (limit {', '.join(sorted(limits))}): idle / peak under load "
              "(40 orders from 4 customers):"]
    for name in COMPONENTS:
        idle, load = REPORT["memory_idle"].get(name), REPORT["memory_load"].get(name)
        assert idle and load, f"no memory numbers for {name}"
        lines.append(f"  {name:9} {mib(idle):>10} / {mib(load):>10}")
    for name, pod in shop.pods.items():
        assert pod.inspect()["State"]["OOMKilled"] is False
        assert REPORT["memory_load"][name] < pod.spec.memory_limit
    graces = {f"{p.spec.grace:.0f} s" for p in shop.pods.values()}
    lines += ["", f"graceful shutdown of the kitchen with orders in flight (SIGTERM to exit 0; "
              f"grace period {', '.join(sorted(graces))}):"]
    for name, took in REPORT["shutdown"].items():
        lines.append(f"  {name:9} {', '.join(f'{t:.1f} s' for t in took)}")
    REPORT_FILE.parent.mkdir(exist_ok=True)
    REPORT_FILE.write_text("\n".join(lines) + "\n")
    print("\n" + "\n".join(lines))


def test_every_pod_stops_gracefully_on_sigterm(shop):
    shop.check_probes()
    with ThreadPoolExecutor(len(shop.pods)) as pool:
        took = dict(zip(shop.pods, pool.map(lambda item: stop_and_check(*item), shop.pods.items()), strict=True))
    print("\nshutdown on SIGTERM: " + ", ".join(f"{k} {v:.1f} s" for k, v in took.items()))
    with REPORT_FILE.open("a") as f:
        f.write("final stop (uninstall): " + ", ".join(f"{k} {v:.1f} s" for k, v in took.items()) + "\n")
    assert Path(REPORT_FILE).is_file()
