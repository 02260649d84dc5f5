"""The kitchen under faults: the scenario of `make chaos` and of tests/faults.

    python -m benchmarks.faults [--time-scale 0.03] [--rate 3] [--broker-down 10] [--log-dir DIR]

The fault test (tests/faults/test_faults.py) runs this scenario and asserts that nothing
went wrong; this program runs the same scenario and prints its figures. Only the shop's
public surface is used: console scripts, environment variables, HTTP endpoints, topics
and consumer groups.

The shop. A local broker of its own (stopped and started again on the same data dir),
two replicas each of assemble, bake and delivery, two of status, one webapp. Every
replica gets INSTANCE_ID=<component>-<slot> and keeps it when restarted, as a pod keeps
its name across container restarts. Customers order through the webapp's JSON API at a
steady few orders/s for the whole run. KITCHEN_TIME_SCALE is small but not 0, so every
order spends a little time in each step and a fault usually hits work in progress.

The faults, one after the other; after each the scenario waits until the shop is back to
normal (every kitchen group stable, each of its members holding partitions, and no input
waiting longer than NORMAL_WAIT_S), then lets it run calmly for a few seconds:
  1-3. kill -9 of assemble-0, bake-0, delivery-0, each restarted at once with the same identity;
  4.   the broker stopped (SIGTERM: a controlled shutdown), down for a while, started on the same data;
  5.   SIGSTOP of bake-1 until its group has evicted it (longer than its session timeout, whatever
       the service configures), then SIGCONT;
  6.   SIGTERM of delivery-1 (a rolling restart's step), restarted once it has exited.
The scenario is the orchestrator: a replica it killed or stopped is restarted; a replica that
exits by itself is an unexpected exit, recorded with its exit code and last lines, then restarted.

Measured (printed, never asserted), from a live read_committed reader of every topic that
notes when each record becomes visible (the stall definition is in fault_analysis):
  - per fault, the longest stall of the partitions the faulty replica held just before the
    fault, and of the other replica's partitions (the survivor should not stop at all); a
    stall that began more than NORMAL_WAIT_S before the fault is not counted as the fault's;
  - broker: from the broker answering metadata again to the first committed kitchen output of
    an order placed after it went down, to that order's delivery, to every stage committing,
    and to the webapp's first accepted order;
  - seconds from SIGTERM to exit, against the chart's terminationGracePeriodSeconds.
Proved (ChaosResult.problems() is empty): from a final read_committed read of every topic,
no order lost, repeated, incomplete or out of order, nothing dead-lettered; every status
replica's read model shows every order's full timeline; no exit the scenario did not cause;
exit code 0 after every SIGTERM.
"""

from __future__ import annotations

import argparse
import queue
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import requests
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from benchmarks.fault_analysis import (
    STAGE_BY_NAME,
    STAGES,
    Gap,
    LogVerdict,
    Seen,
    Stage,
    first_after,
    judge_log,
    judge_timelines,
    longest,
    pending_inputs,
    stage_gaps,
    status_of,
)
from benchmarks.harness import http_status, machine_lines
from kafka_common.shop import topics
from kafka_common.shop.status import STATUS_DELIVERED
from local_kafka import LocalKafka
from local_kafka.broker import HOST, KAFKA_VERSION, free_port
from shop_testing.customer import Customer, pizza
from shop_testing.helpers import read_records, unique_name
from shop_testing.process import ServiceProcess

KITCHEN = ("assemble", "bake", "delivery")
WATCHED = (topics.PIZZA_ORDERED, topics.PIZZA_ASSEMBLED, topics.PIZZA_BAKED, topics.PIZZA_STATUS, topics.PIZZA_DLQ)
NORMAL_WAIT_S = 3.0  # an input waiting longer than this means the shop is not back to normal
ORDER_TIMEOUT_S = 15.0  # a customer's POST /api/orders
CHECK_EVERY_S = 0.2  # how often a condition is checked while waiting for it
MAX_RESTARTS = 5  # unexpected exits of one replica before it is left down (a crash loop)
# What the loop must reach (printed next to the figures; a test asserts no time).
KILL_STALL_TARGET_S = 10.0
BROKER_RECOVERY_TARGET_S = 10.0


@dataclass(frozen=True)
class ChaosSettings:
    replicas: int = 2  # of each kitchen service
    status_replicas: int = 2
    time_scale: float = 0.03  # KITCHEN_TIME_SCALE: steps of 0.06-0.9 s
    order_rate: float = 3.0  # orders per second through the webapp
    clients: int = 4  # customers ordering in parallel (at most this many requests open)
    calm_s: float = 6.0  # normal operation before the first fault and between faults
    broker_down_s: float = 10.0
    recovery_timeout_s: float = 60.0  # from a fault (or the broker's return) until back to normal
    eviction_timeout_s: float = 90.0  # for a stopped replica to leave its group
    drain_timeout_s: float = 90.0  # for every order to be delivered once the customers stop
    start_timeout_s: float = 180.0  # for the shop (and the broker) to start on a busy machine
    grace_s: float = 30.0  # the Helm chart's terminationGracePeriodSeconds


# --------------------------------------------------------------------------- the replicas


