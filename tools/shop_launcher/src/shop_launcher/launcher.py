"""`make run`: the whole shop in one terminal, as honcho/foreman would run it.

    python -m shop_launcher [--data-dir .cache/kafka-data] [--show-kafka-log]

LOCAL_KAFKA_AUTH=scram: the local broker authorizes (SASL/SCRAM, ACLs; data in
.cache/kafka-data-scram) and each service connects as its own user with the
ACLs of its KAFKA_USAGE, as the chart's KafkaUsers grant them. (Not KAFKA_AUTH:
every KAFKA_* variable is a librdkafka property to the services.)

1. Kafka: the local broker on 127.0.0.1:9092 (data in .cache/kafka-data, its
   log in .cache/kafka-data/broker.log), unless KAFKA_BOOTSTRAP_SERVERS is set:
   then that cluster is used (with every other KAFKA_* setting) and nothing starts.
2. The shop's topics (kafka_common.shop.topics.create_topics; re-runnable).
3. The five services by their console scripts from this venv, their output
   interleaved, each line prefixed with the service's name; the service logs
   (without prefix) also go to .cache/shop-logs/<name>.log.
4. "The shop is open at http://127.0.0.1:8000" once the webapp answers /readyz.

Ctrl-C or SIGTERM: SIGTERM to every service, wait for them (bounded, then
SIGKILL), then stop the broker. A second Ctrl-C skips the wait (SIGKILL).

The service table is injectable (Shop(services=[...])): tests run the same
supervision code with small stand-in commands.
"""

from __future__ import annotations

import argparse
import itertools
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from kafka_common.shop import components
from local_kafka.broker import (
    DEFAULT_CONTROLLER_PORT,
    DEFAULT_PORT,
    HOST,
    KafkaStartError,
    LocalKafka,
    ScramAuth,
    cache_dir,
    port_is_free,
)
from shop_testing.process import ServiceProcess

SHUTDOWN_TIMEOUT = 20.0  # per service, after SIGTERM; longer than any graceful shutdown should take


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    command: Sequence[str]
    http_port: int
    env: dict[str, str] = field(default_factory=dict)
    api_port: int | None = None  # a second port (API_PORT) for the service's own API

    @property
    def ports(self) -> list[int]:
        return [self.http_port] + ([self.api_port] if self.api_port else [])


def default_services() -> list[ServiceSpec]:
    """The shop's services with their local ports (kafka_common.shop.components).

    INSTANCE_ID: one stable slot per replica (name-0), as a pod name is in
    Kubernetes; a restarted shop reuses it, so its kitchens fence their predecessors'
    transactions at once. The webapp's STATUS_URL default is status's query API.
    """
    return [
        ServiceSpec(c.name, [c.console_script], c.http_port, {"INSTANCE_ID": f"{c.name}-0"}, api_port=c.api_port)
        for c in components.COMPONENTS
    ]


COLORS = ("36", "33", "32", "35", "34", "96", "93", "92")


class Output:
    """Prefixed, interleaved lines (`bake     | ...`), colored on a terminal; thread-safe."""

    def __init__(self, stream: TextIO, names: Sequence[str], color: bool | None = None):
        self.stream = stream
        self.width = max([len(n) for n in names] + [5])
        self.color = stream.isatty() and not os.environ.get("NO_COLOR") if color is None else color
        self._codes = dict(zip(names, itertools.cycle(COLORS), strict=False))
        self._lock = threading.Lock()

    def line(self, name: str, text: str) -> None:
        prefix = f"{name:<{self.width}} | "
        if self.color:
            code = self._codes.get(name, "1")
            prefix = f"\033[{code}m{prefix}\033[0m"
        with self._lock:
            try:
                self.stream.write(prefix + text + "\n")
                self.stream.flush()
            except (OSError, ValueError):
                pass

    def printer(self, name: str) -> Callable[[str], None]:
        return lambda text: self.line(name, text)


