"""The consume loop against a real broker: at-least-once processing, transactions, DLQ, shutdown, health."""

import signal
import sys
import time
from pathlib import Path

import pytest
import requests
from confluent_kafka import Producer

from kafka_common import events
from kafka_common.bounded import EXIT_WEDGED
from kafka_common.shop import events as shop_events
from kafka_common.shop.events import Pizza, PizzaOrdered
from kafka_common.shop.ids import new_order_id
from shop_testing.helpers import wait_until

STEP_SERVICE = [sys.executable, str(Path(__file__).with_name("step_service.py"))]
PIZZA = Pizza(sauce="Tomato", cheese="Mozzarella", main_topping="Pepperoni")


# A killed member leaves its group after the broker's group.consumer.session.timeout.ms
# (6 s on the local broker, KIP-848). Reconnects are quicker too.
FAST_FAILOVER = {"KAFKA_RECONNECT_BACKOFF_MAX_MS": "1000"}


@pytest.fixture
def topics(new_topic, unique_name):
    return {
        "IN_TOPIC": new_topic("in"),
        "OUT_TOPIC": new_topic("out"),
        "DLQ_TOPIC": new_topic("dlq"),
        "GROUP": unique_name("group"),
        **FAST_FAILOVER,
    }


def produce_orders(config, topic, count, key=None):
    """Produce `count` valid orders (all with the same key if given); returns their order ids."""
    producer = Producer(config)
    ids = []
    for _ in range(count):
        order_id = key or new_order_id()
        order = PizzaOrdered(order_id=order_id, customer_id="c0ffee", username="tester", pizza=PIZZA)
        k, value, headers = events.encode(order, "/tests")
        producer.produce(topic, key=k, value=value, headers=headers)
        ids.append(order_id)
    assert producer.flush(10) == 0
    return ids


def metric(proc, name, **labels):
    text = requests.get(proc.url("/metrics"), timeout=5).text
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name}{{{want}}} not exported")


def test_events_flow_through_the_runner(kafka_config, topics, service_process, read_topic):
    proc = service_process(STEP_SERVICE, name="step", env=topics)
    ids = produce_orders(kafka_config, topics["IN_TOPIC"], 5)
    out = read_topic(topics["OUT_TOPIC"], until=lambda rs: len(rs) >= 5)
    assert sorted(r.key for r in out) == sorted(ids)
    for record in out:
        event = events.decode(shop_events.PizzaStatus, record.key.encode(), record.value, list(record.headers.items()))
        assert event.envelope.source == "/pizza-shop/steptest"
    assert metric(proc, "pizza_events_consumed_total", topic=topics["IN_TOPIC"]) == 5
    assert metric(proc, "pizza_events_produced_total", topic=topics["OUT_TOPIC"]) == 5


def test_kill_9_mid_step_processes_the_event_again_and_skips_nothing(kafka_config, topics, service_process, read_topic):
    slow = service_process(STEP_SERVICE, name="slow", env={**topics, "STEP_SECONDS": "60"})
    ids = produce_orders(kafka_config, topics["IN_TOPIC"], 4, key=new_order_id())  # one partition, in order
    slow.wait_for_log("event received")
    slow.kill()
    assert read_topic(topics["OUT_TOPIC"]) == []  # nothing was committed for the step in progress
    service_process(STEP_SERVICE, name="fast", env={**topics, "STEP_SECONDS": "0"})
    out = read_topic(topics["OUT_TOPIC"], until=lambda rs: len(rs) >= 4)
    assert [r.key for r in out] == ids  # all four, each once, in order
    assert len(read_topic(topics["OUT_TOPIC"])) == 4


def test_crash_between_produce_and_commit_leaves_no_duplicate(
    kafka_config, topics, service_process, read_topic, tmp_path
):
    # The replacement has the crashed replica's INSTANCE_ID, so the same transactional.id:
    # its init_transactions() fences the predecessor and aborts its open transaction.
    env = {**topics, "INSTANCE_ID": "step-0"}
    crashing = service_process(
        STEP_SERVICE, name="crashing", env={**env, "CRASH_BEFORE_COMMIT_FILE": str(tmp_path / "crashed")}
    )
    [order_id] = produce_orders(kafka_config, topics["IN_TOPIC"], 1)
    assert crashing.wait(timeout=60) == -signal.SIGKILL
    # The crashed transaction's output is in the log, but aborted: read_uncommitted sees it...
    dirty = read_topic(topics["OUT_TOPIC"], isolation_level="read_uncommitted", until=lambda rs: len(rs) >= 1)
    assert [r.key for r in dirty] == [order_id]
    service_process(STEP_SERVICE, name="restarted", env=env)
    committed = read_topic(topics["OUT_TOPIC"], until=lambda rs: len(rs) >= 1, timeout=60)
    # ...a read_committed consumer sees exactly the one committed output.
    assert [r.key for r in committed] == [order_id]
    assert len(read_topic(topics["OUT_TOPIC"], isolation_level="read_uncommitted")) == 2


