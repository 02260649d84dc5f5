"""What every benchmark shares: the broker, services as real processes, orders, statistics.

Everything runs on 127.0.0.1: a LocalKafka on free ports (or the cluster in
KAFKA_BOOTSTRAP_SERVERS) and the services' console scripts, each on a free
HTTP port, with their output in the run's log directory.
"""

from __future__ import annotations

import json
import os
import platform
import random
import re
import statistics
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kafka_common.shop import ids, menu
from kafka_common.shop.events import Pizza, PizzaOrdered
from local_kafka import LocalKafka
from local_kafka.broker import KAFKA_VERSION, free_port
from shop_testing.process import ServiceProcess

SOURCE = "/pizza-shop/benchmark"
READY_POLL_S = 0.02


class BenchmarkError(RuntimeError):
    """A benchmark could not complete (a service did not start, orders never arrived)."""


# --------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100), linear interpolation between closest ranks."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * p / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Distribution:
    n: int
    p50: float
    p95: float
    p99: float
    min: float
    max: float

    @staticmethod
    def of(values: Iterable[float]) -> Distribution:
        v = list(values)
        if not v:
            nan = float("nan")
            return Distribution(0, nan, nan, nan, nan, nan)
        return Distribution(len(v), percentile(v, 50), percentile(v, 95), percentile(v, 99), min(v), max(v))


def median_and_spread(values: Sequence[float]) -> tuple[float, float, float]:
    """(median, min, max) of repeated measurements."""
    return statistics.median(values), min(values), max(values)


def ms(seconds: float) -> str:
    return "-" if seconds != seconds else f"{seconds * 1000:.0f}" if seconds >= 0.1 else f"{seconds * 1000:.1f}"


# --------------------------------------------------------------------------- machine


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_total() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


_PROBE_SAMPLE = {"order_id": "0" * 32, "pizza": {"size": "Large", "toppings": ["Onion", "Eggs"]}, "n": list(range(16))}


def cpu_probe_ms() -> float:
    """CPU milliseconds for a fixed piece of pure-Python work (best of 3): how fast this machine
    runs Python at the moment. Shared and virtual machines change speed from hour to hour (by a
    third, here); two runs compare when their probes do."""
    best = float("inf")
    for _ in range(3):
        began = time.process_time()
        for _ in range(20_000):
            json.loads(json.dumps(_PROBE_SAMPLE))
        best = min(best, time.process_time() - began)
    return best * 1000


def cpu_probe_line(when: str) -> str:
    return f"CPU speed probe {when}: {cpu_probe_ms():.0f} ms of fixed pure-Python work (lower is faster)"


def machine_lines(kafka_version: str) -> list[str]:
    import confluent_kafka

    return [
        f"machine: {os.cpu_count()} cores ({cpu_model()}), {memory_total()} RAM, {platform.system()} {platform.release()}",
        f"load average at start (1/5/15 min): {load_average()}  (other work may share these cores)",
        cpu_probe_line("at the start"),
        f"Python {platform.python_version()}, confluent-kafka {confluent_kafka.__version__} "
        f"(librdkafka {confluent_kafka.libversion()[0]}), Kafka {kafka_version}",
    ]


# --------------------------------------------------------------------------- HTTP


def http_status(url: str, timeout: float = 1.0) -> tuple[int, dict]:
    """(status code, JSON body or {}); (0, {}) when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"{}")
        except ValueError:
            return exc.code, {}
    except (urllib.error.URLError, OSError, ValueError):
        return 0, {}


def proc_peak_rss_mib(pid: int | None) -> float | None:
    """VmHWM of a running process (the peak resident set, as /usr/bin/time -v reports it)."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


# --------------------------------------------------------------------------- environment


