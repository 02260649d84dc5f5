"""The projection loop's batches, with stand-in records (the status service's broker tests cover Kafka):
what replay leaves out, and how one record that fails a batch's write is pinned down and skipped."""

from __future__ import annotations

import gc
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import structlog
from fakes import Record
from prometheus_client import REGISTRY

from kafka_common import events, projection
from kafka_common.bounded import KafkaCalls
from kafka_common.clients import client_properties
from kafka_common.config import ClientConfig
from kafka_common.health import Health
from kafka_common.logging import configure_logging
from kafka_common.projection import REPLAY_GC_THRESHOLD, ProjectionLoop
from kafka_common.shop import ids
from kafka_common.shop.events import PizzaOrdered, PizzaStatus
from kafka_common.usage import KafkaUsage

COMPONENT = "projection-unit"
USAGE = KafkaUsage(component=COMPONENT, consumes=(PizzaStatus.TOPIC,), group="g", assigns_partitions=True)


class Ledger:
    """A read model in miniature: events staged inside batch(), written when it exits, all or
    nothing. Writing an order in `poisoned` fails, as a full disk or a bug would."""

    def __init__(self, poisoned: set[str] = frozenset()):
        self.poisoned = poisoned
        self.written: list[str] = []
        self.batches = 0
        self._staged: list[str] | None = None

    @contextmanager
    def batch(self) -> Iterator[None]:
        self._staged = []
        try:
            yield
            staged = self._staged
        finally:
            self._staged = None
        self.batches += 1
        if self.poisoned.intersection(staged):
            raise RuntimeError("the write failed")
        self.written.extend(staged)

    def apply(self, event: events.Event) -> None:
        assert self._staged is not None, "applied outside a batch"
        if event.payload.status == -100:
            raise ValueError("refused on the spot")
        self._staged.append(event.order_id)


def record(offset: int, order_id: str, code: int = 200) -> Record:
    key, value, headers = events.encode(PizzaStatus(order_id=order_id, status=code), "/tests")
    return Record(0, offset, key.encode(), value, headers, topic=PizzaStatus.TOPIC)


def loop_over(ledger: Ledger, applied: list) -> ProjectionLoop:
    return ProjectionLoop(
        USAGE,
        {PizzaStatus: ledger.apply},
        consumer=None,
        health=Health(60.0),
        calls=KafkaCalls(),
        stop=threading.Event(),
        on_applied=lambda *position: applied.append(position),
        batch=ledger.batch,
    )


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, {"component": COMPONENT, "topic": PizzaStatus.TOPIC, **labels}) or 0.0


@pytest.fixture
def console(capsys):
    """Log lines as the console shows them: start() in the test itself, where capsys captures."""

    class Console:
        def start(self) -> None:
            configure_logging(COMPONENT, fmt="console", level="INFO")

        def lines(self) -> list[str]:
            return capsys.readouterr().out.splitlines()

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield Console()
    structlog.reset_defaults()  # no logger left writing to the captured stream once it is closed
    root.handlers[:], root.level = handlers, level


@pytest.mark.parametrize("live", [False, True], ids=["replay", "live"])
def test_one_record_failing_the_batch_write_is_skipped_and_the_rest_applied(live, console):
    console.start()
    good, bad, other = (ids.new_order_id() for _ in range(3))
    ledger = Ledger(poisoned={bad})
    applied: list = []
    loop = loop_over(ledger, applied)
    if live:
        loop._caught_up.set()
    failed = metric("pizza_events_failed_total", reason="processing")
    invalid = metric("pizza_events_failed_total", reason="invalid")
    consumed = metric("pizza_events_consumed_total")
    garbage = Record(0, 13, b"x", b"not json", [], topic=PizzaStatus.TOPIC)
    loop._on_batch([record(10, good), record(11, bad), record(12, other, -100), garbage, record(14, other)])
    # The batch failed as a whole; its events were applied again one batch each: only `bad` failed.
    assert ledger.written == [good, other]
    assert ledger.batches == 1 + 3
    assert metric("pizza_events_failed_total", reason="processing") == failed + 2  # bad, and -100 on the spot
    assert metric("pizza_events_failed_total", reason="invalid") == invalid + 1
    assert metric("pizza_events_consumed_total") == consumed + 5
    assert applied == [(PizzaStatus.TOPIC, 0, 14)]
    lines = console.lines()
    failures = [line for line in lines if "event could not be applied" in line or "invalid event" in line]
    # Each failure said once, with the record it is about.
    assert [re.search(r"\] (.+?) (\S+@\d+)", line).groups() for line in failures] == [
        ("event could not be applied, skipped", f"{PizzaStatus.TOPIC}[0]@12"),
        ("invalid event skipped (dead-lettered by the kitchen's consumer groups)", f"{PizzaStatus.TOPIC}[0]@13"),
        ("event could not be applied, skipped", f"{PizzaStatus.TOPIC}[0]@11"),
    ]
    received = [line for line in lines if "event received" in line]
    assert len(received) == (3 if live else 0)  # live: one line per record no other line was about


