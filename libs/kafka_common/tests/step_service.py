"""A minimal consumer service for the library's tests, run as a real process.

It consumes PizzaOrdered events from $IN_TOPIC and, after $STEP_SECONDS,
emits a PizzaStatus on $OUT_TOPIC, through kafka_common's App (kitchen loop).
Fault injection, for tests only:
  CRASH_BEFORE_COMMIT_FILE  if this file does not exist yet: create it and kill -9
                            this process after producing, before committing.
  STUCK_FILE                the handler blocks while this file exists (a stuck loop).
  HANG_CALL, HANG_FILE      the Kafka call named HANG_CALL (as the loop names it) does not
                            return while HANG_FILE exists: send_offsets_to_transaction
                            does that when librdkafka's cached coordinator is gone.
"""

import os
import signal
import time
from pathlib import Path

from kafka_common import transactions
from kafka_common.app import App
from kafka_common.bounded import KafkaCalls
from kafka_common.shop.events import PizzaOrdered, PizzaStatus
from kafka_common.shop.kitchen import Step
from kafka_common.shop.status import STATUS_IN_OVEN
from kafka_common.usage import KafkaUsage


class InOrdered(PizzaOrdered):
    TOPIC = os.environ["IN_TOPIC"]


class OutStatus(PizzaStatus):
    TOPIC = os.environ["OUT_TOPIC"]


USAGE = KafkaUsage(
    component="steptest",
    consumes=(InOrdered.TOPIC,),
    produces=(OutStatus.TOPIC,),
    group=os.environ["GROUP"],
    transactional=True,
)
app = App(USAGE, http_port=0, dlq_topic=os.environ["DLQ_TOPIC"])


@app.handles(InOrdered, once_per_order=bool(os.environ.get("ONCE_PER_ORDER")))
def handle(event):
    stuck = os.environ.get("STUCK_FILE")
    while stuck and Path(stuck).exists():
        time.sleep(0.05)
    return Step(
        name="test",
        seconds=float(os.environ.get("STEP_SECONDS", "0")),
        emit=(OutStatus(order_id=event.order_id, status=STATUS_IN_OVEN),),
        done="order done",
    )


def inject_faults() -> None:
    crash_marker = os.environ.get("CRASH_BEFORE_COMMIT_FILE")
    if crash_marker:
        retrying = transactions.Checkpoint._retrying

        def crashing(self, what, fn, *args):
            if what == "commit_transaction" and not Path(crash_marker).exists():
                Path(crash_marker).touch()
                self.producer.flush(10)  # the outputs are in the log, uncommitted
                os.kill(os.getpid(), signal.SIGKILL)
            return retrying(self, what, fn, *args)

        transactions.Checkpoint._retrying = crashing
    hang_call, hang_file = os.environ.get("HANG_CALL"), os.environ.get("HANG_FILE")
    if hang_call:
        call, call_abandonable = KafkaCalls.call, KafkaCalls.call_abandonable

        def hanging(fn):
            def stuck(*args, **kwargs):
                while Path(hang_file).exists():
                    time.sleep(0.05)
                return fn(*args, **kwargs)

            return stuck

        KafkaCalls.call = lambda self, what, fn, *a, **k: call(
            self, what, hanging(fn) if what == hang_call else fn, *a, **k
        )
        KafkaCalls.call_abandonable = lambda self, what, fn, *a, **k: call_abandonable(
            self, what, hanging(fn) if what == hang_call else fn, *a, **k
        )


if __name__ == "__main__":
    inject_faults()
    app.run()