class Shop:
    """The broker (optional) and a set of services, supervised like honcho does.

    services: the table of services (default: the five of the shop).
    bootstrap: an existing cluster; None starts `kafka` (a LocalKafka) or the default local one.
    create_topics: create the shop's topics before starting the services.
    """

    def __init__(
        self,
        services: Sequence[ServiceSpec] | None = None,
        *,
        bootstrap: str | None = None,
        kafka: LocalKafka | None = None,
        create_topics: bool = True,
        log_dir: Path | None = None,
        out: TextIO | None = None,
        color: bool | None = None,
        shutdown_timeout: float = SHUTDOWN_TIMEOUT,
        ready_timeout: float = 120.0,
    ):
        self.specs = list(default_services() if services is None else services)
        self.bootstrap = bootstrap
        self.kafka = kafka
        self.create_topics = create_topics
        self.log_dir = Path(log_dir) if log_dir else cache_dir() / "shop-logs"
        self.out = Output(out or sys.stdout, [s.name for s in self.specs] + ["kafka", "shop"], color)
        self.shutdown_timeout = shutdown_timeout
        self.ready_timeout = ready_timeout
        self.processes: dict[str, ServiceProcess] = {}
        self.credentials: dict[str, dict[str, str]] = {}  # service -> KAFKA_* of its own user (auth only)
        self._events: queue.Queue = queue.Queue()
        self._signals = 0
        self._stopping = False

    def say(self, text: str) -> None:
        self.out.line("shop", text)

    # ------------------------------------------------------------ start

    def start_kafka(self) -> str:
        if self.bootstrap:
            self.say(f"using the Kafka cluster at {self.bootstrap} (KAFKA_BOOTSTRAP_SERVERS)")
            return self.bootstrap
        if self.kafka is None:
            self.kafka = LocalKafka(DEFAULT_PORT, DEFAULT_CONTROLLER_PORT, cache_dir() / "kafka-data")
        self.out.line("kafka", f"starting Kafka on {self.kafka.bootstrap} (its log: {self.kafka.log_file})")
        self.kafka.start()
        self.out.line("kafka", f"ready on {self.kafka.bootstrap} after {self.kafka.last_start_seconds:.1f} s")
        self.bootstrap = self.kafka.bootstrap
        return self.bootstrap

    def make_topics(self) -> None:
        from kafka_common.config import kafka_client_config
        from kafka_common.shop.topics import create_topics

        config = kafka_client_config()
        config["bootstrap.servers"] = self.bootstrap
        if self.kafka is not None and self.kafka.auth is not None:
            from local_kafka.acls import add_shop_users

            config.update(self.kafka.admin_config())
            self.credentials = add_shop_users(self.kafka, [s.name for s in self.specs])
            self.out.line("kafka", "SCRAM users with the ACLs of their KAFKA_USAGE: " + ", ".join(self.credentials))
        for topic, outcome in create_topics(config).items():
            self.out.line("kafka", f"topic {topic}: {outcome}")

    def check_ports(self) -> None:
        busy = [f"{s.name} ({port})" for s in self.specs for port in s.ports if not port_is_free(port)]
        if busy:
            raise SystemExit(f"ports in use, is the shop already running? {', '.join(busy)}")

    def start_services(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for spec in self.specs:
            # Loopback only: a development shop is not served to the whole network.
            env = {
                "HTTP_HOST": HOST,
                "HTTP_PORT": str(spec.http_port),
                "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
                "LOG_FORMAT": "console",
                **self.credentials.get(spec.name, {}),
                **spec.env,
            }
            if spec.api_port:
                env["API_PORT"] = str(spec.api_port)
            log_file = self.log_dir / f"{spec.name}.log"
            log_file.write_bytes(b"")
            proc = ServiceProcess(
                spec.name,
                spec.command,
                env=env,
                http_port=spec.http_port,
                log_file=log_file,
                on_line=self.out.printer(spec.name),
            )
            proc.start()
            self.processes[spec.name] = proc
            threading.Thread(target=self._watch, args=(proc,), name=f"watch-{spec.name}", daemon=True).start()

    def _watch(self, proc: ServiceProcess) -> None:
        code = proc.wait()
        self._events.put(("exit", proc.name, code))

    def _announce_when_ready(self, name: str, url: str) -> None:
        proc = self.processes.get(name)
        if proc is None:
            return
        try:
            proc.wait_ready(self.ready_timeout)
        except Exception:
            if not self._stopping and proc.running:
                self.say(f"{name} is not ready after {self.ready_timeout:.0f} s; see its output above")
            return
        if not self._stopping:
            self.say(f"The shop is open: {url}")

    # ------------------------------------------------------------ run

    def _on_signal(self, signum, frame) -> None:
        self._signals += 1
        self._events.put(("signal", signal.Signals(signum).name, self._signals))

    def run(self, install_signal_handlers: bool = True) -> int:
        """Start everything, supervise, shut down. Returns the exit code for the launcher."""
        if install_signal_handlers:
            signal.signal(signal.SIGINT, self._on_signal)
            signal.signal(signal.SIGTERM, self._on_signal)
        code = 0
        try:
            self.check_ports()
            self.start_kafka()
            if self.create_topics:
                try:
                    self.make_topics()
                except Exception as exc:  # KafkaException: the cluster refused or did not answer
                    self.out.line("kafka", f"could not create the topics on {self.bootstrap}: {exc}")
                    return 1
            if self._signals:
                return 130
            self.start_services()
            front = next((s for s in self.specs if s.name == "webapp"), None)
            if front is not None:
                url = f"http://{HOST}:{front.http_port}"
                threading.Thread(target=self._announce_when_ready, args=("webapp", url), daemon=True).start()
            code = self.supervise()
        except KafkaStartError as exc:
            self.out.line("kafka", f"could not start: {exc}")
            code = 1
        except (SystemExit, FileNotFoundError) as exc:  # busy ports, a service not installed
            self.say(str(exc))
            code = 1
        finally:
            self.shutdown()
        return code

    def supervise(self) -> int:
        """Wait for a signal or a service's exit; return the exit code the shop should end with."""
        while True:
            try:
                kind, name, value = self._events.get(timeout=0.5)
            except queue.Empty:
                continue
            if kind == "signal":
                self.say(f"{name} received: shutting down")
                return 0
            # A service exited on its own. Stop the whole shop, as honcho/foreman do: a
            # shop missing one kitchen step accepts orders that then stall for ever,
            # which is more confusing than a clear stop with the reason on screen. The
            # exit code tells scripts (and `make run`) that something went wrong.
            self.say(
                f"{name} exited unexpectedly with code {value}: stopping the shop "
                f"(its output: {self.processes[name].log_file})"
            )
            return 1

    def shutdown(self) -> None:
        self._stopping = True
        running = [p for p in self.processes.values() if p.running]
        if running:
            self.say("sending SIGTERM to " + ", ".join(f"{p.name} ({p.pid})" for p in running))
            for proc in running:
                proc.terminate()
            deadline = time.monotonic() + self.shutdown_timeout
            for proc in running:
                self._wait_or_kill(proc, deadline)
        for proc in self.processes.values():
            proc.stop(timeout=0)  # reaps, and SIGKILLs whatever is left of each group
        if self.kafka is not None and self.kafka.running:
            self.out.line("kafka", "stopping Kafka")
            self.kafka.stop()
            self.out.line("kafka", "stopped")
        self.say("all stopped")

    def _wait_or_kill(self, proc: ServiceProcess, deadline: float) -> None:
        while proc.running:
            if self._signals > 1 or time.monotonic() >= deadline:
                why = "second interrupt" if self._signals > 1 else f"no exit within {self.shutdown_timeout:.0f} s"
                self.say(f"{proc.name}: {why}, sending SIGKILL")
                proc.kill()
                break
            try:
                proc.wait(0.2)
            except Exception:
                pass
        code = proc.wait()
        self.say(f"{proc.name} exited with code {code}")


def load_services(path: Path) -> list[ServiceSpec]:
    """A service table from JSON: [{"name", "command": [...], "http_port", "env": {...}, "api_port"?}, ...]."""
    import json

    return [
        ServiceSpec(
            d["name"],
            list(d["command"]),
            int(d["http_port"]),
            dict(d.get("env", {})),
            int(d["api_port"]) if d.get("api_port") else None,
        )
        for d in json.loads(Path(path).read_text())
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shop_launcher", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="the local broker's data (default .cache/kafka-data)"
    )
    parser.add_argument("--kafka-port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--controller-port", type=int, default=DEFAULT_CONTROLLER_PORT)
    parser.add_argument("--show-kafka-log", action="store_true", help="also print the broker's own log")
    parser.add_argument(
        "--services",
        type=Path,
        default=None,
        help="a JSON service table instead of the shop's five services (for tests)",
    )
    parser.add_argument("--log-dir", type=Path, default=None, help="the services' logs (default .cache/shop-logs)")
    parser.add_argument(
        "--shutdown-timeout",
        type=float,
        default=SHUTDOWN_TIMEOUT,
        help="seconds each service has after SIGTERM before SIGKILL",
    )
    args = parser.parse_args(argv)
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or None
    auth = os.environ.get("LOCAL_KAFKA_AUTH", "none")
    if auth not in ("none", "scram"):
        parser.error(f"LOCAL_KAFKA_AUTH={auth}: expected none or scram")
    kafka = None
    if not bootstrap:
        default_data = cache_dir() / ("kafka-data-scram" if auth == "scram" else "kafka-data")
        kafka = LocalKafka(
            args.kafka_port,
            args.controller_port,
            args.data_dir or default_data,
            show_log=args.show_kafka_log,
            auth=ScramAuth() if auth == "scram" else None,
        )
    services = load_services(args.services) if args.services else None
    return Shop(
        services, bootstrap=bootstrap, kafka=kafka, log_dir=args.log_dir, shutdown_timeout=args.shutdown_timeout
    ).run()


if __name__ == "__main__":
    sys.exit(main())
