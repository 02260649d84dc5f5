"""Least privilege, proved on a real authorizer: every service, as its own SCRAM user with exactly
the ACLs the Helm chart grants it, serves an order from the webapp to delivered, and is denied
every topic, group and transactional id it does not declare."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition

from kafka_common.shop import topics
from kafka_common.shop.components import NAMES as SHOP_COMPONENTS
from kafka_common.shop.status import STATUS_DELIVERED
from local_kafka.acls import shop_usage
from shop_testing.customer import Customer
from shop_testing.helpers import wait_until

pytestmark = pytest.mark.slow

ALL_TOPICS = tuple(spec.name for spec in topics.TOPICS)
ALL_GROUPS = tuple(f"pizza-{c}" for c in SHOP_COMPONENTS)
DENIAL_TIMEOUT_S = 30.0


def test_every_service_works_with_exactly_the_charts_acls(scram_kafka, service_users, service_process):
    def start(component: str, env: dict | None = None):
        user_env = scram_kafka.client_env(service_users[component].name)
        return service_process(
            f"pizza-{component}",
            name=component,
            bootstrap=scram_kafka.bootstrap,
            env={**user_env, "KITCHEN_TIME_SCALE": "0", **(env or {})},
        )

    status = start("status")
    for kitchen in ("assemble", "bake", "delivery"):
        start(kitchen)
    webapp = start("webapp", {"STATUS_URL": status.api_url(""), "WEB_CONCURRENCY": "1"})

    customer = Customer(webapp.url(""), "least-privilege")
    order_id = customer.order(1)
    order = wait_until(
        lambda: (o := customer.get(order_id))["status"] == STATUS_DELIVERED and o, 90, "the order delivered"
    )
    assert [e["status"] for e in order["events"]] == [100, 200, 300, 400]


def poll_errors(client_errors, done, timeout: float, wanted: int) -> set[str]:
    """Poll until the wanted error code shows, done() is true, or timeout; the names of every error seen."""
    seen: dict[int, str] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and wanted not in seen and not done():
        for err in client_errors():
            seen[err.code()] = err.name()
    return set(seen.values())


def produce_errors(config: dict, topic: str) -> set[str]:
    """Errors from producing one record; nothing denied ever lands, so the record is junk on purpose."""
    errors = []
    producer = Producer({**config, "message.timeout.ms": str(int(DENIAL_TIMEOUT_S * 1000)), "error_cb": errors.append})
    producer.produce(topic, key=b"intruder", value=b"{}", on_delivery=lambda err, msg: err and errors.append(err))

    def poll():
        producer.poll(0.2)
        return [errors.pop() for _ in range(len(errors))]

    try:
        return poll_errors(poll, lambda: False, DENIAL_TIMEOUT_S, KafkaError.TOPIC_AUTHORIZATION_FAILED)
    finally:
        producer.purge()
        producer.flush(5)


def read_errors(config: dict, topic: str) -> set[str]:
    """Errors from fetching every partition of a topic from the beginning. Without Describe the
    topic's metadata is already denied; with Describe only, the fetch is. The consumer's group
    is none the user may use (reading with assign() needs none): its group error is ignored."""
    consumer = Consumer(
        {**config, "group.id": "pizza-acl-probe", "enable.auto.commit": "false", "enable.partition.eof": "true"}
    )
    at_end: set[int] = set()

    def poll():
        try:
            msg = consumer.poll(0.2)
        except KafkaException as exc:
            return [exc.args[0]]
        if msg is None or msg.error() is None or msg.error().code() == KafkaError.GROUP_AUTHORIZATION_FAILED:
            return []
        if msg.error().code() == KafkaError._PARTITION_EOF:
            at_end.add(msg.partition())
            return []
        return [msg.error()]

    try:
        metadata = consumer.list_topics(topic, timeout=DENIAL_TIMEOUT_S).topics[topic]
        if metadata.error is not None:
            return {metadata.error.name()}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in metadata.partitions])
        return poll_errors(
            poll, lambda: at_end == set(metadata.partitions), DENIAL_TIMEOUT_S, KafkaError.TOPIC_AUTHORIZATION_FAILED
        )
    finally:
        consumer.close()


def join_errors(config: dict, group: str, topic: str) -> set[str]:
    """Errors from joining `group` subscribed to `topic` (one the user may read, or the topic's
    denial would come first); ends once the group assigned partitions."""
    consumer = Consumer({**config, "group.id": group, "enable.auto.commit": "false"})
    assigned: list = []

    def poll():
        try:
            msg = consumer.poll(0.2)
        except KafkaException as exc:
            return [exc.args[0]]
        return [msg.error()] if msg is not None and msg.error() is not None else []

    try:
        consumer.subscribe([topic], on_assign=lambda c, partitions: assigned.extend(partitions))
        return poll_errors(poll, lambda: bool(assigned), DENIAL_TIMEOUT_S, KafkaError.GROUP_AUTHORIZATION_FAILED)
    finally:
        consumer.close()


def init_transactions_error(config: dict, transactional_id: str) -> str | None:
    producer = Producer({**config, "transactional.id": transactional_id})
    try:
        producer.init_transactions(DENIAL_TIMEOUT_S)
    except KafkaException as exc:
        return exc.args[0].name()
    return None


@pytest.mark.parametrize("component", SHOP_COMPONENTS)
def test_each_service_is_denied_what_it_does_not_declare(component, scram_kafka, service_users):
    usage = shop_usage(component)
    config = scram_kafka.client_config(service_users[component].name)
    for topic in sorted(set(ALL_TOPICS) - set(usage.writes)):
        assert "TOPIC_AUTHORIZATION_FAILED" in produce_errors(config, topic), f"{component} may write {topic}"
    for topic in sorted(set(ALL_TOPICS) - set(usage.consumes)):
        assert "TOPIC_AUTHORIZATION_FAILED" in read_errors(config, topic), f"{component} may read {topic}"
    # A topic it may read, so that only the group can be what is denied (webapp reads none: any topic).
    readable = usage.consumes[0] if usage.consumes else topics.PIZZA_ORDERED
    for group in sorted(set(ALL_GROUPS) - {usage.group}):
        assert "GROUP_AUTHORIZATION_FAILED" in join_errors(config, group, readable), f"{component} may join {group}"
    for other in sorted(set(SHOP_COMPONENTS) - {component}):
        assert init_transactions_error(config, f"pizza-{other}-0") == "TRANSACTIONAL_ID_AUTHORIZATION_FAILED", (
            f"{component} may use {other}'s transactional ids"
        )


@pytest.mark.parametrize("component", SHOP_COMPONENTS)
def test_what_each_service_declares_is_allowed(component, scram_kafka, service_users):
    """The other side of the denials: the same probes succeed on what the service declares, so a
    denial above is the authorizer's answer to an undeclared use, not a broken client or user.
    (Writing is shown by the order delivered above: no junk on the shop's topics.)"""
    usage = shop_usage(component)
    config = scram_kafka.client_config(service_users[component].name)
    for topic in usage.consumes:
        assert not read_errors(config, topic), f"{component} reading {topic}"
    if usage.group:
        assert not join_errors(config, usage.group, usage.consumes[0]), f"{component} joining {usage.group}"
    if usage.transactional:
        assert init_transactions_error(config, f"{usage.transactional_id_prefix}acl-test") is None