@dataclass
class Replica:
    component: str
    slot: int
    proc: ServiceProcess
    http_port: int
    api_port: int | None = None
    expected_exit: bool = False  # the scenario is stopping it: its exit is no surprise
    restarts: int = 0

    @property
    def name(self) -> str:
        return f"{self.component}-{self.slot}"


@dataclass(frozen=True)
class Exit:
    """How a replica ended after a SIGTERM (or an unexpected exit: honoured is then meaningless)."""

    replica: str
    code: int | None
    seconds: float  # from the signal (or from when it was noticed) to the exit
    honoured: bool = True  # exited by itself within the grace period
    log_tail: str = ""


class Fleet:
    """The replicas as an orchestrator sees them: started, restarted with the same identity, watched."""

    def __init__(self, bootstrap: str, log_dir: Path, clock: Callable[[], float], say: Callable[[str], None]):
        self.bootstrap = bootstrap
        self.log_dir = log_dir
        self.clock = clock
        self.say = say
        self.replicas: dict[str, Replica] = {}
        self.unexpected: list[tuple[float, Exit]] = []

    def __getitem__(self, name: str) -> Replica:
        return self.replicas[name]

    def of(self, component: str) -> list[Replica]:
        return [r for r in self.replicas.values() if r.component == component]

    def start(self, component: str, slot: int, env: dict[str, str] | None = None) -> Replica:
        name = f"{component}-{slot}"
        http_port = free_port()
        # The client.id names the replica in the group's description (held_by); a service
        # that derives its own from INSTANCE_ID ends it the same way.
        proc_env = {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "LOG_FORMAT": "console",
            "HTTP_HOST": HOST,
            "HTTP_PORT": str(http_port),
            "INSTANCE_ID": name,
            "KAFKA_CLIENT_ID": f"pizza-{component}-{name}",
            **(env or {}),
        }
        api_port = None
        if component == "status":
            api_port = free_port()
            proc_env["API_PORT"] = str(api_port)
        proc = ServiceProcess(
            name, f"pizza-{component}", env=proc_env, http_port=http_port, log_file=self.log_dir / f"{name}.log"
        )
        replica = Replica(component, slot, proc, http_port, api_port)
        self.replicas[name] = replica
        proc.start()
        return replica

    def tend(self) -> None:
        """Notice replicas that exited by themselves: record them, restart them as a kubelet would."""
        for r in self.replicas.values():
            if r.expected_exit or r.proc.popen is None or r.proc.running:
                continue
            code = r.proc.wait(5.0)
            exit_ = Exit(r.name, code, 0.0, log_tail=r.proc.log_tail(30))
            self.unexpected.append((self.clock(), exit_))
            if r.restarts >= MAX_RESTARTS:
                self.say(f"{r.name} exited by itself with code {code} again: left down (crash loop)")
                r.expected_exit = True
                continue
            self.say(f"{r.name} exited by itself with code {code}: restarting it (see its log {r.proc.log_file})")
            r.restarts += 1
            r.proc.start()

    def crash(self, name: str) -> None:
        """kill -9, then start it again at once with the same identity and ports."""
        r = self.replicas[name]
        r.expected_exit = True
        r.proc.kill()
        r.proc.wait(10.0)
        r.proc.start()
        r.expected_exit = False

    def terminate(self, name: str, grace_s: float) -> Exit:
        """SIGTERM; SIGKILL if it has not exited after the grace period, as Kubernetes does."""
        return self._terminate([self.replicas[name]], grace_s)[0]

    def restart(self, name: str) -> None:
        r = self.replicas[name]
        r.proc.start()
        r.expected_exit = False

    def shutdown(self, grace_s: float) -> list[Exit]:
        return self._terminate([r for r in self.replicas.values() if r.proc.running], grace_s)

    def _terminate(self, replicas: Sequence[Replica], grace_s: float) -> list[Exit]:
        for r in replicas:
            r.expected_exit = True
            r.proc.terminate()
        began = self.clock()
        exited: dict[str, float] = {}
        while len(exited) < len(replicas) and self.clock() - began < grace_s:
            for r in replicas:
                if r.name not in exited and not r.proc.running:
                    exited[r.name] = self.clock() - began
            time.sleep(0.05)
        results = []
        for r in replicas:
            if r.name not in exited:
                r.proc.kill()
            code = r.proc.wait(10.0)
            seconds = exited.get(r.name, self.clock() - began)
            results.append(Exit(r.name, code, seconds, honoured=r.name in exited, log_tail=r.proc.log_tail(15)))
        return results

    def kill_all(self) -> None:
        for r in self.replicas.values():
            r.expected_exit = True
            r.proc.stop(timeout=0)


# --------------------------------------------------------------------------- what Kafka shows


