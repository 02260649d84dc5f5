"""Logged-out sessions: a revoked session id is refused by every worker, for as long as its cookie could live.

Sessions are signed cookies (nothing to look up on a normal request); what has to
be shared is the short list of sessions that were logged out before they expired.
"""

from __future__ import annotations

import threading
import time


class RevocationFailed(Exception):
    """The logout could not be recorded where every worker sees it."""


class RevokedSessions:
    """Session ids revoked until their expiry (wall-clock seconds); safe to share between threads."""

    def __init__(self, lifetime_s: float):
        self.lifetime_s = lifetime_s
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()
        self._next_prune = 0.0

    def add(self, sid: str, until: float) -> None:
        with self._lock:
            self._until[sid] = max(until, self._until.get(sid, 0.0))

    def revoke(self, sid: str) -> None:
        self.add(sid, time.time() + self.lifetime_s)

    def is_revoked(self, sid: str) -> bool:
        now = time.time()
        if now >= self._next_prune:
            self._prune(now)
        until = self._until.get(sid)
        return until is not None and until > now

    def _prune(self, now: float) -> None:
        with self._lock:
            self._next_prune = now + 60.0
            for sid in [s for s, until in self._until.items() if until <= now]:
                del self._until[sid]

    def __len__(self) -> int:
        return len(self._until)
