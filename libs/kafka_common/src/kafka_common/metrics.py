"""Every Prometheus metric the services export, defined once.

Conventions: base units (seconds), _total on counters, a constant
`component` label naming the service (assemble, bake, delivery, status,
webapp) so one query can tell services apart wherever it is scraped, and
never an order id in a label.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, Info

# Kitchen steps last seconds to tens of seconds; event handling milliseconds.
STEP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 6, 8, 10, 15, 20, 30, 45, 60, 120)
PROCESSING_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
ORDER_BUCKETS = (1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

BUILD_INFO = Info("pizza_build", "Service build information", ["component"])

EVENTS_CONSUMED = Counter("pizza_events_consumed_total", "Events consumed, valid or not", ["component", "topic"])
EVENTS_PRODUCED = Counter(
    "pizza_events_produced_total",
    "Events acknowledged by Kafka (committed, for transactional producers)",
    ["component", "topic"],
)
EVENTS_FAILED = Counter(
    "pizza_events_failed_total",
    "Events that failed: reason=invalid (schema), processing (handler raised), produce (not acknowledged) "
    "or undeliverable (Kafka refused the step's output for good)",
    ["component", "topic", "reason"],
)
DLQ_EVENTS = Counter(
    "pizza_dlq_events_total", "Events sent to the dead-letter topic, by source topic", ["component", "topic"]
)
PROCESSING_SECONDS = Histogram(
    "pizza_event_processing_seconds",
    "Time to handle one event, excluding simulated kitchen time",
    ["component", "topic"],
    buckets=PROCESSING_BUCKETS,
)
KITCHEN_STEP_SECONDS = Histogram(
    "pizza_kitchen_step_seconds",
    "Wall time of a kitchen step, from event received to output committed",
    ["component", "step"],
    buckets=STEP_BUCKETS,
)
ORDERS_IN_PROGRESS = Gauge(
    "pizza_orders_in_progress", "Orders currently in a kitchen step in this process", ["component"]
)
CONSUMER_LAG = Gauge(
    "pizza_consumer_lag_records",
    "Records between the consumer's committed/stored offset and the partition end",
    ["component", "group", "topic", "partition"],
)
ASSIGNED_PARTITIONS = Gauge(
    "pizza_consumer_assigned_partitions", "Partitions assigned to this consumer", ["component", "group", "topic"]
)
REBALANCES = Counter(
    "pizza_consumer_rebalances_total",
    "Rebalance callbacks: kind=assigned, revoked or lost",
    ["component", "group", "kind"],
)
LAST_POLL_AGE = Gauge(
    "pizza_consumer_last_poll_age_seconds", "Seconds since the poll loop last returned", ["component"]
)
TRANSACTIONS = Counter(
    "pizza_transactions_total", "Kafka transactions by outcome (committed, aborted)", ["component", "outcome"]
)
PRODUCER_REPLACEMENTS = Counter(
    "pizza_transactional_producer_replacements_total",
    "Transactional producers replaced after a fatal error (the new one fences the old)",
    ["component"],
)
DUPLICATE_EVENTS = Counter(
    "pizza_duplicate_events_total",
    "Events skipped because this order's step was already done, by topic",
    ["component", "topic"],
)
KAFKA_ERRORS = Counter(
    "pizza_kafka_client_errors_total", "Errors reported by the Kafka client, by error name", ["component", "error"]
)

HTTP_REQUEST_SECONDS = Histogram(
    "pizza_http_request_duration_seconds",
    "HTTP request latency by route template, method and status code",
    ["component", "route", "method", "status"],
    buckets=HTTP_BUCKETS,
)
ORDERS_PLACED = Counter(
    "pizza_orders_placed_total", "Orders acknowledged by Kafka and confirmed to a customer", ["component"]
)

ORDERS_BY_STATUS = Gauge("pizza_orders", "Orders in the read model by current status", ["component", "status"])
OLDEST_OPEN_ORDER_AGE = Gauge(
    "pizza_oldest_open_order_age_seconds",
    "Age of the oldest order in the read model not yet delivered (0: none)",
    ["component"],
)
ORDER_END_TO_END_SECONDS = Histogram(
    "pizza_order_end_to_end_seconds",
    "Time from pizza-ordered to delivered, observed once per live order",
    ["component"],
    buckets=ORDER_BUCKETS,
)
READ_MODEL_CAUGHT_UP = Gauge(
    "pizza_read_model_caught_up",
    "1 once the read model has applied its topics up to their end as of start-up",
    ["component"],
)
