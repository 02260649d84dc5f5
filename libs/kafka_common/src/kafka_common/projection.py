"""The projection loop: no group, every partition from the beginning, handlers apply events to a read model.

Ready once every partition has been read up to its end as of start-up.
Records are taken in batches (what has arrived, up to MAX_BATCH): a batch is
applied inside the read model's batch() if it has one (one database
transaction), and on_applied hears of its positions once that has exited.
Whatever one record does (invalid, undecodable, a handler raising, its part of
the batch's write failing), it is logged, counted and skipped, never
dead-lettered: every replica reads every event on every start, so each would
dead-letter it again. Every librdkafka call goes through KafkaCalls, as in the
kitchen loop (bounded.py).

While catching up (replay), the per-record work that only matters live is left
out: records are counted per batch, not timed, and logged only when they fail;
the garbage collector leaves what start-up made alone (gc.freeze) and collects
the young objects of the replay less often.
Once caught up, each record goes through receiving() as in the kitchen loop,
and on_caught_up has been called (before the loop says it is ready).
"""

from __future__ import annotations

import collections
import gc
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition

from kafka_common import events, metrics
from kafka_common.bounded import KafkaCalls
from kafka_common.clients import ClientErrors, build_consumer
from kafka_common.config import ClientConfig
from kafka_common.health import Health
from kafka_common.logging import done_with, get_logger, handling
from kafka_common.receiving import by_topic, describe, receiving
from kafka_common.usage import KafkaUsage

POLL_TIMEOUT_S = 0.5
METADATA_TIMEOUT_S = 5.0
CLOSE_TIMEOUT_S = 10.0
REPLAY_PROGRESS_EVERY_S = 5.0  # a progress line while the projection catches up
MAX_BATCH = 1000  # records applied together (one read-model transaction)
# While replaying, the garbage collector's youngest generation is collected after this many new
# objects instead of 700: a replay makes a dozen per record (records, their headers, events), nearly
# all gone by the end of their batch, and collecting every few dozen records cost a tenth of a rebuild.
REPLAY_GC_THRESHOLD = 50_000

Apply = Callable[[events.Event], object]


# Readiness waits for every partition's end, which librdkafka reports from a fetch that finds
# nothing more; the broker holds such a fetch for fetch.wait.max.ms (500 ms by default), so a
# rebuild ended half a second after its last record: 100 ms (an idle fetch 10 times a second
# instead of twice; a record that arrives still returns the fetch at once). And a replay reads
# faster than it applies, so librdkafka's queue of fetched records is often full; it then holds a
# partition back for fetch.queue.backoff.ms (1 s by default) before fetching it again: 100 ms.
# Live, the queue is never full. Settings of the deployment's own win.
PROJECTION_CONSUMER_DEFAULTS = {"fetch.wait.max.ms": "100", "fetch.queue.backoff.ms": "100"}


def build_projection_consumer(usage: KafkaUsage, config: ClientConfig, health: Health) -> Consumer:
    return build_consumer(
        config,
        usage.component,
        {
            # Never joins the group nor commits: librdkafka wants an id and looks up its coordinator.
            "group.id": usage.group or f"pizza-{usage.component}",
            "enable.auto.commit": "false",
            "enable.auto.offset.store": "false",
            "enable.partition.eof": "true",
            "isolation.level": "read_committed",
        },
        ClientErrors(usage.component, on_fatal=health.set_fatal),
        defaults=PROJECTION_CONSUMER_DEFAULTS,
    )


