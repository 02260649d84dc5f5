"""Kitchen pipeline throughput and latency: orders onto pizza-ordered, time until each is delivered.

The kitchen (assemble, bake, delivery; `replicas` processes of each, one
consumer group per service) runs with KITCHEN_TIME_SCALE=0, so what is
measured is the pipeline itself: three consume -> transaction -> produce hops.
The same dataflow also runs as the two reference pipelines of
benchmarks/relay.py (on fresh topics of their own): a bare transactional relay
(the limit for exactly-once) and the original demo's produce-flush-commit per
message (the floor). A read_committed reader of the pipeline's status topic,
positioned at its end before the orders go out, notes when each order's 400
becomes visible.

Per order, from the CloudEvents ce_time of its events:
  assemble  ordered (ce_time set by this benchmark)  -> 200 (assemble's output)
  bake      200 -> 300   (includes assemble's commit and bake's fetch)
  delivery  300 -> 400   (includes bake's commit and delivery's fetch)
  end-to-end ordered -> 400 (ce_time) ; visible: ordered -> 400 read committed here

Paced runs send orders at a fixed rate (20/s, then more and more for the
latency-vs-load curve) and report the visible latency: ordered -> 400 read,
transactions included.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from benchmarks.harness import (
    SOURCE,
    BenchmarkError,
    CpuMeter,
    Distribution,
    Environment,
    make_order,
    proc_peak_rss_mib,
    produce_waiting,
    producer,
    wait_balanced,
    wait_ready,
)
from kafka_common import events
from kafka_common.shop import events as shop_events
from kafka_common.shop import topics
from kafka_common.shop.status import STATUS_DELIVERED, STATUS_IN_OVEN, STATUS_OUT_FOR_DELIVERY
from shop_testing.process import ServiceProcess

KITCHEN = (("assemble", 6), ("bake", 6), ("delivery", 12))  # service, partitions its group owns in total
OURS = "this project"
TRANSACTIONAL_RELAY = "bare transactional relay"
NAIVE_LOOP = "naive loop (flush + commit per message)"
# The curve's first rate (20/s) is the reference every pipeline runs: long enough for a p99 that
# holds from one run to the next (the 6th slowest of 600 orders, not the 2nd of 200).
REFERENCE_RATE_SECONDS = 30.0
SATURATED = 0.9  # a paced step that delivers less than this share of the offered rate ends the curve
SATURATED_P99_S = 2.0  # or whose p99 exceeds this
# A fresh broker's JVM runs its transaction, offset-commit and read_committed fetch paths
# interpreted for the first thousands of requests: the first pipeline measured on it would
# pay for that (one order at a time about twice as slow as the same pipeline measured later).
BROKER_WARM_UP_BURST = 1000
BROKER_WARM_UP_RATE = 100.0  # orders/s: one small transaction per order and step, as when paced
BROKER_WARM_UP_SECONDS = 20.0
BROKER_WARM_UP_SINGLE = 50  # then one at a time, as measured next


@dataclass
class Pipeline:
    """assemble -> bake -> delivery as running processes, and the topics they use."""

    label: str
    procs: dict[str, list[ServiceProcess]]
    ordered: str = topics.PIZZA_ORDERED
    status: str = topics.PIZZA_STATUS

    def all(self) -> list[ServiceProcess]:
        return [p for group in self.procs.values() for p in group]

    def peak_rss_mib(self) -> dict[str, float]:
        """Each step's largest peak resident set so far (VmHWM), MiB."""
        return {
            name: max((proc_peak_rss_mib(p.pid) or float("nan") for p in group), default=float("nan"))
            for name, group in self.procs.items()
        }


def start_ours(env: Environment, replicas: int) -> Pipeline:
    procs = {name: [env.service(name, {"KITCHEN_TIME_SCALE": "0"}) for _ in range(replicas)] for name, _ in KITCHEN}
    pipeline = Pipeline(OURS, procs)
    wait_ready(pipeline.all())
    for name, partitions in KITCHEN:
        wait_balanced(procs[name], partitions)
    return pipeline


