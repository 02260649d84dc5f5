"""Creating librdkafka clients: one place for the properties every client gets."""

from __future__ import annotations

import logging

from confluent_kafka import Consumer, KafkaException, Producer

from kafka_common.config import ClientConfig, ConfigError, explain_client_error

PRODUCER_DEFAULTS = {
    "enable.idempotence": "true",
    "acks": "all",
    "linger.ms": "5",
    "compression.type": "lz4",
}


def client_properties(config: ClientConfig, component: str, extra: dict, on_error) -> dict:
    props = {**config.properties, **extra}
    props.setdefault("client.id", f"pizza-{component}")
    props["error_cb"] = on_error
    # librdkafka's own log lines go through Python logging (and so structlog),
    # not straight to stderr; they are delivered from poll().
    props["logger"] = logging.getLogger("librdkafka")
    return props


def _create(kind, config: ClientConfig, props: dict):
    try:
        return kind(props)
    except KafkaException as exc:
        raise ConfigError(explain_client_error(config, exc.args[0].str())) from exc


def build_producer(config: ClientConfig, component: str, extra: dict, on_error) -> Producer:
    return _create(Producer, config, client_properties(config, component, {**PRODUCER_DEFAULTS, **extra}, on_error))


def build_consumer(config: ClientConfig, component: str, extra: dict, on_error) -> Consumer:
    return _create(Consumer, config, client_properties(config, component, extra, on_error))