class LogWatcher:
    """A read_committed reader of every topic from the beginning; notes when each record became visible."""

    def __init__(self, config: dict, clock: Callable[[], float]):
        self.clock = clock
        self.consumer = Consumer(
            {
                **config,
                "group.id": unique_name("chaos-watcher"),
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "auto.offset.reset": "earliest",
                # Sees the broker back within half a second: its own reconnection
                # must not add to the recovery it measures.
                "reconnect.backoff.ms": 50,
                "reconnect.backoff.max.ms": 500,
                "error_cb": lambda err: None,
            }
        )  # the broker restart is expected
        metadata = self.consumer.list_topics(timeout=30)
        self.consumer.assign(
            [TopicPartition(t, p, OFFSET_BEGINNING) for t in WATCHED for p in metadata.topics[t].partitions]
        )
        self._seen: list[Seen] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="log-watcher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            msg = self.consumer.poll(0.1)
            if msg is None or msg.error():
                continue
            key = msg.key().decode("utf-8", "replace") if msg.key() else ""
            seen = Seen(
                msg.topic(), msg.partition(), msg.offset(), key, status_of(msg.topic(), msg.value()), self.clock()
            )
            with self._lock:
                self._seen.append(seen)

    def snapshot(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)

    def delivered(self) -> set[str]:
        return {r.key for r in self.snapshot() if r.topic == topics.PIZZA_STATUS and r.status == STATUS_DELIVERED}

    def oldest_wait(self, since: float = 0.0) -> tuple[float, str]:
        """Seconds the longest-waiting input (visible since `since`) has been waiting (0 if none), and which."""
        now = self.clock()
        waiting = [
            (now - r.at, f"{r.topic}[{r.partition}]@{r.offset} for {stage.name}")
            for stage, r in pending_inputs(self.snapshot())
            if r.at >= since
        ]
        return max(waiting, default=(0.0, "-"))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5.0)
        self.consumer.close()


@dataclass(frozen=True)
class Member:
    member_id: str
    name: str  # group.instance.id if static, else client.id
    partitions: frozenset[tuple[str, int]]


@dataclass(frozen=True)
class GroupView:
    state: str
    members: tuple[Member, ...]

    def __str__(self) -> str:
        held = ", ".join(f"{m.name} {len(m.partitions)}" for m in self.members)
        return f"{self.state}, {len(self.members)} member(s) holding partitions: {held or '-'}"


class Groups:
    """The kitchen's consumer groups, as the broker describes them."""

    def __init__(self, config: dict):
        self.config = config
        self.admin = AdminClient(config)
        metadata = self.admin.list_topics(timeout=30)
        self.partitions = {t: sorted(metadata.topics[t].partitions) for t in WATCHED}
        self.last_error: dict[str, str] = {}

    def describe(self, stage: Stage) -> GroupView | None:
        try:
            future = self.admin.describe_consumer_groups([stage.group], request_timeout=5)[stage.group]
            group = future.result(timeout=10)  # the request's own timeout is not trusted to hold
        except Exception as exc:  # KafkaException, TimeoutError: the broker is away or the group is changing
            self.last_error[stage.group] = f"{type(exc).__name__}: {exc}"
            # Seen here: after the broker's restart an admin client kept timing out while a new
            # one answered at once. A fresh client for the next look costs a few milliseconds.
            self.admin = AdminClient(self.config)
            return None
        members = tuple(
            Member(
                m.member_id,
                m.group_instance_id or m.client_id,
                frozenset((tp.topic, tp.partition) for tp in m.assignment.topic_partitions),
            )
            for m in group.members
        )
        state = getattr(group.state, "name", str(group.state))
        return GroupView(state, members)

    def summary(self, stage: Stage) -> str:
        view = self.describe(stage)
        return f"{stage.group}: " + (str(view) if view else f"not described ({self.last_error.get(stage.group)})")

    def balanced(self, stage: Stage, members: int) -> bool:
        """Stable, `members` members, each holding some partitions, together all of them."""
        view = self.describe(stage)
        if view is None or view.state != "STABLE" or len(view.members) != members:
            return False
        wanted = {(t, p) for t in stage.consumes for p in self.partitions[t]}
        held = [m.partitions & wanted for m in view.members]
        return all(held) and set().union(*held) == wanted


def members_of(replica: Replica, view: GroupView) -> list[Member]:
    """The replica's members: named after its INSTANCE_ID (group.instance.id, or client.id)."""
    return [m for m in view.members if m.name.endswith(f"-{replica.name}")]


def held_by(replica: Replica, stage: Stage, before: GroupView | None, after: GroupView | None) -> frozenset[int] | None:
    """Partitions of the stage's input that the replica held in `before`.

    Its members are the ones named after it (members_of: after a broker restart the group can
    list a replica's old member next to its new one until the old one expires); otherwise the
    only member of `before` gone from `after` (a restarted or evicted consumer rejoins under
    a new member id). None when that cannot be told.
    """
    if before is None:
        return None
    named = members_of(replica, before)
    if not named and after is not None:
        remaining = {m.member_id for m in after.members}
        named = [m for m in before.members if m.member_id not in remaining]
        if len(named) != 1:
            return None
    if not named:
        return None
    return frozenset(p for m in named for t, p in m.partitions if t == stage.input)


# --------------------------------------------------------------------------- customers


@dataclass(frozen=True)
class Attempt:
    sent: float
    answered: float
    code: int  # HTTP status; 0 when no answer
    order_id: str | None


