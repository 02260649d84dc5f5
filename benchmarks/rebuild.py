"""Status rebuild: how long a fresh pizza-status takes to become ready over a log of orders.

The log is topped up to each requested size with orders produced straight to
pizza-ordered plus their three status events (200, 300, 400) on pizza-status,
as the kitchen would have written them. Then a new pizza-status process is
started (in-memory SQLite, its default) `repeats` times; from the moment of
exec, the benchmark polls every 20 ms for:
  http up:  GET /healthz answers (interpreter, imports, Kafka client, HTTP server)
  ready:    GET /readyz is 200 (every partition read to its end as of start-up)
rebuild = ready - http up: the projection itself. Peak RSS is VmHWM at ready.
CPU is the process's user + system time over the same span (every thread:
librdkafka's fetchers too), per offset: unlike the wall-clock rate, it hardly
changes when other processes share the cores.
The log also holds what earlier benchmarks of the run wrote; the table shows
the offsets actually in the two topics (records plus transaction markers).
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from confluent_kafka import TopicPartition

from benchmarks.harness import (
    READY_POLL_S,
    SOURCE,
    BenchmarkError,
    Environment,
    http_status,
    make_order,
    proc_peak_rss_mib,
    produce_waiting,
    producer,
)
from kafka_common import events
from kafka_common.shop import topics
from kafka_common.shop.events import PizzaStatus
from kafka_common.shop.status import STATUS_DELIVERED, STATUS_IN_OVEN, STATUS_OUT_FOR_DELIVERY


@dataclass
class RebuildResult:
    target_orders: int
    note: str = ""
    ordered_offsets: int = 0
    status_offsets: int = 0
    http_up: list[float] = field(default_factory=list)
    ready: list[float] = field(default_factory=list)
    rebuild: list[float] = field(default_factory=list)
    peak_rss_mib: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)  # over the rebuild span

    @property
    def offsets(self) -> int:
        return self.ordered_offsets + self.status_offsets


def log_offsets(config: dict, topic: str) -> int:
    from confluent_kafka import Consumer

    consumer = Consumer({**config, "group.id": "pizza-benchmark-offsets", "enable.auto.commit": False})
    try:
        meta = consumer.list_topics(topic, timeout=10)
        total = 0
        for p in meta.topics[topic].partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            total += high - low
        return total
    finally:
        consumer.close()


def fill(env: Environment, orders: int, rng: random.Random) -> None:
    """Produce `orders` orders and their status events, timestamps spread over the last minutes."""
    prod = producer(env.client_config())
    start = datetime.now(UTC) - timedelta(minutes=30)
    for i in range(orders):
        order = make_order(rng)
        at = start + timedelta(milliseconds=i)
        records = [events.encode(order, SOURCE, time=at)]
        for step, status in enumerate((STATUS_IN_OVEN, STATUS_OUT_FOR_DELIVERY, STATUS_DELIVERED), start=1):
            records.append(
                events.encode(
                    PizzaStatus(order_id=order.order_id, status=status), SOURCE, time=at + timedelta(seconds=step)
                )
            )
        for (key, value, headers), topic in zip(
            records, (topics.PIZZA_ORDERED,) + (topics.PIZZA_STATUS,) * 3, strict=True
        ):
            produce_waiting(prod, topic, key, value, headers)
        prod.poll(0)
    if prod.flush(60) != 0:
        raise BenchmarkError("could not write the rebuild benchmark's log within 60 s")


def proc_cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of a running process, all its threads."""
    if pid is None:
        return None
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def time_start(
    env: Environment, timeout: float, extra_env: dict | None = None
) -> tuple[float, float, float | None, float | None]:
    """Start a fresh pizza-status; (seconds to /healthz, seconds to /readyz 200, peak RSS MiB,
    CPU seconds from /healthz to /readyz 200)."""
    began = time.perf_counter()
    proc = env.service("status", extra_env)
    http_up = cpu_at_http_up = None
    try:
        while True:
            elapsed = time.perf_counter() - began
            if elapsed > timeout:
                raise BenchmarkError(f"{proc.name} not ready within {timeout:.0f} s (log: {proc.log_file})")
            if not proc.running:
                raise BenchmarkError(f"{proc.name} exited with {proc.returncode} (log: {proc.log_file})")
            code, _ = http_status(proc.url("/readyz"), timeout=2.0)
            if code and http_up is None:
                http_up, cpu_at_http_up = elapsed, proc_cpu_seconds(proc.pid)
            if code == 200:
                cpu_at_ready = proc_cpu_seconds(proc.pid)
                cpu = None if cpu_at_ready is None or cpu_at_http_up is None else cpu_at_ready - cpu_at_http_up
                return http_up, elapsed, proc_peak_rss_mib(proc.pid), cpu
            time.sleep(READY_POLL_S)
    finally:
        env.stop_services([proc])


def run(env: Environment, sizes: list[int], repeats: int, seed: int = 3) -> list[RebuildResult]:
    """Each size with the services' default logging; the largest once more with LOG_LEVEL=WARNING
    (no line per event), which shows what the per-event log lines cost."""
    rng = random.Random(seed)
    results = []
    written = 0
    plan = [(size, "", None) for size in sorted(sizes)]
    plan.append((max(sizes), ", LOG_LEVEL=WARNING", {"LOG_LEVEL": "WARNING"}))
    for size, note, extra_env in plan:
        fill(env, size - written, rng)
        written = size
        result = RebuildResult(size, note)
        config = env.client_config()
        result.ordered_offsets = log_offsets(config, topics.PIZZA_ORDERED)
        result.status_offsets = log_offsets(config, topics.PIZZA_STATUS)
        for _ in range(repeats):
            http_up, ready, rss, cpu = time_start(env, 120.0 + size / 100.0, extra_env)
            result.http_up.append(http_up)
            result.ready.append(ready)
            result.rebuild.append(ready - http_up)
            if rss is not None:
                result.peak_rss_mib.append(rss)
            if cpu is not None:
                result.cpu_s.append(cpu)
        results.append(result)
    return results