def test_a_batch_that_fails_with_a_single_event_is_not_applied_again():
    bad = ids.new_order_id()
    ledger = Ledger(poisoned={bad})
    loop = loop_over(ledger, [])
    failed = metric("pizza_events_failed_total", reason="processing")
    loop._on_batch([record(20, bad)])
    assert ledger.batches == 1 and ledger.written == []
    assert metric("pizza_events_failed_total", reason="processing") == failed + 1


def test_replay_counts_records_per_batch_without_timing_each():
    ledger = Ledger()
    loop = loop_over(ledger, [])
    observed = metric("pizza_event_processing_seconds_count")
    consumed = metric("pizza_events_consumed_total")
    loop._on_batch([record(30 + n, ids.new_order_id()) for n in range(4)])
    assert ledger.batches == 1 and len(ledger.written) == 4
    assert metric("pizza_events_consumed_total") == consumed + 4
    assert metric("pizza_event_processing_seconds_count") == observed
    loop._caught_up.set()
    loop._on_batch([record(40 + n, ids.new_order_id()) for n in range(2)])
    assert metric("pizza_events_consumed_total") == consumed + 6
    assert metric("pizza_event_processing_seconds_count") == observed + 2


def test_a_handler_for_every_topic_it_consumes_is_required():
    with pytest.raises(ValueError, match="handlers for"):
        ProjectionLoop(
            USAGE,
            {PizzaOrdered: print},
            consumer=None,
            health=Health(60.0),
            calls=KafkaCalls(),
            stop=threading.Event(),
        )


def test_on_caught_up_runs_once_before_the_loop_is_ready():
    ready_when_called = []
    loop = ProjectionLoop(
        USAGE,
        {PizzaStatus: Ledger().apply},
        consumer=None,
        health=Health(60.0),
        calls=KafkaCalls(),
        stop=threading.Event(),
        on_caught_up=lambda: ready_when_called.append(loop.caught_up),
    )
    loop._unfinished = {(PizzaStatus.TOPIC, 0), (PizzaStatus.TOPIC, 1)}
    loop._reached_end(PizzaStatus.TOPIC, 0)
    assert ready_when_called == [] and not loop.caught_up
    loop._reached_end(PizzaStatus.TOPIC, 1)
    loop._reached_end(PizzaStatus.TOPIC, 1)
    assert ready_when_called == [False] and loop.caught_up


def test_the_garbage_collector_is_as_it_was_once_caught_up():
    before = gc.get_threshold()
    loop = loop_over(Ledger(), [])
    loop._unfinished = {(PizzaStatus.TOPIC, 0)}
    try:
        loop._replay.start()
        assert gc.get_threshold()[0] == REPLAY_GC_THRESHOLD
        loop._reached_end(PizzaStatus.TOPIC, 0)
        assert loop.caught_up and gc.get_threshold() == before
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


@pytest.mark.parametrize("deployment", [{}, {"fetch.wait.max.ms": "500"}])
def test_the_consumer_ends_a_replay_promptly_unless_the_deployment_says_otherwise(monkeypatch, deployment):
    built: dict = {}

    def build_consumer(config, component, extra, on_error, defaults=None):
        built.update(client_properties(config, component, extra, on_error, defaults))

    monkeypatch.setattr(projection, "build_consumer", build_consumer)
    projection.build_projection_consumer(USAGE, ClientConfig(deployment, {}), Health(60.0))
    assert built["fetch.wait.max.ms"] == deployment.get("fetch.wait.max.ms", "100")
    assert built["fetch.queue.backoff.ms"] == "100" and built["isolation.level"] == "read_committed"
