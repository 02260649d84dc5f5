"""The shop's services: their names, local ports and where each declares its KAFKA_USAGE.

The one port table: each service's default HTTP_PORT (and status's API_PORT) when
run on a machine (`make run`, a console script); containers use 8080 and 8081.
Code that means "the shop's services" iterates COMPONENTS, never services/*.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kafka_common.usage import KafkaUsage

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Component:
    name: str
    http_port: int  # probes and metrics (the webapp: its pages and API too)
    usage_module: str  # the module that declares KAFKA_USAGE
    api_port: int | None = None  # an API of its own, apart from probes and metrics

    @property
    def console_script(self) -> str:
        return f"pizza-{self.name}"

    def kafka_usage(self) -> KafkaUsage:
        usage: KafkaUsage = importlib.import_module(self.usage_module).KAFKA_USAGE
        return usage


# In start-up order: status first (the webapp reads it), the webapp last.
COMPONENTS: tuple[Component, ...] = (
    Component("status", 8001, "pizza_status.handlers", api_port=8011),
    Component("assemble", 8002, "pizza_assemble.handlers"),
    Component("bake", 8003, "pizza_bake.handlers"),
    Component("delivery", 8004, "pizza_delivery.handlers"),
    # The webapp's KAFKA_USAGE sits in its gunicorn bootstrap: it has no business file of that kind.
    Component("webapp", 8000, "pizza_webapp.server"),
)
BY_NAME = {c.name: c for c in COMPONENTS}
NAMES = tuple(c.name for c in COMPONENTS)
KITCHEN = ("assemble", "bake", "delivery")
STATUS_API_URL = f"http://{HOST}:{BY_NAME['status'].api_port}"
