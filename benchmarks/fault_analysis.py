"""What the fault scenario's logs say: stalls per partition, and whether every order went through exactly once.

Pure functions over records, so they are tested on their own (tests/faults/test_fault_analysis.py)
and the scenario (benchmarks/faults.py) only gathers the records.

Stall. A kitchen stage consumes one topic and, for each input record, commits one output
record with the same key (so on the same partition number). A live read_committed reader
notes when each record became visible (its own monotonic clock). On partition p of a
stage's input topic, an input is *pending* from the moment it is visible until its output
is visible. A stall is a stretch of time during which p had pending input and no output
of p became visible: it starts when p's first pending input arrives or at p's last
output, and ends at p's next output (or at the end of the run: an open stall). In normal
operation a stall is one kitchen step plus a commit; a crash adds the time until
someone else (or the restarted replica) commits on that partition again.

The verdict. From a final read of every topic (read_committed, to the end): each order
has exactly one pizza-ordered, pizza-assembled and pizza-baked, and pizza-status 200, 300
and 400 once each, in that order (one partition per order, so offsets order them).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from kafka_common.shop import topics
from kafka_common.shop.status import STATUS_DELIVERED, STATUS_IN_OVEN, STATUS_OUT_FOR_DELIVERY, STATUS_RECEIVED

JOURNEY = (STATUS_IN_OVEN, STATUS_OUT_FOR_DELIVERY, STATUS_DELIVERED)  # on pizza-status
TIMELINE = (STATUS_RECEIVED, *JOURNEY)  # in the read model


@dataclass(frozen=True)
class Seen:
    """One record as the live reader saw it: `at` is when it became visible (read_committed)."""

    topic: str
    partition: int
    offset: int
    key: str
    status: int | None  # pizza-status only
    at: float


def status_of(topic: str, value: bytes | None) -> int | None:
    if topic != topics.PIZZA_STATUS or value is None:
        return None
    try:
        status = json.loads(value).get("status")
    except (ValueError, AttributeError):
        return None
    return status if isinstance(status, int) else None


@dataclass(frozen=True)
class Stage:
    """A kitchen step as seen from the log: its consumer group, its input, the output that settles an input."""

    name: str
    group: str
    consumes: tuple[str, ...]  # every topic the group subscribes to
    input: str  # the topic whose records wait for this stage
    output: str
    output_statuses: frozenset[int] | None = None

    def is_output(self, r: Seen) -> bool:
        return r.topic == self.output and (self.output_statuses is None or r.status in self.output_statuses)


STAGES = (
    Stage("assemble", "pizza-assemble", (topics.PIZZA_ORDERED,), topics.PIZZA_ORDERED, topics.PIZZA_ASSEMBLED),
    Stage("bake", "pizza-bake", (topics.PIZZA_ASSEMBLED,), topics.PIZZA_ASSEMBLED, topics.PIZZA_BAKED),
    # Delivery also reads pizza-ordered (early warnings) but commits nothing visible for them.
    Stage(
        "delivery",
        "pizza-delivery",
        (topics.PIZZA_ORDERED, topics.PIZZA_BAKED),
        topics.PIZZA_BAKED,
        topics.PIZZA_STATUS,
        frozenset({STATUS_DELIVERED, -100}),
    ),
)
STAGE_BY_NAME = {s.name: s for s in STAGES}


# --------------------------------------------------------------------------- stalls


@dataclass(frozen=True)
class Gap:
    stage: str
    partition: int
    start: float
    end: float
    open: bool = False  # still stalled when the run ended

    @property
    def seconds(self) -> float:
        return self.end - self.start


def _output_times(stage: Stage, seen: Iterable[Seen]) -> dict[str, float]:
    first: dict[str, float] = {}
    for r in seen:
        if stage.is_output(r) and (r.key not in first or r.at < first[r.key]):
            first[r.key] = r.at
    return first


def stage_gaps(stage: Stage, seen: Sequence[Seen], end: float) -> list[Gap]:
    """Every stall of every partition of the stage's input topic (see the module doc)."""
    outputs = _output_times(stage, seen)
    # Per partition: (time, +1) when an input becomes pending, (time, -1) when its output is visible.
    changes: dict[int, list[tuple[float, int]]] = {}
    for r in seen:
        if r.topic != stage.input:
            continue
        done = outputs.get(r.key)
        if done is not None and done <= r.at:
            continue  # a repeated input whose output was already there: nothing waits
        changes.setdefault(r.partition, []).append((r.at, +1))
        if done is not None:
            changes[r.partition].append((done, -1))
    gaps = []
    for partition, events in changes.items():
        pending, since = 0, 0.0
        for at, delta in sorted(events, key=lambda e: (e[0], e[1])):
            if delta > 0:
                if pending == 0:
                    since = at
                pending += 1
            else:
                if at > since:
                    gaps.append(Gap(stage.name, partition, since, at))
                pending -= 1
                since = at
        if pending > 0 and end > since:
            gaps.append(Gap(stage.name, partition, since, end, open=True))
    return gaps


def longest(gaps: Iterable[Gap], start: float, end: float, partitions: Iterable[int] | None = None) -> Gap | None:
    """The longest stall overlapping [start, end] (on these partitions only, if given)."""
    wanted = None if partitions is None else set(partitions)
    overlapping = [g for g in gaps if g.end >= start and g.start <= end and (wanted is None or g.partition in wanted)]
    return max(overlapping, key=lambda g: g.seconds, default=None)


