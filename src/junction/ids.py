"""64-bit Snowflake ids: 42-bit milliseconds since 2025-01-01, 10-bit worker, 12-bit sequence.

Ids print as Base62 text. A generator never hands out the same id twice and stays monotonic
when the wall clock steps back: it keeps counting on its last timestamp (borrowing the next
millisecond when 4,096 ids are asked for in one), so it never blocks and never repeats.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import NamedTuple

EPOCH_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z
WORKER_BITS = 10
SEQUENCE_BITS = 12
MAX_WORKER = (1 << WORKER_BITS) - 1
MAX_SEQUENCE = (1 << SEQUENCE_BITS) - 1
MAX_TIMESTAMP = (1 << 42) - 1

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_INDEX = {c: i for i, c in enumerate(ALPHABET)}
_PAIRS = [a + b for a in ALPHABET for b in ALPHABET]  # two digits per division: ids are hot


class SnowflakeParts(NamedTuple):
    """The three fields packed into one id."""

    timestamp_ms: int  # milliseconds since the Unix epoch
    worker: int
    sequence: int


def encode(value: int) -> str:
    """Base62 text of a non-negative integer."""
    if value < 0:
        raise ValueError("ids are non-negative")
    if value < 62:
        return ALPHABET[value]
    pairs = []
    while value >= 62:
        value, rest = divmod(value, 3844)
        pairs.append(_PAIRS[rest])
    text = "".join(reversed(pairs))
    return text if value == 0 else ALPHABET[value] + text if len(text) else ALPHABET[value]


def decode(text: str) -> int:
    """The integer of a Base62 text; ValueError when it is not one."""
    if not text or len(text) > 11:
        raise ValueError(f"not an id: {text!r}")
    value = 0
    for char in text:
        digit = _INDEX.get(char)
        if digit is None:
            raise ValueError(f"not an id: {text!r}")
        value = value * 62 + digit
    if value >= 1 << 64:
        raise ValueError(f"not an id: {text!r}")
    return value


def is_id(text: str) -> bool:
    """True when text is a well-formed Base62 id."""
    try:
        decode(text)
    except ValueError:
        return False
    return True


def parse(value: int | str) -> SnowflakeParts:
    """Split an id (int or Base62 text) into timestamp, worker and sequence."""
    number = decode(value) if isinstance(value, str) else value
    return SnowflakeParts(
        timestamp_ms=(number >> (WORKER_BITS + SEQUENCE_BITS)) + EPOCH_MS,
        worker=(number >> SEQUENCE_BITS) & MAX_WORKER,
        sequence=number & MAX_SEQUENCE,
    )


class Snowflake:
    """A thread-safe id generator for one worker."""

    def __init__(self, worker: int, now_ms: Callable[[], int] | None = None) -> None:
        if not 0 <= worker <= MAX_WORKER:
            raise ValueError(f"worker must be within 0..{MAX_WORKER}, got {worker}")
        self.worker = worker
        self._now_ms = now_ms or (lambda: time.time_ns() // 1_000_000)
        self._last_ms = -1
        self._sequence = 0
        self._lock = threading.Lock()

    def next_int(self) -> int:
        """The next id as an integer."""
        with self._lock:
            now = self._now_ms() - EPOCH_MS
            if now > self._last_ms:
                self._last_ms, self._sequence = now, 0
            else:  # same millisecond, or the clock stepped back: keep counting on the last one
                self._sequence += 1
                if self._sequence > MAX_SEQUENCE:
                    self._last_ms, self._sequence = self._last_ms + 1, 0
            if not 0 <= self._last_ms <= MAX_TIMESTAMP:
                raise OverflowError("clock outside the Snowflake range (2025..2164)")
            return (self._last_ms << (WORKER_BITS + SEQUENCE_BITS)) | (self.worker << SEQUENCE_BITS) | self._sequence

    def next(self) -> str:
        """The next id as Base62 text."""
        return encode(self.next_int())
