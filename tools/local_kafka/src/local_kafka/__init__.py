"""A local Apache Kafka for development and tests, and the process management of `make run`.

- LocalKafka: a single-node KRaft broker from plain jars (local_kafka.broker).
- ServiceProcess: one service as a real process, its output in a file (local_kafka.process).
- `python -m local_kafka`: the broker in the foreground (`make kafka`).
- `python -m local_kafka.shop`: the broker and the five services (`make run`).
- local_kafka.pytest_plugin: fixtures for tests against real brokers and processes.
"""

from local_kafka.broker import KAFKA_VERSION, KafkaStartError, LocalKafka, free_port
from local_kafka.process import ServiceNotReady, ServiceProcess

__all__ = ["KAFKA_VERSION", "KafkaStartError", "LocalKafka", "ServiceNotReady", "ServiceProcess", "free_port"]
