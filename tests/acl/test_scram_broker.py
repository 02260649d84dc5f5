"""The local broker with auth keeps its admin and users across restarts (make run's persistent data
dir), and refuses a data dir that was formatted without SCRAM users."""

from __future__ import annotations

import logging

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from local_kafka.broker import KafkaStartError, LocalKafka, ScramAuth

pytestmark = pytest.mark.slow

READ_ORDERS = [
    {"resource": {"type": "topic", "name": "pizza-ordered", "patternType": "literal"}, "operations": ["Describe"]}
]


def visible_topics(config: dict) -> set[str]:
    return set(AdminClient(config).list_topics(timeout=30).topics)


def test_admin_and_users_survive_a_restart_and_a_plain_data_dir_is_refused(tmp_path):
    kafka = LocalKafka(data_dir=tmp_path / "kafka", auth=ScramAuth())
    kafka.start()
    try:
        kafka.create_topics()
        user = kafka.add_user("reader", READ_ORDERS)
        assert visible_topics(user) == {"pizza-ordered"}  # Describe on one topic: the others are hidden
        kafka.stop()
        again = LocalKafka(kafka.port, kafka.controller_port, tmp_path / "kafka", auth=ScramAuth())
        try:
            again.start()
            assert "pizza-status" in visible_topics(again.admin_config())
            assert visible_topics(user) == {"pizza-ordered"}
            # The same user a moment ago, with another password: no answer at all.
            wrong = {**user, "sasl.password": "wrong", "logger": logging.getLogger("wrong-password")}
            with pytest.raises(KafkaException):
                AdminClient(wrong).list_topics(timeout=5)
        finally:
            again.stop()
    finally:
        kafka.stop(remove_data=True)
    plain = tmp_path / "plain"
    (plain / "kraft").mkdir(parents=True)
    (plain / "kraft" / "meta.properties").write_text("cluster.id=x\n")  # what a formatted dir has
    with pytest.raises(KafkaStartError, match="formatted without SCRAM users"):
        LocalKafka(data_dir=plain, auth=ScramAuth()).start()