def start_relay(env: Environment, mode: str) -> Pipeline:
    """The dataflow of the kitchen as benchmarks/relay.py processes, on fresh topics of their own."""
    prefix = f"{mode}-{uuid.uuid4().hex[:6]}-"
    names = {t: prefix + t for t in (topics.PIZZA_ORDERED, topics.PIZZA_ASSEMBLED, topics.PIZZA_BAKED)}
    names[topics.PIZZA_STATUS] = prefix + topics.PIZZA_STATUS
    config = env.client_config()
    admin = AdminClient(config)
    futures = admin.create_topics(
        [NewTopic(t, num_partitions=topics.DEFAULT_PARTITIONS, replication_factor=-1) for t in names.values()]
    )
    for future in futures.values():
        future.result(30)
    ordered, assembled, baked, status = (names[t] for t in (*names,))
    copy_order = ["order_id", "customer_id"]
    routes = {
        "assemble": {
            ordered: [
                [assembled, shop_events.PizzaAssembled.TYPE, [*copy_order, "pizza"], {}],
                [status, shop_events.PizzaStatus.TYPE, ["order_id"], {"status": STATUS_IN_OVEN}],
            ]
        },
        "bake": {
            assembled: [
                [baked, shop_events.PizzaBaked.TYPE, copy_order, {}],
                [status, shop_events.PizzaStatus.TYPE, ["order_id"], {"status": STATUS_OUT_FOR_DELIVERY}],
            ]
        },
        "delivery": {
            ordered: [],  # the early warning: consumed, nothing produced
            baked: [[status, shop_events.PizzaStatus.TYPE, ["order_id"], {"status": STATUS_DELIVERED}]],
        },
    }
    procs = {}
    for step, route in routes.items():
        spec = json.dumps({"group": f"{prefix}{step}", "routes": route})
        proc = ServiceProcess(
            f"{mode}-relay-{step}",
            [sys.executable, "-m", "benchmarks.relay", mode, spec, json.dumps(config)],
            log_file=env.log_dir / f"{prefix}{step}.log",
        )
        proc.start()
        env.processes.append(proc)
        procs[step] = [proc]
    for group in procs.values():
        group[0].wait_for_log("relay started", timeout=60)
    label = TRANSACTIONAL_RELAY if mode == "transactional" else NAIVE_LOOP
    return Pipeline(label, procs, ordered=ordered, status=status)


