"""Cursor encoding, input validation and WebSocket frame parsing."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.auth import mint_token, verify_token
from gateway.cursor import decode_cursor, encode_cursor
from gateway.protocol import parse_client_frame
from gateway.validation import validate_hashtags, validate_media_url, validate_reel_content, validate_text
from reelwire.config import Settings
from reelwire.errors import InvalidRequest, Unauthorized
from reelwire.ids import IdGenerator

SETTINGS = Settings()
REEL = IdGenerator(node=1).new_id()


def test_cursor_round_trip():
    assert decode_cursor(encode_cursor(REEL)) == REEL


@given(st.text(max_size=300))
def test_cursor_garbage_is_invalid_request(garbage):
    try:
        decode_cursor(garbage)
    except InvalidRequest as exc:
        assert exc.code == "invalid_cursor"


def test_text_kept_exactly():
    text = "  <script>alert(1)</script> \"quotes\" émoji 🎬\nline  "
    assert validate_text(text, "text", 2200) == text


@pytest.mark.parametrize("bad", ["", "   ", "a\x00b", "\ud800", 5, None, "x" * 2201])
def test_text_rejects_bad_values(bad):
    with pytest.raises(InvalidRequest):
        validate_text(bad, "text", 2200)


def test_hashtags_normalised():
    assert validate_hashtags(["#Travel", "travel", "food_1"], SETTINGS) == ("travel", "food_1")


@pytest.mark.parametrize("bad", [["with space"], ["#"], [1], "notalist", ["x"] * 31])
def test_hashtags_rejected(bad):
    with pytest.raises(InvalidRequest):
        validate_hashtags(bad, SETTINGS)


@pytest.mark.parametrize("bad", ["ftp://x/y", "/relative", "javascript:alert(1)", "https://", 3])
def test_media_url_rejected(bad):
    with pytest.raises(InvalidRequest):
        validate_media_url(bad)


def test_reel_content_valid():
    content = validate_reel_content({"caption": "hi", "hashtags": ["a"], "media_url": "https://x.test/v.mp4"}, SETTINGS)
    assert content.hashtags == ("a",)


@pytest.mark.parametrize(
    "frame, code",
    [
        ("not json", "invalid_json"),
        ("[1, 2]", "invalid_frame"),
        ('{"op": 5}', "invalid_frame"),
        ('{"op": "dance"}', "unknown_op"),
        ('{"op": "like"}', "invalid_request_id"),
        ('{"op": "like", "request_id": "r1", "reel_id": "nope"}', "invalid_reel_id"),
        ('{"op": "subscribe", "reel_ids": []}', "invalid_frame"),
        ('{"op": "comment", "request_id": "r1", "reel_id": "%s", "text": 7}' % REEL, "invalid_text"),
        ('{"op": "delete_comment", "request_id": "r1", "reel_id": "%s"}' % REEL, "invalid_comment_id"),
    ],
)
def test_bad_frames_rejected_with_code(frame, code):
    with pytest.raises(InvalidRequest) as caught:
        parse_client_frame(frame, SETTINGS)
    assert caught.value.code == code


def test_good_frames_parsed():
    op = parse_client_frame(json.dumps({"op": "comment", "request_id": "r-1", "reel_id": REEL, "text": "hey"}), SETTINGS)
    assert (op.op, op.reel_id, op.text) == ("comment", REEL, "hey")
    sub = parse_client_frame(json.dumps({"op": "subscribe", "reel_ids": [REEL]}), SETTINGS)
    assert sub.reel_ids == (REEL,)


def test_token_round_trip_and_expiry():
    token = mint_token(SETTINGS, "alice")
    assert verify_token(SETTINGS, token).user_id == "alice"
    expired = mint_token(SETTINGS, "alice", ttl_s=-10)
    with pytest.raises(Unauthorized) as caught:
        verify_token(SETTINGS, expired)
    assert caught.value.code == "token_expired"


def test_token_with_wrong_secret_rejected():
    other = Settings(jwt_secret="another-secret-of-enough-length-0123456789")
    with pytest.raises(Unauthorized) as caught:
        verify_token(SETTINGS, mint_token(other, "alice"))
    assert caught.value.code == "token_invalid"


def test_client_fault_logged_as_warning():
    import logging

    from reelwire.logs import ClientFaultFilter

    record = logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1,
                               "Invalid UTF-8 sequence received from client.", None, (ValueError, ValueError(), None))
    assert ClientFaultFilter().filter(record) is True
    assert record.levelno == logging.WARNING
    assert record.exc_info is None
    other = logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1, "Exception in ASGI application", None, None)
    ClientFaultFilter().filter(other)
    assert other.levelno == logging.ERROR
