"""A local Apache Kafka for development and tests.

- LocalKafka: a single-node KRaft broker from plain jars (local_kafka.broker).
- `python -m local_kafka` (`make kafka`): the broker in the foreground.
- local_kafka.acls: a KafkaUser's ACLs (as the chart writes them) applied to a local broker.
"""

from local_kafka.broker import KAFKA_VERSION, KafkaStartError, LocalKafka, free_port

__all__ = ["KAFKA_VERSION", "KafkaStartError", "LocalKafka", "free_port"]