class ProjectionLoop:
    def __init__(
        self,
        usage: KafkaUsage,
        handlers: Mapping[type[events.Payload], Apply],
        consumer: Consumer,
        *,
        health: Health,
        calls: KafkaCalls,
        stop: threading.Event,
        on_applied: Callable[[str, int, int], None] | None = None,
        batch: Callable[[], AbstractContextManager] | None = None,
        on_caught_up: Callable[[], None] | None = None,
    ):
        if usage.loop != "projection":
            raise ValueError("a projection reads every partition itself: declare assigns_partitions=True")
        self.usage = usage
        self.component = usage.component
        self.log = get_logger(usage.component)
        models, self.handlers = by_topic(usage.consumes, handlers)
        self.decoders = {topic: events.decoder(model) for topic, model in models.items()}
        self.consumer = consumer
        self.health = health
        self.calls = calls
        self.stop = stop
        self.on_applied = on_applied
        self.batch = batch or nullcontext
        self.on_caught_up = on_caught_up
        self._unfinished: set[tuple[str, int]] | None = None  # partitions not yet read to their start-up end
        self._caught_up = threading.Event()
        self._replay = Replay(self.component, self.log)
        self.health.set_readiness(self._readiness)
        for topic in usage.consumes:  # exported at 0 from start-up
            for reason in ("invalid", "processing"):
                metrics.EVENTS_FAILED.labels(self.component, topic, reason)

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
        while not self.stop.is_set():
            self.health.beat()
            try:
                metadata = self.calls.call(
                    "list_topics",
                    lambda: self.consumer.list_topics(timeout=METADATA_TIMEOUT_S),
                    timeout=METADATA_TIMEOUT_S,
                )
            except KafkaException as exc:
                self.log.warning("waiting for Kafka", error=exc.args[0].str())
                continue
            missing = [t for t in self.usage.consumes if t not in metadata.topics or metadata.topics[t].error]
            if missing:
                self.log.warning("waiting for topics to exist", topics=missing)
                self.stop.wait(2.0)
                continue
            return [
                TopicPartition(t, p, OFFSET_BEGINNING)
                for t in self.usage.consumes
                for p in sorted(metadata.topics[t].partitions)
            ]
        return []

    def run(self) -> int:
        self.log.info("starting: rebuilding the read model from the beginning", consumes=list(self.usage.consumes))
        try:
            partitions = self._partitions()
            if partitions:
                self._unfinished = {(p.topic, p.partition) for p in partitions}
                self.calls.call("assign", self.consumer.assign, partitions)
                self.log.info("partitions assigned", partitions=describe(partitions))
                self._replay.start()
            while not self.stop.is_set() and not self.health.fatal:
                msg = self.calls.call("poll", self.consumer.poll, POLL_TIMEOUT_S, timeout=POLL_TIMEOUT_S)
                self.health.beat()
                if msg is not None:
                    # What has arrived besides: consume() with a timeout would wait for a full batch.
                    more = self.calls.call("consume", self.consumer.consume, MAX_BATCH - 1, 0, timeout=0)
                    self._on_batch([msg, *more])
        except KafkaException as exc:
            self.health.set_fatal(exc.args[0].str())
            self.log.error("fatal Kafka error, stopping", error=exc.args[0].str())
        except Exception as exc:  # a bug: say so, shut down cleanly, exit non-zero
            self.health.set_fatal(f"{type(exc).__name__}: {exc}")
            self.log.exception("unexpected error in the projection loop, stopping")
        finally:
            self._replay.end()
        self.log.info("shutting down")
        self.calls.call("consumer close", self.consumer.close, timeout=CLOSE_TIMEOUT_S, shutdown_step=True)
        self.log.info("consumer closed")
        return 1 if self.health.fatal else 0

    def _on_batch(self, msgs: list[Message]) -> None:
        records: list[Message] = []
        ends: list[tuple[str, int]] = []
        for msg in msgs:
            err = msg.error()
            if err is None:
                records.append(msg)
            elif err.code() == KafkaError._PARTITION_EOF:
                ends.append((msg.topic(), msg.partition()))
            else:
                self.log.warning("consumer error", error=err.str(), code=err.name())
        if records:
            last = self._apply(records, replay=not self._caught_up.is_set())
            # Only now are the batch's effects visible to readers.
            if self.on_applied is not None:
                for (topic, partition), msg in last.items():
                    self.on_applied(topic, partition, msg.offset())
        for topic, partition in ends:
            self._reached_end(topic, partition)

    def _apply(self, records: list[Message], replay: bool) -> dict[tuple[str, int], Message]:
        """Decode each record and hand it to its handler, all inside one batch(); the last record
        of each partition.

        Live, each record goes through receiving() (counted, timed, one log line). On replay
        that per-record work would be most of a rebuild's time: records are counted per batch
        and only a record that fails gets a log line (with its coordinates). If the batch as a
        whole fails (its database write, say), its events are applied again one per batch(),
        so that only the one at fault is skipped.
        """
        handed: list[tuple[Message, events.Event]] = []
        last: dict[tuple[str, int], Message] = {}
        try:
            with self.batch():
                if replay:
                    seen: list[str] = []
                    for msg in records:
                        topic = msg.topic()
                        seen.append(topic)
                        last[topic, msg.partition()] = msg
                        self._take(msg, topic, handed, replay)
                    self._replay.counted(seen, partitions_to_go=len(self._unfinished or ()))
                else:
                    for msg in records:
                        topic = msg.topic()
                        last[topic, msg.partition()] = msg
                        with receiving(self.component, self.log, msg):
                            self._take(msg, topic, handed, replay)
        except Exception as exc:
            if not handed:
                raise
            failure = exc
        else:
            return last
        if len(handed) == 1:
            self._failed(handed[0][0], failure, within_receiving=False)
            return last
        self.log.warning(
            "a batch of events could not be applied as a whole: applying them one at a time",
            error=_error_text(failure),
            events=len(handed),
        )
        for msg, event in handed:
            try:
                with self.batch():
                    self.handlers[msg.topic()](event)
            except Exception as exc:
                self._failed(msg, exc, within_receiving=False)
        return last

    def _take(self, msg: Message, topic: str, handed: list[tuple[Message, events.Event]], replay: bool) -> None:
        """One record (of this topic): decoded and handed to its handler, or counted, logged and skipped."""
        try:
            event = self.decoders[topic](msg.key(), msg.value(), msg.headers())
        except Exception as exc:  # InvalidEvent, or anything else a hostile record provokes
            metrics.EVENTS_FAILED.labels(self.component, topic, "invalid").inc()
            with _about(msg, within_receiving=not replay):
                self.log.error(
                    "invalid event skipped (dead-lettered by the kitchen's consumer groups)", error=str(exc)[:512]
                )
            return
        try:
            self.handlers[topic](event)
        except Exception as exc:
            self._failed(msg, exc, within_receiving=not replay)
            return
        handed.append((msg, event))

    def _failed(self, msg: Message, exc: Exception, *, within_receiving: bool) -> None:
        metrics.EVENTS_FAILED.labels(self.component, msg.topic(), "processing").inc()
        with _about(msg, within_receiving=within_receiving):
            self.log.error("event could not be applied, skipped", error=_error_text(exc), exc_info=exc)

    def _reached_end(self, topic: str, partition: int) -> None:
        if self._unfinished is None or self._caught_up.is_set():
            return
        self._unfinished.discard((topic, partition))
        if not self._unfinished:
            if self.on_caught_up is not None:  # before readers are served: building its indexes, say
                self.on_caught_up()
            self._caught_up.set()
            self._replay.caught_up()


