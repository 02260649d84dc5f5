"""The fault scenario's judge, on hand-made logs: stalls are measured as defined, and every kind of
loss, repetition and disorder is caught (so the fault test cannot pass by reading too little)."""

from __future__ import annotations

from benchmarks.fault_analysis import (
    STAGE_BY_NAME,
    Seen,
    judge_log,
    judge_timelines,
    longest,
    pending_inputs,
    stage_gaps,
)
from kafka_common.shop import topics
from shop_testing.helpers import Record

ASSEMBLE = STAGE_BY_NAME["assemble"]
DELIVERY = STAGE_BY_NAME["delivery"]


def seen(topic, key, at, partition=0, status=None):
    return Seen(topic, partition, 0, key, status, at)


def test_a_stall_runs_from_the_first_pending_input_to_the_next_output_of_its_partition():
    log = [
        seen(topics.PIZZA_ORDERED, "a", 1.0),
        seen(topics.PIZZA_ASSEMBLED, "a", 1.5),  # 0.5 s step
        seen(topics.PIZZA_ORDERED, "b", 2.0),
        seen(topics.PIZZA_ORDERED, "c", 3.0),  # crash here
        seen(topics.PIZZA_ASSEMBLED, "b", 14.0),
        seen(topics.PIZZA_ASSEMBLED, "c", 14.5),
        seen(topics.PIZZA_ORDERED, "d", 4.0, partition=1),
        seen(topics.PIZZA_ASSEMBLED, "d", 4.2, partition=1),
    ]
    gaps = stage_gaps(ASSEMBLE, log, end=20.0)
    assert sorted((g.partition, g.start, g.end) for g in gaps) == [
        (0, 1.0, 1.5),
        (0, 2.0, 14.0),
        (0, 14.0, 14.5),
        (1, 4.0, 4.2),
    ]
    worst = longest(gaps, 3.0, 5.0)
    assert (worst.partition, worst.seconds) == (0, 12.0)
    assert round(longest(gaps, 3.0, 5.0, partitions=[1]).seconds, 6) == 0.2
    assert longest(gaps, 30.0, 40.0) is None


def test_an_input_never_answered_is_an_open_stall_until_the_end_and_pending():
    log = [
        seen(topics.PIZZA_BAKED, "a", 1.0, partition=3),
        seen(topics.PIZZA_STATUS, "a", 2.0, partition=3, status=300),
    ]  # not delivery's output
    (gap,) = stage_gaps(DELIVERY, log, end=9.0)
    assert (gap.partition, gap.start, gap.end, gap.open) == (3, 1.0, 9.0, True)
    assert [(s.name, r.key) for s, r in pending_inputs(log)] == [("delivery", "a")]


def test_an_idle_partition_never_stalls():
    log = [seen(topics.PIZZA_ORDERED, "a", 1.0), seen(topics.PIZZA_ASSEMBLED, "a", 1.1)]
    assert [round(g.seconds, 6) for g in stage_gaps(ASSEMBLE, log, end=100.0)] == [0.1]


def record(topic, key, offset, status=None):
    value = b'{"status": %d}' % status if status is not None else b"{}"
    return Record(topic=topic, partition=0, offset=offset, key=key, value=value)


def full_journey(key, start=0):
    return [
        record(topics.PIZZA_ORDERED, key, start),
        record(topics.PIZZA_ASSEMBLED, key, start),
        record(topics.PIZZA_BAKED, key, start),
        record(topics.PIZZA_STATUS, key, start, 200),
        record(topics.PIZZA_STATUS, key, start + 1, 300),
        record(topics.PIZZA_STATUS, key, start + 2, 400),
    ]


def test_a_clean_log_has_no_problem():
    verdict = judge_log(full_journey("a") + full_journey("b", 10), acknowledged={"a", "b"})
    assert (verdict.orders, verdict.delivered, verdict.problems()) == (2, 2, [])


def test_loss_repetition_disorder_gaps_and_dead_letters_are_all_reported():
    log = full_journey("ok")
    log += [record(topics.PIZZA_ORDERED, "lost", 0), record(topics.PIZZA_STATUS, "lost", 5, 200)]
    log += full_journey("twice") + [
        record(topics.PIZZA_STATUS, "twice", 9, 300),
        record(topics.PIZZA_BAKED, "twice", 9),
    ]
    log += [
        record(topics.PIZZA_ORDERED, "swapped", 0),
        record(topics.PIZZA_ASSEMBLED, "swapped", 0),
        record(topics.PIZZA_BAKED, "swapped", 0),
        record(topics.PIZZA_STATUS, "swapped", 1, 200),
        record(topics.PIZZA_STATUS, "swapped", 2, 400),
        record(topics.PIZZA_STATUS, "swapped", 3, 300),
    ]
    log += [r for r in full_journey("gap") if not (r.topic == topics.PIZZA_STATUS and r.json()["status"] == 300)]
    log += [record(topics.PIZZA_DLQ, "poison", 0)]
    verdict = judge_log(log, acknowledged={"ok", "lost", "twice", "swapped", "gap", "never-written"})
    assert verdict.lost == ["lost"]
    assert verdict.duplicated == {"twice": {"pizza-baked": 2, "status 300": 2}}
    assert verdict.duplicated_records == 2
    assert verdict.out_of_order == {"swapped": [200, 400, 300]}
    assert verdict.incomplete == {"gap": "status 300"}
    assert verdict.acknowledged_missing == ["never-written"]
    assert verdict.dead_letters == 1
    assert len(verdict.problems()) == 6


