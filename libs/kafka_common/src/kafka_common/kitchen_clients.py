"""A kitchen loop's Kafka clients and their settings: a read_committed group consumer and a
transactional producer (replaced by the loop's Checkpoint when it fails fatally).

Group membership: the KIP-848 consumer group protocol (group.protocol=consumer)
with a broker-side assignor named by KafkaUsage.assignment; see
docs/failure-model.md for why, and for the classic-protocol fallback.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import Consumer

from kafka_common.clients import ClientErrors, build_consumer, build_producer
from kafka_common.config import ClientConfig
from kafka_common.health import Health
from kafka_common.lag import STATS_INTERVAL_MS, LagStats
from kafka_common.logging import debug_enabled
from kafka_common.usage import CLASSIC_ASSIGNORS, KafkaUsage, instance_id

TRANSACTION_TIMEOUT_MS = 15_000  # the broker aborts a vanished instance's open transaction after this
CONSUMER_QUEUE_LIMITS = {"queued.min.messages": "2000", "queued.max.messages.kbytes": "4096"}
TXN_RETRY_BACKOFF = {"retry.backoff.ms": "10", "retry.backoff.max.ms": "100"}
CLASSIC_SESSION_TIMEOUT_MS = 10_000


@dataclass
class KitchenClients:
    """The loop's Kafka clients, built together before the loop exists (nothing is Optional)."""

    consumer: Consumer
    make_producer: Callable[[], object]  # the checkpoint replaces a fatally failed one
    last_unreachable: Callable[[], float] = lambda: 0.0  # when a client last reported Kafka unreachable


def group_consumer_properties(usage: KafkaUsage, config: ClientConfig) -> dict:
    """A kitchen's consumer: read_committed, offsets only through transactions, and fast failover.

    group.protocol=consumer (KIP-848, the default): the broker assigns partitions
    (group.remote.assignor), moves only those that must move, and detects a dead member
    after the broker's group.consumer.session.timeout.ms. group.protocol=classic (for a
    cluster without KIP-848): static membership (group.instance.id from INSTANCE_ID) with
    a short session timeout, so a replaced replica takes its partitions back at once.
    """
    props = {
        "group.id": usage.group,
        "enable.auto.commit": "false",  # offsets go through the transaction
        "enable.auto.offset.store": "false",
        "auto.offset.reset": "earliest",  # a new group must not skip orders
        "isolation.level": "read_committed",  # never act on an aborted transaction's output
        "statistics.interval.ms": str(STATS_INTERVAL_MS),
        "stats_cb": LagStats(usage.component, usage.group_id),
    }
    if config.properties.get("group.protocol", "consumer") == "consumer":
        props["group.protocol"] = "consumer"
        props.setdefault("group.remote.assignor", config.properties.get("group.remote.assignor", usage.assignment))
    else:
        props["partition.assignment.strategy"] = CLASSIC_ASSIGNORS[usage.assignment]
        props["group.instance.id"] = f"pizza-{usage.component}-{instance_id()}"
        props["session.timeout.ms"] = config.properties.get("session.timeout.ms", str(CLASSIC_SESSION_TIMEOUT_MS))
    return props


def build_kitchen_clients(usage: KafkaUsage, config: ClientConfig, health: Health) -> KitchenClients:
    errors = ClientErrors(usage.component, on_fatal=health.set_fatal)
    # A fatal producer error is handled by replacing the producer (transactions.py), not by stopping.
    producer_errors = ClientErrors(usage.component, on_fatal=None)
    # librdkafka prefetches up to 100,000 records or 64 MiB per consumer: in a burst, most of
    # a kitchen's memory. A few batches ahead keep the loop as busy (MAX_BATCH per turn).
    consumer = build_consumer(
        config, usage.component, group_consumer_properties(usage, config), errors, defaults=CONSUMER_QUEUE_LIMITS
    )
    extra: dict[str, object] = {"transactional.id": usage.transactional_id()}
    # A delivery report is a Python call per output record: only a refusal matters to the loop
    # (transactions.Batch.undeliverable); at DEBUG each delivered record is logged too.
    extra["delivery.report.only.error"] = not debug_enabled()  # the Python client wants a bool
    # A transaction begun right after a commit often meets CONCURRENT_TRANSACTIONS (the
    # coordinator still writes the previous markers); librdkafka retries AddOffsetsToTxn after
    # retry.backoff.ms, doubling up to retry.backoff.max.ms. Its defaults (100 ms, 1 s) were most
    # of an order's p99. AddPartitionsToTxn is retried after a fixed 20 ms whatever these say
    # (librdkafka's rdkafka_txnmgr.c): fewer back-to-back transactions is the other lever (the
    # loop gives records without outputs no transaction of their own).
    defaults = {"transaction.timeout.ms": str(TRANSACTION_TIMEOUT_MS), **TXN_RETRY_BACKOFF}

    def make_producer():
        return build_producer(config, usage.component, extra, producer_errors, defaults=defaults)

    return KitchenClients(
        consumer, make_producer, lambda: max(errors.last_unreachable, producer_errors.last_unreachable)
    )