class StatusWatcher:
    """Reads a status topic (read_committed) from its current end; records each status per order."""

    def __init__(self, config: dict, topic: str = topics.PIZZA_STATUS):
        self.consumer = Consumer(
            {
                **config,
                "group.id": "pizza-benchmark-watcher",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "auto.offset.reset": "earliest",
            }
        )
        meta = self.consumer.list_topics(topic, timeout=10)
        partitions = sorted(meta.topics[topic].partitions)
        start = []
        for p in partitions:
            start.append(TopicPartition(topic, p, self._end(TopicPartition(topic, p))))
        self.consumer.assign(start)
        self.lock = threading.Lock()
        self.wanted: set[str] = set()
        self.times: dict[str, dict[int, datetime]] = {}  # order_id -> status -> ce_time
        self.visible: dict[str, float] = {}  # order_id -> wall clock when its 400 was read
        self.delivered_all = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="status-watcher", daemon=True)
        self._thread.start()

    def _end(self, tp: TopicPartition, timeout: float = 30.0) -> int:
        """The partition's end offset; a topic just created may have no leader for a moment."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.consumer.get_watermark_offsets(tp, timeout=10)[1]
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def expect(self, order_ids) -> None:
        with self.lock:
            self.wanted = set(order_ids)
            self.delivered_all.clear()

    def _run(self) -> None:
        while not self._stop.is_set():
            msg = self.consumer.poll(0.05)
            if msg is None or msg.error():
                continue
            now = time.time()
            order_id = msg.key().decode()
            event = events.decode(shop_events.PizzaStatus, msg.key(), msg.value(), msg.headers())
            with self.lock:
                self.times.setdefault(order_id, {}).setdefault(event.payload.status, event.envelope.time)
                if event.payload.status == STATUS_DELIVERED:
                    self.visible.setdefault(order_id, now)
                    if self.wanted and self.wanted.issubset(self.visible.keys()):
                        self.delivered_all.set()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.consumer.close()


@dataclass
class PacedStep:
    """Orders sent at `offered` per second for a while: what came out, and how late."""

    offered: float
    achieved: float  # orders delivered / (last 400 read - first order sent)
    visible: Distribution  # ordered -> 400 read committed here, seconds
    # Between the steps' events (their ce_time, set when each step handled the order), seconds:
    # "200->300" = assemble's commit, bake's fetch and handling; "300->400" the same for bake
    # and delivery; "400->read" = delivery's commit and this reader's fetch.
    stages: dict[str, Distribution] = field(default_factory=dict)


@dataclass
class KitchenResult:
    replicas: int
    orders_per_batch: int
    label: str = OURS
    throughput: list[float] = field(default_factory=list)  # orders/s per batch
    batch_seconds: list[float] = field(default_factory=list)
    produce_seconds: list[float] = field(default_factory=list)
    end_to_end: list[float] = field(default_factory=list)  # pooled over batches, seconds
    visible: list[float] = field(default_factory=list)
    stages: dict[str, list[float]] = field(default_factory=lambda: {"assemble": [], "bake": [], "delivery": []})
    single: KitchenResult | None = None  # one order at a time, each delivered first
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds during the measured batches
    measured_orders: int = 0
    paced: list[PacedStep] = field(default_factory=list)  # the first is the reference rate (20/s)
    # Peak RSS of each step's processes (the largest replica): after the bursts, and after the
    # latency curve (its last rate is past saturation: a backlog, and every order's bounded state).
    rss_mib: dict[str, float] = field(default_factory=dict)
    rss_after_curve_mib: dict[str, float] = field(default_factory=dict)
    orders_before_curve: int = 0  # every order the pipeline got before the curve (warm-up included)
    total_orders: int = 0  # and with the curve's

    def cpu_ms_per_order(self, name: str) -> float:
        return 1000 * self.cpu.get(name, float("nan")) / self.measured_orders if self.measured_orders else float("nan")

    def distribution(self, name: str) -> Distribution:
        values = self.end_to_end if name == "end-to-end" else self.visible if name == "visible" else self.stages[name]
        return Distribution.of(values)


def run_batch(
    prod,
    watcher: StatusWatcher,
    n: int,
    rng: random.Random,
    timeout: float,
    result: KitchenResult | None,
    ordered_topic: str = topics.PIZZA_ORDERED,
) -> dict[str, float]:
    """Produce n orders at once; wait until all are delivered; returns {order_id: seconds to visible 400}."""
    orders = [make_order(rng) for _ in range(n)]
    watcher.expect(o.order_id for o in orders)
    ordered_at: dict[str, datetime] = {}
    began_wall = time.time()
    began = time.perf_counter()
    for order in orders:
        now = datetime.now(UTC)
        ordered_at[order.order_id] = now
        key, value, headers = events.encode(order, SOURCE, time=now)
        produce_waiting(prod, ordered_topic, key, value, headers)
        prod.poll(0)
    if prod.flush(30) != 0:
        raise BenchmarkError("the benchmark's producer could not deliver its orders within 30 s")
    produced = time.perf_counter() - began
    if not watcher.delivered_all.wait(timeout):
        with watcher.lock:
            missing = len(set(ordered_at) - watcher.visible.keys())
        raise BenchmarkError(f"{missing} of {n} orders not delivered within {timeout:.0f} s")
    with watcher.lock:
        last_visible = max(watcher.visible[o] for o in ordered_at)
        times = {o: dict(watcher.times[o]) for o in ordered_at}
        visible = {o: watcher.visible[o] for o in ordered_at}
    latencies = {o: visible[o] - t.timestamp() for o, t in ordered_at.items()}
    if result is None:  # warm-up, or one order at a time
        return latencies
    elapsed = last_visible - began_wall
    result.batch_seconds.append(elapsed)
    result.produce_seconds.append(produced)
    result.throughput.append(n / elapsed)
    for order_id, t0 in ordered_at.items():
        t = times[order_id]
        result.end_to_end.append((t[STATUS_DELIVERED] - t0).total_seconds())
        result.visible.append(visible[order_id] - t0.timestamp())
        if STATUS_IN_OVEN in t and STATUS_OUT_FOR_DELIVERY in t:
            result.stages["assemble"].append((t[STATUS_IN_OVEN] - t0).total_seconds())
            result.stages["bake"].append((t[STATUS_OUT_FOR_DELIVERY] - t[STATUS_IN_OVEN]).total_seconds())
            result.stages["delivery"].append((t[STATUS_DELIVERED] - t[STATUS_OUT_FOR_DELIVERY]).total_seconds())
    return latencies


def run_paced(
    prod, watcher: StatusWatcher, rate: float, seconds: float, rng: random.Random, ordered_topic: str
) -> PacedStep:
    """Orders at `rate` per second for `seconds`; waits until each is delivered (or a deadline)."""
    n = max(1, int(rate * seconds))
    orders = [make_order(rng) for _ in range(n)]
    watcher.expect(o.order_id for o in orders)
    sent: dict[str, float] = {}
    began = time.time()
    for i, order in enumerate(orders):
        delay = began + i / rate - time.time()
        if delay > 0:
            time.sleep(delay)
        now = datetime.now(UTC)
        key, value, headers = events.encode(order, SOURCE, time=now)
        sent[order.order_id] = now.timestamp()
        produce_waiting(prod, ordered_topic, key, value, headers)
        prod.poll(0)
    prod.flush(30)
    watcher.delivered_all.wait(max(30.0, seconds * 2))
    with watcher.lock:
        visible = {o: watcher.visible[o] for o in sent if o in watcher.visible}
        times = {o: dict(watcher.times[o]) for o in visible}
    if not visible:
        return PacedStep(rate, 0.0, Distribution.of([]))
    latencies = [visible[o] - t for o, t in sent.items() if o in visible]
    # Delivered per second while they came out: the offered rate unless the pipeline falls behind.
    spread_s = max(visible.values()) - min(visible.values())
    achieved = (len(visible) - 1) / spread_s if len(visible) > 1 and spread_s > 0 else rate
    stages: dict[str, list[float]] = {"200->300": [], "300->400": [], "400->read": []}
    for order_id, t in times.items():
        if STATUS_IN_OVEN in t and STATUS_OUT_FOR_DELIVERY in t and STATUS_DELIVERED in t:
            stages["200->300"].append((t[STATUS_OUT_FOR_DELIVERY] - t[STATUS_IN_OVEN]).total_seconds())
            stages["300->400"].append((t[STATUS_DELIVERED] - t[STATUS_OUT_FOR_DELIVERY]).total_seconds())
            stages["400->read"].append(visible[order_id] - t[STATUS_DELIVERED].timestamp())
    return PacedStep(
        rate, achieved, Distribution.of(latencies), {name: Distribution.of(v) for name, v in stages.items()}
    )


def warm_up_broker(env: Environment) -> None:
    """Run the bare relay's pipeline (on topics of its own), unmeasured, until the broker is warm."""
    pipeline = start_relay(env, "transactional")
    watcher = None
    try:
        watcher = StatusWatcher(env.client_config(), pipeline.status)
        prod = producer(env.client_config())
        rng = random.Random(0)
        run_batch(prod, watcher, BROKER_WARM_UP_BURST, rng, 120.0, None, pipeline.ordered)
        run_paced(prod, watcher, BROKER_WARM_UP_RATE, BROKER_WARM_UP_SECONDS, rng, pipeline.ordered)
        for _ in range(BROKER_WARM_UP_SINGLE):
            run_batch(prod, watcher, 1, rng, 30.0, None, pipeline.ordered)
    finally:
        if watcher is not None:
            watcher.close()
        env.stop_services(pipeline.all())