class Load:
    """Customers ordering through the webapp's JSON API at a steady rate.

    At most `clients` requests are open; when all are waiting (a broker outage makes the
    webapp wait for Kafka), the tick is skipped and counted rather than queued.
    """

    def __init__(self, base_url: str, rate: float, clients: int, clock: Callable[[], float]):
        self.rate = rate
        self.clock = clock
        self.idle: queue.Queue[Customer] = queue.Queue()
        for i in range(clients):
            self.idle.put(Customer(base_url, f"chaos{i}", timeout=ORDER_TIMEOUT_S))
        self.pool = ThreadPoolExecutor(clients, thread_name_prefix="customer")
        self.attempts: list[Attempt] = []
        self.not_sent = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pace, name="load", daemon=True)

    def start(self) -> Load:
        self._thread.start()
        return self

    def _pace(self) -> None:
        n, next_at = 0, self.clock()
        while not self._stop.wait(max(0.0, next_at - self.clock())):
            next_at += 1.0 / self.rate
            try:
                customer = self.idle.get_nowait()
            except queue.Empty:
                self.not_sent += 1
                continue
            self.pool.submit(self._order, customer, n)
            n += 1

    def _order(self, customer: Customer, n: int) -> None:
        sent = self.clock()
        try:
            reply = customer.http.post(f"{customer.base}/api/orders", json=pizza(n), timeout=ORDER_TIMEOUT_S)
            code = reply.status_code
            order_id = reply.json()["order_id"] if code == 201 else None
        except (requests.RequestException, ValueError, KeyError):
            code, order_id = 0, None
        finally:
            self.idle.put(customer)
        with self._lock:
            self.attempts.append(Attempt(sent, self.clock(), code, order_id))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.pool.shutdown(wait=True)

    def acknowledged(self) -> set[str]:
        with self._lock:
            return {a.order_id for a in self.attempts if a.order_id}

    def counts(self) -> dict[str, int]:
        with self._lock:
            codes = [a.code for a in self.attempts]
        return {
            "placed (201)": codes.count(201),
            "refused (503)": codes.count(503),
            "no answer": codes.count(0),
            "other answers": sum(c not in (0, 201, 503) for c in codes),
            "not sent (every customer waiting)": self.not_sent,
        }


# --------------------------------------------------------------------------- the scenario


@dataclass
class Fault:
    kind: str  # "kill -9", "broker stop/start", "SIGSTOP", "SIGTERM"
    target: str  # a replica, or "broker"
    stages: tuple[str, ...]  # the stages whose partitions it can stall
    started: float
    ended: float = 0.0
    back_to_normal: bool = False
    target_partitions: frozenset[int] | None = None  # of the stage's input, held just before the fault
    figures: dict[str, float | None] = field(default_factory=dict)  # named durations in seconds
    marks: dict[str, float] = field(default_factory=dict)  # named instants
    recovery: dict[str, float | None] = field(default_factory=dict)  # broker: seconds after it was back
    exit: Exit | None = None


@dataclass
class ChaosResult:
    settings: ChaosSettings
    log_dir: Path
    seconds: float = 0.0
    faults: list[Fault] = field(default_factory=list)
    gaps: dict[str, list[Gap]] = field(default_factory=dict)
    baseline: tuple[float, float] = (0.0, 0.0)
    load: dict[str, int] = field(default_factory=dict)
    drained: bool = False
    verdict: LogVerdict = field(default_factory=LogVerdict)
    read_model: dict[str, dict[str, list[int] | None]] = field(default_factory=dict)  # replica -> bad timelines
    read_model_orders: int = 0
    records: int = 0  # committed records in the final read
    unseen: int = 0  # of which the live reader never saw (its figures are then incomplete)
    unexpected: list[tuple[float, Exit]] = field(default_factory=list)
    shutdown: list[Exit] = field(default_factory=list)

    def sigterm_exits(self) -> list[Exit]:
        return [f.exit for f in self.faults if f.exit is not None] + self.shutdown

    def problems(self) -> list[str]:
        """What the fault test fails on: correctness, never a duration."""
        found = list(self.verdict.problems())
        if not self.drained:
            found.append(
                f"not every order was delivered within {self.settings.drain_timeout_s:.0f} s "
                f"after the customers stopped"
            )
        for replica, bad in self.read_model.items():
            if bad:
                found.append(
                    f"{replica}'s read model: {len(bad)} of {self.read_model_orders} order(s) without the "
                    f"full timeline 100, 200, 300, 400, e.g. {dict(list(bad.items())[:3])}"
                )
        for at, e in self.unexpected:
            found.append(
                f"{e.replica} exited by itself with code {e.code} at {at:.1f} s; its last lines:\n{e.log_tail}"
            )
        for e in self.sigterm_exits():
            if e.honoured and e.code != 0:
                found.append(f"{e.replica} exited with code {e.code} after SIGTERM; its last lines:\n{e.log_tail}")
        return found


