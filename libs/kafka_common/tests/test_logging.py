"""Log output: a loop turn's lines are written together, warnings at once, nothing lost."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
from collections.abc import Iterator

import pytest
import structlog

from kafka_common.logging import configure_logging, flush_held_lines, get_logger, lines_held, write_held_lines


class CountingBytes(io.BytesIO):
    """stdout's bytes, counting the writes that reach it."""

    writes = 0

    def write(self, data) -> int:
        self.writes += 1
        return super().write(data)


@pytest.fixture
def stdout(monkeypatch) -> Iterator[CountingBytes]:
    raw = CountingBytes()
    text = io.TextIOWrapper(raw, write_through=True)  # referenced here: collected, it would close raw
    monkeypatch.setattr(sys, "stdout", text)
    root_handlers = logging.getLogger().handlers[:]
    configure_logging("test-service", fmt="json", level="INFO")
    yield raw
    text.detach()
    structlog.reset_defaults()
    logging.getLogger().handlers[:] = root_handlers


def events(raw: CountingBytes) -> list[str]:
    return [json.loads(line)["event"] for line in raw.getvalue().splitlines()]


def test_lines_are_written_one_by_one_outside_a_held_block(stdout):
    log = get_logger()
    log.info("one")
    log.info("two")
    assert events(stdout) == ["one", "two"]
    assert stdout.writes == 2


def test_a_held_block_writes_its_lines_once_at_its_end(stdout):
    log = get_logger()
    with lines_held():
        log.info("one")
        log.debug("below the level")
        log.info("two")
        assert events(stdout) == []
    assert events(stdout) == ["one", "two"]
    assert stdout.writes == 1


def test_what_is_held_so_far_can_be_written_before_a_call_that_may_block(stdout):
    log = get_logger()
    with lines_held():
        log.info("one")
        write_held_lines()
        assert events(stdout) == ["one"]
        log.info("two")
        assert events(stdout) == ["one"]
    assert events(stdout) == ["one", "two"]
    assert stdout.writes == 2


def test_a_warning_is_not_held_and_keeps_the_order(stdout):
    log = get_logger()
    with lines_held():
        log.info("one")
        log.warning("trouble")
        assert events(stdout) == ["one", "trouble"]
        log.info("two")
        logging.getLogger("librdkafka").error("client trouble")
        assert events(stdout) == ["one", "trouble", "two", "client trouble"]
        log.info("three")
    assert events(stdout) == ["one", "trouble", "two", "client trouble", "three"]


def test_other_threads_are_not_held(stdout):
    log = get_logger()
    with lines_held():
        log.info("held")
        other = threading.Thread(target=lambda: log.info("from another thread"))
        other.start()
        other.join()
        assert events(stdout) == ["from another thread"]
    assert events(stdout) == ["from another thread", "held"]


def test_held_lines_are_written_before_an_abrupt_exit(stdout):
    log = get_logger()
    entered, release = threading.Event(), threading.Event()

    def stuck_turn() -> None:
        with lines_held():
            log.info("before the stuck call")
            entered.set()
            release.wait(10)

    loop = threading.Thread(target=stuck_turn)
    loop.start()
    entered.wait(10)
    flush_held_lines()  # what the supervisor does before os._exit
    assert events(stdout) == ["before the stuck call"]
    release.set()
    loop.join()
    assert events(stdout) == ["before the stuck call"]
