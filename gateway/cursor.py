"""Opaque page cursors, free of I/O.

A cursor is URL-safe base64 of a small JSON object. Clients must treat it as
opaque; the server validates every field it decodes.
"""

from __future__ import annotations

import base64
import binascii
import json

from reelwire.errors import InvalidRequest
from reelwire.ids import is_valid_id

CURSOR_VERSION = 1
MAX_CURSOR_LENGTH = 200


def encode_cursor(after_id: str) -> str:
    raw = json.dumps({"v": CURSOR_VERSION, "after": after_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> str:
    """Return the id that the next page starts after; raise InvalidRequest on any defect."""
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise InvalidRequest("cursor is too long", code="invalid_cursor")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        body = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error) as exc:
        raise InvalidRequest("cursor is not one this server issued", code="invalid_cursor") from exc
    if not isinstance(body, dict) or body.get("v") != CURSOR_VERSION:
        raise InvalidRequest("cursor is not one this server issued", code="invalid_cursor")
    after = body.get("after")
    if not isinstance(after, str) or not is_valid_id(after):
        raise InvalidRequest("cursor is not one this server issued", code="invalid_cursor")
    return after
