from kafka_common import topics
from kafka_common.usage import KafkaUsage

KAFKA_USAGE = KafkaUsage(
    component="assemble",
    consumes=(topics.PIZZA_ORDERED,),
    produces=(topics.PIZZA_ASSEMBLED, topics.PIZZA_STATUS),
    group="pizza-assemble",
    transactional=True,
)
