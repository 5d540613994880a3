"""Snowflake ids: Base62 text, field layout, monotonicity under clock trouble, thread safety."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from junction.ids import (
    ALPHABET,
    EPOCH_MS,
    MAX_SEQUENCE,
    MAX_WORKER,
    Snowflake,
    decode,
    encode,
    is_id,
    parse,
)

U64 = st.integers(min_value=0, max_value=(1 << 64) - 1)
EDGES = sorted({0, 1, 61, 62, 63, 3843, 3844, 3845, 62**3 - 1, 62**3, 62**3 + 1, 62**4, 62**5 - 1,
                62**10 - 1, 62**10, (1 << 32) - 1, 1 << 32, (1 << 63) - 1, 1 << 63, (1 << 64) - 1})


def frozen(ms: int) -> Callable[[], int]:
    """A clock that always reads ``ms``."""
    return lambda: ms


class ScriptedClock:
    """A clock that reads whatever the test set last."""

    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


def reference_base62(value: int) -> str:
    """A plain, obviously correct Base62 encoder to compare against."""
    if value == 0:
        return "0"
    digits = []
    while value:
        value, rest = divmod(value, 62)
        digits.append(ALPHABET[rest])
    return "".join(reversed(digits))


# -- Base62 -----------------------------------------------------------------------------------
@settings(database=None)  # no example files left behind
@given(U64)
def test_encode_decode_round_trip_on_random_64_bit_values(value: int) -> None:
    text = encode(value)
    assert decode(text) == value
    assert text == reference_base62(value)
    assert is_id(text)


@pytest.mark.parametrize("value", EDGES)
def test_encode_decode_round_trip_on_edge_values(value: int) -> None:
    text = encode(value)
    assert text == reference_base62(value)
    assert decode(text) == value
    assert 1 <= len(text) <= 11
    assert text == "0" or not text.startswith("0")


def test_known_encodings() -> None:
    assert encode(0) == "0"
    assert encode(61) == "z"
    assert encode(62) == "10"
    assert encode(3844) == "100"
    assert encode((1 << 64) - 1) == "LygHa16AHYF"


def test_encode_rejects_negative() -> None:
    with pytest.raises(ValueError):
        encode(-1)


@pytest.mark.parametrize(
    "junk",
    [
        "",  # empty
        "-",  # bad characters
        "abc!",
        "12 3",
        " 1",
        "1\n",
        "é",
        "_",
        "000000000001",  # too long (12 digits) even though small
        "zzzzzzzzzzzz",
        "LygHa16AHYG",  # exactly 2**64
        "zzzzzzzzzzz",  # 11 digits but far beyond 2**64
    ],
)
def test_decode_rejects_junk(junk: str) -> None:
    with pytest.raises(ValueError):
        decode(junk)
    assert not is_id(junk)


def test_two_to_the_64_is_the_first_rejected_value() -> None:
    assert decode(reference_base62((1 << 64) - 1)) == (1 << 64) - 1
    with pytest.raises(ValueError):
        decode(reference_base62(1 << 64))


# -- generation -------------------------------------------------------------------------------
def test_ids_from_one_generator_strictly_increase() -> None:
    ids = Snowflake(7)
    values = [ids.next_int() for _ in range(20_000)]
    assert all(a < b for a, b in pairwise(values))
    texts = [ids.next() for _ in range(100)]
    numbers = [decode(t) for t in texts]
    assert numbers[0] > values[-1]
    assert all(a < b for a, b in pairwise(numbers))


def test_parse_gives_back_timestamp_worker_and_sequence() -> None:
    when = EPOCH_MS + 123_456_789
    ids = Snowflake(513, now_ms=frozen(when))
    first, second, third = ids.next_int(), ids.next_int(), ids.next()
    assert parse(first) == (when, 513, 0)
    assert parse(second) == (when, 513, 1)
    assert parse(third) == (when, 513, 2)  # Base62 text parses too
    assert parse(first).timestamp_ms == when
    assert parse(first).worker == 513
    assert parse(second).sequence == 1


def test_parse_timestamp_is_unix_milliseconds_with_epoch_2025() -> None:
    assert EPOCH_MS == 1_735_689_600_000  # 2025-01-01T00:00:00Z
    assert parse(0).timestamp_ms == EPOCH_MS
    before = time.time_ns() // 1_000_000
    value = Snowflake(1).next_int()
    after = time.time_ns() // 1_000_000
    assert before <= parse(value).timestamp_ms <= after
    assert value >> 22 == parse(value).timestamp_ms - EPOCH_MS  # 42-bit time sits above 22 bits


@pytest.mark.parametrize("worker", [0, 1, 512, MAX_WORKER])
def test_worker_bits_do_not_leak(worker: int) -> None:
    ids = Snowflake(worker, now_ms=frozen(EPOCH_MS + 5))
    for expected_sequence in range(3):
        parts = parse(ids.next_int())
        assert parts.worker == worker
        assert parts.sequence == expected_sequence
        assert parts.timestamp_ms == EPOCH_MS + 5


@pytest.mark.parametrize("worker", [-1, MAX_WORKER + 1, 5000])
def test_worker_out_of_range_raises(worker: int) -> None:
    assert MAX_WORKER == 1023
    with pytest.raises(ValueError):
        Snowflake(worker)


def test_clock_stepping_back_still_yields_increasing_unique_ids() -> None:
    clock = ScriptedClock(EPOCH_MS + 10_000)
    ids = Snowflake(3, now_ms=clock)
    values = [ids.next_int() for _ in range(5)]
    clock.ms = EPOCH_MS + 4_000  # NTP stepped the wall clock back six seconds
    values += [ids.next_int() for _ in range(50)]
    clock.ms = EPOCH_MS + 9_999  # still behind
    values += [ids.next_int() for _ in range(5)]
    clock.ms = EPOCH_MS + 10_001  # caught up again
    values += [ids.next_int() for _ in range(5)]
    assert len(set(values)) == len(values)
    assert all(a < b for a, b in pairwise(values))
    # while behind, it keeps counting on the last timestamp it handed out rather than going back
    assert {parse(v).timestamp_ms for v in values[:60]} == {EPOCH_MS + 10_000}
    assert parse(values[-1]).timestamp_ms == EPOCH_MS + 10_001


def test_more_than_4096_ids_in_one_frozen_millisecond_borrow_the_next() -> None:
    clock = ScriptedClock(EPOCH_MS + 77)
    ids = Snowflake(9, now_ms=clock)
    values = [ids.next_int() for _ in range(MAX_SEQUENCE + 1 + 1_000)]
    assert len(set(values)) == len(values)
    assert all(a < b for a, b in pairwise(values))
    parts = [parse(v) for v in values]
    assert [p.sequence for p in parts[: MAX_SEQUENCE + 1]] == list(range(MAX_SEQUENCE + 1))
    assert {p.timestamp_ms for p in parts[: MAX_SEQUENCE + 1]} == {EPOCH_MS + 77}
    assert {p.timestamp_ms for p in parts[MAX_SEQUENCE + 1 :]} == {EPOCH_MS + 78}
    assert {p.worker for p in parts} == {9}
    # when the real clock reaches the borrowed millisecond, nothing handed out is repeated
    clock.ms = EPOCH_MS + 78
    later = [ids.next_int() for _ in range(10)]
    assert later[0] > values[-1]
    assert all(a < b for a, b in pairwise(later))
    assert not set(later) & set(values)


def test_clock_before_the_epoch_is_refused() -> None:
    with pytest.raises(OverflowError):
        Snowflake(1, now_ms=frozen(EPOCH_MS - 1)).next_int()


def test_thread_safety_no_duplicates() -> None:
    ids = Snowflake(42)
    per_thread, threads_count = 5_000, 8
    results: list[list[int]] = [[] for _ in range(threads_count)]
    start = threading.Barrier(threads_count)

    def work(bucket: list[int]) -> None:
        start.wait()
        for _ in range(per_thread):
            bucket.append(ids.next_int())

    threads = [threading.Thread(target=work, args=(bucket,)) for bucket in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [v for bucket in results for v in bucket]
    assert len(everything) == per_thread * threads_count
    assert len(set(everything)) == len(everything)
    for bucket in results:  # each thread sees its own ids increase
        assert all(a < b for a, b in pairwise(bucket))
