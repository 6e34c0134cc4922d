"""Events: wire round trip, projection writes, the feed index and search query building."""

from __future__ import annotations

import pytest

from actors.feed_index import FeedIndex, trending_score
from reelwire.events import Counts, Event, EventType, InvalidEvent, decode_event, encode_event
from storage.projection import DELETE_LIKE, INSERT_LIKE, INSERT_REEL, UPSERT_COUNTS, writes_for
from storage.search import build_query_text


def make_event(event_type=EventType.LIKED, version=2, reel="r1", at_ms=1000, counts=Counts(1, 0, 0), data=None):
    return Event("e" + str(version), event_type, reel, version, "u1", "req", at_ms, counts, data or {})


def test_event_round_trip():
    event = make_event(EventType.COMMENT_ADDED, data={"comment_id": "c1", "text": "héllo \"x\""})
    assert decode_event(encode_event(event)) == event


@pytest.mark.parametrize("raw", [None, b"", b"\xff\xfe", b"[]", b'{"schema": 99}', b'{"schema": 1, "type": "x"}'])
def test_poison_records_raise_invalid_event(raw):
    with pytest.raises(InvalidEvent):
        decode_event(raw)


def test_like_writes_use_version_as_timestamp():
    writes = writes_for(make_event(version=7))
    assert writes[0].cql == UPSERT_COUNTS
    assert writes[0].params[0] == 7
    assert writes[1].cql == INSERT_LIKE
    assert writes[1].params[-1] == 7
    unlike = writes_for(make_event(EventType.UNLIKED, version=8, counts=Counts()))
    assert unlike[1].cql == DELETE_LIKE
    assert unlike[1].params[0] == 8


def test_created_writes_reel_row():
    event = make_event(EventType.REEL_CREATED, version=1, counts=Counts(),
                       data={"caption": "c", "hashtags": ["a"], "media_url": "https://x"})
    assert [write.cql for write in writes_for(event)] == [UPSERT_COUNTS, INSERT_REEL]


def test_feed_recent_and_trending():
    feed = FeedIndex()
    for number in range(5):
        feed.apply(make_event(EventType.REEL_CREATED, version=1, reel=f"r{number}", at_ms=number * 1000,
                              counts=Counts(), data={"caption": "", "hashtags": [], "media_url": "u"}))
    feed.apply(make_event(EventType.LIKED, version=2, reel="r0", counts=Counts(50, 0, 0)))
    feed.apply(make_event(EventType.LIKED, version=2, reel="r0", counts=Counts(1, 0, 0)))
    assert [item.reel_id for item in feed.recent(3)] == ["r4", "r3", "r2"]
    assert [item.reel_id for item in feed.recent(2, before_ms=3000)] == ["r2", "r1"]
    top = feed.trending(1, now_ms=5000)
    assert top[0][1].reel_id == "r0"
    assert top[0][1].counts.likes == 50


def test_trending_prefers_fresh_engagement():
    hour = 3_600_000
    now = 100 * hour
    assert trending_score(Counts(10, 0, 0), now - hour, now) > trending_score(Counts(50, 0, 0), now - 48 * hour, now)


def test_search_query_strips_operators():
    assert build_query_text('sunset OR "x" #Travel -y') == (
        "(caption:sunset OR hashtags:sunset) AND (caption:or OR hashtags:or) AND (caption:x OR hashtags:x)"
        " AND hashtags:travel AND (caption:y OR hashtags:y)"
    )
    assert build_query_text("!!! ***") == ""
