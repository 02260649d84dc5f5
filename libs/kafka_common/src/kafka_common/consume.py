"""The kitchen loop: a consumer-group member whose steps emit events transactionally.

A handler gets a validated Event and returns a Step: the events to emit and
how long the step takes. The loop does everything else:

- polls continuously. A step that takes time pauses its partition (so the
  partition's order is kept) and the loop goes on polling, so liveness, group
  membership and the other partitions' orders all keep moving;
- when a step is done, its output events and its consumed offset are
  committed in one Kafka transaction; nothing is committed before the work is
  done, so a crash re-delivers it. The steps in progress and the batch of
  finished work, until committed, are kitchen_work.py's (records that produce
  nothing wait there for a batch with outputs);
- whatever one record does, it ends in the dead-letter topic or is counted
  and skipped, in that same transaction, and its offset moves on: a record
  that fails to decode (for any reason) or whose handler keeps raising is
  dead-lettered (dead_letters.py keeps the copy small enough to produce); a
  duplicate of an order this replica already did is skipped (dedupe.py);
- rebalances are logged; finished work is committed on revoke, while the
  partitions are still owned; a step in progress on a revoked or lost
  partition is abandoned uncommitted (its new owner starts it again);
- every librdkafka call goes through KafkaCalls: its deadline is enforced by
  the supervisor on the main thread (bounded.py), so no call can wedge the
  service, and SIGTERM is honoured whatever state the client is in.

The clients and their settings are kitchen_clients.py's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

from kafka_common import events, metrics
from kafka_common.bounded import EXIT_WEDGED, KafkaCalls
from kafka_common.dead_letters import DeadLetters
from kafka_common.dedupe import DoneOrders
from kafka_common.health import Health
from kafka_common.kitchen_clients import KitchenClients
from kafka_common.kitchen_work import UncommittedWork, Work
from kafka_common.logging import get_logger, lines_held
from kafka_common.receiving import by_topic, describe, receiving
from kafka_common.shop import topics
from kafka_common.shop.kitchen import Step
from kafka_common.transactions import Batch, Checkpoint, ClientWedged, Outcome, TransactionFenced
from kafka_common.usage import KafkaUsage

POLL_TIMEOUT_S = 0.5  # longest the loop waits for a record; bounds liveness beats
MAX_BATCH = 500  # records drained per loop turn before committing (one transaction)
HANDLER_ATTEMPTS = 3  # a handler raising this often sends the event to the DLQ
CLOSE_TIMEOUT_S = 10.0
FLUSH_TIMEOUT_S = 5.0
EXIT_FATAL = 1


@dataclass(frozen=True)
class Handles:
    """One event type's handler, as registered with App.handles()."""

    handler: Callable[[events.Event], Step | None]
    once_per_order: bool = False  # a second record for an order already done here is skipped