def test_an_order_in_the_log_without_a_201_is_still_judged():
    verdict = judge_log([record(topics.PIZZA_ORDERED, "x", 0)], acknowledged=set())
    assert (verdict.unacknowledged, verdict.lost) == (1, ["x"])


def test_a_read_model_timeline_must_be_the_whole_journey():
    bad = judge_timelines({"a": [100, 200, 300, 400], "b": [100, 200, 400], "c": None})
    assert bad == {"b": [100, 200, 400], "c": None}


def test_the_report_shows_every_fault_and_problems_name_only_correctness():
    from pathlib import Path

    from benchmarks.fault_analysis import Gap, LogVerdict
    from benchmarks.faults import ChaosResult, ChaosSettings, Exit, Fault, report

    kill = Fault(
        "kill -9",
        "bake-0",
        ("bake",),
        started=20.0,
        ended=40.0,
        back_to_normal=True,
        target_partitions=frozenset({0, 1, 2}),
        figures={"back to normal": 20.0, "ready after restart": 4.0},
    )
    broker = Fault(
        "broker stop/start",
        "broker",
        ("assemble", "bake", "delivery"),
        started=50.0,
        ended=90.0,
        marks={"down": 52.0, "back": 70.0},
        figures={"down": 10.0},
        recovery={"first kitchen output": 3.5, "first delivered": None},
    )
    slow_exit = Exit("delivery-1", -9, 30.0, honoured=False)
    term = Fault("SIGTERM", "delivery-1", ("delivery",), started=100.0, ended=110.0, exit=slow_exit)
    result = ChaosResult(
        ChaosSettings(),
        Path("/logs"),
        seconds=120.0,
        faults=[kill, broker, term],
        baseline=(5.0, 19.0),
        drained=True,
        read_model_orders=10,
        gaps={
            "bake": [Gap("bake", 1, 21.0, 33.5), Gap("bake", 4, 22.0, 22.4)],
            "assemble": [
                Gap("assemble", 0, 60.0, 75.0, open=True),
                Gap("assemble", 2, 8.0, 8.3),
                Gap("assemble", 3, 18.5, 95.0, open=True),
            ],
        },  # across calm and kill
        verdict=LogVerdict(orders=10, delivered=10),
        read_model={"status-0": {}},
        shutdown=[Exit("bake-1", 0, 1.2)],
    )
    text = report(result)
    assert "12.5 p1" in text and "0.4 p4" in text  # the victim's and the survivor's stalls
    assert "15.0 (open) p0" in text  # the broker's longest, still open
    assert "0.3 p2" in text  # the calm reference, not the stall running on
    assert "76.5" not in text  # a stall begun long before a fault is not that fault's (nor the calm's)
    assert "first kitchen output for an order placed after it went down: 3.5 s" in text
    assert "NOT honoured: ['delivery-1']" in text
    assert "10/10 delivered orders" in text
    assert result.problems() == []  # a late SIGKILL is a figure, not a failure
    result.unexpected = [(33.0, Exit("assemble-1", 1, 0.0, log_tail="Traceback"))]
    result.shutdown.append(Exit("status-0", 1, 0.5))
    problems = result.problems()
    assert len(problems) == 2 and "assemble-1 exited by itself with code 1" in problems[0]
    assert "status-0 exited with code 1 after SIGTERM" in problems[1]


def test_a_replicas_partitions_are_found_by_its_name_or_by_the_member_that_left():
    from benchmarks.fault_analysis import STAGE_BY_NAME
    from benchmarks.faults import GroupView, Member, held_by

    class Named:
        name = "bake-1"

    bake = STAGE_BY_NAME["bake"]

    def member(member_id, name, *partitions):
        return Member(member_id, name, frozenset((topics.PIZZA_ASSEMBLED, p) for p in partitions))

    named = GroupView("STABLE", (member("a", "pizza-bake-bake-0", 0, 1, 2), member("b", "pizza-bake-bake-1", 3, 4, 5)))
    assert held_by(Named, bake, named, None) == {3, 4, 5}
    # After a broker restart: the old member (holding) and the new one (not yet) under one name.
    doubled = GroupView("PREPARING_REBALANCING", (*named.members, member("c", "pizza-bake-bake-1")))
    assert held_by(Named, bake, doubled, None) == {3, 4, 5}
    anonymous = GroupView("STABLE", (member("a", "pizza-bake", 0, 1, 2), member("b", "pizza-bake", 3, 4, 5)))
    after = GroupView("STABLE", (member("a", "pizza-bake", 0, 1, 2), member("d", "pizza-bake", 3, 4, 5)))
    assert held_by(Named, bake, anonymous, after) == {3, 4, 5}
    assert held_by(Named, bake, anonymous, anonymous) is None  # nobody left: cannot tell