class Scenario:
    def __init__(
        self, kafka: LocalKafka, log_dir: Path, settings: ChaosSettings | None = None, out: TextIO | None = None
    ):
        self.kafka = kafka
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.settings = settings or ChaosSettings()
        self.out = out or sys.stdout
        self._t0 = time.monotonic()
        self.config = kafka.admin_config()
        self.fleet = Fleet(kafka.bootstrap, self.log_dir, self.clock, self.say)
        self.result = ChaosResult(self.settings, self.log_dir)
        self.watcher: LogWatcher | None = None
        self.groups: Groups | None = None
        self.load: Load | None = None

    def clock(self) -> float:
        """Seconds since the scenario began: every instant of the run is on this one clock."""
        return time.monotonic() - self._t0

    def say(self, text: str) -> None:
        print(f"# [{self.clock():6.1f} s] {text}", file=self.out, flush=True)

    # -- waiting ------------------------------------------------------------------------------
    def wait(
        self, condition: Callable[[], object], timeout: float, what: str, explain: Callable[[], str] | None = None
    ) -> float | None:
        """Check condition (tending the fleet) until it holds: the instant it held, or None after timeout."""
        deadline = self.clock() + timeout
        while True:
            self.fleet.tend()
            if condition():
                return self.clock()
            if self.clock() >= deadline:
                self.say(f"{what}: not within {timeout:.0f} s" + (f"; {explain()}" if explain else ""))
                return None
            time.sleep(CHECK_EVERY_S)

    def hold(self, seconds: float) -> None:
        """Let the shop run (the customers keep ordering), still tending the fleet."""
        until = self.clock() + seconds
        while self.clock() < until:
            self.fleet.tend()
            time.sleep(min(CHECK_EVERY_S, max(0.0, until - self.clock())))

    def normal(self, since: float = 0.0) -> bool:
        """Every kitchen replica up and in its balanced group; nothing that arrived since `since` waits long.

        Input older than `since` does not count: an order lost earlier would otherwise keep
        every later phase from ever being normal (it is reported by the verdict).
        """
        kitchen = [r for c in KITCHEN for r in self.fleet.of(c)]
        return (
            all(r.proc.running for r in kitchen)
            and all(self.groups.balanced(s, self.settings.replicas) for s in STAGES)
            and self.watcher.oldest_wait(since)[0] <= NORMAL_WAIT_S
        )

    def abnormal(self, since: float = 0.0) -> str:
        """What keeps the shop from being normal (for the log of a phase that did not recover)."""
        down = [r.name for c in KITCHEN for r in self.fleet.of(c) if not r.proc.running]
        waited, which = self.watcher.oldest_wait(since)
        return "; ".join(
            [f"down: {down}"] * bool(down)
            + [self.groups.summary(s) for s in STAGES]
            + [f"longest wait {waited:.1f} s ({which})"]
        )

    # -- set-up ------------------------------------------------------------------------------
    def start_shop(self) -> None:
        s = self.settings
        self.say(
            f"starting {s.status_replicas} status and {s.replicas} of each of {', '.join(KITCHEN)} "
            f"(KITCHEN_TIME_SCALE={s.time_scale}) on {self.kafka.bootstrap}"
        )
        kitchen_env = {"KITCHEN_TIME_SCALE": str(s.time_scale)}
        for slot in range(s.status_replicas):
            self.fleet.start("status", slot)
        for component in KITCHEN:
            for slot in range(s.replicas):
                self.fleet.start(component, slot, kitchen_env)
        status_url = self.status_api(self.fleet["status-0"])
        self.fleet.start("webapp", 0, {"STATUS_URL": status_url, "WEB_CONCURRENCY": "1"})
        for r in self.fleet.replicas.values():
            r.proc.wait_ready(s.start_timeout_s)
        self.groups = Groups(self.config)
        self.watcher = LogWatcher(self.config, self.clock)
        if self.wait(self.normal, s.start_timeout_s, "kitchen groups balanced", self.abnormal) is None:
            raise RuntimeError("the kitchen's consumer groups did not settle; see the logs in " + str(self.log_dir))
        self.say(f"shop ready; status API at {status_url}")

    def status_api(self, replica: Replica) -> str:
        """The query API's base URL: API_PORT where the service has one, else HTTP_PORT (older layout)."""
        replica.proc.wait_ready(self.settings.start_timeout_s)
        bases = [f"http://{HOST}:{p}" for p in (replica.api_port, replica.http_port)]

        found: list[str] = []

        def serving() -> bool:  # the API answers a listing; the other port answers 404 or nothing
            found[:] = [b for b in bases if http_status(f"{b}/api/orders?customer_id=0")[0] == 200][:1]
            return bool(found)

        if self.wait(serving, 30.0, f"{replica.name}'s query API") is None:
            raise RuntimeError(f"{replica.name} serves /api/orders on neither {bases}")
        return found[0]

    # -- the faults ------------------------------------------------------------------------------
    def begin(self, kind: str, target: str, stages: Iterable[str]) -> Fault:
        fault = Fault(kind, target, tuple(stages), started=self.clock())
        self.result.faults.append(fault)
        self.say(f"{kind} {target}")
        return fault

    def settle(
        self, fault: Fault, since: float, replica: Replica | None = None, before: GroupView | None = None
    ) -> None:
        """Wait (until recovery_timeout_s after `since`) for normal; then note the partitions the replica had held."""
        at = self.wait(
            lambda: self.normal(fault.started),
            self.remaining(since),
            "back to normal",
            lambda: self.abnormal(fault.started),
        )
        fault.ended = self.clock()
        fault.back_to_normal = at is not None
        fault.figures["back to normal"] = fault.ended - fault.started if at is not None else None
        if replica is not None:
            stage = STAGE_BY_NAME[replica.component]
            fault.target_partitions = held_by(replica, stage, before, self.groups.describe(stage))
        self.say(
            f"{fault.kind} {fault.target}: "
            + ("back to normal" if at is not None else "NOT back to normal")
            + f" after {fault.ended - fault.started:.1f} s"
        )

    def remaining(self, since: float) -> float:
        return max(0.0, since + self.settings.recovery_timeout_s - self.clock())

    def ready_again(self, fault: Fault, replica: Replica, since: float) -> None:
        at = self.wait(replica.proc.is_ready, self.remaining(since), f"{replica.name} ready again")
        fault.figures["ready after restart"] = None if at is None else at - since

    def kill9(self, name: str) -> None:
        replica = self.fleet[name]
        fault = self.begin("kill -9", name, (replica.component,))
        before = self.groups.describe(STAGE_BY_NAME[replica.component])
        self.fleet.crash(name)
        restarted = self.clock()
        self.ready_again(fault, replica, restarted)
        self.settle(fault, restarted, replica, before)

    def restart_broker(self) -> None:
        fault = self.begin("broker stop/start", "broker", KITCHEN)
        self.kafka.stop()
        fault.marks["down"] = self.clock()
        fault.figures["controlled shutdown"] = fault.marks["down"] - fault.started
        self.hold(self.settings.broker_down_s)
        began = self.clock()
        self.kafka.start(self.settings.start_timeout_s)
        fault.marks["back"] = self.clock()
        fault.figures["down"] = began - fault.marks["down"]
        fault.figures["broker start"] = fault.marks["back"] - began
        self.say(f"broker answering again after {fault.figures['broker start']:.1f} s")
        self.settle(fault, fault.marks["back"])

    def freeze(self, name: str) -> None:
        replica = self.fleet[name]
        stage = STAGE_BY_NAME[replica.component]
        fault = self.begin("SIGSTOP", name, (replica.component,))
        before = self.groups.describe(stage)
        replica.proc.signal(signal.SIGSTOP)
        evicted = self.wait(
            lambda: self.evicted(replica, stage, before),
            self.settings.eviction_timeout_s,
            f"{name} evicted from {stage.group}",
            lambda: self.groups.summary(stage),
        )
        fault.figures["evicted after"] = None if evicted is None else evicted - fault.started
        replica.proc.signal(signal.SIGCONT)
        continued = self.clock()
        fault.figures["stopped for"] = continued - fault.started
        self.say(f"SIGCONT {name} after {fault.figures['stopped for']:.1f} s")
        self.settle(fault, continued, replica, before)

    def evicted(self, replica: Replica, stage: Stage, before: GroupView | None) -> bool:
        """The group no longer counts the replica: its member is gone (or, unnamed, one member fewer, balanced)."""
        now = self.groups.describe(stage)
        if now is None:
            return False
        if before is not None and members_of(replica, before):
            return not members_of(replica, now)
        return self.groups.balanced(stage, self.settings.replicas - 1)

    def sigterm(self, name: str) -> None:
        replica = self.fleet[name]
        fault = self.begin("SIGTERM", name, (replica.component,))
        before = self.groups.describe(STAGE_BY_NAME[replica.component])
        fault.exit = self.fleet.terminate(name, self.settings.grace_s)
        fault.figures["exit after SIGTERM"] = fault.exit.seconds
        self.say(
            f"{name} exited with code {fault.exit.code} after {fault.exit.seconds:.1f} s"
            + ("" if fault.exit.honoured else f" (SIGKILL after the {self.settings.grace_s:.0f} s grace)")
        )
        self.fleet.restart(name)
        restarted = self.clock()
        self.ready_again(fault, replica, restarted)
        self.settle(fault, restarted, replica, before)

    # -- the run ------------------------------------------------------------------------------
    def run(self) -> ChaosResult:
        s = self.settings
        result = self.result
        try:
            self.start_shop()
            self.load = Load(self.fleet["webapp-0"].proc.url(""), s.order_rate, s.clients, self.clock).start()
            self.say(f"customers ordering {s.order_rate:g}/s through the webapp")
            calm_from = self.clock()
            self.hold(s.calm_s)
            result.baseline = (calm_from + 1.0, self.clock())
            for name in ("assemble-0", "bake-0", "delivery-0"):
                self.kill9(name)
                self.hold(s.calm_s)
            self.restart_broker()
            self.hold(s.calm_s)
            self.freeze("bake-1")
            self.hold(s.calm_s)
            self.sigterm("delivery-1")
            self.load.stop()
            self.drain()
            self.judge()
        finally:
            if self.load is not None:
                self.load.stop()
            self.say("SIGTERM to every replica")
            result.shutdown = self.fleet.shutdown(s.grace_s)
            self.fleet.kill_all()
            if self.watcher is not None:
                self.watcher.close()
        result.unexpected = list(self.fleet.unexpected)
        result.seconds = self.clock()
        return result

    def drain(self) -> None:
        acknowledged = self.load.acknowledged()
        self.say(f"customers stopped after {len(acknowledged)} accepted orders; waiting for every delivery")

        def drained() -> bool:
            return acknowledged <= self.watcher.delivered() and not pending_inputs(self.watcher.snapshot())

        def undelivered() -> str:
            waited, which = self.watcher.oldest_wait()
            return (
                f"{len(acknowledged - self.watcher.delivered())} accepted order(s) not delivered; "
                f"longest wait {waited:.1f} s ({which})"
            )

        self.result.drained = (
            self.wait(drained, self.settings.drain_timeout_s, "every order delivered", undelivered) is not None
        )

    def judge(self) -> None:
        result = self.result
        end = self.clock()
        seen = self.watcher.snapshot()
        result.gaps = {s.name: stage_gaps(s, seen, end) for s in STAGES}
        result.load = self.load.counts()
        for fault in result.faults:
            if "back" in fault.marks:
                self.broker_recovery(fault, seen)
        self.say("reading every topic (read_committed) to its end")
        records = read_records(self.config, list(WATCHED), timeout=120.0)
        result.verdict = judge_log(records, self.load.acknowledged())
        seen_at = {(r.topic, r.partition, r.offset) for r in self.watcher.snapshot()}
        result.records = len(records)
        result.unseen = sum((r.topic, r.partition, r.offset) not in seen_at for r in records)
        # The orders the log says were delivered: each replica must show their whole timeline
        # (the others are already counted as lost).
        order_ids = sorted(
            {
                r.key
                for r in records
                if r.topic == topics.PIZZA_STATUS and status_of(r.topic, r.value) == STATUS_DELIVERED
            }
        )
        result.read_model_orders = len(order_ids)
        for replica in self.fleet.of("status"):
            self.say(f"asking {replica.name} for {len(order_ids)} delivered orders")
            result.read_model[replica.name] = self.read_model_gaps(replica, order_ids)

    def broker_recovery(self, fault: Fault, seen: Sequence[Seen]) -> None:
        """How soon orders flowed once the broker answered again (see the module doc)."""
        back, down = fault.marks["back"], fault.started
        new_orders = {r.key for r in seen if r.topic == topics.PIZZA_ORDERED and r.at >= down}

        def since_back(record: Seen | None) -> float | None:
            return None if record is None else record.at - back

        fault.recovery["first kitchen output"] = since_back(
            first_after(seen, back, lambda r: r.key in new_orders and any(s.is_output(r) for s in STAGES))
        )
        fault.recovery["first delivered"] = since_back(
            first_after(seen, back, lambda r: r.key in new_orders and STAGE_BY_NAME["delivery"].is_output(r))
        )
        firsts = [since_back(first_after(seen, back, s.is_output)) for s in STAGES]
        fault.recovery["every stage"] = None if None in firsts else max(firsts)
        accepted = [a.answered for a in self.load.attempts if a.code == 201 and a.answered >= back]
        fault.recovery["first accepted"] = min(accepted) - back if accepted else None

    def read_model_gaps(self, replica: Replica, order_ids: Sequence[str]) -> dict[str, list[int] | None]:
        """Orders whose timeline on this replica is not complete (waiting a little for it to catch up)."""
        base = self.status_api(replica)
        http = requests.Session()
        timelines: dict[str, list[int] | None] = {}

        def timeline(order_id: str) -> list[int] | None:
            try:
                reply = http.get(f"{base}/api/orders/{order_id}", timeout=10)
                return [e["status"] for e in reply.json()["events"]] if reply.status_code == 200 else None
            except (requests.RequestException, ValueError, KeyError, TypeError):
                return None

        def all_complete() -> bool:
            for order_id in [o for o in order_ids if judge_timelines({o: timelines.get(o)})]:
                timelines[order_id] = timeline(order_id)
            return not judge_timelines(timelines) and len(timelines) == len(order_ids)

        self.wait(all_complete, 30.0, f"{replica.name}'s read model complete")
        return judge_timelines(timelines)


