"""A minimal consumer service for the library's tests, run as a real process.

It consumes PizzaOrdered events from $IN_TOPIC and, after $STEP_SECONDS,
emits a PizzaStatus on $OUT_TOPIC, through kafka_common's ConsumerService.
Fault injection, for tests only:
  CRASH_BEFORE_COMMIT_FILE  if this file does not exist yet: create it and kill -9
                            this process after producing, before committing.
  STUCK_FILE                the handler blocks while this file exists (a stuck loop).
"""

import os
import signal
import time
from pathlib import Path

from kafka_common.events import PizzaOrdered, PizzaStatus
from kafka_common.menu import STATUS_IN_OVEN
from kafka_common.runner import ConsumerService, Step
from kafka_common.service import serve
from kafka_common.usage import KafkaUsage


class InOrdered(PizzaOrdered):
    TOPIC = os.environ["IN_TOPIC"]


class OutStatus(PizzaStatus):
    TOPIC = os.environ["OUT_TOPIC"]


USAGE = KafkaUsage(component="steptest", consumes=(InOrdered.TOPIC,), produces=(OutStatus.TOPIC,),
                   group=os.environ["GROUP"], transactional=True)


def handle(event):
    stuck = os.environ.get("STUCK_FILE")
    while stuck and Path(stuck).exists():
        time.sleep(0.05)
    return Step(name="test", seconds=float(os.environ.get("STEP_SECONDS", "0")),
                emit=(OutStatus(order_id=event.order_id, status=STATUS_IN_OVEN),),
                done_message=f"Order {event.order_id} done")


class CrashingService(ConsumerService):
    def _commit_transaction(self):
        marker = Path(os.environ["CRASH_BEFORE_COMMIT_FILE"])
        if not marker.exists():
            marker.touch()
            self.producer.flush(10)  # the outputs are in the log, uncommitted
            os.kill(os.getpid(), signal.SIGKILL)
        super()._commit_transaction()


if __name__ == "__main__":
    runner = CrashingService if os.environ.get("CRASH_BEFORE_COMMIT_FILE") else ConsumerService
    serve(USAGE, 0, lambda: {"handlers": {InOrdered: handle}, "dlq_topic": os.environ["DLQ_TOPIC"]}, runner=runner)
