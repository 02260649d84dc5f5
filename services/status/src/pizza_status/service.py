"""Status: the query side. Projects pizza-ordered and pizza-status into the read model and serves it."""

import re
import sqlite3

from flask import Blueprint, jsonify, request

from kafka_common import metrics, topics
from kafka_common.app import App
from kafka_common.config import ConfigError, env_number, env_str
from kafka_common.events import PizzaOrdered, PizzaStatus
from kafka_common.usage import KafkaUsage
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
app = App(KAFKA_USAGE, http_port=8001, api_port=8011)
READ_YOUR_WRITES_WAIT_S = 3.0
ORDER_ID = re.compile(r"^[0-9a-f]{32}$")
CUSTOMER_ID = re.compile(r"^[0-9a-f]{1,64}$")
POSITION = re.compile(r"^(\d{1,6}):(\d{1,19})$")


def query_api(model: ReadModel) -> Blueprint:
    api = Blueprint("orders", __name__)

    def wait_for_position():
        """?wait_for=partition:offset of the caller's pizza-ordered record: read-your-writes."""
        raw = request.args.get("wait_for")
        if raw is None:
            return None
        match = POSITION.match(raw)
        if match is None:
            return jsonify(error="wait_for must be <partition>:<offset>"), 400
        model.wait_for(int(match[1]), int(match[2]), READ_YOUR_WRITES_WAIT_S)
        return None

    @api.get("/api/orders")
    def list_orders():
        customer_id = request.args.get("customer_id", "")
        if not CUSTOMER_ID.match(customer_id):
            return jsonify(error="customer_id must be a hex string"), 400
        return wait_for_position() or jsonify(orders=model.orders_of(customer_id))

    @api.get("/api/orders/<order_id>")
    def get_order(order_id: str):
        if not ORDER_ID.match(order_id):
            return jsonify(error="unknown order"), 404
        problem = wait_for_position()
        if problem:
            return problem
        order = model.order(order_id)
        if order is None:
            return jsonify(error="unknown order"), 404
        return jsonify(order)

    return api


def setup(app: App) -> None:
    path = env_str("STATUS_DB_PATH", ":memory:")
    ttl_hours = env_number("ORDER_TTL_HOURS", 2.0, float, minimum=0.0)
    try:
        model = ReadModel(path, ttl_hours=ttl_hours)
    except sqlite3.Error as exc:
        raise ConfigError(f"STATUS_DB_PATH={path}: cannot open the read model there ({exc})") from exc
    metrics.OLDEST_OPEN_ORDER_AGE.labels(KAFKA_USAGE.component).set_function(model.oldest_open_age_seconds)
    app.handles(PizzaOrdered, model.apply_ordered)
    app.handles(PizzaStatus, model.apply_status)
    app.on_applied(model.applied)
    app.applies_in_batches(model.batch)
    app.serve_api(query_api(model))


def main() -> None:
    app.run(setup)
