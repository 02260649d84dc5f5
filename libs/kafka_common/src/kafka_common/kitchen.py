"""Kitchen time: the original's step durations, scaled by KITCHEN_TIME_SCALE."""

from __future__ import annotations

from functools import lru_cache

from kafka_common.config import env_number


@lru_cache(maxsize=1)
def time_scale() -> float:
    """KITCHEN_TIME_SCALE (default 1.0): tests and benchmarks run the kitchen faster."""
    return env_number("KITCHEN_TIME_SCALE", 1.0, float, minimum=0.0)


def kitchen_seconds(base_seconds: float) -> float:
    return base_seconds * time_scale()