class Measured:
    """One pipeline under measurement: its processes, a watcher of its status topic, its result."""

    def __init__(self, env: Environment, replicas: int, orders: int, mode: str, seed: int = 1):
        self.env = env
        self.rng = random.Random(seed * 1000 + replicas)
        self.pipeline = start_ours(env, replicas) if mode == "ours" else start_relay(env, mode)
        self.watcher: StatusWatcher | None = None
        try:
            self.watcher = StatusWatcher(env.client_config(), self.pipeline.status)
        except BaseException:
            self.close()
            raise
        self.prod = producer(env.client_config())
        self.result = KitchenResult(replicas, orders, label=self.pipeline.label)
        self.result.single = KitchenResult(replicas, 1, label=self.pipeline.label)
        self.meter = CpuMeter(
            {
                **{name: [p.pid for p in group] for name, group in self.pipeline.procs.items()},
                "broker": [env.kafka.process.pid if env.kafka and env.kafka.process else None],
            }
        )

    def _batch(self, n: int, timeout: float, result: KitchenResult | None) -> None:
        assert self.watcher is not None
        run_batch(self.prod, self.watcher, n, self.rng, timeout, result, self.pipeline.ordered)
        self.result.total_orders += n

    def warm_up(self, n: int) -> None:
        """Unmeasured orders; for a relay also: waits until its groups hold their partitions."""
        if n:
            self._batch(n, 120.0, None)

    def one_at_a_time(self, n: int) -> None:
        for _ in range(n):
            self._batch(1, 30.0, self.result.single)

    def burst(self) -> None:
        """One measured burst of `orders`, its CPU time counted."""
        self.meter.start()
        orders = self.result.orders_per_batch
        self._batch(orders, 60.0 + orders / 5.0, self.result)
        self.meter.stop()
        self.result.cpu = self.meter.used
        self.result.measured_orders += orders

    def bursts_done(self) -> None:
        self.result.rss_mib = self.pipeline.peak_rss_mib()
        self.result.orders_before_curve = self.result.total_orders

    def curve(self, rates: tuple[float, ...], paced_seconds: float, reference_seconds: float) -> None:
        """Orders paced at each rate (per second) until the pipeline saturates; the first rate
        for reference_seconds."""
        assert self.watcher is not None
        for i, rate in enumerate(rates):
            seconds = reference_seconds if i == 0 else paced_seconds
            step = run_paced(self.prod, self.watcher, rate, seconds, self.rng, self.pipeline.ordered)
            self.result.paced.append(step)
            self.result.total_orders += step.visible.n
            if step.achieved < SATURATED * rate or step.visible.p99 > SATURATED_P99_S:
                break
        if self.result.paced:
            self.result.rss_after_curve_mib = self.pipeline.peak_rss_mib()

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.close()
        self.env.stop_services(self.pipeline.all())


