"""Kitchen pipeline throughput: orders straight onto pizza-ordered, time until every one is delivered.

The kitchen (assemble, bake, delivery; `replicas` processes of each, one
consumer group per service) runs with KITCHEN_TIME_SCALE=0, so what is
measured is the pipeline itself: three consume -> transaction -> produce hops.
A read_committed reader of pizza-status, positioned at its end before the
orders go out, notes when each order's 400 becomes visible.

Per order, from the CloudEvents ce_time of its events:
  assemble  ordered (ce_time set by this benchmark)  -> 200 (assemble's output)
  bake      200 -> 300   (includes assemble's commit and bake's fetch)
  delivery  300 -> 400   (includes bake's commit and delivery's fetch)
  end-to-end ordered -> 400 (ce_time) ; visible: ordered -> 400 read committed here
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from confluent_kafka import Consumer, TopicPartition

from benchmarks.harness import (
    SOURCE,
    BenchmarkError,
    CpuMeter,
    Distribution,
    Environment,
    make_order,
    produce_waiting,
    producer,
    wait_balanced,
    wait_ready,
)
from kafka_common import events
from kafka_common.shop import events as shop_events
from kafka_common.shop import topics
from kafka_common.shop.status import STATUS_DELIVERED, STATUS_IN_OVEN, STATUS_OUT_FOR_DELIVERY

KITCHEN = (("assemble", 6), ("bake", 6), ("delivery", 12))  # service, partitions its group owns in total


class StatusWatcher:
    """Reads pizza-status (read_committed) from its current end; records each status per order."""

    def __init__(self, config: dict):
        self.consumer = Consumer(
            {
                **config,
                "group.id": "pizza-benchmark-watcher",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "auto.offset.reset": "earliest",
            }
        )
        meta = self.consumer.list_topics(topics.PIZZA_STATUS, timeout=10)
        partitions = sorted(meta.topics[topics.PIZZA_STATUS].partitions)
        start = []
        for p in partitions:
            _, high = self.consumer.get_watermark_offsets(TopicPartition(topics.PIZZA_STATUS, p), timeout=10)
            start.append(TopicPartition(topics.PIZZA_STATUS, p, high))
        self.consumer.assign(start)
        self.lock = threading.Lock()
        self.wanted: set[str] = set()
        self.times: dict[str, dict[int, datetime]] = {}  # order_id -> status -> ce_time
        self.visible: dict[str, float] = {}  # order_id -> wall clock when its 400 was read
        self.delivered_all = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="status-watcher", daemon=True)
        self._thread.start()

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
class KitchenResult:
    replicas: int
    orders_per_batch: int
    throughput: list[float] = field(default_factory=list)  # orders/s per batch
    batch_seconds: list[float] = field(default_factory=list)
    produce_seconds: list[float] = field(default_factory=list)
    end_to_end: list[float] = field(default_factory=list)  # pooled over batches, seconds
    visible: list[float] = field(default_factory=list)
    stages: dict[str, list[float]] = field(default_factory=lambda: {"assemble": [], "bake": [], "delivery": []})
    single: KitchenResult | None = None  # one order at a time, each delivered first
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds during the measured batches
    measured_orders: int = 0

    def cpu_ms_per_order(self, name: str) -> float:
        return 1000 * self.cpu.get(name, float("nan")) / self.measured_orders if self.measured_orders else float("nan")

    def distribution(self, name: str) -> Distribution:
        values = self.end_to_end if name == "end-to-end" else self.visible if name == "visible" else self.stages[name]
        return Distribution.of(values)


def run_batch(
    prod, watcher: StatusWatcher, n: int, rng: random.Random, timeout: float, result: KitchenResult | None
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
        produce_waiting(prod, topics.PIZZA_ORDERED, key, value, headers)
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


def run(
    env: Environment, replicas: int, orders: int, batches: int, warmup: int, single: int, seed: int = 1
) -> KitchenResult:
    """`single` orders one at a time (each delivered before the next), then `batches` bursts of `orders`."""
    rng = random.Random(seed * 1000 + replicas)
    procs = {name: [env.service(name, {"KITCHEN_TIME_SCALE": "0"}) for _ in range(replicas)] for name, _ in KITCHEN}
    watcher = None
    try:
        wait_ready([p for group in procs.values() for p in group])
        for name, partitions in KITCHEN:
            wait_balanced(procs[name], partitions)
        watcher = StatusWatcher(env.client_config())
        prod = producer(env.client_config())
        result = KitchenResult(replicas, orders)
        timeout = 60.0 + orders / 5.0
        if warmup:
            run_batch(prod, watcher, warmup, rng, timeout, None)
        result.single = KitchenResult(replicas, 1)
        for _ in range(single):
            run_batch(prod, watcher, 1, rng, 30.0, result.single)
        meter = CpuMeter(
            {
                **{name: [p.pid for p in group] for name, group in procs.items()},
                "broker": [env.kafka.process.pid if env.kafka and env.kafka.process else None],
            }
        )
        meter.start()
        for _ in range(batches):
            run_batch(prod, watcher, orders, rng, timeout, result)
        meter.stop()
        result.cpu = meter.used
        result.measured_orders = orders * batches
        return result
    finally:
        if watcher is not None:
            watcher.close()
        env.stop_services([p for group in procs.values() for p in group])
