"""The deadline watchdog: a Kafka call that overruns ends the process; shutdown is bounded."""

import threading
import time

import pytest

from kafka_common.bounded import EXIT_WEDGED, CallAbandoned, KafkaCalls, Supervisor
from kafka_common.health import Health
from kafka_common.logging import get_logger


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def supervisor(calls, stop=None, budget=20.0):
    exits = []
    health = Health()
    sup = Supervisor(
        "unit",
        calls,
        health,
        stop or threading.Event(),
        get_logger("unit"),
        shutdown_budget_s=budget,
        exit_process=exits.append,
    )
    return sup, health, exits


def test_a_call_past_its_deadline_marks_unhealthy_and_exits_non_zero():
    clock = Clock()
    calls = KafkaCalls(grace_s=3.0, clock=clock)
    sup, health, exits = supervisor(calls)

    def hanging():
        clock.now = 7.9  # within 5 s + 3 s grace
        sup.check()
        assert exits == []
        clock.now = 8.1
        sup.check()

    calls.call("send_offsets_to_transaction", hanging, timeout=5.0)
    assert exits == [EXIT_WEDGED]
    assert "send_offsets_to_transaction" in health.fatal
    assert not health.live()[0]


def test_a_call_inside_a_rebalance_callback_restarts_the_enclosing_polls_clock():
    clock = Clock()
    calls = KafkaCalls(grace_s=1.0, clock=clock)
    sup, _, exits = supervisor(calls)

    def poll():
        def commit():
            clock.now = 5.0  # long for a poll, fine for a commit

        calls.call("commit_transaction", commit, timeout=5.0)
        clock.now = 6.0  # back in poll: 1 s since the commit returned, within 0.5 + 1 s
        sup.check()

    calls.call("poll", poll, timeout=0.5)
    assert exits == []


def test_a_close_overrunning_during_shutdown_exits_0():
    clock = Clock()
    calls = KafkaCalls(grace_s=1.0, clock=clock)
    stop = threading.Event()
    stop.set()
    sup, _, exits = supervisor(calls, stop)

    def close():
        clock.now = 20.0
        sup.check()

    calls.call("consumer close", close, timeout=10.0, shutdown_step=True)
    assert exits == [0]


def test_shutdown_has_a_budget_whatever_the_loop_does():
    calls = KafkaCalls()
    sup, _, exits = supervisor(calls, budget=0.2)
    sup.request_stop()
    time.sleep(0.3)
    sup.check()
    assert exits == [EXIT_WEDGED]


def test_run_returns_the_loops_exit_code_and_a_crashed_loop_is_1():
    sup, _, _ = supervisor(KafkaCalls())
    assert sup.run(lambda: 0) == 0
    assert sup.run(lambda: 1 / 0) == 1


def test_a_suspended_process_is_not_mistaken_for_a_hung_call(monkeypatch):
    clock = Clock()
    calls = KafkaCalls(grace_s=1.0, clock=clock)
    sup, _, exits = supervisor(calls)
    wall = [100.0]
    monkeypatch.setattr("kafka_common.bounded.time.monotonic", lambda: wall[0])

    def poll():
        sup.check()
        wall[0] += 60.0  # SIGSTOP for 60 s, then SIGCONT: every clock jumped
        clock.now += 60.0
        sup.check()

    calls.call("poll", poll, timeout=0.5)
    assert exits == []


def test_abandonable_calls_run_one_after_the_other_on_one_persistent_worker():
    calls = KafkaCalls(grace_s=1.0)
    threads = [calls.call_abandonable("commit_transaction", threading.current_thread, timeout=1.0) for _ in range(3)]
    assert len(set(threads)) == 1 and threads[0] is not threading.current_thread()
    assert calls.call_abandonable("send_offsets_to_transaction", lambda a, b: a + b, 2, 3, timeout=1.0) == 5
    with pytest.raises(ZeroDivisionError):
        calls.call_abandonable("commit_transaction", lambda: 1 / 0, timeout=1.0)
    assert calls.call_abandonable("commit_transaction", threading.current_thread, timeout=1.0) is threads[0]
    assert calls.in_progress() is None


def test_a_hung_abandonable_call_is_left_behind_with_its_worker_and_the_next_call_gets_a_fresh_one():
    calls = KafkaCalls(grace_s=0.05)
    release = threading.Event()
    stuck = calls.call_abandonable("commit_transaction", threading.current_thread, timeout=1.0)

    with pytest.raises(CallAbandoned):
        calls.call_abandonable("commit_transaction", release.wait, 30, timeout=0.05)
    fresh = calls.call_abandonable("commit_transaction", threading.current_thread, timeout=1.0)
    assert fresh is not stuck and fresh.is_alive()
    assert stuck.is_alive()  # still inside the hung call
    release.set()
    stuck.join(5)
    assert not stuck.is_alive()  # retired: it ends once its call returns, its outcome unread