def run_side_by_side(
    env: Environment,
    pipelines: list[tuple[str, int, tuple[float, ...]]],
    orders: int,
    batches: int,
    warmup: int,
    single: int,
    seed: int = 1,
    paced_seconds: float = 10.0,
    reference_seconds: float = REFERENCE_RATE_SECONDS,
) -> list[KitchenResult]:
    """Pipelines (mode, replicas, rates) running at once, on topics of their own. Each gets `warmup`
    unmeasured orders, then `single` orders one at a time (each delivered before the next); then
    `batches` bursts of `orders`, the pipelines' bursts taken in turn (AB BA AB...), so that the
    broker's drift (its JIT, caches, log segments) weighs on each alike and the ratios of their
    throughputs hold from one run to the next; then orders paced at each of its `rates` until it
    saturates.

    mode: "ours" (the services, `replicas` each), or a benchmarks/relay.py mode (one process per step).
    """
    measured: list[Measured] = []
    try:
        for mode, replicas, _ in pipelines:
            measured.append(Measured(env, replicas, orders, mode, seed))
        for m in measured:
            m.warm_up(warmup)
        for m in measured:
            m.one_at_a_time(single)
        for n in range(batches):
            for m in measured if n % 2 == 0 else reversed(measured):
                m.burst()
        for m in measured:
            m.bursts_done()
        for m, (_, _, rates) in zip(measured, pipelines, strict=True):
            m.curve(rates, paced_seconds, reference_seconds)
        return [m.result for m in measured]
    finally:
        for m in measured:
            m.close()
