"""A kitchen loop's work until it is committed: steps in progress, the open batch, its commit.

A step that takes time is in progress until it is due (its partition paused);
a finished step's output events and its consumed offset go into the open
batch, which is committed in one Kafka transaction (transactions.Checkpoint;
several finished steps share one). Nothing is committed before the work is
done, so a crash re-delivers it. Records that produce nothing (delivery's
early warnings, skipped duplicates) have no transaction of their own: their
offsets wait up to OFFSETS_ONLY_WAIT_S for the next batch with outputs and
are committed with it (or alone after that, on revoke, at shutdown). A
transaction begun right after the previous one meets the coordinator still
writing its markers (CONCURRENT_TRANSACTIONS, retried 10-20 ms later); one
fewer transaction per order at delivery is one fewer such collision.

An aborted batch is rewound: its records are consumed again, on the
partitions still assigned. A committed one is accounted for: its partitions
resumed, its outputs and dead letters counted, its orders remembered as done,
each step's end logged. A step in progress on a partition given up is
abandoned uncommitted (its new owner starts it again).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, Message, TopicPartition

from kafka_common import events, metrics
from kafka_common.bounded import KafkaCalls
from kafka_common.dead_letters import DeadLetters
from kafka_common.dedupe import DoneOrders
from kafka_common.logging import debug_enabled, record_coordinates, record_fields, write_held_lines
from kafka_common.shop.kitchen import Step
from kafka_common.transactions import Batch, Checkpoint, Outcome, OutputRecord

OFFSETS_ONLY_WAIT_S = 1.0  # a batch without outputs waits this long for one with outputs to join


@dataclass(slots=True)
class Work:
    """One record's step, from its start to its commit."""

    msg: Message
    step: Step
    received: float
    due: float
    order_key: tuple[str, str] | None  # (topic, order_id) once committed, for once_per_order handlers