class Replay:
    """A replay's bookkeeping: its garbage collection, its records counted (per batch) and its
    progress lines, from start() until caught_up() (or end(), if the loop stops before)."""

    def __init__(self, component: str, log: Any):
        self.component = component
        self.log = log
        self.replayed = 0
        self.batches = 0
        self._progress_at = time.monotonic()
        self._gc_threshold: tuple[int, ...] | None = None  # the thresholds to restore after the replay

    def start(self) -> None:
        """Garbage collection for the replay: what start-up made lives as long as the process, so
        no full collection need walk it again (gc.freeze); the youngest generation collected less often."""
        gc.freeze()
        self._gc_threshold = gc.get_threshold()
        gc.set_threshold(REPLAY_GC_THRESHOLD, *self._gc_threshold[1:])

    def counted(self, topics: list[str], partitions_to_go: int) -> None:
        """A replayed batch's records counted (by their topics)."""
        for topic, n in collections.Counter(topics).items():
            metrics.EVENTS_CONSUMED.labels(self.component, topic).inc(n)
        self.replayed += len(topics)
        self.batches += 1
        if time.monotonic() - self._progress_at >= REPLAY_PROGRESS_EVERY_S:
            self._progress_at = time.monotonic()
            self.log.info(
                "rebuilding the read model",
                events_replayed=self.replayed,
                partitions_to_go=partitions_to_go,
            )

    def caught_up(self) -> None:
        self.end()
        metrics.READ_MODEL_CAUGHT_UP.labels(self.component).set(1)
        self.log.info(
            "read model caught up with every partition",
            events_replayed=self.replayed,
            batches=self.batches,
        )

    def end(self) -> None:
        """The garbage collector as it was before the replay (once)."""
        if self._gc_threshold is not None:
            gc.set_threshold(*self._gc_threshold)
            self._gc_threshold = None


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:512]


@contextmanager
def _about(msg: Message, *, within_receiving: bool) -> Iterator[None]:
    """Lines written inside carry this record's coordinates: receiving() has set them already
    for a live record; a replayed one (or one applied again) gets them here, for the rare line
    about it (a failure)."""
    if within_receiving:
        yield
        return
    _, token = handling(msg)
    try:
        yield
    finally:
        done_with(token)
