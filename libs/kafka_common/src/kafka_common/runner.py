"""The consume loop every kitchen service runs, and the projection loop of the read model.

A service hands ConsumerService its KafkaUsage and one handler per event
type. A handler gets a validated Event and returns a Step: the events to
emit, and how long the step takes. The loop does everything else:

- polls continuously. A step that takes time pauses its partition (so the
  partition's order is kept) and the loop goes on polling, so liveness, group
  membership and the other partitions' orders all keep moving;
- when a step is done, its output events and its consumed offset are
  committed in one Kafka transaction (several finished steps share one);
  nothing is committed before the work is done, so a crash re-delivers it;
- an event that fails validation, or whose handler keeps raising, goes to
  the dead-letter topic in that same transaction with headers naming its
  source, and its offset moves on: a poison event never blocks a partition;
- rebalances are logged; finished work is committed on revoke, while the
  partitions are still owned; a step in progress on a revoked or lost
  partition is abandoned uncommitted (its new owner starts it again);
- SIGTERM/SIGINT: stop taking work, abandon what is in progress, close the
  consumer (leave the group at once), flush the producer, exit 0, each step
  logged and each bounded in time even when the broker is gone.

ProjectionRunner is the other shape: no group, every partition from the
beginning, handlers apply events to a local read model.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition

from kafka_common import events, kitchen, metrics, topics
from kafka_common.clients import ClientErrors, build_consumer, build_producer
from kafka_common.config import ClientConfig, load_client_config
from kafka_common.health import Health
from kafka_common.http import HTTPServer, create_app
from kafka_common.logging import event_context, get_logger, record_fields
from kafka_common.usage import KafkaUsage

POLL_TIMEOUT_S = 0.5          # longest the loop waits for a record; bounds liveness beats
MAX_BATCH = 200               # records drained per loop turn before committing
HANDLER_ATTEMPTS = 3          # a handler raising this often sends the event to the DLQ
TRANSACTION_TIMEOUT_MS = 15_000  # aborts a crashed instance's open transaction quickly
CLOSE_TIMEOUT_S = 10.0
FLUSH_TIMEOUT_S = 5.0
STATS_INTERVAL_MS = 5_000
REPLAY_PROGRESS_EVERY_S = 5.0  # a projection's progress line while it catches up


@dataclass(frozen=True)
class Step:
    """What a handler decided: emit these events after `seconds` of (simulated) work."""

    name: str | None = None                  # kitchen step for metrics and logs; None: bookkeeping only
    seconds: float = 0.0                     # kitchen time, before KITCHEN_TIME_SCALE
    emit: tuple[events.Payload, ...] = ()
    done_message: str | None = None          # logged once the step's output is committed

    @staticmethod
    def nothing() -> Step:
        return Step()


Handler = Callable[[events.Event], Step | None]


@dataclass
class _Work:
    msg: Message
    step: Step
    received: float
    due: float


@dataclass
class _Batch:
    """Finished work, dead letters and their offsets: committed together."""

    outputs: list[tuple[str, bytes, bytes, list]] = field(default_factory=list)   # topic, key, value, headers
    produced_topics: list[str] = field(default_factory=list)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)             # next offset to consume
    first_offsets: dict[tuple[str, int], int] = field(default_factory=dict)       # for a rewind after abort
    finished: list[_Work] = field(default_factory=list)
    dead_letters: list[str] = field(default_factory=list)                          # source topics
    delivered: list[Message] = field(default_factory=list)                         # from delivery reports

    def on_delivery(self, err, msg) -> None:
        if err is None:
            self.delivered.append(msg)

    def add_offset(self, msg: Message) -> None:
        tp = (msg.topic(), msg.partition())
        self.first_offsets.setdefault(tp, msg.offset())
        self.offsets[tp] = max(self.offsets.get(tp, -1), msg.offset() + 1)

    def __bool__(self) -> bool:
        return bool(self.offsets)


def install_signal_handlers(stop: threading.Event, log) -> None:
    def on_signal(signum, _frame):
        name = signal.Signals(signum).name
        if stop.is_set():
            log.warning("second signal received, still shutting down", signal=name)
            return
        log.info("shutdown requested", signal=name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def close_bounded(close: Callable[[], object], what: str, timeout: float, log) -> bool:
    """librdkafka's close() can hang when the cluster is gone; never let it hold the exit."""
    thread = threading.Thread(target=close, name=f"close-{what}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        log.warning(f"{what} did not close in time, exiting anyway", timeout_s=timeout)
        return False
    return True


def dead_letter_headers(msg: Message, component: str, error: str) -> list[tuple[str, bytes]]:
    headers = list(msg.headers() or [])
    headers += [
        ("dlq_source_topic", msg.topic().encode()),
        ("dlq_source_partition", str(msg.partition()).encode()),
        ("dlq_source_offset", str(msg.offset()).encode()),
        ("dlq_service", component.encode()),
        ("dlq_error", error.encode()[:4096]),
        ("dlq_time", datetime.now(UTC).isoformat().encode()),
    ]
    return headers


class _LagStats:
    """Consumer lag per partition from librdkafka's statistics (stats_cb)."""

    def __init__(self, component: str, group: str):
        self.component, self.group = component, group
        self._seen: set[tuple[str, str]] = set()

    def __call__(self, stats_json: str) -> None:
        stats = json.loads(stats_json)
        seen = set()
        for topic, tstats in stats.get("topics", {}).items():
            for partition, pstats in tstats.get("partitions", {}).items():
                lag = partition_lag(pstats)
                if partition == "-1" or lag is None:
                    continue
                metrics.CONSUMER_LAG.labels(self.component, self.group, topic, partition).set(lag)
                seen.add((topic, partition))
        for topic, partition in self._seen - seen:
            metrics.CONSUMER_LAG.remove(self.component, self.group, topic, partition)
        self._seen = seen


def partition_lag(pstats: dict) -> int | None:
    """Records between the group's position and the last stable offset, or None if unknown.

    Offsets committed through a transaction never reach the consumer's own
    committed-offset view, so the loop also stores them (stored_offset) after
    each commit; committed_offset covers what was committed before start-up.
    Nothing committed yet: the group starts at the log start (auto.offset.reset=earliest).
    """
    if pstats.get("fetch_state") not in ("active", "offset-query", "offset-wait"):
        return None
    end = pstats.get("ls_offset", -1)
    position = max(pstats.get("stored_offset", -1), pstats.get("committed_offset", -1))
    if position < 0:
        position = pstats.get("lo_offset", -1)
    if end < 0 or position < 0:
        return None
    return max(0, end - position)


class _ServiceBase:
    """Logging, health, HTTP server and signals: what both loop shapes share."""

    def __init__(self, usage: KafkaUsage, handlers: Mapping[type[events.Payload], Handler],
                 client_config: ClientConfig | None, http_port: int | None, health: Health | None,
                 blueprints: Iterable = ()):
        self.usage = usage
        self.component = usage.component
        self.log = get_logger(usage.component)
        self.models = {model.TOPIC: model for model in handlers}
        self.handlers = {model.TOPIC: handler for model, handler in handlers.items()}
        if set(self.models) != set(usage.consumes):
            raise ValueError(f"handlers for {sorted(self.models)} but KafkaUsage consumes {sorted(usage.consumes)}")
        self.client_config = client_config or load_client_config()
        self.health = health or Health()
        self.stop_event = threading.Event()
        self.http_port = http_port
        self.http_app = create_app(self.component, self.health)
        for blueprint in blueprints:
            self.http_app.register_blueprint(blueprint)
        self._http: HTTPServer | None = None
        self._client_errors = ClientErrors(self.component, on_fatal=self.health.set_fatal)
        metrics.BUILD_INFO.labels(self.component).info({"version": _version()})
        metrics.LAST_POLL_AGE.labels(self.component).set_function(self.health.seconds_since_beat)

    def _make_consumer(self, extra: dict) -> Consumer:
        return build_consumer(self.client_config, self.component, extra, self._client_errors)

    def start_http(self) -> None:
        if self.http_port is not None:
            self._http = HTTPServer(self.http_app, self.http_port).start()

    def stop_http(self) -> None:
        if self._http is not None:
            self._http.stop()

    def decode(self, msg: Message) -> events.Event:
        return events.decode(self.models[msg.topic()], msg.key(), msg.value(), msg.headers())

    @contextmanager
    def receiving(self, msg: Message, replay: bool = False):
        """Count, log and time one record; every log line inside carries its coordinates.

        A replayed record (a projection catching up) is logged at debug: at info,
        logging would take half of a rebuild's time.
        """
        metrics.EVENTS_CONSUMED.labels(self.component, msg.topic()).inc()
        with event_context(msg.topic(), msg.partition(), msg.offset(), _key(msg)):
            (self.log.debug if replay else self.log.info)("event received", **record_fields(msg))
            started = time.perf_counter()
            try:
                yield
            finally:
                metrics.PROCESSING_SECONDS.labels(self.component, msg.topic()).observe(time.perf_counter() - started)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kafka-common")
    except PackageNotFoundError:
        return "unknown"


class ConsumerService(_ServiceBase):
    """A consumer-group member whose steps emit events transactionally (see module doc)."""

    def __init__(self, usage: KafkaUsage, handlers: Mapping[type[events.Payload], Handler], *,
                 client_config: ClientConfig | None = None, http_port: int | None = None,
                 health: Health | None = None, dlq_topic: str = topics.PIZZA_DLQ,
                 install_signals: bool = True, blueprints: Iterable = (), time_scale: float | None = None):
        super().__init__(usage, handlers, client_config, http_port, health, blueprints)
        self.time_scale = kitchen.time_scale() if time_scale is None else time_scale
        if not usage.group or usage.assigns_partitions:
            raise ValueError("ConsumerService joins a consumer group; a reader of every partition is a ProjectionRunner")
        if not usage.transactional:
            raise ValueError("ConsumerService commits output and offsets in transactions: declare transactional=True")
        self.dlq_topic = dlq_topic
        self.install_signals = install_signals
        self.source = f"/pizza-shop/{self.component}"
        self._in_flight: dict[tuple[str, int], _Work] = {}
        self._batch = _Batch()                                 # finished work of the current loop turn
        self._assigned: set[tuple[str, int]] = set()
        self._joined = False
        self.health.set_readiness(self._readiness)
        self.consumer: Consumer | None = None
        self.producer = None

    # -- readiness -------------------------------------------------------------------------
    def _readiness(self) -> tuple[bool, str]:
        if not self._joined:
            return False, "not yet a member of the consumer group"
        return True, f"member of {self.usage.group} with {len(self._assigned)} partition(s)"

    # -- set-up ------------------------------------------------------------------------------
    def _build_clients(self) -> None:
        self.consumer = self._make_consumer({
            "group.id": self.usage.group,
            "partition.assignment.strategy": self.usage.assignment,
            "enable.auto.commit": "false",          # offsets go through the transaction
            "enable.auto.offset.store": "false",
            "auto.offset.reset": "earliest",        # a new group must not skip orders
            "isolation.level": "read_committed",    # never act on an aborted transaction's output
            "statistics.interval.ms": str(STATS_INTERVAL_MS),
            "stats_cb": _LagStats(self.component, self.usage.group),
        })
        extra = {"transactional.id": self.usage.transactional_id()}
        if "transaction.timeout.ms" not in self.client_config.properties:
            extra["transaction.timeout.ms"] = str(TRANSACTION_TIMEOUT_MS)
        self.producer = build_producer(self.client_config, self.component, extra, self._client_errors)

    def _init_transactions(self) -> bool:
        """Register the transactional id (fencing any predecessor); wait for the cluster if needed."""
        while not self.stop_event.is_set():
            self.health.beat()
            try:
                self.producer.init_transactions(5.0)
                self.log.info("transactional producer ready", transactional_id=self.usage.transactional_id())
                return True
            except KafkaException as exc:
                err = exc.args[0]
                if err.fatal():
                    raise
                self.log.warning("waiting for Kafka to initialise transactions", error=err.str())
        return False

    # -- rebalance callbacks (run inside poll) -------------------------------------------------
    def _on_assign(self, consumer, partitions) -> None:
        self._joined = True
        self._assigned |= {(p.topic, p.partition) for p in partitions}
        metrics.REBALANCES.labels(self.component, self.usage.group, "assigned").inc()
        self._update_assigned_gauge()
        self.log.info("partitions assigned", group=self.usage.group,
                      partitions=_describe(partitions), total=len(self._assigned))

    def _on_revoke(self, consumer, partitions) -> None:
        # Commit on revoke: work finished so far is committed while this member still
        # owns the partitions; after the rebalance the commit would be fenced and redone.
        self._commit_pending()
        self._drop_partitions(partitions, "revoked")

    def _on_lost(self, consumer, partitions) -> None:
        # Lost (evicted): the group moved on, nothing can be committed; redo what is still ours.
        self._drop_partitions(partitions, "lost")
        batch = self._take_batch()
        if batch:
            self._rewind(batch)

    def _drop_partitions(self, partitions, kind: str) -> None:
        metrics.REBALANCES.labels(self.component, self.usage.group, kind).inc()
        for p in partitions:
            tp = (p.topic, p.partition)
            self._assigned.discard(tp)
            work = self._in_flight.pop(tp, None)
            if work is not None:
                self._abandon(work, f"partition {kind}")
        self._update_assigned_gauge()
        self.log.info(f"partitions {kind}", group=self.usage.group, partitions=_describe(partitions),
                      total=len(self._assigned))

    def _update_assigned_gauge(self) -> None:
        for topic in self.usage.consumes:
            count = sum(1 for t, _ in self._assigned if t == topic)
            metrics.ASSIGNED_PARTITIONS.labels(self.component, self.usage.group, topic).set(count)
        metrics.ORDERS_IN_PROGRESS.labels(self.component).set(len(self._in_flight))

    def _abandon(self, work: _Work, why: str) -> None:
        with event_context(work.msg.topic(), work.msg.partition(), work.msg.offset(), _key(work.msg)):
            self.log.info("step abandoned, not committed: it will be done again", reason=why, step=work.step.name)

    # -- the loop ------------------------------------------------------------------------------
    def run(self) -> int:
        if self.install_signals:
            install_signal_handlers(self.stop_event, self.log)
        self._build_clients()
        self.start_http()
        self.log.info("starting", group=self.usage.group, consumes=list(self.usage.consumes),
                      produces=list(self.usage.writes), assignment=self.usage.assignment)
        try:
            if not self._init_transactions():
                return self._shutdown()
            self.consumer.subscribe(list(self.usage.consumes), on_assign=self._on_assign,
                                    on_revoke=self._on_revoke, on_lost=self._on_lost)
            while not self.stop_event.is_set() and not self.health.fatal:
                self._turn()
        except KafkaException as exc:
            self.health.set_fatal(exc.args[0].str())
            self.log.error("fatal Kafka error, stopping", error=exc.args[0].str(), exc_info=True)
        code = self._shutdown()
        return code if not self.health.fatal else 1

    def _turn(self) -> None:
        # self._batch, not a local: a rebalance callback (inside poll) may commit it first.
        msg = self.consumer.poll(self._poll_timeout())
        self.health.beat()
        drained = 0
        while msg is not None:
            self._on_message(msg, self._batch)
            drained += 1
            if drained >= MAX_BATCH or self.stop_event.is_set():
                break
            msg = self.consumer.poll(0)
        self._commit_pending()

    def _take_batch(self) -> _Batch:
        """Hand over the pending batch exactly once: what is committed or rewound never comes back."""
        batch, self._batch = self._batch, _Batch()
        return batch

    def _commit_pending(self) -> None:
        self._collect_due(self._batch)
        batch = self._take_batch()
        if batch:
            self._commit(batch)

    def _poll_timeout(self) -> float:
        if not self._in_flight:
            return POLL_TIMEOUT_S
        next_due = min(w.due for w in self._in_flight.values())
        return max(0.0, min(POLL_TIMEOUT_S, next_due - time.monotonic()))

    def _on_message(self, msg: Message, batch: _Batch) -> None:
        if msg.error():
            err = msg.error()
            if err.code() != KafkaError._PARTITION_EOF:
                self.log.warning("consumer error", error=err.str(), code=err.name())
                if err.fatal():
                    self.health.set_fatal(err.str())
            return
        tp = (msg.topic(), msg.partition())
        if tp in self._in_flight:
            # Fetched before the pause took effect: rewind so it comes again after the step.
            self.consumer.seek(TopicPartition(msg.topic(), msg.partition(), msg.offset()))
            return
        with self.receiving(msg):
            try:
                event = self.decode(msg)
            except events.InvalidEvent as exc:
                metrics.EVENTS_FAILED.labels(self.component, msg.topic(), "invalid").inc()
                self._dead_letter(msg, f"invalid event: {exc}", batch)
                return
            step, error = self._call_handler(msg.topic(), event)
            if error is not None:
                metrics.EVENTS_FAILED.labels(self.component, msg.topic(), "processing").inc()
                self._dead_letter(msg, error, batch)
                return
            step = step or Step.nothing()
            now = time.monotonic()
            work = _Work(msg, step, received=now, due=now + max(0.0, step.seconds * self.time_scale))
            if work.due > now:
                self.consumer.pause([TopicPartition(*tp)])
                self._in_flight[tp] = work
                metrics.ORDERS_IN_PROGRESS.labels(self.component).set(len(self._in_flight))
            else:
                self._finish(work, batch)

    def _call_handler(self, topic: str, event: events.Event) -> tuple[Step | None, str | None]:
        handler = self.handlers[topic]
        last = None
        for attempt in range(1, HANDLER_ATTEMPTS + 1):
            try:
                return handler(event), None
            except Exception as exc:  # a handler bug must not stop the partition
                last = f"{type(exc).__name__}: {exc}"
                self.log.warning("handler failed", attempt=attempt, error=last, exc_info=True)
        return None, f"processing failed {HANDLER_ATTEMPTS} times: {last}"

    def _dead_letter(self, msg: Message, error: str, batch: _Batch) -> None:
        self.log.error("event sent to the dead-letter topic", error=error, dlq_topic=self.dlq_topic)
        batch.outputs.append((self.dlq_topic, msg.key(), msg.value(), dead_letter_headers(msg, self.component, error)))
        batch.produced_topics.append(self.dlq_topic)
        batch.dead_letters.append(msg.topic())
        batch.add_offset(msg)

    def _finish(self, work: _Work, batch: _Batch) -> None:
        for payload in work.step.emit:
            key, value, headers = events.encode(payload, self.source)
            batch.outputs.append((payload.TOPIC, key.encode(), value, headers))
            batch.produced_topics.append(payload.TOPIC)
        batch.add_offset(work.msg)
        batch.finished.append(work)

    def _collect_due(self, batch: _Batch) -> None:
        now = time.monotonic()
        for tp, work in list(self._in_flight.items()):
            if work.due <= now:
                del self._in_flight[tp]
                self._finish(work, batch)

    def _commit(self, batch: _Batch) -> None:
        """One transaction: every output event plus the consumed offsets."""
        try:
            self.producer.begin_transaction()
            for topic, key, value, headers in batch.outputs:
                self.producer.produce(topic, key=key, value=value, headers=headers, on_delivery=batch.on_delivery)
            self.producer.send_offsets_to_transaction(
                [TopicPartition(t, p, o) for (t, p), o in batch.offsets.items()],
                self.consumer.consumer_group_metadata(), 10.0)
            self._commit_transaction()
        except KafkaException as exc:
            if exc.args[0].fatal():
                raise  # fenced by a newer instance, or worse: stop and let the pod restart
            self._abort(batch, exc.args[0].str())
            return
        metrics.TRANSACTIONS.labels(self.component, "committed").inc()
        # Only for the lag statistics: auto-commit is off, so nothing else commits these.
        self.consumer.store_offsets(offsets=[TopicPartition(t, p, o) for (t, p), o in batch.offsets.items()
                                             if (t, p) in self._assigned])
        for topic in batch.produced_topics:
            metrics.EVENTS_PRODUCED.labels(self.component, topic).inc()
        for topic in batch.dead_letters:
            metrics.DLQ_EVENTS.labels(self.component, topic).inc()
        for msg in batch.delivered:
            self.log.info("event produced", **record_fields(msg))
        now = time.monotonic()
        for work in batch.finished:
            self._resume(work)
            if work.step.name:
                metrics.KITCHEN_STEP_SECONDS.labels(self.component, work.step.name).observe(now - work.received)
            if work.step.done_message:
                with event_context(work.msg.topic(), work.msg.partition(), work.msg.offset(), _key(work.msg)):
                    self.log.info(work.step.done_message)
        self.log.debug("transaction committed", events=len(batch.outputs), offsets=len(batch.offsets))
        metrics.ORDERS_IN_PROGRESS.labels(self.component).set(len(self._in_flight))

    def _commit_transaction(self) -> None:
        for attempt in range(1, 4):
            try:
                self.producer.commit_transaction(10.0)
                return
            except KafkaException as exc:
                if exc.args[0].retriable() and attempt < 3:
                    self.log.warning("transaction commit will be retried", error=exc.args[0].str())
                    continue
                raise

    def _abort(self, batch: _Batch, reason: str) -> None:
        """Abort and rewind: the batch's records are consumed and processed again."""
        metrics.TRANSACTIONS.labels(self.component, "aborted").inc()
        self.log.warning("transaction aborted, rewinding", reason=reason)
        try:
            self.producer.abort_transaction(10.0)
        except KafkaException as exc:
            if exc.args[0].fatal():
                raise
            self.log.warning("abort failed", error=exc.args[0].str())
        self._rewind(batch)

    def _rewind(self, batch: _Batch) -> None:
        """Consume the batch's records again, on the partitions still assigned."""
        for (topic, partition), first in batch.first_offsets.items():
            self._in_flight.pop((topic, partition), None)
            if (topic, partition) not in self._assigned:
                continue
            self.consumer.resume([TopicPartition(topic, partition)])
            self.consumer.seek(TopicPartition(topic, partition, first))

    def _resume(self, work: _Work) -> None:
        tp = (work.msg.topic(), work.msg.partition())
        if tp in self._assigned and work.due > work.received:
            self.consumer.resume([TopicPartition(*tp)])

    # -- shutdown ------------------------------------------------------------------------------
    def _shutdown(self) -> int:
        self.log.info("shutting down: no new work is taken")
        for work in list(self._in_flight.values()):
            self._abandon(work, "shutting down")
        self._in_flight.clear()
        if self.consumer is not None:
            self.log.info("closing the consumer: committing nothing more, leaving the group")
            if close_bounded(self.consumer.close, "consumer", CLOSE_TIMEOUT_S, self.log):
                self.log.info("consumer closed, left the group", group=self.usage.group)
        if self.producer is not None:
            remaining = self.producer.flush(FLUSH_TIMEOUT_S)
            self.log.info("producer flushed", undelivered=remaining)
        self.stop_http()
        self.log.info("shutdown complete")
        return 0


class ProjectionRunner(_ServiceBase):
    """Reads every partition of its topics from the beginning, without a group, into a projection.

    Ready once every partition has been read up to its end as of start-up.
    Invalid events are logged and counted but not dead-lettered: every replica
    reads every event on every start, so each would dead-letter it again.
    """

    def __init__(self, usage: KafkaUsage, handlers: Mapping[type[events.Payload], Handler], *,
                 client_config: ClientConfig | None = None, http_port: int | None = None,
                 health: Health | None = None, install_signals: bool = True,
                 on_applied: Callable[[str, int, int], None] | None = None, blueprints: Iterable = ()):
        super().__init__(usage, handlers, client_config, http_port, health, blueprints)
        self.install_signals = install_signals
        self.on_applied = on_applied
        self._unfinished: set[tuple[str, int]] | None = None   # partitions not yet read to their start-up end
        self._caught_up = threading.Event()
        self._replayed = 0
        self._progress_at = time.monotonic()
        self.health.set_readiness(self._readiness)
        self.consumer: Consumer | None = None

    @property
    def caught_up(self) -> bool:
        return self._caught_up.is_set()

    def _readiness(self) -> tuple[bool, str]:
        if self._caught_up.is_set():
            return True, "read model caught up"
        if self._unfinished is None:
            return False, "waiting for the topics' partitions"
        return False, f"rebuilding the read model: {len(self._unfinished)} partition(s) to go"

    def _partitions(self) -> list[TopicPartition]:
        while not self.stop_event.is_set():
            self.health.beat()
            try:
                metadata = self.consumer.list_topics(timeout=5.0)
            except KafkaException as exc:
                self.log.warning("waiting for Kafka", error=exc.args[0].str())
                continue
            missing = [t for t in self.usage.consumes if t not in metadata.topics or metadata.topics[t].error]
            if missing:
                self.log.warning("waiting for topics to exist", topics=missing)
                self.stop_event.wait(2.0)
                continue
            return [TopicPartition(t, p, OFFSET_BEGINNING)
                    for t in self.usage.consumes for p in sorted(metadata.topics[t].partitions)]
        return []

    def run(self) -> int:
        if self.install_signals:
            install_signal_handlers(self.stop_event, self.log)
        self.consumer = self._make_consumer({
            # Never joins the group nor commits: librdkafka wants an id and looks up its coordinator.
            "group.id": self.usage.group or f"pizza-{self.component}",
            "enable.auto.commit": "false",
            "enable.auto.offset.store": "false",
            "enable.partition.eof": "true",
            "isolation.level": "read_committed",
        })
        self.start_http()
        self.log.info("starting: rebuilding the read model from the beginning", consumes=list(self.usage.consumes))
        try:
            partitions = self._partitions()
            if partitions:
                self._unfinished = {(p.topic, p.partition) for p in partitions}
                self.consumer.assign(partitions)
                self.log.info("partitions assigned", partitions=_describe(partitions))
            while not self.stop_event.is_set() and not self.health.fatal:
                msg = self.consumer.poll(POLL_TIMEOUT_S)
                self.health.beat()
                if msg is not None:
                    self._on_message(msg)
        except KafkaException as exc:
            self.health.set_fatal(exc.args[0].str())
            self.log.error("fatal Kafka error, stopping", error=exc.args[0].str(), exc_info=True)
        self.log.info("shutting down")
        close_bounded(self.consumer.close, "consumer", CLOSE_TIMEOUT_S, self.log)
        self.log.info("consumer closed")
        self.stop_http()
        self.log.info("shutdown complete")
        return 1 if self.health.fatal else 0

    def _on_message(self, msg: Message) -> None:
        err = msg.error()
        if err is not None:
            if err.code() == KafkaError._PARTITION_EOF:
                self._reached_end(msg.topic(), msg.partition())
            else:
                self.log.warning("consumer error", error=err.str(), code=err.name())
            return
        replay = not self._caught_up.is_set()
        if replay:
            self._replay_progress()
        with self.receiving(msg, replay=replay):
            try:
                event = self.decode(msg)
                self.handlers[msg.topic()](event)
            except events.InvalidEvent as exc:
                metrics.EVENTS_FAILED.labels(self.component, msg.topic(), "invalid").inc()
                self.log.error("invalid event skipped (dead-lettered by the kitchen's consumer groups)",
                               error=str(exc))
            except Exception as exc:
                metrics.EVENTS_FAILED.labels(self.component, msg.topic(), "processing").inc()
                self.log.error("event could not be applied, skipped", error=f"{type(exc).__name__}: {exc}",
                               exc_info=True)
        if self.on_applied is not None:
            self.on_applied(msg.topic(), msg.partition(), msg.offset())

    def _replay_progress(self) -> None:
        self._replayed += 1
        if time.monotonic() - self._progress_at >= REPLAY_PROGRESS_EVERY_S:
            self._progress_at = time.monotonic()
            self.log.info("rebuilding the read model", events_replayed=self._replayed,
                          partitions_to_go=len(self._unfinished or ()))

    def _reached_end(self, topic: str, partition: int) -> None:
        if self._unfinished is None or self._caught_up.is_set():
            return
        self._unfinished.discard((topic, partition))
        if not self._unfinished:
            self._caught_up.set()
            metrics.READ_MODEL_CAUGHT_UP.labels(self.component).set(1)
            self.log.info("read model caught up with every partition", events_replayed=self._replayed)


def _key(msg: Message) -> str | None:
    key = msg.key()
    return key.decode(errors="replace") if key else None


def _describe(partitions: Iterable[TopicPartition]) -> list[str]:
    return [f"{p.topic}[{p.partition}]" for p in partitions]
