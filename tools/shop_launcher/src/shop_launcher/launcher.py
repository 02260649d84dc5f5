"""`make run`: Kafka, the shop's topics, then the processes of the Procfile under honcho.

    pizza-shop [--procfile Procfile] [--data-dir .cache/kafka-data] [--show-kafka-log]

honcho (its Manager) starts the Procfile's processes, interleaves their output
with a prefix per process, stops them all when one exits, and on Ctrl-C or
SIGTERM sends SIGTERM to each, then SIGKILL to what is left. This adds only
what honcho does not do:

1. Kafka first: the local broker on 127.0.0.1:9092 (data in .cache/kafka-data,
   its log in .cache/kafka-data/broker.log), unless KAFKA_BOOTSTRAP_SERVERS is set:
   then that cluster is used (with every other KAFKA_* setting) and nothing starts.
   LOCAL_KAFKA_AUTH=scram: the local broker authorizes (SASL/SCRAM, ACLs; data in
   .cache/kafka-data-scram) and each service connects as its own user with the ACLs
   of its KAFKA_USAGE, as the chart's KafkaUsers grant them. (Not KAFKA_AUTH: every
   KAFKA_* variable is a librdkafka property to the services.)
2. The shop's topics (kafka_common.shop.topics.create_topics; re-runnable).
3. Each process's environment: HTTP_PORT (and API_PORT) from the component table
   (kafka_common.shop.components; --port NAME=PORT overrides), loopback only,
   INSTANCE_ID=<name>-0, console logs, the broker and its SCRAM credentials.
4. A longer wait between SIGTERM and SIGKILL than honcho's 5 s: a gunicorn
   webapp or a kitchen mid-transaction needs more for a graceful stop.
5. "The shop is open: http://127.0.0.1:8000" once the webapp answers /readyz, and
   each process's output also in .cache/shop-logs/<name>.log.
6. Kafka stopped last. Exit code 0 after Ctrl-C/SIGTERM; 1 if a service exited on
   its own (the whole shop stops, as honcho does, saying which one and where its log is).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TextIO

import honcho.manager
from honcho.environ import parse_procfile
from honcho.manager import SYSTEM_PRINTER_NAME, Manager
from honcho.printer import Message, Printer

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
    repo_root,
)

SHUTDOWN_TIMEOUT = 20.0  # SIGTERM to SIGKILL; longer than any graceful shutdown should take
READY_TIMEOUT = 120.0
FRONT = "webapp"  # the process whose readiness opens the shop
STOPPED = re.compile(r"^(\S+) stopped \(rc=(-?\d+)\)")
SIGNALLED = re.compile(r"^SIG(INT|TERM) received")


class ShopPrinter(Printer):
    """honcho's output, with each process's lines also in its own log file.

    It also notes what honcho reports: a signal received, and which process stopped
    first with what code (to tell a shutdown from a crash).
    """

    def __init__(self, output: TextIO, log_dir: Path):
        super().__init__(output)
        self.log_dir = log_dir
        self.logs: dict[str, Path] = {}
        self.signalled = False
        self.first_stop: tuple[str, int] | None = None
        self._lock = threading.Lock()

    def log_to_file(self, name: str) -> Path:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        path = self.logs[name] = self.log_dir / f"{name}.log"
        path.write_bytes(b"")
        return path

    def write(self, message: Message) -> None:
        with self._lock:
            text = message.data.decode("utf-8", "replace") if isinstance(message.data, bytes) else message.data
            self._print(message, text)
            if message.name == SYSTEM_PRINTER_NAME:
                self.signalled |= bool(SIGNALLED.match(text))
                stopped = STOPPED.match(text)
                if stopped and self.first_stop is None:
                    self.first_stop = (stopped[1], int(stopped[2]))
            elif message.name in self.logs:
                with self.logs[message.name].open("a", encoding="utf-8") as log:
                    log.write(text if text.endswith("\n") else text + "\n")

    def _print(self, message: Message, text: str) -> None:
        """honcho's "name | line", without honcho's clock: the services stamp their own lines."""
        prefix = f"{(message.name or '').ljust(self.width)} | "
        if self.colour and self._colours_supported and message.colour:
            prefix = f"\033[0m\033[{message.colour}m{prefix}\033[0m"
        for line in text.splitlines():
            print(prefix + line, file=self.output, flush=True)

    def say(self, name: str, text: str) -> None:
        self.write(Message(type="line", data=text + "\n", time=datetime.now(), name=name, colour=None))


class Shop:
    """Kafka (optional), the topics, and the Procfile's processes under honcho.

    procfile: the processes (default: the repository's Procfile).
    bootstrap: an existing cluster; None starts `kafka` (a LocalKafka).
    ports: HTTP_PORT per process name, over the component table's.
    """

    def __init__(
        self,
        procfile: Path,
        *,
        bootstrap: str | None = None,
        kafka: LocalKafka | None = None,
        ports: Mapping[str, int] | None = None,
        log_dir: Path | None = None,
        out: TextIO | None = None,
        shutdown_timeout: float = SHUTDOWN_TIMEOUT,
    ):
        self.processes = dict(parse_procfile(procfile.read_text()).processes)
        if not self.processes:
            raise SystemExit(f"{procfile}: no processes")
        self.bootstrap = bootstrap
        self.kafka = kafka
        self.ports = {**{c.name: c.http_port for c in components.COMPONENTS}, **(ports or {})}
        unknown = sorted(set(self.processes) - set(self.ports))
        if unknown:
            raise SystemExit(f"no port for {', '.join(unknown)}: add --port NAME=PORT")
        self.printer = ShopPrinter(out or sys.stdout, log_dir or cache_dir() / "shop-logs")
        self.printer.width = max(len(n) for n in [*self.processes, "kafka", "shop", SYSTEM_PRINTER_NAME])
        self.shutdown_timeout = shutdown_timeout
        self.credentials: dict[str, dict[str, str]] = {}  # process -> KAFKA_* of its own user (auth only)
        self._stopping = threading.Event()

    def say(self, text: str, name: str = "shop") -> None:
        self.printer.say(name, text)

    def api_port(self, name: str) -> int | None:
        component = components.BY_NAME.get(name)
        return component.api_port if component else None

    # ------------------------------------------------------------ before honcho

    def check_ports(self) -> None:
        ports = [(name, self.ports[name]) for name in self.processes]
        ports += [(name, port) for name in self.processes if (port := self.api_port(name))]
        busy = [f"{name} ({port})" for name, port in ports if not port_is_free(port)]
        if busy:
            raise SystemExit(f"ports in use, is the shop already running? {', '.join(busy)}")

    def start_kafka(self) -> str:
        if self.bootstrap:
            self.say(f"using the Kafka cluster at {self.bootstrap} (KAFKA_BOOTSTRAP_SERVERS)")
            return self.bootstrap
        if self.kafka is None:
            self.kafka = LocalKafka(DEFAULT_PORT, DEFAULT_CONTROLLER_PORT, cache_dir() / "kafka-data")
        self.say(f"starting Kafka on {self.kafka.bootstrap} (its log: {self.kafka.log_file})", "kafka")
        self.kafka.start()
        self.say(f"ready on {self.kafka.bootstrap} after {self.kafka.last_start_seconds:.1f} s", "kafka")
        self.bootstrap = self.kafka.bootstrap
        return self.bootstrap

    def make_topics(self) -> None:
        from kafka_common.config import kafka_client_config
        from kafka_common.shop.topics import create_topics

        assert self.bootstrap is not None
        config = kafka_client_config()
        config["bootstrap.servers"] = self.bootstrap
        if self.kafka is not None and self.kafka.auth is not None:
            from local_kafka.acls import add_shop_users

            config.update(self.kafka.admin_config())
            self.credentials = add_shop_users(self.kafka, [n for n in self.processes if n in components.BY_NAME])
            self.say("SCRAM users with the ACLs of their KAFKA_USAGE: " + ", ".join(self.credentials), "kafka")
        for topic, outcome in create_topics(config).items():
            self.say(f"topic {topic}: {outcome}", "kafka")

    def environment(self, name: str) -> dict[str, str]:
        assert self.bootstrap is not None
        env = {
            **os.environ,
            # The Procfile names console scripts: this venv's, also when it is not activated.
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
            "HTTP_HOST": HOST,  # a development shop is not served to the whole network
            "HTTP_PORT": str(self.ports[name]),
            "INSTANCE_ID": f"{name}-0",  # a stable slot, as a pod name: a restart fences its predecessor
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "LOG_FORMAT": "console",
            **self.credentials.get(name, {}),
        }
        if api_port := self.api_port(name):
            env["API_PORT"] = str(api_port)
        return env

    def _announce_when_ready(self) -> None:
        url = f"http://{HOST}:{self.ports[FRONT]}"
        deadline = time.monotonic() + READY_TIMEOUT
        while not self._stopping.wait(0.25):
            try:
                with urllib.request.urlopen(url + "/readyz", timeout=2) as response:
                    if response.status == 200:
                        self.say(f"The shop is open: {url}")
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                self.say(f"{FRONT} is not ready after {READY_TIMEOUT:.0f} s; see its output above")
                return

    # ------------------------------------------------------------ run

    def run(self) -> int:
        """Start everything, let honcho supervise, stop Kafka. Returns the exit code."""
        try:
            self.check_ports()
            self.start_kafka()
            try:
                self.make_topics()
            except Exception as exc:  # KafkaException: the cluster refused or did not answer
                self.say(f"could not create the topics on {self.bootstrap}: {exc}", "kafka")
                return 1
            return self.run_processes()
        except KafkaStartError as exc:
            self.say(f"could not start: {exc}", "kafka")
            return 1
        except SystemExit as exc:  # busy ports
            self.say(str(exc))
            return 1
        finally:
            self._stopping.set()
            if self.kafka is not None and self.kafka.running:
                self.say("stopping Kafka", "kafka")
                self.kafka.stop()
                self.say("stopped", "kafka")

    def run_processes(self) -> int:
        honcho.manager.KILL_WAIT = self.shutdown_timeout  # honcho's SIGTERM-to-SIGKILL wait
        manager = Manager(printer=self.printer)
        for name, command in self.processes.items():
            self.printer.log_to_file(name)
            manager.add_process(name, command, env=self.environment(name))
        if FRONT in self.processes:
            threading.Thread(target=self._announce_when_ready, name="announce", daemon=True).start()
        manager.loop()
        self._stopping.set()
        if self.printer.signalled:
            self.say("all stopped")
            return 0
        name, code = self.printer.first_stop or ("?", manager.returncode or 0)
        self.say(
            f"{name} exited on its own with code {code}, so the shop stopped (its output: {self.printer.logs.get(name)})"
        )
        return 1


def port_setting(text: str) -> tuple[str, int]:
    name, _, port = text.partition("=")
    if not name or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=PORT")
    return name, int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pizza-shop", description=__doc__.split("\n\n")[0])
    parser.add_argument("--procfile", type=Path, default=None, help="default: the repository's Procfile")
    parser.add_argument("--port", type=port_setting, action="append", default=[], help="HTTP_PORT of a process")
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="the local broker's data (default .cache/kafka-data)"
    )
    parser.add_argument("--kafka-port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--controller-port", type=int, default=DEFAULT_CONTROLLER_PORT)
    parser.add_argument("--show-kafka-log", action="store_true", help="also print the broker's own log")
    parser.add_argument("--log-dir", type=Path, default=None, help="each process's log (default .cache/shop-logs)")
    parser.add_argument(
        "--shutdown-timeout", type=float, default=SHUTDOWN_TIMEOUT, help="seconds from SIGTERM to SIGKILL"
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
    shop = Shop(
        args.procfile or repo_root() / "Procfile",
        bootstrap=bootstrap,
        kafka=kafka,
        ports=dict(args.port),
        log_dir=args.log_dir,
        shutdown_timeout=args.shutdown_timeout,
    )
    return shop.run()


if __name__ == "__main__":
    sys.exit(main())
