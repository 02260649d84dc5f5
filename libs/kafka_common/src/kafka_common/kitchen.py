"""Kitchen time: handlers state the original's durations; KITCHEN_TIME_SCALE speeds the simulation."""

from __future__ import annotations

from kafka_common.config import env_number


def time_scale() -> float:
    """KITCHEN_TIME_SCALE (default 1.0): tests and benchmarks run the kitchen faster (0 = instantly)."""
    return env_number("KITCHEN_TIME_SCALE", 1.0, float, minimum=0.0)
