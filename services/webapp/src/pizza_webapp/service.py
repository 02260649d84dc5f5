from kafka_common import topics
from kafka_common.usage import KafkaUsage

KAFKA_USAGE = KafkaUsage(component="webapp", produces=(topics.PIZZA_ORDERED,))
