from kafka_common import topics
from kafka_common.usage import KafkaUsage

KAFKA_USAGE = KafkaUsage(
    component="bake",
    consumes=(topics.PIZZA_ASSEMBLED,),
    produces=(topics.PIZZA_BAKED, topics.PIZZA_STATUS),
    group="pizza-bake",
    transactional=True,
)