class KitchenLoop:
    """The consume -> process -> transactional produce loop (see module doc). run() on the loop thread."""

    def __init__(
        self,
        usage: KafkaUsage,
        handlers: Mapping[type[events.Payload], Handles],
        clients: KitchenClients,
        *,
        health: Health,
        calls: KafkaCalls,
        stop,
        time_scale: float,
        done_orders: DoneOrders,
        dlq_topic: str = topics.PIZZA_DLQ,
    ):
        if usage.loop != "kitchen":
            raise ValueError(
                "a kitchen loop joins a consumer group and commits in transactions: "
                "declare group= and transactional=True in its KafkaUsage"
            )
        self.usage = usage
        self.component = usage.component
        self.log = get_logger(usage.component)
        models, self.handlers = by_topic(usage.consumes, handlers)
        self.decoders = {topic: events.decoder(model) for topic, model in models.items()}
        self.health = health
        self.calls = calls
        self.stop = stop
        self.time_scale = time_scale
        self.done_orders = done_orders
        self.dead_letters = DeadLetters(self.component, self.log, dlq_topic)
        self.consumer = clients.consumer
        self.checkpoint = Checkpoint(
            self.component,
            clients.make_producer,
            calls,
            stop,
            self.log,
            beat=health.beat,
            last_unreachable=clients.last_unreachable,
        )
        self._assigned: set[tuple[str, int]] = set()
        self.uncommitted = UncommittedWork(
            self.component,
            self.log,
            self.consumer,
            self.checkpoint,
            calls,
            self.dead_letters,
            done_orders,
            self._assigned,
        )
        # Looked up for every record: the same dict and method, without another attribute access.
        self._in_flight = self.uncommitted.in_flight
        self._finish = self.uncommitted.finish
        self._joined = False
        self.health.set_readiness(self._readiness)
        self._export_zeros()

    def _export_zeros(self) -> None:
        """The loop's counters exported at 0 from start-up: dashboards see 0, not "no data"."""
        for topic in self.usage.consumes:
            metrics.DLQ_EVENTS.labels(self.component, topic)
            metrics.DUPLICATE_EVENTS.labels(self.component, topic)
            for reason in ("invalid", "processing", "undeliverable"):
                metrics.EVENTS_FAILED.labels(self.component, topic, reason)
        for outcome in Outcome:
            metrics.TRANSACTIONS.labels(self.component, outcome.value)
        metrics.PRODUCER_REPLACEMENTS.labels(self.component)

    def _kafka(self, what: str, fn: Callable, *args, timeout: float | None = None, **kwargs):
        return self.calls.call(what, fn, *args, timeout=timeout, **kwargs)

    # -- readiness -------------------------------------------------------------------------
    def _readiness(self) -> tuple[bool, str]:
        if not self._joined:
            return False, "not yet a member of the consumer group"
        return True, f"member of {self.usage.group} with {len(self._assigned)} partition(s)"

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> int:
        self.log.info(
            "starting",
            group=self.usage.group,
            consumes=list(self.usage.consumes),
            produces=list(self.usage.writes),
            assignment=self.usage.assignment,
            transactional_id=self.usage.transactional_id(),
        )
        try:
            if self.checkpoint.init():
                self.log.info("transactional producer ready", transactional_id=self.usage.transactional_id())
                self._kafka(
                    "subscribe",
                    self.consumer.subscribe,
                    list(self.usage.consumes),
                    on_assign=self._on_assign,
                    on_revoke=self._on_revoke,
                    on_lost=self._on_lost,
                )
                while not self.stop.is_set() and not self.health.fatal:
                    self._turn()
        except TransactionFenced as exc:
            self.health.set_fatal(f"fenced: {exc}")
            self.log.error(
                "another instance uses this transactional.id (same INSTANCE_ID): stopping",
                transactional_id=self.usage.transactional_id(),
                error=str(exc),
            )
        except ClientWedged as exc:
            self.health.set_fatal(str(exc))
            self.log.error("Kafka client wedged, exiting so that the replica is replaced at once", error=str(exc))
            self._shutdown()
            return EXIT_WEDGED
        except KafkaException as exc:
            self.health.set_fatal(exc.args[0].str())
            self.log.error("fatal Kafka error, stopping", error=exc.args[0].str())
        except Exception as exc:  # a bug: say so, shut down cleanly, exit non-zero
            self.health.set_fatal(f"{type(exc).__name__}: {exc}")
            self.log.exception("unexpected error in the consume loop, stopping")
        code = self._shutdown()
        return EXIT_FATAL if self.health.fatal else code

    def _turn(self) -> None:
        # Wait for one record, then take what has already arrived (consume() with a timeout
        # would wait for a full batch). The open batch is looked up after poll and after consume,
        # not before: a rebalance callback (inside poll or consume) may commit it first.
        # The turn's log lines (two per record): one write before its transaction, one after.
        uncommitted = self.uncommitted
        with lines_held():
            timeout = uncommitted.poll_timeout(POLL_TIMEOUT_S)
            msg = self._kafka("poll", self.consumer.poll, timeout, timeout=timeout)
            self.health.beat()
            if msg is not None:
                rewound: set[tuple[str, int]] = set()
                self._on_message(msg, uncommitted.batch, rewound)
                if not self.stop.is_set():
                    more = self._kafka("consume", self.consumer.consume, MAX_BATCH - 1, 0, timeout=0)
                    batch = uncommitted.batch
                    for msg in more:
                        self._on_message(msg, batch, rewound)
                        if self.stop.is_set():
                            break
            uncommitted.commit_pending(hold_offsets_only=not self.stop.is_set())

    # -- one record ------------------------------------------------------------------------
    def _on_message(self, msg: Message, batch: Batch, rewound: set[tuple[str, int]] | None = None) -> None:
        """Handle one record. rewound: partitions already sought back in this turn, whose later
        records (fetched together with the one that was rewound) are dropped: they come again."""
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
            if rewound is None or tp not in rewound:
                self._kafka("seek", self.consumer.seek, TopicPartition(msg.topic(), msg.partition(), msg.offset()))
                if rewound is not None:
                    rewound.add(tp)
            return
        with receiving(self.component, self.log, msg):
            if self.dead_letters.redo_if_refused(msg, batch):
                return
            try:
                event = self.decoders[msg.topic()](msg.key(), msg.value(), msg.headers())
            except events.InvalidEvent as exc:
                self.dead_letters.send(msg, "invalid", f"invalid event: {exc}", batch)
                return
            except Exception as exc:  # whatever a record does, it must not stop the loop
                self.dead_letters.send(msg, "invalid", f"undecodable record: {type(exc).__name__}: {exc}", batch)
                return
            handles = self.handlers[msg.topic()]
            order_key = (msg.topic(), event.order_id) if handles.once_per_order else None
            if order_key is not None and (self.done_orders.seen(*order_key) or order_key in batch.seen):
                metrics.DUPLICATE_EVENTS.labels(self.component, msg.topic()).inc()
                self.log.warning("order already done by this step: duplicate skipped", event_id=event.envelope.id)
                batch.add_offset(msg.topic(), msg.partition(), msg.offset())
                return
            step, error = self._call_handler(handles, event)
            if error is not None:
                self.dead_letters.send(msg, "processing", error, batch)
                return
            step = step or Step.nothing()
            now = time.monotonic()
            seconds = max(0.0, step.seconds * self.time_scale)
            if step.started:  # the record's line in the chronology (receiving() logs none then)
                self.log.info(step.started, step=step.name, seconds=round(seconds, 3))
            work = Work(msg, step, received=now, due=now + seconds, order_key=order_key)
            if seconds > 0:
                self._kafka("pause", self.consumer.pause, [TopicPartition(*tp)])
                self._in_flight[tp] = work
                metrics.ORDERS_IN_PROGRESS.labels(self.component).set(len(self._in_flight))
            else:
                self._finish(work, batch)

    def _call_handler(self, handles: Handles, event: events.Event) -> tuple[Step | None, str | None]:
        last = None
        for attempt in range(1, HANDLER_ATTEMPTS + 1):
            try:
                return handles.handler(event), None
            except Exception as exc:  # a handler bug must not stop the partition
                last = f"{type(exc).__name__}: {exc}"
                self.log.warning("handler failed", attempt=attempt, error=last[:512], exc_info=True)
        return None, f"processing failed {HANDLER_ATTEMPTS} times: {last}"

    # -- rebalance callbacks (run inside poll) -----------------------------------------------
    def _on_assign(self, consumer, partitions) -> None:
        self._joined = True
        self._assigned |= {(p.topic, p.partition) for p in partitions}
        metrics.REBALANCES.labels(self.component, self.usage.group, "assigned").inc()
        self._update_assigned_gauge()
        self.log.info(
            "partitions assigned", group=self.usage.group, partitions=describe(partitions), total=len(self._assigned)
        )

    def _on_revoke(self, consumer, partitions) -> None:
        # Commit on revoke: work finished so far is committed while this member still
        # owns the partitions; after the rebalance the commit would be fenced and redone.
        self.uncommitted.commit_pending()
        self._drop_partitions(partitions, "revoked")

    def _on_lost(self, consumer, partitions) -> None:
        # Lost (evicted): the group moved on, nothing can be committed; redo what is still ours.
        self._drop_partitions(partitions, "lost")
        self.uncommitted.rewind_pending()

    def _drop_partitions(self, partitions, kind: str) -> None:
        metrics.REBALANCES.labels(self.component, self.usage.group, kind).inc()
        given_up = [(p.topic, p.partition) for p in partitions]
        self._assigned.difference_update(given_up)
        self.uncommitted.abandon(given_up, f"partition {kind}")
        if partitions:
            # librdkafka keeps a partition's pause across an unassign: handed back to this member
            # later, a partition given up mid-step would never be fetched again. Give all up unpaused.
            self._kafka("resume", self.consumer.resume, [TopicPartition(p.topic, p.partition) for p in partitions])
        self._update_assigned_gauge()
        self.log.info(
            f"partitions {kind}", group=self.usage.group, partitions=describe(partitions), total=len(self._assigned)
        )

    def _update_assigned_gauge(self) -> None:
        for topic in self.usage.consumes:
            count = sum(1 for t, _ in self._assigned if t == topic)
            metrics.ASSIGNED_PARTITIONS.labels(self.component, self.usage.group, topic).set(count)
        metrics.ORDERS_IN_PROGRESS.labels(self.component).set(len(self._in_flight))

    # -- shutdown ----------------------------------------------------------------------------
    def _shutdown(self) -> int:
        self.log.info("shutting down: no new work is taken")
        self.uncommitted.abandon_all("shutting down")
        self.log.info("closing the consumer: committing nothing more, leaving the group")
        self._kafka("consumer close", self.consumer.close, timeout=CLOSE_TIMEOUT_S, shutdown_step=True)
        self.log.info("consumer closed, left the group", group=self.usage.group)
        remaining = self.checkpoint.flush(FLUSH_TIMEOUT_S)
        self.log.info("producer flushed", undelivered=remaining)
        return 0
