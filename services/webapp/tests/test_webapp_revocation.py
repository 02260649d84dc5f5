"""The revoked-sessions list: entries live until the session would have expired, bad records are skipped."""

from __future__ import annotations

import json
import time

from pizza_webapp.revocation import KafkaRevokedSessions, RevokedSessions


def test_a_revoked_session_stays_revoked_until_its_cookie_expires():
    revoked = RevokedSessions(lifetime_s=3600)
    revoked.revoke("abc")
    assert revoked.is_revoked("abc") and not revoked.is_revoked("xyz")
    revoked.add("old", time.time() - 1)
    revoked._next_prune = 0.0  # prune now rather than in a minute
    assert not revoked.is_revoked("old")
    assert len(revoked) == 1


def test_records_from_the_topic_are_applied_and_bad_ones_skipped():
    revoked = KafkaRevokedSessions(config=None, lifetime_s=3600, offload=None, group="g")
    until = time.time() + 60
    revoked._apply(b"sid-1", json.dumps({"until": until}).encode())
    for key, value in (
        (None, b"{}"),
        (b"sid-2", b"not json"),
        (b"sid-3", json.dumps({"until": "soon"}).encode()),
        (b"\xff", json.dumps({"until": until}).encode()),
        (b"sid-4", None),
    ):
        revoked._apply(key, value)
    assert revoked.is_revoked("sid-1")
    assert not any(revoked.is_revoked(s) for s in ("sid-2", "sid-3", "sid-4"))
    assert len(revoked) == 1
