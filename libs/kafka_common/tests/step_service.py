"""A minimal consumer service for the library's tests, run as a real process.

It consumes PizzaOrdered events from $IN_TOPIC and, after $STEP_SECONDS,
emits a PizzaStatus on $OUT_TOPIC, through kafka_common's App (kitchen loop).
Fault injection, for tests only:
  CRASH_BEFORE_COMMIT_FILE  if this file does not exist yet: create it and kill -9
                            this process after producing, before committing.
  STUCK_FILE                the handler blocks while this file exists (a stuck loop).
  HANG_SEND_OFFSETS_FILE    while this file exists, send_offsets_to_transaction never
                            returns (as librdkafka's does when its coordinator is gone).
"""

import os
import signal
import time
from pathlib import Path

from kafka_common import transactions
from kafka_common.app import App
from kafka_common.events import PizzaOrdered, PizzaStatus
from kafka_common.kitchen import Step
from kafka_common.menu import STATUS_IN_OVEN
from kafka_common.usage import KafkaUsage


class InOrdered(PizzaOrdered):
    TOPIC = os.environ["IN_TOPIC"]


class OutStatus(PizzaStatus):
    TOPIC = os.environ["OUT_TOPIC"]


USAGE = KafkaUsage(component="steptest", consumes=(InOrdered.TOPIC,), produces=(OutStatus.TOPIC,),
                   group=os.environ["GROUP"], transactional=True)
app = App(USAGE, http_port=0, dlq_topic=os.environ["DLQ_TOPIC"])


@app.handles(InOrdered, once_per_order=bool(os.environ.get("ONCE_PER_ORDER")))
def handle(event):
    stuck = os.environ.get("STUCK_FILE")
    while stuck and Path(stuck).exists():
        time.sleep(0.05)
    return Step(name="test", seconds=float(os.environ.get("STEP_SECONDS", "0")),
                emit=(OutStatus(order_id=event.order_id, status=STATUS_IN_OVEN),),
                done=f"Order {event.order_id} done")


def inject_faults() -> None:
    crash_marker = os.environ.get("CRASH_BEFORE_COMMIT_FILE")
    hang_file = os.environ.get("HANG_SEND_OFFSETS_FILE")
    retrying = transactions.Checkpoint._retrying

    def faulty(self, what, fn, *args):
        if what == "commit_transaction" and crash_marker and not Path(crash_marker).exists():
            Path(crash_marker).touch()
            self.producer.flush(10)  # the outputs are in the log, uncommitted
            os.kill(os.getpid(), signal.SIGKILL)
        if what == "send_offsets_to_transaction" and hang_file and Path(hang_file).exists():
            return self.calls.call(what, lambda: time.sleep(3600), timeout=transactions.TXN_CALL_TIMEOUT_S)
        return retrying(self, what, fn, *args)

    transactions.Checkpoint._retrying = faulty


if __name__ == "__main__":
    inject_faults()
    app.run()
