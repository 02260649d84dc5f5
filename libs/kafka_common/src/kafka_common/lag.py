"""Consumer lag per partition, from librdkafka's statistics (stats_cb)."""

from __future__ import annotations

import json

from kafka_common import metrics

STATS_INTERVAL_MS = 5_000


class LagStats:
    """stats_cb of a group consumer: sets pizza_consumer_lag_records per assigned partition."""

    def __init__(self, component: str, group: str):
        self.component, self.group = component, group
        self._seen: set[tuple[str, str]] = set()

    def __call__(self, stats_json: str) -> None:
        stats = json.loads(stats_json)
        seen = set()
        for topic, tstats in stats.get("topics", {}).items():
            for partition, pstats in tstats.get("partitions", {}).items():
                lag = partition_lag(pstats)
                if partition == "-1" or lag is None:
                    continue
                metrics.CONSUMER_LAG.labels(self.component, self.group, topic, partition).set(lag)
                seen.add((topic, partition))
        for topic, partition in self._seen - seen:
            metrics.CONSUMER_LAG.remove(self.component, self.group, topic, partition)
        self._seen = seen


def partition_lag(pstats: dict) -> int | None:
    """Records between the group's position and the last stable offset, or None if unknown.

    Offsets committed through a transaction never reach the consumer's own
    committed-offset view, so the loop also stores them (stored_offset) after
    each commit; committed_offset covers what was committed before start-up.
    Nothing committed yet: the group starts at the log start (auto.offset.reset=earliest).
    """
    if pstats.get("fetch_state") not in ("active", "offset-query", "offset-wait"):
        return None
    end = pstats.get("ls_offset", -1)
    position = max(pstats.get("stored_offset", -1), pstats.get("committed_offset", -1))
    if position < 0:
        position = pstats.get("lo_offset", -1)
    if end < 0 or position < 0:
        return None
    return max(0, end - position)
