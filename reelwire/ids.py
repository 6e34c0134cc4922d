"""Time-ordered 128-bit ids, written as 26 Crockford base32 characters.

Layout, most significant first: 48 bits of Unix time in milliseconds, 16 bits of
generator (node) id, 64 bits of a per-generator sequence. Ids sort by time as
strings. Two generators with different node ids never produce the same id, even
within one millisecond. One generator never repeats an id because its sequence
only grows, and it never lets time step backwards.
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import Callable

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_DECODE = {char: index for index, char in enumerate(_ALPHABET)}
ID_LENGTH = 26
MAX_NODE = 0xFFFF
_SEQUENCE_MASK = (1 << 64) - 1


def encode_id(value: int) -> str:
    """Encode a 128-bit integer as 26 base32 characters."""
    chars = []
    for _ in range(ID_LENGTH):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def decode_id(text: str) -> int:
    """Decode an id; raise ValueError unless it is 26 valid base32 characters."""
    if len(text) != ID_LENGTH:
        raise ValueError(f"an id has {ID_LENGTH} characters, got {len(text)}")
    value = 0
    for char in text:
        digit = _DECODE.get(char)
        if digit is None:
            raise ValueError(f"invalid character {char!r} in id")
        value = (value << 5) | digit
    if value >> 128:
        raise ValueError("id is out of the 128-bit range")
    return value


def is_valid_id(text: str) -> bool:
    try:
        decode_id(text)
    except ValueError:
        return False
    return True


def id_time_ms(text: str) -> int:
    """Return the millisecond timestamp embedded in an id."""
    return decode_id(text) >> 80


class IdGenerator:
    """Issue unique, time-ordered ids for one node. Safe to share between threads."""

    def __init__(self, node: int, clock: Callable[[], float] = time.time) -> None:
        if not 0 <= node <= MAX_NODE:
            raise ValueError(f"node id must be in 0..{MAX_NODE}, got {node}")
        self._node = node
        self._clock = clock
        self._last_ms = 0
        self._sequence = secrets.randbits(32)
        self._lock = threading.Lock()

    def new_id(self) -> str:
        with self._lock:
            now_ms = int(self._clock() * 1000)
            # A clock that steps back must not reorder ids, so time never decreases.
            self._last_ms = max(self._last_ms, now_ms)
            self._sequence = (self._sequence + 1) & _SEQUENCE_MASK
            value = (self._last_ms << 80) | (self._node << 64) | self._sequence
        return encode_id(value)

    def observe(self, issued_id: str) -> None:
        """Move this generator's clock past an id it issued before a restart.

        The clock moves one millisecond beyond the id's time, because the
        sequence restarts at a random value and could otherwise fall below it.
        """
        with self._lock:
            self._last_ms = max(self._last_ms, id_time_ms(issued_id) + 1)


def random_node() -> int:
    """Pick a node id for a process that has no assigned one, such as a gateway.

    Gateways take the upper half of the node space so they never collide with
    shard actors, which use their shard index.
    """
    return 0x8000 | secrets.randbits(15)