def run_scenario(
    kafka: LocalKafka, log_dir: Path, settings: ChaosSettings | None = None, out: TextIO | None = None
) -> ChaosResult:
    """The whole scenario on a running broker of the caller's (which it stops and starts once)."""
    return Scenario(kafka, log_dir, settings, out).run()


# --------------------------------------------------------------------------- the report


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def stall(gaps: Iterable[Gap], start: float, end: float, partitions: Iterable[int] | None = None) -> str:
    worst = longest(gaps, start, end, partitions)
    if worst is None:
        return "0"
    return f"{worst.seconds:.1f}" + (" (open)" if worst.open else "") + f" p{worst.partition}"


def fault_rows(result: ChaosResult) -> list[list[str]]:
    rows = []
    base_from, base_to = result.baseline
    # The calm's own stalls: those that also ended in it (one running into the first fault is that fault's).
    calm = [g for s in STAGES for g in result.gaps.get(s.name, ()) if g.end <= base_to]
    worst_base = longest(calm, base_from, base_to)
    rows.append(
        [
            f"{base_from:.0f}",
            "none (calm, for reference)",
            "-",
            "-",
            "-" if worst_base is None else f"{worst_base.seconds:.1f} p{worst_base.partition}",
            "-",
            "-",
            "" if worst_base is None else f"longest stall, in {worst_base.stage}",
        ]
    )
    for f in result.faults:
        # A fault's stalls: those of its stages' partitions while it lasted, except any that had
        # begun well before it (an earlier fault's, still open when the shop did not recover).
        gaps = [g for s in f.stages for g in result.gaps.get(s, ()) if g.start >= f.started - NORMAL_WAIT_S]
        if f.target_partitions is None:
            own, others, held = stall(gaps, f.started, f.ended), "-", "all" if f.target == "broker" else "?"
        else:
            everything = {g.partition for g in gaps}
            own = stall(gaps, f.started, f.ended, f.target_partitions)
            others = stall(gaps, f.started, f.ended, everything - f.target_partitions)
            held = ",".join(map(str, sorted(f.target_partitions))) or "none"
        details = ", ".join(f"{k} {seconds(v)} s" for k, v in f.figures.items() if k != "back to normal")
        if f.exit is not None:
            details += f", exit code {f.exit.code}"
        rows.append(
            [
                f"{f.started:.0f}",
                f.kind,
                f.target,
                held,
                own,
                others,
                seconds(f.figures.get("back to normal")) if f.back_to_normal else "NO",
                details,
            ]
        )
    return rows


