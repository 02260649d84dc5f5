"""pytest fixtures for tests against a real Kafka broker and real service processes.

Loaded by the repository's conftest.py (pytest_plugins = ["shop_testing.pytest_plugin"]).

Brokers
    kafka_bootstrap (session) -> str
        "127.0.0.1:<port>" of ONE local broker for the whole test session (free
        ports, temporary data dir), with the shop's topics created once
        (kafka_common.shop.topics.create_topics). If KAFKA_BOOTSTRAP_SERVERS is set,
        that cluster is used instead and no broker is started (topics are still
        created if missing; other KAFKA_* variables apply, see kafka_config).
        The broker is started lazily: only sessions that use it pay ~5-10 s.
    kafka_config (session) -> dict
        librdkafka settings for the session broker (kafka_common's KAFKA_* env,
        with bootstrap.servers = kafka_bootstrap); copy it before changing it.
    dedicated_kafka (function) -> LocalKafka
        A broker of the test's own (real, on free ports, temporary data, the
        shop's topics created) that the test may .stop(), .kill(), .start() and
        .restart() on the same ports with the same data: for broker outages.
        .bootstrap, .admin_config(), .port; stopped and removed at test end.

Processes
    service_process (function) -> factory
        service_process(command, *, env=None, http_port=None, name=None,
                        bootstrap=None, wait_ready=True, ready_timeout=60.0) -> ServiceProcess
        Starts a console script ("pizza-bake", found in the venv's bin dir) or an
        argv list as a real process, with KAFKA_BOOTSTRAP_SERVERS (the session
        broker, or `bootstrap`, e.g. dedicated_kafka.bootstrap), HTTP_PORT (a free
        port unless given), API_PORT (a free port: proc.api_url() for status's query
        API), INSTANCE_ID (the process's name: restart a replica under the same name,
        or pass INSTANCE_ID, for it to fence its predecessor), LOG_FORMAT=console
        and `env` on top of os.environ; by
        default waits until GET /readyz is 200 (ServiceNotReady with the log tail
        otherwise). Its output goes to <tmp_path>/<name>.log (proc.log_text(),
        proc.log_tail(), proc.wait_for_log(regex)). At test end every process is
        stopped (SIGTERM, then SIGKILL after 15 s); when a test fails, the tail of
        each process's output is added to the report as a section.
        See shop_testing.process.ServiceProcess for terminate()/kill()/wait().

Names and records
    unique_name (function) -> factory
        unique_name("orders") -> "orders-<test name>-<8 hex>": topics and groups
        that no other test (or earlier run against a shared cluster) uses.
    new_topic (function) -> factory
        new_topic(prefix="t", partitions=6, config=None) -> name of a new topic on
        the session broker.
    read_topic (function) -> factory
        read_topic(topic_or_topics, until=None, timeout=30.0,
                   isolation_level="read_committed") -> list[Record]
        Reads from the beginning without a group; until=None stops at the end of
        every partition, until=f waits until f(records) is true and raises
        RecordsTimeout (an AssertionError, with .records) if it does not become
        true in time. Record: topic, partition, offset, key (str), value (bytes),
        headers (dict of bytes), .json(), .text(), .header(name).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from local_kafka.broker import LocalKafka, broker_of_its_own, free_port
from shop_testing.helpers import create_topic, read_records
from shop_testing.helpers import unique_name as _unique_name
from shop_testing.process import ServiceProcess

_PROCESSES = pytest.StashKey[list]()


@pytest.fixture(scope="session")
def kafka_bootstrap():
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        _create_shop_topics({"bootstrap.servers": external})
        yield external
        return
    data_dir = Path(tempfile.mkdtemp(prefix="pytest-kafka-"))
    kafka = LocalKafka(data_dir=data_dir)
    kafka.start()
    try:
        kafka.create_topics()
        yield kafka.bootstrap
    finally:
        kafka.stop(remove_data=True)


def _create_shop_topics(overrides: dict) -> None:
    from kafka_common.config import kafka_client_config
    from kafka_common.shop.topics import create_topics

    create_topics({**kafka_client_config(), **overrides})


@pytest.fixture(scope="session")
def kafka_config(kafka_bootstrap) -> dict:
    from kafka_common.config import kafka_client_config

    config = kafka_client_config()
    config["bootstrap.servers"] = kafka_bootstrap
    return config


@pytest.fixture
def dedicated_kafka(tmp_path):
    with broker_of_its_own(tmp_path / "kafka") as kafka:
        yield kafka


@pytest.fixture
def unique_name(request):
    def make(prefix: str = "t") -> str:
        return _unique_name(prefix, request.node.name)

    return make


@pytest.fixture
def new_topic(kafka_config, unique_name):
    def make(prefix: str = "t", partitions: int = 6, config: dict | None = None) -> str:
        return create_topic(kafka_config, unique_name(prefix), partitions, config)

    return make


@pytest.fixture
def read_topic(kafka_config):
    def read(topics: str | Sequence[str], until=None, timeout: float = 30.0, isolation_level: str = "read_committed"):
        return read_records(kafka_config, topics, until=until, timeout=timeout, isolation_level=isolation_level)

    return read


@pytest.fixture
def service_process(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    started: list[ServiceProcess] = []
    request.node.stash[_PROCESSES] = started

    def start(
        command: str | Sequence[str],
        *,
        env: dict | None = None,
        http_port: int | None = None,
        name: str | None = None,
        bootstrap: str | None = None,
        wait_ready: bool = True,
        ready_timeout: float = 60.0,
    ) -> ServiceProcess:
        argv = [command] if isinstance(command, str) else list(command)
        base = name or Path(argv[0]).name
        label, n = base, 1
        while any(p.name == label for p in started):
            n += 1
            label = f"{base}-{n}"
        if bootstrap is None:
            bootstrap = request.getfixturevalue("kafka_bootstrap")
        port = http_port or free_port()
        proc_env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "LOG_FORMAT": "console", **(env or {})}
        proc = ServiceProcess(label, argv, env=proc_env, http_port=port, log_file=tmp_path / f"{label}.log")
        started.append(proc)
        proc.start()
        if wait_ready:
            proc.wait_ready(ready_timeout)
        return proc

    yield start
    for proc in started:
        proc.terminate()  # all at once, then wait for each
    for proc in started:
        proc.stop(timeout=15.0)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    for proc in item.stash.get(_PROCESSES, []):
        state = "running" if proc.running else f"exit code {proc.returncode}"
        report.sections.append((f"{proc.name} output ({state}, {proc.log_file})", proc.log_tail(60)))
