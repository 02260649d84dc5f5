"""Consumer lag from librdkafka statistics, as the runner exports it."""

from kafka_common.lag import partition_lag


def stats(**fields):
    return {
        "fetch_state": "active",
        "ls_offset": 10,
        "stored_offset": -1,
        "committed_offset": -1,
        "lo_offset": 0,
        **fields,
    }


def test_lag_counts_from_the_offsets_stored_after_each_transaction():
    assert partition_lag(stats(stored_offset=7)) == 3


def test_lag_uses_the_committed_offset_known_at_start_up():
    assert partition_lag(stats(committed_offset=4)) == 6
    assert partition_lag(stats(committed_offset=4, stored_offset=9)) == 1


def test_a_partition_never_committed_lags_from_the_log_start():
    assert partition_lag(stats(lo_offset=2)) == 8


def test_unknown_or_unassigned_partitions_have_no_lag():
    assert partition_lag(stats(ls_offset=-1, stored_offset=3)) is None
    assert partition_lag(stats(fetch_state="none", stored_offset=3)) is None
