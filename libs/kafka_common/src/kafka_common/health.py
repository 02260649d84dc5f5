"""Liveness and readiness state of one process.

Liveness answers "is this process making progress?": the poll loop (or
whatever the service's heartbeat is) beat recently and no fatal client error
happened. It never depends on the broker being reachable: restarting pods
during a broker outage only makes the outage worse.

Readiness answers "can this process do its job now?" and is a callable the
service supplies (assigned partitions, caught-up read model, producer can
reach the cluster...).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

# Well under max.poll.interval.ms (300 s): a loop stuck this long gets the pod restarted
# by its liveness probe long before the group evicts it.
DEFAULT_STALL_AFTER_S = 30.0


class Health:
    def __init__(self, stall_after_s: float = DEFAULT_STALL_AFTER_S):
        self.stall_after_s = stall_after_s
        self._last_beat = time.monotonic()
        self._fatal: str | None = None
        self._readiness: Callable[[], tuple[bool, str]] = lambda: (False, "starting")
        self._lock = threading.Lock()

    def beat(self) -> None:
        self._last_beat = time.monotonic()

    def seconds_since_beat(self) -> float:
        return time.monotonic() - self._last_beat

    def set_fatal(self, reason: str) -> None:
        with self._lock:
            self._fatal = self._fatal or reason

    @property
    def fatal(self) -> str | None:
        return self._fatal

    def set_readiness(self, check: Callable[[], tuple[bool, str]]) -> None:
        self._readiness = check

    def live(self) -> tuple[bool, str]:
        if self._fatal:
            return False, f"fatal: {self._fatal}"
        age = self.seconds_since_beat()
        if age > self.stall_after_s:
            return False, f"no progress for {age:.1f}s (limit {self.stall_after_s:.0f}s)"
        return True, "ok"

    def ready(self) -> tuple[bool, str]:
        live, why = self.live()
        if not live:
            return False, why
        try:
            return self._readiness()
        except Exception as exc:  # a readiness check must never take the endpoint down
            return False, f"readiness check failed: {exc}"