def test_malformed_event_goes_to_the_dlq_and_the_partition_moves_on(kafka_config, topics, service_process, read_topic):
    proc = service_process(STEP_SERVICE, name="step", env=topics)
    order_id = new_order_id()
    producer = Producer(kafka_config)
    producer.produce(topics["IN_TOPIC"], key=order_id, value=b"{not json", headers=[("ce_type", b"x")])
    producer.flush(10)
    produce_orders(kafka_config, topics["IN_TOPIC"], 1, key=order_id)  # same key: same partition, after it
    [dead] = read_topic(topics["DLQ_TOPIC"], until=lambda rs: len(rs) >= 1)
    assert dead.value == b"{not json" and dead.key == order_id
    assert dead.header("dlq_source_topic") == topics["IN_TOPIC"]
    assert dead.header("dlq_source_partition") == str(dead.partition)
    assert dead.header("dlq_source_offset") == "0"
    assert dead.header("dlq_service") == "steptest"
    assert "missing CloudEvents headers" in dead.header("dlq_error")
    out = read_topic(topics["OUT_TOPIC"], until=lambda rs: len(rs) >= 1)
    assert [r.key for r in out] == [order_id]
    assert metric(proc, "pizza_dlq_events_total", topic=topics["IN_TOPIC"]) == 1


def test_sigterm_leaves_the_group_and_the_other_member_takes_over_at_once(topics, service_process):
    first = service_process(STEP_SERVICE, name="first", env=topics)
    second = service_process(STEP_SERVICE, name="second", env=topics)
    labels = {"group": topics["GROUP"], "topic": topics["IN_TOPIC"]}
    wait_until(
        lambda: (
            metric(first, "pizza_consumer_assigned_partitions", **labels)
            + metric(second, "pizza_consumer_assigned_partitions", **labels)
            == 6
        ),
        30,
        "6 partitions shared",
    )
    assert metric(second, "pizza_consumer_assigned_partitions", **labels) < 6
    first.terminate()
    # Leaving the group rebalances at once; a silent death would take session.timeout.ms (45 s).
    wait_until(
        lambda: metric(second, "pizza_consumer_assigned_partitions", **labels) == 6,
        5.0,
        "the second member to own all partitions",
    )
    assert first.wait(timeout=20) == 0
    log = first.log_text()
    for step in (
        "shutdown requested",
        "shutting down",
        "consumer closed, left the group",
        "producer flushed",
        "shutdown complete",
    ):
        assert step in log


def test_healthz_fails_when_the_loop_is_stuck(kafka_config, topics, service_process, tmp_path):
    stuck = tmp_path / "stuck"
    stuck.touch()
    proc = service_process(
        STEP_SERVICE, name="step", env={**topics, "STUCK_FILE": str(stuck), "LIVENESS_STALL_SECONDS": "2"}
    )
    assert requests.get(proc.url("/healthz"), timeout=5).status_code == 200
    produce_orders(kafka_config, topics["IN_TOPIC"], 1)
    wait_until(lambda: requests.get(proc.url("/healthz"), timeout=5).status_code == 503, 30, "/healthz to fail")
    assert "no progress" in requests.get(proc.url("/healthz"), timeout=5).json()["detail"]
    stuck.unlink()
    wait_until(lambda: requests.get(proc.url("/healthz"), timeout=5).status_code == 200, 30, "/healthz to recover")


