"""A service's typed entry point: declare what it handles, then run().

    app = App(KAFKA_USAGE)  # ports: kafka_common.shop.components

    @app.handles(PizzaOrdered, once_per_order=True)
    def assemble(event: Event) -> Step: ...

    def main() -> None:
        app.run()

The loop kind comes from the KafkaUsage (usage.loop): a kitchen (group member,
transactional steps, consume.py) or a projection (every partition, a local
read model, projection.py). run() configures logging, validates configuration
(a mistake: one line on stderr, exit 2), calls setup(app) if given (for
handlers that need settings read at start-up), builds the clients, serves
/healthz /readyz /metrics on HTTP_PORT and any API (add_api) on API_PORT, and runs the
loop under the Supervisor (bounded.py): the loop on a worker thread, signals
and Kafka call deadlines on the main thread. The process exits with the
loop's code.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any

from kafka_common import events, metrics
from kafka_common.bounded import KafkaCalls, Supervisor
from kafka_common.config import (
    api_port,
    check_client_config,
    env_number,
    http_port,
    load_client_config,
    run_main,
)
from kafka_common.consume import Handles, KitchenLoop
from kafka_common.dedupe import DoneOrders
from kafka_common.health import DEFAULT_STALL_AFTER_S, Health
from kafka_common.http import HTTPServer, create_api_app, create_app
from kafka_common.kitchen_clients import build_kitchen_clients
from kafka_common.logging import configure_logging, get_logger
from kafka_common.projection import ProjectionLoop, build_projection_consumer
from kafka_common.shop import components, kitchen, topics
from kafka_common.usage import KITCHEN, PROJECTION, KafkaUsage
from kafka_common.version import VERSION

M_ARENA_MAX = -8  # glibc's mallopt() parameter number (malloc.h)
MALLOC_ARENAS = 2


def limit_malloc_arenas(environ: Mapping[str, str] | None = None) -> bool:
    """At most MALLOC_ARENAS glibc malloc arenas, unless MALLOC_ARENA_MAX says otherwise.

    glibc gives a thread that allocates while another holds the main arena an arena of its
    own (up to 8 per core), and an arena keeps its high-water mark. librdkafka runs ~10
    threads per client pair: at a burst their arenas held 1-2 MiB of a kitchen's ~47 MiB
    peak. Two arenas serve one loop thread and librdkafka's I/O threads without contention
    that shows (benchmarks: CPU per order unchanged). Called before any client (or thread)
    exists; a C library without mallopt (not glibc) is left alone. Returns whether it was set.
    """
    env = os.environ if environ is None else environ
    if env.get("MALLOC_ARENA_MAX"):
        return False  # read by glibc itself at start-up: the operator's choice stands
    try:
        return bool(ctypes.CDLL(None).mallopt(M_ARENA_MAX, MALLOC_ARENAS))
    except (OSError, AttributeError):
        return False


class App:
    def __init__(
        self,
        usage: KafkaUsage,
        *,
        http_port: int | None = None,
        api_port: int | None = None,
        dlq_topic: str = topics.PIZZA_DLQ,
    ):
        """http_port, api_port: the defaults of HTTP_PORT and API_PORT; a shop component's
        come from its row in kafka_common.shop.components."""
        if usage.loop not in (KITCHEN, PROJECTION):
            raise ValueError(f"{usage.component}: its KafkaUsage declares no consume loop")
        self.usage = usage
        component = components.BY_NAME.get(usage.component)
        if http_port is None:
            if component is None:
                raise ValueError(f"{usage.component} is not a shop component: pass http_port")
            http_port = component.http_port
        self.default_http_port = http_port
        self.default_api_port = api_port if api_port is not None or component is None else component.api_port
        self.dlq_topic = dlq_topic
        self.handlers: dict[type[events.Payload], Any] = {}  # Handles (kitchen) or a callable (projection)
        self.api_blueprints: list = []
        self.applied: Callable[[str, int, int], None] | None = None
        self.batch: Callable[[], AbstractContextManager] | None = None
        self.caught_up: Callable[[], None] | None = None

    def handles(self, model: type[events.Payload], handler: Callable | None = None, *, once_per_order: bool = False):
        """Register the handler of one event type (as a decorator, or directly with handler=).

        once_per_order (kitchen): a second record for an order this step already did
        (a duplicate, or a forged second pizza-ordered) is skipped, not done again.
        """
        if once_per_order and self.usage.loop != KITCHEN:
            raise ValueError("once_per_order is for kitchen steps; a projection applies idempotently itself")

        def register(fn: Callable) -> Callable:
            if model in self.handlers:
                raise ValueError(f"{model.__name__} already has a handler")
            self.handlers[model] = Handles(fn, once_per_order) if self.usage.loop == KITCHEN else fn
            return fn

        return register if handler is None else register(handler)

    def on_applied(self, callback: Callable[[str, int, int], None]) -> None:
        """Projection: called with (topic, partition, offset) after each record (read-your-writes)."""
        self.applied = callback

    def applies_in_batches(
        self, batch: Callable[[], AbstractContextManager], *, caught_up: Callable[[], None] | None = None
    ) -> None:
        """Projection: each poll batch of records is applied inside `with batch():` (one database
        transaction, say); on_applied is told the batch's positions once it has exited. caught_up
        is called once every partition has been read to its end as of start-up, before the service
        is ready (to build what a bulk load left out)."""
        self.batch = batch
        self.caught_up = caught_up

    def add_api(self, blueprint) -> None:
        """Serve this blueprint on API_PORT, apart from probes and metrics."""
        if self.default_api_port is None:
            raise ValueError(f"{self.usage.component} has no API port (App(api_port=...) or its component row)")
        self.api_blueprints.append(blueprint)

    # -- running -----------------------------------------------------------------------------
    def run(self, setup: Callable[[App], None] | None = None) -> None:
        run_main(lambda: self.main(setup))

    def main(self, setup: Callable[[App], None] | None = None) -> int:
        component = self.usage.component
        limit_malloc_arenas()
        configure_logging(component)
        log = get_logger(component)
        config = load_client_config()
        check_client_config(config)
        health = Health(env_number("LIVENESS_STALL_SECONDS", DEFAULT_STALL_AFTER_S, float, minimum=1.0))
        if setup is not None:
            setup(self)
        stop = threading.Event()
        calls = KafkaCalls()
        metrics.BUILD_INFO.labels(component).info({"version": VERSION})
        metrics.LAST_POLL_AGE.labels(component).set_function(health.seconds_since_beat)
        loop = self._build_loop(config, health, calls, stop)
        servers = [HTTPServer(create_app(component, health), http_port(self.default_http_port))]
        if self.api_blueprints and self.default_api_port is not None:
            servers.append(
                HTTPServer(
                    create_api_app(component, self.api_blueprints), api_port(self.default_api_port), what="API_PORT"
                )
            )
        supervisor = Supervisor(component, calls, health, stop, log)
        supervisor.install_signal_handlers()
        for server in servers:
            server.start()
        try:
            code = supervisor.run(loop.run)
        finally:
            for server in servers:
                server.stop()
        log.info("shutdown complete", exit_code=code)
        return code

    def _build_loop(self, config, health: Health, calls: KafkaCalls, stop: threading.Event):
        if self.usage.loop == PROJECTION:
            return ProjectionLoop(
                self.usage,
                self.handlers,
                build_projection_consumer(self.usage, config, health),
                health=health,
                calls=calls,
                stop=stop,
                on_applied=self.applied,
                batch=self.batch,
                on_caught_up=self.caught_up,
            )
        ttl_hours = env_number("ORDER_TTL_HOURS", 2.0, float, minimum=0.0)
        return KitchenLoop(
            self.usage,
            self.handlers,
            build_kitchen_clients(self.usage, config, health),
            health=health,
            calls=calls,
            stop=stop,
            time_scale=kitchen.time_scale(),
            done_orders=DoneOrders(forget_after_s=ttl_hours * 3600),
            dlq_topic=self.dlq_topic,
        )
