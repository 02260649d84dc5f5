"""Status: the query side. Projects pizza-ordered and pizza-status into the read model, served by query_api."""

import sqlite3

from kafka_common import metrics
from kafka_common.app import App
from kafka_common.config import ConfigError, env_number, env_str
from kafka_common.shop import topics
from kafka_common.shop.events import PizzaOrdered, PizzaStatus
from kafka_common.usage import KafkaUsage
from pizza_status.query_api import query_api
from pizza_status.read_model import ReadModel

KAFKA_USAGE = KafkaUsage(
    component="status",
    consumes=(topics.PIZZA_ORDERED, topics.PIZZA_STATUS),
    # Every replica reads every partition itself, so each one answers every query.
    # It never joins or commits; librdkafka still looks up the group's coordinator.
    group="pizza-status",
    assigns_partitions=True,
    dead_letters=False,
)
# Probes and metrics on HTTP_PORT; the query API on API_PORT, which only the webapp may reach.
app = App(KAFKA_USAGE)


def setup(app: App) -> None:
    path = env_str("STATUS_DB_PATH", ":memory:")
    ttl_hours = env_number("ORDER_TTL_HOURS", 2.0, float, minimum=0.0)
    try:
        model = ReadModel(path, ttl_hours=ttl_hours, bulk_load=True)  # the projection replays the log into it
    except sqlite3.Error as exc:
        raise ConfigError(f"STATUS_DB_PATH={path}: cannot open the read model there ({exc})") from exc
    metrics.OLDEST_OPEN_ORDER_AGE.labels(KAFKA_USAGE.component).set_function(model.oldest_open_age_seconds)
    app.handles(PizzaOrdered, model.apply_ordered)
    app.handles(PizzaStatus, model.apply_status)
    app.on_applied(model.applied)
    app.applies_in_batches(model.batch, caught_up=model.caught_up)
    app.add_api(query_api(model))


def main() -> None:
    app.run(setup)
