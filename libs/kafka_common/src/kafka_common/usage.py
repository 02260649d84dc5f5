"""What each service does with Kafka, declared once in the service's code.

The consume loop is built from this declaration, and the Helm chart's
KafkaUser ACLs are checked against it, so the two cannot drift apart.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass

from kafka_common.shop import topics

# Partition assignors. With the KIP-848 consumer group protocol (the default, see
# consume.py) the broker assigns: "uniform" spreads partitions evenly, "range" gives
# one member the same partition number of every subscribed topic (what a join over
# co-partitioned topics needs); both move only the partitions that must move.
# With group.protocol=classic the client-side equivalents are used.
UNIFORM = "uniform"
RANGE = "range"
CLASSIC_ASSIGNORS = {UNIFORM: "cooperative-sticky", RANGE: "range"}

KITCHEN = "kitchen"  # a consumer-group member whose steps emit events transactionally
PROJECTION = "projection"  # reads every partition itself into a local read model


def instance_id(environ=None) -> str:
    """INSTANCE_ID: this replica's stable name (the pod name in Kubernetes, a slot such
    as bake-0 locally, reused when the replica is replaced); the hostname without it."""
    env = os.environ if environ is None else environ
    raw = env.get("INSTANCE_ID", "").strip() or socket.gethostname()
    return re.sub(r"[^A-Za-z0-9._-]", "-", raw)[:200]


@dataclass(frozen=True)
class KafkaUsage:
    component: str  # assemble, bake, delivery, status, webapp
    consumes: tuple[str, ...] = ()
    produces: tuple[str, ...] = ()
    group: str | None = None  # consumer group id (a consumer needs one even when it never joins)
    assigns_partitions: bool = False  # reads every partition itself (assign()), never joins the group
    transactional: bool = False  # output events and consumed offsets in one transaction
    assignment: str = UNIFORM
    dead_letters: bool = True  # invalid events go to pizza-dlq

    @property
    def group_id(self) -> str:
        """The consumer group, for code that runs only where one is declared."""
        if self.group is None:
            raise ValueError(f"{self.component}: its KafkaUsage declares no consumer group")
        return self.group

    @property
    def loop(self) -> str | None:
        """The kind of loop the service runs, read from this declaration (stated nowhere else)."""
        if self.assigns_partitions:
            return PROJECTION
        if self.group and self.transactional:
            return KITCHEN
        return None

    @property
    def writes(self) -> tuple[str, ...]:
        """Every topic this service writes to, the dead-letter topic included."""
        extra = (topics.PIZZA_DLQ,) if self.dead_letters and self.consumes else ()
        return tuple(dict.fromkeys(self.produces + extra))

    @property
    def transactional_id_prefix(self) -> str | None:
        return f"pizza-{self.component}-" if self.transactional else None

    def transactional_id(self, environ=None) -> str | None:
        """pizza-<component>-<INSTANCE_ID>: stable per replica, so a replacement (same pod
        name, same local slot) fences its predecessor and aborts its open transaction at
        once instead of waiting for transaction.timeout.ms."""
        if not self.transactional:
            return None
        return f"{self.transactional_id_prefix}{instance_id(environ)}"
