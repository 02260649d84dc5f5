"""What each service does with Kafka, declared once in the service's code.

The consume loop is built from this declaration, and the Helm chart's
KafkaUser ACLs are checked against it, so the two cannot drift apart.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from kafka_common import topics

COOPERATIVE = "cooperative-sticky"
# Range assignment gives one member the same partition number of every
# subscribed topic: what a join over co-partitioned topics needs.
RANGE = "range"


@dataclass(frozen=True)
class KafkaUsage:
    component: str                     # assemble, bake, delivery, status, webapp
    consumes: tuple[str, ...] = ()
    produces: tuple[str, ...] = ()
    group: str | None = None           # consumer group id (a consumer needs one even when it never joins)
    assigns_partitions: bool = False   # reads every partition itself (assign()), never joins the group
    transactional: bool = False        # output events and consumed offsets in one transaction
    assignment: str = COOPERATIVE
    dead_letters: bool = True          # invalid events go to pizza-dlq

    @property
    def writes(self) -> tuple[str, ...]:
        """Every topic this service writes to, the dead-letter topic included."""
        extra = (topics.PIZZA_DLQ,) if self.dead_letters and self.consumes else ()
        return tuple(dict.fromkeys(self.produces + extra))

    @property
    def transactional_id_prefix(self) -> str | None:
        return f"pizza-{self.component}-" if self.transactional else None

    def transactional_id(self) -> str | None:
        """Stable across container restarts in one pod (hostname = pod name, pid 1),
        so a restarted instance fences its predecessor and aborts its open transaction
        at once; distinct for processes that share a host."""
        if not self.transactional:
            return None
        return f"{self.transactional_id_prefix}{socket.gethostname()}-{os.getpid()}"
