"""Deadlines on Kafka calls, enforced from outside the call.

librdkafka has calls that ignore their own timeout (send_offsets_to_transaction
waits forever when its cached group coordinator is gone; close() can hang when
the cluster is). A thread stuck in native code cannot be interrupted, so the
loop never trusts a call's timeout:

- the transaction calls that hang (send offsets, commit, abort) run on a worker
  thread of their own, handed over through a queue (call_abandonable): a call
  that does not return in time is left behind with its worker (a fresh worker
  takes the next call) and its producer replaced, so the service recovers
  without an exit. One persistent worker rather than a thread per call: a
  thread's start costs ~0.3 ms, twice per transaction;
- the loop runs on a worker thread; every librdkafka call it makes goes
  through KafkaCalls.call(), which records what is being called and by when it
  must return (its own timeout plus CALL_GRACE_S);
- the main thread runs Supervisor.run(): it handles SIGTERM/SIGINT (Python
  runs signal handlers on the main thread only, which is never inside
  librdkafka) and checks the deadline of the call in progress a few times a
  second. A call that overruns marks the process unhealthy, is logged, and
  the process exits with EXIT_WEDGED at once: the orchestrator replaces it
  within seconds instead of after minutes of failed probes;
- after a stop signal, the whole shutdown has SHUTDOWN_BUDGET_S; a close or
  flush that overruns during shutdown ends the process with what is committed
  (nothing uncommitted is lost: the next owner redoes it).

Calls made from rebalance callbacks (inside poll) nest: the innermost call's
deadline is the one checked, and the enclosing poll's deadline restarts when
the inner call returns.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import sys
import threading
import time
import weakref
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

from kafka_common.health import Health
from kafka_common.logging import flush_held_lines

CALL_GRACE_S = 3.0  # how far past its own timeout a call may run before the process exits
DEFAULT_CALL_BUDGET_S = 5.0  # calls without a timeout of their own (pause, seek, produce...)
SHUTDOWN_BUDGET_S = 20.0  # SIGTERM to exit, well inside a 30 s termination grace period
WATCH_INTERVAL_S = 0.25
SUSPENDED_AFTER_S = 2.0  # a watchdog pass this late means the process was frozen (SIGSTOP, VM pause)
EXIT_WEDGED = 70  # a Kafka call overran its deadline (EX_SOFTWARE)


class CallAbandoned(Exception):
    """A call did not return in time and was left behind on its worker thread."""


@dataclass(slots=True)
class _Call:
    what: str
    budget: float
    deadline: float
    shutdown_step: bool


class _Worker:
    """A daemon thread running the calls put on `requests`, one at a time, each outcome on `results`.

    A worker whose call overran is retired: told to end once (if ever) that call returns.
    Its outcome, if it comes, lands on its own `results`, which no one reads any more.
    """

    def __init__(self) -> None:
        self.requests: queue.SimpleQueue = queue.SimpleQueue()
        self.results: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(
            target=_serve, args=(self.requests, self.results), name="kafka-abandonable-calls", daemon=True
        )
        self.thread.start()
        # A worker that is garbage (its KafkaCalls is gone) ends: the thread holds only the queues.
        weakref.finalize(self, self.requests.put, None)

    def retire(self) -> None:
        self.requests.put(None)


def _serve(requests: queue.SimpleQueue, results: queue.SimpleQueue) -> None:
    while (request := requests.get()) is not None:
        fn, args = request
        try:
            outcome = (True, fn(*args))
        except BaseException as exc:  # handed to the caller, raised there
            outcome = (False, exc)
        results.put(outcome)
        del request, fn, args, outcome  # hold nothing (a producer, a batch) between calls


class KafkaCalls:
    """The deadline of the Kafka call in progress on the loop thread, for the supervisor to check."""

    def __init__(self, grace_s: float = CALL_GRACE_S, clock: Callable[[], float] = time.monotonic):
        self.grace_s = grace_s
        self._clock = clock
        self._stack: list[_Call] = []  # appended/popped by the loop thread only
        self._worker: _Worker | None = None  # runs call_abandonable's calls; started on first use

    def call(self, what: str, fn: Callable, *args, timeout: float | None = None, shutdown_step: bool = False, **kwargs):
        """fn(*args, **kwargs), which must return within `timeout` (+ grace) or the process exits.

        timeout: the call's own timeout, also passed on to it by the caller; None for calls
        that should return at once (DEFAULT_CALL_BUDGET_S). shutdown_step: a close/flush whose
        overrun during shutdown ends the process as a normal (if hurried) exit.
        """
        # Inline rather than through _deadline(): this runs for every Kafka call of the loop.
        budget = (DEFAULT_CALL_BUDGET_S if timeout is None else timeout) + self.grace_s
        stack = self._stack
        stack.append(_Call(what, budget, self._clock() + budget, shutdown_step))
        try:
            return fn(*args, **kwargs)
        finally:
            stack.pop()
            if stack:  # back in an enclosing call (a callback inside poll): its clock restarts
                outer = stack[-1]
                outer.deadline = self._clock() + outer.budget

    def call_abandonable(self, what: str, fn: Callable, *args, timeout: float):
        """fn(*args) on the abandonable-call worker; if it has not returned within timeout +
        grace, raise CallAbandoned and leave it behind, stuck in librdkafka with its worker.

        For the transaction calls known to hang while the client they belong to is
        replaceable: the caller retires that client (a new transactional producer with the
        same transactional.id fences the stuck one) and carries on, no exit needed.
        Called from the loop thread only, one call at a time.
        """
        budget = timeout + self.grace_s
        worker = self._worker
        if worker is None:
            worker = self._worker = _Worker()
        # The watchdog still guards the wait itself, a little later than the wait's own bound.
        with self._deadline(what, budget + self.grace_s, False):
            worker.requests.put((fn, args))
            try:
                ok, value = worker.results.get(timeout=budget)
            except queue.Empty:
                self._worker = None  # the next call gets a fresh worker
                worker.retire()
                raise CallAbandoned(f"{what} did not return within {budget:.0f} s") from None
        if not ok:
            raise value
        return value

    @contextmanager
    def _deadline(self, what: str, budget: float, shutdown_step: bool):
        self._stack.append(_Call(what, budget, self._clock() + budget, shutdown_step))
        try:
            yield
        finally:
            self._stack.pop()
            if self._stack:  # back in an enclosing call (a callback inside poll): its clock restarts
                outer = self._stack[-1]
                outer.deadline = self._clock() + outer.budget

    def postpone(self, seconds: float) -> None:
        """Move every deadline in progress by `seconds` (the whole process was suspended)."""
        for call in list(self._stack):
            call.deadline += seconds

    def in_progress(self) -> _Call | None:
        stack = list(self._stack)  # a snapshot: the loop thread may push or pop meanwhile
        return stack[-1] if stack else None

    def overrun(self) -> tuple[_Call, float] | None:
        """The call in progress and by how long it overran its deadline, if it did."""
        current = self.in_progress()
        if current is None:
            return None
        late = self._clock() - current.deadline
        return (current, late) if late > 0 else None


def _flush_output() -> None:
    flush_held_lines()
    for handler in logging.getLogger().handlers:
        try:
            handler.flush()
        except Exception:  # exiting anyway
            pass
    sys.stdout.flush()
    sys.stderr.flush()


class Supervisor:
    """Runs a loop on a worker thread; the main thread keeps signals and deadlines (see module doc)."""

    def __init__(
        self,
        name: str,
        calls: KafkaCalls,
        health: Health,
        stop: threading.Event,
        log,
        *,
        shutdown_budget_s: float = SHUTDOWN_BUDGET_S,
        exit_process: Callable[[int], None] = os._exit,
    ):
        self.name = name
        self.calls = calls
        self.health = health
        self.stop = stop
        self.log = log
        self.shutdown_budget_s = shutdown_budget_s
        self._exit = exit_process
        self._stop_requested_at: float | None = None
        self._code: int | None = None
        self._last_check: float | None = None

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGINT, self.on_signal)

    def on_signal(self, signum, _frame=None) -> None:
        name = signal.Signals(signum).name
        if self.stop.is_set():
            self.log.warning("second signal received, still shutting down", signal=name)
            return
        self.log.info("shutdown requested", signal=name)
        self.request_stop()

    def request_stop(self) -> None:
        if self._stop_requested_at is None:
            self._stop_requested_at = time.monotonic()
        self.stop.set()

    def run(self, loop: Callable[[], int]) -> int:
        self._code = None

        def body():
            try:
                self._code = loop()
            except BaseException:  # the loops catch their own errors: this is a bug
                self.log.exception("the loop crashed")
                self._code = 1

        worker = threading.Thread(target=body, name=f"{self.name}-kafka-loop", daemon=True)
        worker.start()
        while worker.is_alive():
            worker.join(WATCH_INTERVAL_S)
            if worker.is_alive():
                self.check()
        return 1 if self._code is None else self._code

    def check(self) -> None:
        """One watchdog pass: exit the process if a call overran or shutdown takes too long."""
        now = time.monotonic()
        gap = 0.0 if self._last_check is None else now - self._last_check
        self._last_check = now
        if gap > SUSPENDED_AFTER_S:
            # The whole process stood still (SIGSTOP, a paused VM): the call in progress did
            # not overrun, its clock did not run. The group may have moved on meanwhile;
            # the loop learns that from Kafka (partitions lost, a fenced commit) and redoes.
            self.log.warning("the process was suspended; Kafka call deadlines move on", suspended_s=round(gap, 1))
            self.calls.postpone(gap)
        overrun = self.calls.overrun()
        if overrun is not None:
            call, late = overrun
            if self.stop.is_set() and call.shutdown_step:
                self.log.warning(f"{call.what} did not finish in time, exiting anyway", overrun_s=round(late, 1))
                self._end(0)
                return
            reason = f"Kafka call {call.what} overran its deadline by {late:.1f}s"
            self.health.set_fatal(reason)
            self.log.error(
                "Kafka client wedged, exiting so that the replica is replaced at once",
                call=call.what,
                budget_s=round(call.budget, 1),
                exit_code=EXIT_WEDGED,
            )
            self._end(EXIT_WEDGED)
            return
        if self._stop_requested_at is None and self.stop.is_set():
            self._stop_requested_at = time.monotonic()  # stopped from inside (a fatal error)
        if self._stop_requested_at is not None:
            spent = time.monotonic() - self._stop_requested_at
            if spent > self.shutdown_budget_s:
                current = self.calls.in_progress()
                self.log.error(
                    "shutdown did not finish in time, exiting",
                    budget_s=self.shutdown_budget_s,
                    call=current.what if current else None,
                    exit_code=EXIT_WEDGED,
                )
                self._end(EXIT_WEDGED)

    def _end(self, code: int) -> None:
        _flush_output()
        self._exit(code)