def report(result: ChaosResult) -> str:
    from benchmarks.run import table

    s = result.settings
    lines = [
        table(
            f"Faults under load ({s.order_rate:g} orders/s through the webapp; {s.replicas} replicas each of "
            f"assemble, bake, delivery; KITCHEN_TIME_SCALE={s.time_scale}). Stall: the longest time a partition "
            f"had input waiting and no output became visible (read_committed), in s, with its partition; "
            f"target for kill -9: <= {KILL_STALL_TARGET_S:.0f} s, and none for the survivor",
            [
                "t s",
                "fault",
                "target",
                "its partitions",
                "stall: its partitions",
                "other partitions",
                "back to normal s",
                "details",
            ],
            fault_rows(result),
        )
    ]
    for f in result.faults:
        if "back" in f.marks:
            lines.append(
                f"\nBroker back (metadata answered) -> first kitchen output for an order placed after it "
                f"went down: {seconds(f.recovery.get('first kitchen output'))} s "
                f"(target <= {BROKER_RECOVERY_TARGET_S:.0f} s); that order delivered: "
                f"{seconds(f.recovery.get('first delivered'))} s; every stage committing: "
                f"{seconds(f.recovery.get('every stage'))} s; webapp's first accepted order: "
                f"{seconds(f.recovery.get('first accepted'))} s"
            )
    exits = result.sigterm_exits()
    if exits:
        slowest = max(exits, key=lambda e: e.seconds)
        late = [e.replica for e in exits if not e.honoured]
        codes = sorted({e.code for e in exits}, key=str)
        lines.append(
            f"SIGTERM -> exit: slowest {slowest.replica} {slowest.seconds:.1f} s (grace period "
            f"{s.grace_s:.0f} s); exit codes {codes}; " + (f"NOT honoured: {late}" if late else "all honoured")
        )
    v = result.verdict
    load = ", ".join(f"{k} {n}" for k, n in result.load.items())
    lines.append(f"Orders: {load}")
    lines.append(
        f"In the log: {v.orders} ordered ({v.unacknowledged} without a 201), {v.delivered} delivered, "
        f"{len(v.lost)} lost, {len(v.duplicated)} with repeated events ({v.duplicated_records} extra "
        f"records), {len(v.out_of_order)} out of order, {len(v.incomplete)} incomplete, "
        f"{v.dead_letters} dead letters"
    )
    for replica, bad in result.read_model.items():
        lines.append(
            f"Read model {replica}: {result.read_model_orders - len(bad)}/{result.read_model_orders} "
            f"delivered orders with the full timeline 100, 200, 300, 400"
        )
    lines.append(
        "Unexpected exits: "
        + ("; ".join(f"{e.replica} code {e.code} at {at:.0f} s" for at, e in result.unexpected) or "none")
    )
    lines.append(
        f"Live reader: saw {result.records - result.unseen} of the {result.records} committed records"
        + (" (the stall figures miss the rest)" if result.unseen else "")
    )
    lines.append(f"Scenario {result.seconds:.0f} s; logs in {result.log_dir}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- make chaos


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    defaults = ChaosSettings()
    parser = argparse.ArgumentParser(prog="python -m benchmarks.faults", description=__doc__.split("\n\n")[0])
    parser.add_argument("--time-scale", type=float, default=defaults.time_scale, help="KITCHEN_TIME_SCALE")
    parser.add_argument("--rate", type=float, default=defaults.order_rate, help="orders per second")
    parser.add_argument(
        "--broker-down", type=float, default=defaults.broker_down_s, help="seconds the broker stays stopped"
    )
    parser.add_argument(
        "--log-dir",
        type=Path,
        default=None,
        help="keep the broker's and services' logs here (default: a temporary directory, "
        "removed when nothing went wrong)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from kafka_common.logging import configure_logging

    configure_logging("benchmark", level="WARNING")
    settings = ChaosSettings(time_scale=args.time_scale, order_rate=args.rate, broker_down_s=args.broker_down)
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="pizza-chaos-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    print(f"# pizza-shop fault scenario, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", flush=True)
    for line in machine_lines(KAFKA_VERSION):
        print(line, flush=True)
    kafka = LocalKafka(data_dir=log_dir / "kafka", log_file=log_dir / "broker.log")
    kafka.start()
    try:
        kafka.create_topics()
        result = run_scenario(kafka, log_dir, settings)
    finally:
        kafka.stop()
        shutil.rmtree(log_dir / "kafka", ignore_errors=True)
    print(report(result), flush=True)
    problems = result.problems()
    for problem in problems:
        print(f"PROBLEM: {problem}", flush=True)
    if not problems and args.log_dir is None:
        shutil.rmtree(log_dir, ignore_errors=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
