"""Commands that clients send, events that shards append to Kafka, and outcomes.

Events are the log of record: every count can be recomputed from them. Their
wire form is compact JSON, one event per Kafka record, keyed by reel id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

SCHEMA_VERSION = 1


class CommandKind(StrEnum):
    CREATE_REEL = "create_reel"
    LIKE = "like"
    UNLIKE = "unlike"
    SHARE = "share"
    COMMENT = "comment"
    DELETE_COMMENT = "delete_comment"


class EventType(StrEnum):
    REEL_CREATED = "reel.created"
    LIKED = "reel.liked"
    UNLIKED = "reel.unliked"
    SHARED = "reel.shared"
    COMMENT_ADDED = "comment.added"
    COMMENT_DELETED = "comment.deleted"


@dataclass(frozen=True, slots=True)
class Counts:
    likes: int = 0
    shares: int = 0
    comments: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"likes": self.likes, "shares": self.shares, "comments": self.comments}

    def __reduce__(self) -> tuple[Any, ...]:
        return (Counts, (self.likes, self.shares, self.comments))


@dataclass(frozen=True, slots=True)
class ReelContent:
    caption: str
    hashtags: tuple[str, ...]
    media_url: str


@dataclass(frozen=True, slots=True)
class Command:
    """One user action on one reel, as routed to the shard that owns the reel."""

    kind: CommandKind
    reel_id: str
    user_id: str
    request_id: str
    text: str | None = None
    comment_id: str | None = None
    content: ReelContent | None = None

    # Plain tuples pickle several times faster than the generic dataclass
    # state, and commands and outcomes cross a process boundary in bulk.
    def __reduce__(self) -> tuple[Any, ...]:
        return (Command, (self.kind, self.reel_id, self.user_id, self.request_id, self.text, self.comment_id,
                          self.content))


@dataclass(frozen=True, slots=True)
class Event:
    """The durable record of one change to a reel.

    ``version`` grows by one with every event of a reel, starting at 1 for
    ``reel.created``. ``counts`` are the reel's counts after this event.
    """

    event_id: str
    type: EventType
    reel_id: str
    version: int
    user_id: str
    request_id: str
    at_ms: int
    counts: Counts
    data: dict[str, Any] = field(default_factory=dict)


class OutcomeStatus(StrEnum):
    APPLIED = "applied"
    UNCHANGED = "unchanged"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result a shard returns for one command.

    A rejected outcome carries ``error`` as ``(error class name, error dict)`` so
    that it survives pickling across Ray processes; see ``reelwire.errors``.
    """

    request_id: str
    reel_id: str
    status: OutcomeStatus
    version: int = 0
    counts: Counts | None = None
    comment_id: str | None = None
    error: tuple[str, dict[str, Any]] | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        return (Outcome, (self.request_id, self.reel_id, self.status, self.version, self.counts, self.comment_id,
                          self.error))

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "request_id": self.request_id,
            "reel_id": self.reel_id,
            "status": self.status.value,
            "version": self.version,
        }
        if self.counts is not None:
            body["counts"] = self.counts.to_dict()
        if self.comment_id is not None:
            body["comment_id"] = self.comment_id
        return body


class InvalidEvent(ValueError):
    """A Kafka record that does not decode into an Event."""


def encode_event(event: Event) -> bytes:
    counts = event.counts
    body = {
        "event_id": event.event_id,
        "type": event.type.value,
        "reel_id": event.reel_id,
        "version": event.version,
        "user_id": event.user_id,
        "request_id": event.request_id,
        "at_ms": event.at_ms,
        "counts": {"likes": counts.likes, "shares": counts.shares, "comments": counts.comments},
        "data": event.data,
        "schema": SCHEMA_VERSION,
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def encode_event_list(encoded: list[bytes]) -> bytes:
    """Join already encoded events into one JSON array."""
    return b"[" + b",".join(encoded) + b"]"


def decode_event(raw: bytes | None) -> Event:
    """Decode one Kafka record value; raise InvalidEvent on any defect."""
    return event_from_json(_parse(raw))


def decode_event_list(raw: bytes | None) -> list[Event]:
    """Decode a JSON array of events, as published on Redis; raise InvalidEvent on any defect."""
    body = _parse(raw)
    if not isinstance(body, list):
        raise InvalidEvent("message is not a JSON array of events")
    return [event_from_json(item) for item in body]


def _parse(raw: bytes | None) -> Any:
    if raw is None:
        raise InvalidEvent("record has no value")
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidEvent(f"record is not JSON: {exc}") from exc


def event_from_json(body: Any) -> Event:
    """Build an Event from its parsed JSON form; raise InvalidEvent on any defect."""
    if not isinstance(body, dict):
        raise InvalidEvent("record is not a JSON object")
    if body.get("schema") != SCHEMA_VERSION:
        raise InvalidEvent(f"unsupported event schema {body.get('schema')!r}")
    try:
        counts = body["counts"]
        event = Event(
            event_id=_text(body["event_id"]),
            type=EventType(body["type"]),
            reel_id=_text(body["reel_id"]),
            version=_count(body["version"], minimum=1),
            user_id=_text(body["user_id"]),
            request_id=_text(body["request_id"]),
            at_ms=_count(body["at_ms"], minimum=0),
            counts=Counts(
                likes=_count(counts["likes"]),
                shares=_count(counts["shares"]),
                comments=_count(counts["comments"]),
            ),
            data=body.get("data") or {},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidEvent(f"record has a missing or invalid field: {exc!r}") from exc
    if not isinstance(event.data, dict):
        raise InvalidEvent("event data is not a JSON object")
    return event


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a non-empty string, got {value!r}")
    return value


def _count(value: Any, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"expected an integer >= {minimum}, got {value!r}")
    return value
