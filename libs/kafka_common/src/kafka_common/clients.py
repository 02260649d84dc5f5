"""Creating librdkafka clients: one place for the properties every client gets."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

from kafka_common import metrics
from kafka_common.config import ClientConfig, ConfigError, explain_client_error
from kafka_common.logging import get_logger

PRODUCER_DEFAULTS = {
    "enable.idempotence": "true",
    "acks": "all",
    "linger.ms": "5",
    "compression.type": "lz4",
}


# Expected while a broker is unreachable; the client reconnects by itself.
UNREACHABLE = frozenset({KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._RESOLVE})
UNREACHABLE_LOG_EVERY_S = 30.0
CLIENT_LOG_EVERY_S = 30.0
KNOWN_ERRORS = tuple(
    KafkaError(code).name()
    for code in (
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._RESOLVE,
        KafkaError._TIMED_OUT,
        KafkaError._AUTHENTICATION,
        KafkaError._FENCED,
        KafkaError._FATAL,
    )
)


class ClientLog:
    """librdkafka's own log lines: each kind at most once per CLIENT_LOG_EVERY_S, with a count.

    While a broker is away librdkafka logs every reconnect attempt of every
    connection (~20 lines a second per client); the kind (facility and client) is
    logged once per window, and the next line logged says how many were held back.
    confluent-kafka calls log(level, "%s [%s] %s", facility, client, message).
    """

    def __init__(self, every_s: float = CLIENT_LOG_EVERY_S):
        self.every_s = every_s
        self._logger = logging.getLogger("librdkafka")
        self._last: dict[tuple, float] = {}
        self._held: dict[tuple, int] = {}
        self._lock = threading.Lock()  # every client's background threads may log

    def log(self, level: int, fmt: str, *args) -> None:
        kind = (level, *args[:2])
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(kind, -self.every_s) < self.every_s:
                self._held[kind] = self._held.get(kind, 0) + 1
                return
            self._last[kind] = now
            held = self._held.pop(kind, 0)
        message = fmt % args if args else fmt
        if held:
            message += f" ({held} similar line(s) not logged in the last {self.every_s:.0f} s)"
        self._logger.log(level, message)


_CLIENT_LOG = ClientLog()


class ClientErrors:
    """error_cb for every client: count each error, log it, remember a fatal one.

    An outage makes librdkafka report the same transport error many times a
    second; those are logged once per UNREACHABLE_LOG_EVERY_S with a count.
    """

    def __init__(self, component: str, on_fatal=None):
        self.component = component
        self.on_fatal = on_fatal
        self.log = get_logger("kafka")
        self._last_logged: dict[int, float] = {}
        self._suppressed: dict[int, int] = {}
        self.last_unreachable = 0.0  # monotonic time of the last "cluster unreachable" report
        for name in KNOWN_ERRORS:  # exported at 0 from start-up: dashboards see 0, not "no data"
            metrics.KAFKA_ERRORS.labels(component, name)

    def __call__(self, err: KafkaError) -> None:
        metrics.KAFKA_ERRORS.labels(self.component, err.name()).inc()
        if err.code() in UNREACHABLE or err.code() == KafkaError._TIMED_OUT:
            self.last_unreachable = time.monotonic()
        if err.fatal():
            self.log.error("fatal Kafka client error", error=err.str(), code=err.name())
            if self.on_fatal is not None:
                self.on_fatal(err.str())
            return
        if err.code() not in UNREACHABLE:
            self.log.warning("Kafka client error", error=err.str(), code=err.name())
            return
        now = time.monotonic()
        if now - self._last_logged.get(err.code(), -UNREACHABLE_LOG_EVERY_S) < UNREACHABLE_LOG_EVERY_S:
            self._suppressed[err.code()] = self._suppressed.get(err.code(), 0) + 1
            return
        self._last_logged[err.code()] = now
        self.log.warning(
            "Kafka unreachable, retrying",
            error=err.str(),
            code=err.name(),
            repeats_not_logged=self._suppressed.pop(err.code(), 0),
        )


# librdkafka backs off reconnecting up to 10 s: after a broker restart a client would
# sit out most of that. 1 s gets orders flowing within seconds of the broker's return,
# for one connection attempt a second per broker while it is away (logged once, above).
CLIENT_DEFAULTS = {"reconnect.backoff.max.ms": "1000"}


def client_properties(
    config: ClientConfig, component: str, extra: dict, on_error, defaults: Mapping[str, str] | None = None
) -> dict:
    """What a client is built with. defaults: the caller's settings that the deployment's own
    (KAFKA_*, KAFKA_CONFIG_FILE) override; extra: what the caller's correctness needs, which wins."""
    props = {**CLIENT_DEFAULTS, **(defaults or {}), **config.properties, **extra}
    props.setdefault("client.id", f"pizza-{component}")
    props["error_cb"] = on_error
    # librdkafka's own log lines go through Python logging (and so structlog),
    # not straight to stderr; they are delivered from poll().
    props["logger"] = _CLIENT_LOG
    return props


def _create(kind, config: ClientConfig, props: dict):
    try:
        return kind(props)
    except KafkaException as exc:
        raise ConfigError(explain_client_error(config, exc.args[0].str())) from exc


def build_producer(
    config: ClientConfig, component: str, extra: dict, on_error, defaults: Mapping[str, str] | None = None
) -> Producer:
    props = client_properties(config, component, {**PRODUCER_DEFAULTS, **extra}, on_error, defaults)
    return _create(Producer, config, props)


def build_consumer(
    config: ClientConfig, component: str, extra: dict, on_error, defaults: Mapping[str, str] | None = None
) -> Consumer:
    return _create(Consumer, config, client_properties(config, component, extra, on_error, defaults))
