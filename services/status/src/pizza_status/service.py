from kafka_common import topics
from kafka_common.usage import KafkaUsage

KAFKA_USAGE = KafkaUsage(
    component="status",
    consumes=(topics.PIZZA_ORDERED, topics.PIZZA_STATUS),
    group=None,
    dead_letters=False,
)
