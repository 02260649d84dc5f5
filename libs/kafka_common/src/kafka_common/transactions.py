"""The checkpoint: a batch's output events and consumed offsets, committed in one Kafka transaction.

Every failure of the transaction API ends in one of three outcomes, never in a
traceback and never in a call on a transaction whose abort has not completed:

- COMMITTED: outputs and offsets are in the log, atomically.
- ABORTED: nothing of the batch is visible; the loop rewinds and redoes it.
  Output records that Kafka refused for good (too large, a missing topic...)
  are listed in batch.undeliverable, so that the loop does not redo the
  record behind them for ever (consume.py).
  A retriable error (a timeout while the broker is away) is retried a few
  times; an abortable one aborts at once. An abort that times out is retried
  until it completes (librdkafka's rule: repeat abort_transaction() until it
  succeeds before beginning another transaction; beginning one early is what
  produces "Conflicting abort_transaction API call is already in progress"
  and then INVALID_TXN_STATE).
- A call that hangs (send offsets, commit and abort run on a worker thread of
  their own, bounded by KafkaCalls.call_abandonable): the producer is left behind
  and replaced as below; the batch counts as ABORTED. After
  MAX_ABANDONED_PRODUCERS of those, ClientWedged: the process is replaced.
- A fatal producer error (the producer is unusable): the producer is replaced
  by a new one with the same transactional.id, whose init_transactions()
  aborts whatever the old one left open; the batch counts as ABORTED.
  PRODUCER_FENCED is fatal too. It does not prove that another live process
  owns the id: a broker that aborted a transaction past transaction.timeout.ms
  (say, across its own restart) bumps the epoch and fences the producer too. So
  a fenced producer is replaced like a fatal one; only when that keeps
  happening (MAX_FENCINGS within FENCING_WINDOW_S: two live processes with one
  INSTANCE_ID fencing each other in turn) is TransactionFenced raised and the
  service exits cleanly (non-zero).

Before committing after a client reported the cluster unreachable, the
checkpoint first checks that the cluster answers metadata requests (a call
that honours its timeout), then starts a new producer: send_offsets_to_transaction()
is the call that waits forever while librdkafka's cached group coordinator
is gone, and a new producer has no cache. Every call is also bounded by
KafkaCalls (see bounded.py); the watchdog's exit is the last resort.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition

from kafka_common import metrics
from kafka_common.bounded import CallAbandoned, KafkaCalls

TXN_CALL_TIMEOUT_S = 5.0  # send offsets, commit, abort: each bounded by this (+ grace, by KafkaCalls)
INIT_TIMEOUT_S = 1.0  # per attempt: init_transactions resumes where a timed-out one left off,
# and the loop's liveness beat must go on while the broker is away
INIT_WAIT_LOG_EVERY = 10  # attempts between two "waiting for Kafka" lines
TXN_RETRIES = 3  # retriable errors of send offsets / commit before aborting
ABORT_RETRY_PAUSE_S = 1.0
PROBE_TIMEOUT_S = 1.0
PROBE_EVERY_S = 1.0  # between batches, while Kafka is away: how often to look for it
MAX_ABANDONED_PRODUCERS = 5  # producers left behind stuck in a call; then the process is replaced
MAX_FENCINGS = 3  # fenced this often within FENCING_WINDOW_S: a live twin owns the id
FENCING_WINDOW_S = 120.0


# What Kafka refuses because of the record itself, however often it is sent. Anything
# else (timeouts, a missing topic, ACLs) is the cluster's state: the batch is redone.
REFUSED_FOR_GOOD = frozenset(
    {KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.RECORD_LIST_TOO_LARGE, KafkaError.INVALID_RECORD}
)


class ClientWedged(Exception):
    """Too many transaction calls hung: this process should be replaced."""


class Outcome(Enum):
    COMMITTED = "committed"
    ABORTED = "aborted"


class TransactionFenced(Exception):
    """Another live instance uses this transactional.id: this one must stop."""


@dataclass(slots=True)
class OutputRecord:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: list
    source: tuple[str, int, int] | None = None  # the consumed record it comes from (topic, partition, offset)


@dataclass
class Batch:
    """Finished work, dead letters and their offsets: committed together."""

    outputs: list[OutputRecord] = field(default_factory=list)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)  # next offset to consume
    first_offsets: dict[tuple[str, int], int] = field(default_factory=dict)  # for a rewind after abort
    finished: list = field(default_factory=list)  # the loop's work items
    dead_letters: list[str] = field(default_factory=list)  # source topics
    seen: set[tuple[str, str]] = field(default_factory=set)  # (topic, dedupe key) handled: looked up per record
    delivered: list = field(default_factory=list)  # from delivery reports

    undeliverable: list[tuple[OutputRecord, str]] = field(default_factory=list)  # refused for good

    def on_delivery(self, record: OutputRecord):
        def report(err, msg) -> None:
            if err is None:
                self.delivered.append(msg)
            elif err.code() in REFUSED_FOR_GOOD:
                self.undeliverable.append((record, err.str()))

        return report

    def add_offset(self, topic: str, partition: int, offset: int) -> None:
        tp = (topic, partition)
        self.first_offsets.setdefault(tp, offset)
        self.offsets[tp] = max(self.offsets.get(tp, -1), offset + 1)

    def __bool__(self) -> bool:
        return bool(self.offsets)


def _error(exc: KafkaException) -> KafkaError:
    return exc.args[0]


def _retire(producer) -> None:
    try:
        producer.flush(0)
    except KafkaException:  # a fatal or fenced producer says so once more: it is already replaced
        pass


def _fenced(err: KafkaError) -> bool:
    return err.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH)


class Checkpoint:
    """Commits batches through one transactional producer; replaces the producer after a fatal error."""

    def __init__(
        self,
        component: str,
        make_producer: Callable[[], Producer],
        calls: KafkaCalls,
        stop: threading.Event,
        log,
        beat: Callable[[], None] = lambda: None,
        last_unreachable: Callable[[], float] = lambda: 0.0,
    ):
        self.component = component
        self._make_producer = make_producer
        self.producer = make_producer()
        self.calls = calls
        self.stop = stop
        self.log = log
        self.beat = beat
        self._last_unreachable = last_unreachable  # monotonic time the client last reported it
        self._known_good_at = time.monotonic()  # last time the cluster answered this producer
        self._abandoned = 0
        self._fencings: list[float] = []
        self._probed_at = 0.0

    # -- start-up ------------------------------------------------------------------------------
    def init(self) -> bool:
        """Register the transactional id (fencing a predecessor); wait for the cluster if needed."""
        attempt = 0
        while not self.stop.is_set():
            self.beat()
            attempt += 1
            try:
                self.calls.call(
                    "init_transactions", self.producer.init_transactions, INIT_TIMEOUT_S, timeout=INIT_TIMEOUT_S
                )
                return True
            except KafkaException as exc:
                err = _error(exc)
                if _fenced(err):
                    raise TransactionFenced(err.str()) from exc
                if err.fatal():
                    self._replace_producer(err.str())
                    continue
                if attempt % INIT_WAIT_LOG_EVERY == 1:
                    self.log.warning("waiting for Kafka to initialise transactions", error=err.str(), attempt=attempt)
        return False

    # -- after an outage ------------------------------------------------------------------------
    def renew_after_outage(self) -> None:
        """Between batches: as soon as Kafka answers again after an outage, start the fresh
        producer (see commit) now, so that every kitchen step is ready at the same time
        instead of each one waiting for its first batch, one hop after the other."""
        if self._last_unreachable() <= self._known_good_at:
            return
        now = time.monotonic()
        if now - self._probed_at < PROBE_EVERY_S:
            return
        self._probed_at = now
        if self._cluster_answers():
            self._replace_producer("Kafka was unreachable since the last commit", fatal=False)

    # -- one batch -----------------------------------------------------------------------------
    def commit(self, batch: Batch, group_metadata: Callable[[], object]) -> Outcome:
        """Commit the batch's outputs and offsets atomically, or abort so that the loop redoes it."""
        if self._last_unreachable() > self._known_good_at:
            if not self._cluster_answers():
                self.log.warning("Kafka unreachable: the batch waits, it is redone once Kafka is back")
                return Outcome.ABORTED  # nothing begun: nothing to abort
            # After an outage librdkafka's cached coordinators may be stale (that is when
            # send_offsets_to_transaction hangs): a new producer looks them up afresh.
            self._replace_producer("Kafka was unreachable since the last commit", fatal=False)
        try:
            self.calls.call("begin_transaction", self.producer.begin_transaction)
            # produce() only queues: one deadline for the batch, not one per record.
            self.calls.call("produce", self._produce, batch)
            offsets = [TopicPartition(t, p, o) for (t, p), o in batch.offsets.items()]
            metadata = self.calls.call("consumer_group_metadata", group_metadata)
            self._retrying(
                "send_offsets_to_transaction",
                self.producer.send_offsets_to_transaction,
                offsets,
                metadata,
                TXN_CALL_TIMEOUT_S,
            )
            self._retrying("commit_transaction", self.producer.commit_transaction, TXN_CALL_TIMEOUT_S)
        except KafkaException as exc:
            return self._failed(_error(exc))
        except BufferError as exc:  # the local queue is full: same as a timeout
            return self._failed(KafkaError(KafkaError._QUEUE_FULL, str(exc), retriable=True))
        except CallAbandoned as exc:
            metrics.TRANSACTIONS.labels(self.component, Outcome.ABORTED.value).inc()
            self._producer_stuck(str(exc))
            return Outcome.ABORTED
        self._known_good_at = time.monotonic()
        metrics.TRANSACTIONS.labels(self.component, Outcome.COMMITTED.value).inc()
        return Outcome.COMMITTED

    def _produce(self, batch: Batch) -> None:
        produce = self.producer.produce
        for record in batch.outputs:
            try:
                produce(
                    record.topic,
                    key=record.key,
                    value=record.value,
                    headers=record.headers,
                    on_delivery=batch.on_delivery(record),
                )
            except KafkaException as exc:
                if _error(exc).code() in REFUSED_FOR_GOOD:
                    batch.undeliverable.append((record, _error(exc).str()))
                raise

    def _retrying(self, what: str, fn: Callable, *args) -> None:
        for attempt in range(1, TXN_RETRIES + 1):
            try:
                self.calls.call_abandonable(what, fn, *args, timeout=TXN_CALL_TIMEOUT_S)
                return
            except KafkaException as exc:
                err = _error(exc)
                if not err.retriable() or err.txn_requires_abort() or attempt == TXN_RETRIES or self.stop.is_set():
                    raise
                self.log.warning(f"{what} will be retried", error=err.str(), attempt=attempt)
                self.beat()

    def _failed(self, err: KafkaError) -> Outcome:
        metrics.TRANSACTIONS.labels(self.component, Outcome.ABORTED.value).inc()
        if _fenced(err):
            self._on_fenced(err)
        elif err.fatal():
            self._replace_producer(err.str())
        else:
            self.log.warning("transaction aborted, the batch is redone", reason=err.str())
            self._abort()
        return Outcome.ABORTED

    def _abort(self) -> None:
        """abort_transaction() until it completes: no new transaction may begin before."""
        attempt = 0
        while True:
            attempt += 1
            self.beat()
            try:
                self.calls.call_abandonable(
                    "abort_transaction", self.producer.abort_transaction, TXN_CALL_TIMEOUT_S, timeout=TXN_CALL_TIMEOUT_S
                )
                if attempt > 1:
                    self.log.info("transaction abort completed", attempts=attempt)
                return
            except CallAbandoned as exc:
                self._producer_stuck(str(exc))
                return
            except KafkaException as exc:
                err = _error(exc)
                if _fenced(err):
                    self._on_fenced(err)
                    return
                if err.fatal():
                    self._replace_producer(err.str())
                    return
                if self.stop.is_set():
                    # Shutting down: the transaction stays open until the broker's timeout or
                    # this replica's replacement fences it; its outputs are never visible.
                    self.log.warning("transaction abort abandoned: shutting down", error=err.str())
                    return
                self.log.warning("transaction abort did not complete, retrying", error=err.str(), attempt=attempt)
                self.stop.wait(ABORT_RETRY_PAUSE_S)

    def _on_fenced(self, err: KafkaError) -> None:
        """A newer epoch owns the transactional.id: a broker-side abort, or a twin replica."""
        now = time.monotonic()
        self._fencings = [t for t in self._fencings if now - t < FENCING_WINDOW_S] + [now]
        if len(self._fencings) >= MAX_FENCINGS:
            raise TransactionFenced(f"fenced {len(self._fencings)} times in {FENCING_WINDOW_S:.0f} s: {err.str()}")
        self.log.warning(
            "transactional producer fenced: replacing it (a broker-side abort, or a predecessor)",
            error=err.str(),
            fencings=len(self._fencings),
        )
        self._replace_producer(err.str(), fatal=False)

    def _producer_stuck(self, reason: str) -> None:
        """A transaction call hung (librdkafka ignoring its timeout): leave that producer behind."""
        self._abandoned += 1
        if self._abandoned > MAX_ABANDONED_PRODUCERS:
            raise ClientWedged(f"{self._abandoned} transaction calls hung; last: {reason}")
        self.log.error(
            "transaction call hung: its producer is left behind and replaced",
            error=reason,
            producers_left_behind=self._abandoned,
        )
        self._replace_producer(reason, fatal=False)

    def _replace_producer(self, reason: str, fatal: bool = True) -> None:
        """A new producer with the same transactional.id: its init_transactions() fences the
        old one and aborts whatever transaction the old one left open. After a fatal error
        the old one can do nothing more; after a hung call it is stuck; after an outage its
        cached coordinators may be stale."""
        if fatal:
            self.log.error("fatal transactional producer error: replacing the producer", error=reason)
        else:
            self.log.info("replacing the transactional producer", reason=reason)
        metrics.PRODUCER_REPLACEMENTS.labels(self.component).inc()
        old, self.producer = self.producer, None
        # Destroying a librdkafka client can block (it waits for its threads): let it go on
        # a thread of its own instead of under the loop's deadline.
        threading.Thread(target=_retire, args=(old,), name="retired-producer", daemon=True).start()
        self.producer = self._make_producer()
        self.init()

    def _cluster_answers(self) -> bool:
        try:
            self.calls.call(
                "list_topics", lambda: self.producer.list_topics(timeout=PROBE_TIMEOUT_S), timeout=PROBE_TIMEOUT_S
            )
            self._known_good_at = time.monotonic()
            return True
        except KafkaException:
            return False

    # -- shutdown ------------------------------------------------------------------------------
    def flush(self, timeout: float) -> int:
        return self.calls.call("producer flush", self.producer.flush, timeout, timeout=timeout, shutdown_step=True)
