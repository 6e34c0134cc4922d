"""Validation of client input, free of I/O. Every failure raises InvalidRequest naming the field."""

from __future__ import annotations

import re
import unicodedata
from typing import Any
from urllib.parse import urlsplit

from reelwire.config import Settings
from reelwire.errors import InvalidRequest
from reelwire.events import ReelContent
from reelwire.ids import is_valid_id

REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
HASHTAG_PATTERN = re.compile(r"^#?(\w{1,100})$", re.UNICODE)
MAX_URL_LENGTH = 2048
MAX_PAGE = 100


def validate_id(value: Any, field: str) -> str:
    """Return a 26-character Reelwire id; the error code is ``invalid_<field>``."""
    if not isinstance(value, str) or not is_valid_id(value):
        raise InvalidRequest(f"{field} must be a 26-character id", code=f"invalid_{field}", details={"field": field})
    return value


def validate_reel_id(value: Any) -> str:
    return validate_id(value, "reel_id")


def validate_request_id(value: Any) -> str:
    if not isinstance(value, str) or not REQUEST_ID_PATTERN.match(value):
        raise InvalidRequest(
            "request_id must be 1 to 128 characters of letters, digits, '.', '_', ':' or '-'",
            code="invalid_request_id",
            details={"field": "request_id"},
        )
    return value


def validate_text(value: Any, field: str, max_chars: int, *, allow_empty: bool = False) -> str:
    """Return user text unchanged if it is acceptable.

    Text is kept exactly as sent, but it must be valid Unicode (no lone
    surrogates), contain no control characters other than tab and newlines,
    and fit ``max_chars`` code points.
    """
    if not isinstance(value, str):
        raise InvalidRequest(f"{field} must be a string", code="invalid_text", details={"field": field})
    if not allow_empty and not value.strip():
        raise InvalidRequest(f"{field} must not be empty", code="invalid_text", details={"field": field})
    if len(value) > max_chars:
        raise InvalidRequest(
            f"{field} has {len(value)} characters; the maximum is {max_chars}",
            code="text_too_long",
            details={"field": field, "max_chars": max_chars},
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidRequest(f"{field} is not valid Unicode", code="invalid_text", details={"field": field}) from exc
    for char in value:
        if char not in "\t\n\r" and unicodedata.category(char) == "Cc":
            raise InvalidRequest(
                f"{field} contains the control character U+{ord(char):04X}",
                code="invalid_text",
                details={"field": field},
            )
    return value


def validate_hashtags(value: Any, settings: Settings) -> tuple[str, ...]:
    """Return hashtags lower-cased, without '#', de-duplicated in their first order."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidRequest("hashtags must be a list of strings", code="invalid_hashtags")
    if len(value) > settings.hashtags_max:
        raise InvalidRequest(
            f"a reel has at most {settings.hashtags_max} hashtags, got {len(value)}", code="invalid_hashtags"
        )
    tags: list[str] = []
    for raw in value:
        match = HASHTAG_PATTERN.match(raw) if isinstance(raw, str) else None
        if match is None:
            raise InvalidRequest(
                f"hashtag {raw!r} must be 1 to 100 letters, digits or '_', with an optional leading '#'",
                code="invalid_hashtags",
            )
        tag = match.group(1).lower()
        if tag not in tags:
            tags.append(tag)
    return tuple(tags)


def validate_media_url(value: Any) -> str:
    if not isinstance(value, str) or len(value) > MAX_URL_LENGTH:
        raise InvalidRequest("media_url must be a URL of at most 2048 characters", code="invalid_media_url")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidRequest("media_url must be an absolute http or https URL", code="invalid_media_url")
    return value


def validate_reel_content(body: Any, settings: Settings) -> ReelContent:
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object", code="invalid_body")
    return ReelContent(
        caption=validate_text(body.get("caption", ""), "caption", settings.caption_max_chars, allow_empty=True),
        hashtags=validate_hashtags(body.get("hashtags"), settings),
        media_url=validate_media_url(body.get("media_url")),
    )


def validate_limit(value: Any, default: int = 20) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PAGE:
        raise InvalidRequest(f"limit must be an integer from 1 to {MAX_PAGE}", code="invalid_limit")
    return value