def test_broker_outage_keeps_healthz_green_and_readyz_follows_membership(dedicated_kafka, unique_name, service_process):
    from shop_testing.helpers import create_topic, read_records

    config = dedicated_kafka.admin_config()
    topics = {
        "IN_TOPIC": unique_name("in"),
        "OUT_TOPIC": unique_name("out"),
        "DLQ_TOPIC": unique_name("dlq"),
        "GROUP": unique_name("group"),
        **FAST_FAILOVER,
    }
    for name in ("IN_TOPIC", "OUT_TOPIC", "DLQ_TOPIC"):  # noqa: B007
        create_topic(config, topics[name])
    dedicated_kafka.stop()
    proc = service_process(
        STEP_SERVICE,
        name="step",
        env={**topics, "LIVENESS_STALL_SECONDS": "3"},
        bootstrap=dedicated_kafka.bootstrap,
        wait_ready=False,
    )
    wait_until(lambda: proc.running and _status(proc, "/healthz") == 200, 30, "the service to serve probes")
    assert _status(proc, "/readyz") == 503  # no broker: not a group member
    dedicated_kafka.start()
    proc.wait_ready(timeout=60)
    dedicated_kafka.stop()
    # The broker is gone for longer than the liveness bound: the process is still alive and polling.
    outage_end = time.monotonic() + 6
    while time.monotonic() < outage_end:
        assert _status(proc, "/healthz") == 200
        time.sleep(0.25)
    dedicated_kafka.start()
    [order_id] = produce_orders(config, topics["IN_TOPIC"], 1)
    out = read_records(config, topics["OUT_TOPIC"], until=lambda rs: len(rs) >= 1, timeout=90)
    assert [r.key for r in out] == [order_id]


def _status(proc, path):
    try:
        # Generous: a loaded machine can be slow to answer; what counts is the status code.
        return requests.get(proc.url(path), timeout=5).status_code
    except requests.ConnectionError:
        return None


def test_sigterm_with_the_broker_gone_still_exits_0_in_bounded_time(dedicated_kafka, unique_name, service_process):
    from shop_testing.helpers import create_topic

    config = dedicated_kafka.admin_config()
    topics = {
        "IN_TOPIC": unique_name("in"),
        "OUT_TOPIC": unique_name("out"),
        "DLQ_TOPIC": unique_name("dlq"),
        "GROUP": unique_name("group"),
        **FAST_FAILOVER,
    }
    for name in ("IN_TOPIC", "OUT_TOPIC", "DLQ_TOPIC"):
        create_topic(config, topics[name])
    proc = service_process(
        STEP_SERVICE, name="step", env={**topics, "STEP_SECONDS": "60"}, bootstrap=dedicated_kafka.bootstrap
    )
    produce_orders(config, topics["IN_TOPIC"], 1)
    proc.wait_for_log("event received")  # a step in progress
    dedicated_kafka.kill()
    proc.terminate()
    # Bounded by the loop's close (10 s) and flush (5 s) guards, well inside a 30 s grace period.
    assert proc.wait(timeout=30) == 0
    log = proc.log_text()
    for step in ("shutdown requested", "step abandoned, not committed", "shutdown complete"):
        assert step in log


def test_a_hung_send_offsets_is_left_behind_and_the_service_recovers_without_exit(
    kafka_config, topics, service_process, read_topic, tmp_path
):
    hang = tmp_path / "hang"
    hang.touch()
    proc = service_process(
        STEP_SERVICE, name="step", env={**topics, "HANG_CALL": "send_offsets_to_transaction", "HANG_FILE": str(hang)}
    )
    [order_id] = produce_orders(kafka_config, topics["IN_TOPIC"], 1)
    proc.wait_for_log("its producer is left behind and replaced", timeout=60)
    hang.unlink()  # the new producer's send_offsets returns, as after a coordinator comes back
    out = read_topic(topics["OUT_TOPIC"], until=lambda rs: len(rs) >= 1, timeout=60)
    assert [r.key for r in out] == [order_id]
    assert proc.running and requests.get(proc.url("/healthz"), timeout=5).status_code == 200
    assert len(read_topic(topics["OUT_TOPIC"])) == 1


