"""What App.main does to the process before any client exists."""

import platform

import pytest

from kafka_common.app import limit_malloc_arenas


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt(M_ARENA_MAX) is glibc's")
def test_malloc_arenas_are_limited_unless_the_operator_chose_a_number():
    assert limit_malloc_arenas({}) is True
    assert limit_malloc_arenas({"MALLOC_ARENA_MAX": "8"}) is False
