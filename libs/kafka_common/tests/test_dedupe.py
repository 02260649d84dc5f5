"""DoneOrders: which orders a step has done, bounded in count and in time."""

from kafka_common.dedupe import DoneOrders


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_an_order_is_seen_once_done_and_only_on_its_topic():
    done = DoneOrders(forget_after_s=60, clock=Clock())
    assert not done.seen("pizza-ordered", "a")
    done.add("pizza-ordered", "a")
    assert done.seen("pizza-ordered", "a")
    assert not done.seen("pizza-assembled", "a")


def test_an_order_is_forgotten_after_its_time():
    clock = Clock()
    done = DoneOrders(forget_after_s=60, clock=clock)
    done.add("t", "a")
    clock.now = 60.0
    assert done.seen("t", "a")
    clock.now = 60.5
    assert not done.seen("t", "a")
    assert len(done) == 0


def test_the_oldest_order_makes_room_and_a_repeated_one_counts_as_new():
    clock = Clock()
    done = DoneOrders(forget_after_s=3600, max_orders=3, clock=clock)
    for order_id in "abc":
        clock.now += 1
        done.add("t", order_id)
    done.add("t", "a")  # done again: now the newest
    done.add("t", "d")  # b, the oldest, makes room
    assert [o for o in "abcd" if done.seen("t", o)] == ["a", "c", "d"]
    assert len(done) == 3


def test_adding_forgets_what_is_stale_first():
    clock = Clock()
    done = DoneOrders(forget_after_s=10, clock=clock)
    done.add("t", "old")
    clock.now = 11.0
    done.add("t", "new")
    assert len(done) == 1 and done.seen("t", "new")
