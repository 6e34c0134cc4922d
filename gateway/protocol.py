"""The WebSocket protocol's frames, free of I/O. See docs/protocol.md.

``parse_client_frame`` validates a text frame into a ClientOp or raises
InvalidRequest; the ``*_frame`` helpers build server frames as JSON text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from gateway.validation import validate_id, validate_reel_id, validate_request_id, validate_text
from reelwire.config import Settings
from reelwire.errors import InvalidRequest, ReelwireError
from reelwire.events import Counts, Event, EventType, Outcome

MAX_SUBSCRIBE_BATCH = 100

COMMAND_OPS = frozenset({"like", "unlike", "share", "comment", "delete_comment"})
ALL_OPS = COMMAND_OPS | {"subscribe", "unsubscribe", "auth", "ping"}


@dataclass(frozen=True, slots=True)
class ClientOp:
    op: str
    reel_ids: tuple[str, ...] = ()
    since: dict[str, int] | None = None
    reel_id: str | None = None
    request_id: str | None = None
    text: str | None = None
    comment_id: str | None = None
    token: str | None = None


def parse_client_frame(text: str, settings: Settings) -> ClientOp:
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"frame is not valid JSON: {exc.msg}", code="invalid_json") from exc
    if not isinstance(body, dict):
        raise InvalidRequest("frame must be a JSON object", code="invalid_frame")
    op = body.get("op")
    if not isinstance(op, str):
        raise InvalidRequest("frame needs a string field 'op'", code="invalid_frame")
    if op not in ALL_OPS:
        raise InvalidRequest(f"unknown op {op[:40]!r}", code="unknown_op", details={"ops": sorted(ALL_OPS)})

    if op in ("subscribe", "unsubscribe"):
        reel_ids = body.get("reel_ids")
        if not isinstance(reel_ids, list) or not reel_ids or len(reel_ids) > MAX_SUBSCRIBE_BATCH:
            raise InvalidRequest(
                f"'reel_ids' must be a list of 1 to {MAX_SUBSCRIBE_BATCH} reel ids", code="invalid_frame"
            )
        ids = tuple(validate_reel_id(reel_id) for reel_id in reel_ids)
        return ClientOp(op=op, reel_ids=ids, since=_parse_since(body.get("since"), ids) if op == "subscribe" else None)

    if op == "auth":
        token = body.get("token")
        if not isinstance(token, str) or not token or len(token) > 4096:
            raise InvalidRequest("'token' must be a non-empty string", code="invalid_frame")
        return ClientOp(op=op, token=token)

    if op == "ping":
        return ClientOp(op=op)

    request_id = validate_request_id(body.get("request_id"))
    reel_id = validate_reel_id(body.get("reel_id"))
    if op == "comment":
        text_value = validate_text(body.get("text"), "text", settings.comment_max_chars)
        return ClientOp(op=op, reel_id=reel_id, request_id=request_id, text=text_value)
    if op == "delete_comment":
        comment_id = validate_id(body.get("comment_id"), "comment_id")
        return ClientOp(op=op, reel_id=reel_id, request_id=request_id, comment_id=comment_id)
    return ClientOp(op=op, reel_id=reel_id, request_id=request_id)


def _parse_since(value: Any, reel_ids: tuple[str, ...]) -> dict[str, int] | None:
    """Validate ``since``: the last version the client saw, per reel of this subscription."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidRequest("'since' must map reel ids to versions", code="invalid_frame")
    since: dict[str, int] = {}
    for reel_id, version in value.items():
        if reel_id not in reel_ids:
            raise InvalidRequest(f"'since' names reel {reel_id[:40]!r}, which is not in 'reel_ids'", code="invalid_frame")
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            raise InvalidRequest("versions in 'since' must be integers >= 0", code="invalid_frame")
        since[reel_id] = version
    return since


def dumps(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def ack_frame(outcome: Outcome) -> str:
    return dumps({"type": "ack", **outcome.to_dict()})


def error_frame(error: ReelwireError, request_id: str | None = None) -> str:
    body: dict[str, Any] = {"type": "error", **error.to_dict()}
    if request_id is not None:
        body["request_id"] = request_id
    return dumps(body)


def state_frame(reel_id: str, version: int, counts: Counts | dict[str, int], *, resync: bool = False) -> str:
    counts_dict = counts.to_dict() if isinstance(counts, Counts) else counts
    body: dict[str, Any] = {"type": "reel.state", "reel_id": reel_id, "version": version, "counts": counts_dict}
    if resync:
        body["resync"] = True
    return dumps(body)


def event_frame(event: Event) -> str | None:
    """Return the frame that carries a comment event to viewers, None for other events."""
    if event.type is EventType.COMMENT_ADDED:
        return dumps({
            "type": "comment.added",
            "reel_id": event.reel_id,
            "version": event.version,
            "comment": {
                "comment_id": event.data["comment_id"],
                "user_id": event.user_id,
                "text": event.data["text"],
                "created_at_ms": event.at_ms,
            },
        })
    if event.type is EventType.COMMENT_DELETED:
        return dumps({
            "type": "comment.deleted",
            "reel_id": event.reel_id,
            "version": event.version,
            "comment_id": event.data["comment_id"],
        })
    return None