class UncommittedWork:
    """The steps in progress and the open batch of finished work, until committed (see module doc).

    assigned is the loop's set of partitions it owns, kept by its rebalance callbacks: only those
    are resumed, sought back or have their offsets stored."""

    def __init__(
        self,
        component: str,
        log: Any,
        consumer: Consumer,
        checkpoint: Checkpoint,
        calls: KafkaCalls,
        dead_letters: DeadLetters,
        done_orders: DoneOrders,
        assigned: set[tuple[str, int]],
    ):
        self.component = component
        self.log = log
        self.consumer = consumer
        self.checkpoint = checkpoint
        self.calls = calls
        self.dead_letters = dead_letters
        self.done_orders = done_orders
        self.assigned = assigned
        self.source = f"/pizza-shop/{component}"
        self.in_flight: dict[tuple[str, int], Work] = {}  # steps in progress, by partition (paused)
        self.batch = Batch()  # finished work of the current loop turn
        self._offsets_only_since: float | None = None  # since when self.batch holds offsets only

    def _kafka(self, what: str, fn: Callable, *args, timeout: float | None = None, **kwargs):
        return self.calls.call(what, fn, *args, timeout=timeout, **kwargs)

    def poll_timeout(self, longest: float) -> float:
        """How long the loop may wait for a record: less than longest if a step becomes due, or held
        offsets must be committed, sooner."""
        timeout = longest
        now = time.monotonic()
        if self.in_flight:
            timeout = min(timeout, min(w.due for w in self.in_flight.values()) - now)
        if self._offsets_only_since is not None:
            timeout = min(timeout, self._offsets_only_since + OFFSETS_ONLY_WAIT_S - now)
        return max(0.0, timeout)

    # -- finished work ---------------------------------------------------------------------
    def finish(self, work: Work, batch: Batch) -> None:
        source = (work.msg.topic(), work.msg.partition(), work.msg.offset())
        for payload in work.step.emit:
            key, value, headers = events.encode(payload, self.source)
            batch.outputs.append(OutputRecord(payload.TOPIC, key.encode(), value, headers, source))
        batch.add_offset(*source)
        # After the commit a work item is needed only to resume its partition, time its step or log
        # its end; bookkeeping records (delivery's early warnings) are not held, with their Messages,
        # while their offsets wait for a batch with outputs.
        if work.step.name or work.step.done or work.due > work.received:
            batch.finished.append(work)
        if work.order_key is not None:
            batch.seen.add(work.order_key)

    def _collect_due(self, batch: Batch) -> None:
        now = time.monotonic()
        for tp, work in list(self.in_flight.items()):
            if work.due <= now:
                del self.in_flight[tp]
                self.finish(work, batch)

    # -- checkpoint ------------------------------------------------------------------------
    def _take_batch(self) -> Batch:
        """Hand over the pending batch exactly once: what is committed or rewound never comes back."""
        batch, self.batch = self.batch, Batch()
        self._offsets_only_since = None
        return batch

    def commit_pending(self, hold_offsets_only: bool = False) -> None:
        """Commit the finished work; hold_offsets_only: a batch without outputs may wait for one
        with outputs (see the module doc), up to OFFSETS_ONLY_WAIT_S."""
        self._collect_due(self.batch)
        pending = self.batch
        if hold_offsets_only and pending and not pending.outputs:
            now = time.monotonic()
            if self._offsets_only_since is None:
                self._offsets_only_since = now
            if now - self._offsets_only_since < OFFSETS_ONLY_WAIT_S:
                return
        batch = self._take_batch()
        if batch:
            self._commit(batch)
        else:
            self.checkpoint.renew_after_outage()

    def rewind_pending(self) -> None:
        """Nothing can be committed (the partitions are lost): consume the pending batch's records
        again, on the partitions still assigned."""
        batch = self._take_batch()
        if batch:
            self._rewind(batch)

    def _commit(self, batch: Batch) -> None:
        write_held_lines()  # the batch's lines are out before a transaction call that may hang
        outcome = self.checkpoint.commit(batch, self.consumer.consumer_group_metadata)
        if outcome is Outcome.ABORTED:
            self.dead_letters.remember_refusals(batch)
            self._rewind(batch)
            return
        # Only for the lag statistics: auto-commit is off, so nothing else commits these.
        self._kafka(
            "store_offsets",
            self.consumer.store_offsets,
            offsets=[TopicPartition(t, p, o) for (t, p), o in batch.offsets.items() if (t, p) in self.assigned],
        )
        self._committed(batch)

    def _committed(self, batch: Batch) -> None:
        """Its work done for good: resume its partitions, count it, log each step's end."""
        produced: dict[str, int] = {}
        for record in batch.outputs:
            produced[record.topic] = produced.get(record.topic, 0) + 1
        for topic, count in produced.items():
            metrics.EVENTS_PRODUCED.labels(self.component, topic).inc(count)
        for topic in batch.dead_letters:
            metrics.DLQ_EVENTS.labels(self.component, topic).inc()
        for order_key in batch.seen:
            self.done_orders.add(*order_key)
        if debug_enabled():  # at INFO the consumer of each output logs it, once
            for msg in batch.delivered:
                self.log.debug("event produced", **record_fields(msg))
        now = time.monotonic()
        step_seconds: dict[str, object] = {}
        for work in batch.finished:
            self._resume(work)
            spent = now - work.received
            name = work.step.name
            if name:
                histogram = step_seconds.get(name)
                if histogram is None:
                    histogram = step_seconds[name] = metrics.KITCHEN_STEP_SECONDS.labels(self.component, name)
                histogram.observe(spent)  # type: ignore[attr-defined]
            if work.step.done:
                self.log.info(work.step.done, step=name, seconds_spent=round(spent, 3), **record_coordinates(work.msg))
        self.log.debug("transaction committed", events=len(batch.outputs), offsets=len(batch.offsets))
        metrics.ORDERS_IN_PROGRESS.labels(self.component).set(len(self.in_flight))

    def _rewind(self, batch: Batch) -> None:
        """Consume the batch's records again, on the partitions still assigned."""
        for (topic, partition), first in batch.first_offsets.items():
            self.in_flight.pop((topic, partition), None)
            if (topic, partition) not in self.assigned:
                continue
            self._kafka("resume", self.consumer.resume, [TopicPartition(topic, partition)])
            self._kafka("seek", self.consumer.seek, TopicPartition(topic, partition, first))

    def _resume(self, work: Work) -> None:
        tp = (work.msg.topic(), work.msg.partition())
        if tp in self.assigned and work.due > work.received:
            self._kafka("resume", self.consumer.resume, [TopicPartition(*tp)])

    # -- work given up -----------------------------------------------------------------------
    def abandon(self, partitions: Iterable[tuple[str, int]], why: str) -> None:
        """The steps in progress on these partitions, left uncommitted: they will be done again."""
        for tp in partitions:
            work = self.in_flight.pop(tp, None)
            if work is not None:
                self._abandon(work, why)

    def abandon_all(self, why: str) -> None:
        for work in list(self.in_flight.values()):
            self._abandon(work, why)
        self.in_flight.clear()

    def _abandon(self, work: Work, why: str) -> None:
        self.log.info(
            "step abandoned, not committed: it will be done again",
            reason=why,
            step=work.step.name,
            **record_coordinates(work.msg),
        )
