"""Kitchen steps: what a handler decides, and KITCHEN_TIME_SCALE, which speeds the simulation."""

from __future__ import annotations

from dataclasses import dataclass

from kafka_common import events
from kafka_common.config import env_number


def time_scale() -> float:
    """KITCHEN_TIME_SCALE (default 1.0): tests and benchmarks run the kitchen faster (0 = instantly)."""
    return env_number("KITCHEN_TIME_SCALE", 1.0, float, minimum=0.0)


@dataclass(frozen=True)
class Step:
    """What a handler decided: emit these events after `seconds` of (simulated) work.

    started and done are log events (constant messages, no values in them): started is
    logged when the step begins, with seconds= the time it will really take (seconds x
    KITCHEN_TIME_SCALE); done once the step's output is committed, with seconds_spent=.
    Both lines carry the record's order_id, topic, partition and offset as fields.
    """

    name: str | None = None  # kitchen step for metrics and logs; None: bookkeeping only
    seconds: float = 0.0  # kitchen time, before KITCHEN_TIME_SCALE
    emit: tuple[events.Payload, ...] = ()
    started: str | None = None
    done: str | None = None

    @staticmethod
    def nothing() -> Step:
        return Step()
