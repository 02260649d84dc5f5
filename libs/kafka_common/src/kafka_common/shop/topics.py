"""The topics of the shop, their settings, and the re-runnable step that creates them.

Every order topic is keyed by order_id and has the same partition count, so one
order's events are co-partitioned across topics (delivery relies on this).
pizza-logouts is the webapp's: keyed by session id, one partition, read whole by
every webapp worker (see pizza_webapp.revocation).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

PIZZA_ORDERED = "pizza-ordered"
PIZZA_ASSEMBLED = "pizza-assembled"
PIZZA_BAKED = "pizza-baked"
PIZZA_STATUS = "pizza-status"
PIZZA_DLQ = "pizza-dlq"
PIZZA_LOGOUTS = "pizza-logouts"

DEFAULT_PARTITIONS = 6
HOUR_MS = 3_600_000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    # Topic-level configs. The read model is rebuilt from pizza-ordered and
    # pizza-status, so they keep a day: far more than ORDER_TTL_HOURS (2 h).
    config: dict[str, str] = field(default_factory=dict)
    partitions: int | None = None  # None: the shop's partition count (co-partitioned)


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(PIZZA_ORDERED, {"retention.ms": str(24 * HOUR_MS)}),
    TopicSpec(PIZZA_ASSEMBLED, {"retention.ms": str(24 * HOUR_MS)}),
    TopicSpec(PIZZA_BAKED, {"retention.ms": str(24 * HOUR_MS)}),
    TopicSpec(PIZZA_STATUS, {"retention.ms": str(24 * HOUR_MS)}),
    # Operators inspect dead letters at leisure: keep them a week.
    TopicSpec(PIZZA_DLQ, {"retention.ms": str(7 * 24 * HOUR_MS)}),
    # A logout must outlive the longest session cookie (12 h).
    TopicSpec(PIZZA_LOGOUTS, {"retention.ms": str(13 * HOUR_MS)}, partitions=1),
)


def create_topics(
    admin_config: dict[str, str],
    partitions: int = DEFAULT_PARTITIONS,
    replication_factor: int = -1,
    timeout: float = 30.0,
) -> dict[str, str]:
    """Create every topic that does not exist yet; returns {topic: "created"|"exists"}.

    replication_factor=-1 takes the broker's default.replication.factor.
    """
    import logging

    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({**admin_config, "logger": logging.getLogger("librdkafka")})
    new = [
        NewTopic(
            t.name, num_partitions=t.partitions or partitions, replication_factor=replication_factor, config=t.config
        )
        for t in TOPICS
    ]
    result: dict[str, str] = {}
    for name, future in admin.create_topics(new, request_timeout=timeout).items():
        try:
            future.result(timeout=timeout)
            result[name] = "created"
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
            result[name] = "exists"
    return result


def main(argv: list[str] | None = None) -> int:
    """pizza-create-topics: create the shop's topics (safe to run again)."""
    import argparse  # only this command needs it, not every service that names a topic

    from kafka_common.config import ConfigError, kafka_client_config
    from kafka_common.logging import configure_logging, get_logger

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--partitions", type=int, default=DEFAULT_PARTITIONS)
    parser.add_argument("--replication-factor", type=int, default=-1)
    args = parser.parse_args(argv)
    configure_logging("create-topics")
    log = get_logger()
    try:
        config = kafka_client_config()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        outcomes = create_topics(config, args.partitions, args.replication_factor)
    except Exception as exc:  # KafkaException or a timeout: one line, not a traceback
        print(f"could not create topics on {config['bootstrap.servers']}: {exc or type(exc).__name__}", file=sys.stderr)
        return 1
    for name, outcome in outcomes.items():
        log.info("topic " + outcome, topic=name, partitions=args.partitions)
    return 0
