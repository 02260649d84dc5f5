"""The kitchen survives crashes, a broker restart and a frozen replica, losing and repeating nothing.

The scenario (benchmarks/faults.py, also `make chaos`) runs the real services as processes on a
broker of the test's own, with customers ordering through the webapp the whole time: kill -9 of
one replica of each kitchen service, a broker stop/start on the same data dir, SIGSTOP of a
replica for longer than its session timeout, a SIGTERM. This test asserts what must hold
whatever the timings: from a read_committed read of every topic, no order lost, repeated,
incomplete or out of order, nothing dead-lettered; every status replica shows each order's
full timeline; no replica exited unless the test made it; exit code 0 after every SIGTERM.
Stall and recovery times are printed (run with -s, or read them in the failure report),
never asserted.
"""

from __future__ import annotations

import pytest

from benchmarks.faults import report, run_scenario

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


def test_kitchen_loses_and_repeats_nothing_through_kill_9_broker_restart_and_sigstop(dedicated_kafka, tmp_path):
    result = run_scenario(dedicated_kafka, tmp_path / "logs")
    figures = report(result)
    print(figures)
    problems = result.problems()
    assert not problems, "\n\n".join([figures, "What went wrong:", *problems])
