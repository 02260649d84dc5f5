"""Logged-out sessions: a revoked session id is refused by every worker, for as long as its cookie could live.

Sessions are signed cookies (nothing to look up on a normal request); what has to
be shared is the short list of sessions that were logged out before they expired.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from kafka_common.logging import get_logger
from kafka_common.shop import topics


class RevocationFailed(Exception):
    """The logout could not be recorded where every worker sees it."""


class RevokedSessions:
    """Session ids revoked until their expiry (wall-clock seconds); safe to share between threads."""

    def __init__(self, lifetime_s: float):
        self.lifetime_s = lifetime_s
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()
        self._next_prune = 0.0

    def add(self, sid: str, until: float) -> None:
        with self._lock:
            self._until[sid] = max(until, self._until.get(sid, 0.0))

    def revoke(self, sid: str) -> None:
        self.add(sid, time.time() + self.lifetime_s)

    def is_revoked(self, sid: str) -> bool:
        now = time.time()
        if now >= self._next_prune:
            self._prune(now)
        until = self._until.get(sid)
        return until is not None and until > now

    def _prune(self, now: float) -> None:
        with self._lock:
            self._next_prune = now + 60.0
            for sid in [s for s, until in self._until.items() if until <= now]:
                del self._until[sid]

    def __len__(self) -> int:
        return len(self._until)


# The shared record: one small topic that only the webapp writes and reads. Key and value
# are the revoked session id and until when (epoch seconds); nothing else about the customer.
LOGOUTS_TOPIC = topics.PIZZA_LOGOUTS  # created with the shop's other topics (kafka_common.shop.topics)
PUBLISH_TIMEOUT_S = 4.0


class KafkaRevokedSessions(RevokedSessions):
    """Revocations shared by every worker and replica through the pizza-logouts topic.

    revoke() records the session id locally at once (this worker refuses it immediately)
    and on the topic, acknowledged by the brokers (acks=all) before the logout is
    confirmed. A reader thread in every worker applies every record from the start of
    the topic, so another worker or replica refuses the cookie as soon as it has read the
    record (milliseconds; a worker that just started has read the whole topic within
    seconds). librdkafka calls block in C: the reader is a real thread and publishing
    runs through `offload` on a real thread too.
    """

    def __init__(self, config, lifetime_s: float, offload, group: str, topic: str = LOGOUTS_TOPIC):
        super().__init__(lifetime_s)
        self._config = config
        self._group = group
        self._offload = offload
        self._topic = topic
        self._producer: Any = None  # a confluent_kafka Producer once started
        self._stop = threading.Event()
        self._reader: threading.Thread | None = None
        self._log = get_logger("webapp")
        self.caught_up = threading.Event()

    def start(self) -> KafkaRevokedSessions:
        from kafka_common.clients import ClientErrors, build_producer

        self._producer = build_producer(
            self._config,
            "webapp",
            {"message.timeout.ms": str(int(PUBLISH_TIMEOUT_S * 1000) - 1000)},
            ClientErrors("webapp"),
        )
        self._reader = threading.Thread(target=self._read, name="logouts-reader", daemon=True)
        self._reader.start()
        return self

    def revoke(self, sid: str) -> None:
        until = time.time() + self.lifetime_s
        self.add(sid, until)
        try:
            self._offload(lambda: self._publish(sid, until), PUBLISH_TIMEOUT_S + 1.0)
        except Exception as exc:
            self._log.warning("logout not recorded on Kafka", error=str(exc))
            raise RevocationFailed(str(exc)) from None

    def _publish(self, sid: str, until: float) -> None:
        outcome: dict = {}
        self._producer.produce(
            self._topic,
            key=sid,
            value=json.dumps({"until": until}).encode(),
            on_delivery=lambda err, msg: outcome.setdefault("err", err),
        )
        self._producer.flush(PUBLISH_TIMEOUT_S)
        if outcome.get("err") is not None or "err" not in outcome:
            raise RevocationFailed(outcome["err"].str() if outcome.get("err") else "not acknowledged in time")

    def _read(self) -> None:
        from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition

        from kafka_common.clients import ClientErrors, build_consumer

        consumer = build_consumer(
            self._config,
            "webapp",
            {
                # Never joins the group nor commits: every worker reads every record from the start.
                "group.id": self._group,
                "enable.auto.commit": "false",
                "enable.partition.eof": "true",
            },
            ClientErrors("webapp"),
        )
        try:
            waited = False
            while not self._stop.is_set():
                try:
                    partitions = consumer.list_topics(self._topic, timeout=5.0).topics[self._topic].partitions
                except KafkaException:
                    partitions = {}
                if partitions:
                    break
                if not waited:
                    self._log.warning("waiting for the logouts topic", topic=self._topic)
                    waited = True
                self._stop.wait(2.0)
            if waited:
                self._log.info("logouts topic found", topic=self._topic)
            consumer.assign([TopicPartition(self._topic, p, OFFSET_BEGINNING) for p in partitions])
            at_end: set[int] = set()
            while not self._stop.is_set():
                msg = consumer.poll(0.5)
                if msg is None:
                    continue
                if msg.error():
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        at_end.add(msg.partition())
                        if len(at_end) == len(partitions):
                            self.caught_up.set()
                    continue
                self._apply(msg.key(), msg.value())
        finally:
            consumer.close()

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        try:
            if key is None or value is None:
                raise ValueError("no key or no value")
            until = float(json.loads(value)["until"])
            sid = key.decode()
        except (TypeError, ValueError, KeyError, AttributeError, UnicodeDecodeError):
            self._log.warning("ignoring an unreadable logout record")
            return
        self.add(sid, until)

    def close(self) -> None:
        self._stop.set()
        if self._reader is not None:
            self._reader.join(timeout=2.0)
        if self._producer is not None:
            self._producer.flush(2.0)
