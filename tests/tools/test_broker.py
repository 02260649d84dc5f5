"""The local broker: real round trips, re-runnable topic creation, stop/restart/crash keeping data."""

import json
import socket

import pytest
from confluent_kafka import KafkaException, Producer

from kafka_common.shop.topics import TOPICS, create_topics
from local_kafka.broker import KafkaStartError, LocalKafka, port_is_free
from shop_testing.helpers import read_records


def produce(config, topic, items, **extra):
    producer = Producer({**config, "enable.idempotence": True, "acks": "all", **extra})
    for key, value in items:
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0


def test_round_trip_keeps_keys_values_and_per_key_order(kafka_config, new_topic, read_topic):
    topic = new_topic("roundtrip")
    items = [(f"order-{i % 3}", json.dumps({"n": i}).encode()) for i in range(30)]
    produce(kafka_config, topic, items)

    records = read_topic(topic, until=lambda rs: len(rs) >= 30)

    assert sorted((r.key, r.json()["n"]) for r in records) == sorted((k, json.loads(v)["n"]) for k, v in items)
    for key in {k for k, _ in items}:
        mine = sorted((r for r in records if r.key == key), key=lambda r: r.offset)
        assert len({r.partition for r in mine}) == 1, "one key, one partition"
        assert [r.json()["n"] for r in mine] == [json.loads(v)["n"] for k, v in items if k == key]


def test_read_committed_hides_an_aborted_transaction(kafka_config, new_topic, read_topic, unique_name):
    topic = new_topic("tx")
    producer = Producer({**kafka_config, "transactional.id": unique_name("txid")})
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(topic, key="a", value=b"aborted")
    assert producer.flush(30) == 0  # written to the log, so the abort has something to hide
    producer.abort_transaction(30)
    producer.begin_transaction()
    producer.produce(topic, key="a", value=b"committed")
    producer.commit_transaction(30)

    committed = read_topic(topic)  # to the end of every partition
    everything = read_topic(topic, isolation_level="read_uncommitted")

    assert [r.value for r in committed] == [b"committed"]
    assert sorted(r.value for r in everything) == [b"aborted", b"committed"]


def test_session_broker_has_the_shop_topics_and_create_topics_is_rerunnable(kafka_config):
    again = create_topics(kafka_config)
    assert again == {t.name: "exists" for t in TOPICS}

    from confluent_kafka.admin import AdminClient

    md = AdminClient(kafka_config).list_topics(timeout=10)
    for spec in TOPICS:
        assert len(md.topics[spec.name].partitions) == (spec.partitions or 6)


def test_topics_are_not_auto_created(kafka_config, unique_name):
    with pytest.raises(AssertionError, match="does not exist"):
        read_records(kafka_config, unique_name("missing"), timeout=10)


def test_dedicated_broker_keeps_data_across_stop_kill_and_restart(dedicated_kafka):
    config = dedicated_kafka.admin_config()
    cluster_id = dedicated_kafka.cluster_id
    assert create_topics(config) == {t.name: "exists" for t in TOPICS}  # the fixture created them
    produce(config, "pizza-ordered", [("o1", b"first")])

    assert dedicated_kafka.stop() is not None
    assert not dedicated_kafka.running
    assert port_is_free(dedicated_kafka.port), "the stopped broker freed its port"
    with pytest.raises(KafkaException):  # nobody answers
        read_records(config, "pizza-ordered", timeout=3)

    dedicated_kafka.start()
    produce(config, "pizza-ordered", [("o2", b"second")])
    dedicated_kafka.kill()  # a crash: no controlled shutdown
    dedicated_kafka.restart()

    assert dedicated_kafka.bootstrap == config["bootstrap.servers"]
    assert dedicated_kafka.cluster_id == cluster_id, "the data dir was not formatted again"
    values = sorted(r.value for r in read_records(config, "pizza-ordered", until=lambda rs: len(rs) >= 2))
    assert values == [b"first", b"second"]


def test_start_reports_a_busy_port():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        kafka = LocalKafka(port=busy.getsockname()[1])
        with pytest.raises(KafkaStartError, match="in use"):
            kafka.start()
    kafka.stop(remove_data=True)


def test_a_broker_that_dies_while_starting_raises_with_its_log_tail():
    # An invalid setting: the JVM starts, logs why, and exits.
    kafka = LocalKafka(overrides={"num.partitions": "not-a-number"})
    try:
        with pytest.raises(KafkaStartError) as err:
            kafka.start(timeout=120)
        assert "exited while starting" in str(err.value) or "formatting" in str(err.value)
        assert "num.partitions" in str(err.value)
        assert not kafka.running
    finally:
        kafka.stop(remove_data=True)
