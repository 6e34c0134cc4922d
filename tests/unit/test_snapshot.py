from __future__ import annotations

import pytest

from actors.snapshot import decode_state, encode_state
from actors.state import ReelState, apply_command
from reelwire.events import Command, CommandKind
from tests.unit.test_state import CONTENT, REEL, WINDOW_MS, make_ids


def test_snapshot_round_trip_answers_retries_alike():
    ids = make_ids()
    state = ReelState(reel_id=REEL)
    steps = [
        Command(CommandKind.CREATE_REEL, REEL, "c", "r0", content=CONTENT),
        Command(CommandKind.LIKE, REEL, "u1", "r1"),
        Command(CommandKind.LIKE, REEL, "u1", "r2"),
        Command(CommandKind.COMMENT, REEL, "u2", "r3", text="héllo"),
        Command(CommandKind.SHARE, REEL, "u3", "r4"),
    ]
    outcomes = [apply_command(state, step, now_ms=5, new_id=ids, window_ms=WINDOW_MS)[0] for step in steps]
    copy = decode_state(encode_state(state))
    assert copy.counts() == state.counts()
    assert copy.version == state.version
    assert copy.likers == state.likers
    assert copy.comments == state.comments
    for step, outcome in zip(steps, outcomes):
        retry, event = apply_command(copy, step, now_ms=6, new_id=ids, window_ms=WINDOW_MS)
        assert event is None
        assert retry == outcome


@pytest.mark.parametrize("blob", [b"", b"garbage", __import__("zlib").compress(b'{"format": 9}')])
def test_snapshot_garbage_rejected(blob):
    with pytest.raises(ValueError):
        decode_state(blob)