def test_a_hung_kafka_call_exits_the_process_and_the_replacement_commits_once(
    kafka_config, topics, service_process, read_topic, tmp_path
):
    hang = tmp_path / "hang"
    hang.touch()
    env = {**topics, "INSTANCE_ID": "step-0"}
    wedged = service_process(
        STEP_SERVICE, name="wedged", env={**env, "HANG_CALL": "consumer_group_metadata", "HANG_FILE": str(hang)}
    )
    [order_id] = produce_orders(kafka_config, topics["IN_TOPIC"], 1)
    # The watchdog, not a liveness probe minutes later, ends it: non-zero, with the reason.
    assert wedged.wait(timeout=60) == EXIT_WEDGED
    assert "Kafka client wedged" in wedged.log_text() and "consumer_group_metadata" in wedged.log_text()
    hang.unlink()
    service_process(STEP_SERVICE, name="replacement", env=env)
    out = read_topic(topics["OUT_TOPIC"], until=lambda rs: len(rs) >= 1, timeout=60)
    assert [r.key for r in out] == [order_id]
    assert len(read_topic(topics["OUT_TOPIC"])) == 1


def test_sigterm_while_a_kafka_call_hangs_still_ends_the_process(kafka_config, topics, service_process, tmp_path):
    hang = tmp_path / "hang"
    hang.touch()
    proc = service_process(
        STEP_SERVICE, name="step", env={**topics, "HANG_CALL": "consumer_group_metadata", "HANG_FILE": str(hang)}
    )
    produce_orders(kafka_config, topics["IN_TOPIC"], 1)
    proc.wait_for_log("event received")
    proc.terminate()
    assert proc.wait(timeout=30) in (0, EXIT_WEDGED)  # within a 30 s grace period, whatever the client does
    assert "shutdown requested" in proc.log_text()


def test_a_duplicate_order_is_done_once(kafka_config, topics, service_process, read_topic):
    proc = service_process(STEP_SERVICE, name="step", env={**topics, "ONCE_PER_ORDER": "1"})
    [order_id, _] = produce_orders(kafka_config, topics["IN_TOPIC"], 2, key=new_order_id())  # one order, twice
    wait_until(
        lambda: metric(proc, "pizza_duplicate_events_total", topic=topics["IN_TOPIC"]) == 1,
        30,
        "the second record to be skipped",
    )
    assert [r.key for r in read_topic(topics["OUT_TOPIC"])] == [order_id]


def test_a_frozen_replica_loses_its_partitions_and_carries_on_when_thawed(
    kafka_config, topics, service_process, read_topic
):
    frozen = service_process(STEP_SERVICE, name="frozen", env=topics)
    other = service_process(STEP_SERVICE, name="other", env=topics)
    labels = {"group": topics["GROUP"], "topic": topics["IN_TOPIC"]}
    wait_until(lambda: metric(other, "pizza_consumer_assigned_partitions", **labels) == 3, 30, "3 partitions each")
    frozen.signal(signal.SIGSTOP)
    try:
        # The broker evicts the frozen member after its session timeout; the other takes over.
        wait_until(
            lambda: metric(other, "pizza_consumer_assigned_partitions", **labels) == 6,
            30,
            "the other member to own all partitions",
        )
        ids = produce_orders(kafka_config, topics["IN_TOPIC"], 6)
    finally:
        frozen.signal(signal.SIGCONT)
    out = read_topic(topics["OUT_TOPIC"], until=lambda rs: len(rs) >= 6)
    assert sorted(r.key for r in out) == sorted(ids)
    # Thawed, it is not taken for a wedged client: it rejoins the group and keeps serving.
    wait_until(lambda: metric(frozen, "pizza_consumer_assigned_partitions", **labels) > 0, 60, "the thawed member back")
    assert frozen.running and requests.get(frozen.url("/healthz"), timeout=5).status_code == 200
    assert len(read_topic(topics["OUT_TOPIC"])) == 6


def test_a_huge_invalid_record_is_dead_lettered_truncated_and_the_partition_moves_on(
    kafka_config, topics, service_process, read_topic
):
    service_process(STEP_SERVICE, name="step", env=topics)
    order_id = new_order_id()
    producer = Producer({**kafka_config, "linger.ms": 0})
    producer.produce(topics["IN_TOPIC"], key=order_id, value=b"x" * 950_000)  # its full copy would not fit
    producer.flush(10)
    produce_orders(kafka_config, topics["IN_TOPIC"], 1, key=order_id)  # same partition, after it
    [dead] = read_topic(topics["DLQ_TOPIC"], until=lambda rs: len(rs) >= 1)
    assert dead.header("dlq_value_truncated") == "950000" and len(dead.value) < 950_000
    assert dead.header("dlq_source_offset") == "0"
    out = read_topic(topics["OUT_TOPIC"], until=lambda rs: len(rs) >= 1)
    assert [r.key for r in out] == [order_id]