@dataclass
class Environment:
    """The broker and the services of one benchmark run; stop() ends everything it started."""

    log_dir: Path
    log_format: str = "json"
    bootstrap: str = ""
    kafka: LocalKafka | None = None
    kafka_version: str = KAFKA_VERSION
    processes: list[ServiceProcess] = field(default_factory=list)
    _counter: int = 0

    def start(self) -> Environment:
        external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if external:
            self.bootstrap = external
            self.kafka_version = f"unknown (existing cluster at {external})"
        else:
            self.kafka = LocalKafka(log_file=self.log_dir / "broker.log")
            began = time.perf_counter()
            self.kafka.start()
            self.bootstrap = self.kafka.bootstrap
            print(
                f"# local Kafka {KAFKA_VERSION} on {self.bootstrap}, ready after {time.perf_counter() - began:.1f} s",
                flush=True,
            )
        from kafka_common.shop.topics import create_topics

        create_topics(self.client_config())
        return self

    def client_config(self) -> dict:
        """librdkafka settings for the benchmark's own clients (the KAFKA_* environment applies)."""
        from kafka_common.config import kafka_client_config

        config = kafka_client_config()
        config["bootstrap.servers"] = self.bootstrap
        return config

    def service(self, name: str, env: dict | None = None) -> ServiceProcess:
        """Start pizza-<name> (not waiting for readiness)."""
        self._counter += 1
        label = f"{name}-{self._counter}"
        proc = ServiceProcess(
            label,
            f"pizza-{name}",
            http_port=free_port(),
            log_file=self.log_dir / f"{label}.log",
            env={"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, "LOG_FORMAT": self.log_format, **(env or {})},
        )
        proc.start()
        self.processes.append(proc)
        return proc

    def stop_services(self, procs: Iterable[ServiceProcess]) -> None:
        procs = list(procs)
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.stop(timeout=20.0)

    def stop(self) -> None:
        self.stop_services([p for p in self.processes if p.running])
        if self.kafka is not None:
            self.kafka.stop(remove_data=True)


def wait_ready(procs: Sequence[ServiceProcess], timeout: float = 90.0) -> None:
    for proc in procs:
        proc.wait_ready(timeout)


ASSIGNED = re.compile(r"with (\d+) partition")


def wait_balanced(procs: Sequence[ServiceProcess], expected_partitions: int, timeout: float = 60.0) -> None:
    """Wait until the group's members together hold every partition and each holds some."""
    deadline = time.monotonic() + timeout
    counts: list[int] = []
    while time.monotonic() < deadline:
        counts = []
        for proc in procs:
            code, body = http_status(proc.url("/readyz"))
            match = ASSIGNED.search(str(body.get("detail", ""))) if code == 200 else None
            counts.append(int(match[1]) if match else 0)
        if all(counts) and sum(counts) == expected_partitions:
            return
        time.sleep(0.1)
    raise BenchmarkError(
        f"{[p.name for p in procs]}: partitions not balanced within {timeout:.0f} s "
        f"(assigned {counts}, expected {expected_partitions} in total)"
    )


# --------------------------------------------------------------------------- orders


def random_hex(rng: random.Random, digits: int) -> str:
    return f"{rng.getrandbits(digits * 4):0{digits}x}"


def make_order(rng: random.Random) -> PizzaOrdered:
    extras = rng.sample(menu.EXTRA_TOPPINGS, rng.randint(0, 3))
    pizza = Pizza(
        sauce=rng.choice(menu.SAUCES),
        cheese=rng.choice(menu.CHEESES),
        main_topping=rng.choice(menu.MAIN_TOPPINGS),
        extra_toppings=tuple(extras),
    )
    return PizzaOrdered(order_id=ids.new_order_id(), customer_id=random_hex(rng, 8), username="bench", pizza=pizza)


def producer(config: dict):
    from confluent_kafka import Producer

    return Producer({**config, "enable.idempotence": True, "acks": "all", "linger.ms": 5, "compression.type": "lz4"})


def produce_waiting(prod, topic: str, key, value, headers) -> None:
    """produce(), waiting for room when the producer's local queue is full."""
    while True:
        try:
            prod.produce(topic, key=key, value=value, headers=headers)
            return
        except BufferError:
            prod.poll(0.05)


# --------------------------------------------------------------------------- CPU time


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()  # fields from the 3rd (state) on


def process_tree(pid: int) -> list[int]:
    """pid and its descendants (gunicorn's workers, setpriv's child), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo += children.get(p, [])
    return tree


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds used so far by a process and its descendants (Linux /proc)."""
    if pid is None:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in process_tree(pid):
        fields = _stat_fields(p)
        if fields:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


class CpuMeter:
    """CPU seconds of named processes between start() and stop()."""

    def __init__(self, pids: dict[str, list[int | None]]):
        self.pids = pids
        self.used: dict[str, float] = {}
        self._at: dict[str, float] = {}

    def _read(self) -> dict[str, float]:
        return {name: sum(cpu_seconds(p) for p in pids) for name, pids in self.pids.items()}

    def start(self) -> None:
        self._at = self._read()

    def stop(self) -> None:
        now = self._read()
        for name, value in now.items():
            self.used[name] = self.used.get(name, 0.0) + value - self._at[name]