def pending_inputs(seen: Sequence[Seen], stages: Sequence[Stage] = STAGES) -> list[tuple[Stage, Seen]]:
    """Inputs of each stage whose output is not visible yet."""
    waiting = []
    for stage in stages:
        outputs = _output_times(stage, seen)
        waiting += [(stage, r) for r in seen if r.topic == stage.input and r.key not in outputs]
    return waiting


def first_after(seen: Iterable[Seen], at: float, keep) -> Seen | None:
    """The first record visible at or after `at` for which keep(record) holds."""
    return min((r for r in seen if r.at >= at and keep(r)), key=lambda r: r.at, default=None)


# --------------------------------------------------------------------------- the verdict


@dataclass
class Trail:
    """One order's records in the final read: counts per topic and its statuses in log order."""

    ordered: int = 0
    assembled: int = 0
    baked: int = 0
    statuses: list[int] = field(default_factory=list)


def trails(records: Iterable) -> dict[str, Trail]:
    """Order id -> Trail, from shop_testing.helpers.Record objects of the four order topics."""
    by_order: dict[str, Trail] = {}
    for r in sorted(records, key=lambda r: (r.topic, r.partition, r.offset)):
        if r.key is None or r.topic == topics.PIZZA_DLQ:
            continue
        trail = by_order.setdefault(r.key, Trail())
        if r.topic == topics.PIZZA_ORDERED:
            trail.ordered += 1
        elif r.topic == topics.PIZZA_ASSEMBLED:
            trail.assembled += 1
        elif r.topic == topics.PIZZA_BAKED:
            trail.baked += 1
        elif r.topic == topics.PIZZA_STATUS:
            status = status_of(r.topic, r.value)
            trail.statuses.append(-1 if status is None else status)
    return by_order


@dataclass
class LogVerdict:
    orders: int = 0  # orders with a pizza-ordered record
    delivered: int = 0
    lost: list[str] = field(default_factory=list)  # ordered but never delivered
    duplicated: dict[str, dict[str, int]] = field(default_factory=dict)  # order -> {what: times seen} (> 1)
    incomplete: dict[str, str] = field(default_factory=dict)  # delivered, yet a step left no record
    out_of_order: dict[str, list[int]] = field(default_factory=dict)  # order -> its statuses in log order
    failed: dict[str, list[int]] = field(default_factory=dict)  # a negative (error) status
    acknowledged_missing: list[str] = field(default_factory=list)  # 201 given, yet no pizza-ordered
    unacknowledged: int = 0  # in the log without a 201 (503 or timeout)
    dead_letters: int = 0

    @property
    def duplicated_records(self) -> int:
        return sum(n - 1 for repeats in self.duplicated.values() for n in repeats.values())

    def problems(self) -> list[str]:
        found = []
        for label, items in (
            ("lost (never delivered)", self.lost),
            ("acknowledged (201) but missing from pizza-ordered", self.acknowledged_missing),
            ("with repeated events", self.duplicated),
            ("delivered with a step missing", self.incomplete),
            ("with statuses out of order", self.out_of_order),
            ("with an error status", self.failed),
        ):
            if items:
                sample = list(items)[:3] if isinstance(items, list) else dict(list(items.items())[:3])
                found.append(f"{len(items)} order(s) {label}, e.g. {sample}")
        if self.dead_letters:
            found.append(f"{self.dead_letters} event(s) in the dead-letter topic")
        return found


def judge_log(records: Sequence, acknowledged: Iterable[str]) -> LogVerdict:
    """Every order exactly once through every step, statuses 200, 300, 400 in that order."""
    verdict = LogVerdict(dead_letters=sum(1 for r in records if r.topic == topics.PIZZA_DLQ))
    acked = set(acknowledged)
    by_order = trails(records)
    for order_id, trail in by_order.items():
        if trail.ordered == 0:
            continue
        verdict.orders += 1
        verdict.unacknowledged += order_id not in acked
        counts = {
            "pizza-ordered": trail.ordered,
            "pizza-assembled": trail.assembled,
            "pizza-baked": trail.baked,
            **{f"status {s}": trail.statuses.count(s) for s in JOURNEY},
        }
        repeated = {what: n for what, n in counts.items() if n > 1}
        if repeated:
            verdict.duplicated[order_id] = repeated
        if any(s < 0 for s in trail.statuses):
            verdict.failed[order_id] = trail.statuses
        if STATUS_DELIVERED not in trail.statuses:
            verdict.lost.append(order_id)
            continue
        verdict.delivered += 1
        missing = [what for what, n in counts.items() if n == 0]
        if missing:
            verdict.incomplete[order_id] = ", ".join(missing)
        journey = [s for s in trail.statuses if s in JOURNEY]
        if list(dict.fromkeys(journey)) != [s for s in JOURNEY if s in journey]:  # by first occurrence
            verdict.out_of_order[order_id] = trail.statuses
    verdict.acknowledged_missing = sorted(o for o in acked if o not in by_order or by_order[o].ordered == 0)
    return verdict


def judge_timelines(timelines: Mapping[str, list[int] | None]) -> dict[str, list[int] | None]:
    """Orders whose read-model timeline is not exactly received, in the oven, out for delivery, delivered."""
    return {order_id: t for order_id, t in timelines.items() if t != list(TIMELINE)}
