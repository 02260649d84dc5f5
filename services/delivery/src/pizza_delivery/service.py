from kafka_common import topics
from kafka_common.usage import RANGE, KafkaUsage

KAFKA_USAGE = KafkaUsage(
    component="delivery",
    consumes=(topics.PIZZA_ORDERED, topics.PIZZA_BAKED),
    produces=(topics.PIZZA_STATUS,),
    group="pizza-delivery",
    transactional=True,
    assignment=RANGE,
)
