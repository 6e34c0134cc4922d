"""The CQL writes that each event causes, free of I/O.

Each write is guarded by the event's per-reel version, used as the Cassandra
write timestamp, so the tables converge to the same rows whatever the order and
number of replays.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from reelwire.events import Event, EventType

UPSERT_COUNTS = (
    "UPDATE {ks}.reel_counts USING TIMESTAMP ? SET likes = ?, shares = ?, comments = ?, version = ? WHERE reel_id = ?"
)
INSERT_REEL = (
    "INSERT INTO {ks}.reels (reel_id, creator_id, caption, hashtags, media_url, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
)
INSERT_LIKE = "INSERT INTO {ks}.likes (reel_id, user_id, liked_at) VALUES (?, ?, ?) USING TIMESTAMP ?"
DELETE_LIKE = "DELETE FROM {ks}.likes USING TIMESTAMP ? WHERE reel_id = ? AND user_id = ?"
INSERT_COMMENT = (
    "INSERT INTO {ks}.comments (reel_id, comment_id, user_id, body, created_at) VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?"
)
DELETE_COMMENT = "DELETE FROM {ks}.comments USING TIMESTAMP ? WHERE reel_id = ? AND comment_id = ?"


@dataclass(frozen=True, slots=True)
class Write:
    cql: str
    params: tuple[Any, ...]


def writes_for(event: Event) -> list[Write]:
    """Return the writes that project one event into the read tables."""
    version = event.version
    at = datetime.fromtimestamp(event.at_ms / 1000, tz=timezone.utc)
    counts = event.counts
    writes = [
        Write(UPSERT_COUNTS, (version, counts.likes, counts.shares, counts.comments, version, event.reel_id)),
    ]
    data = event.data
    if event.type is EventType.REEL_CREATED:
        writes.append(Write(INSERT_REEL, (
            event.reel_id,
            event.user_id,
            data.get("caption", ""),
            list(data.get("hashtags", [])),
            data.get("media_url", ""),
            at,
            version,
        )))
    elif event.type is EventType.LIKED:
        writes.append(Write(INSERT_LIKE, (event.reel_id, event.user_id, at, version)))
    elif event.type is EventType.UNLIKED:
        writes.append(Write(DELETE_LIKE, (version, event.reel_id, event.user_id)))
    elif event.type is EventType.COMMENT_ADDED:
        writes.append(Write(INSERT_COMMENT, (
            event.reel_id, data["comment_id"], event.user_id, data["text"], at, version,
        )))
    elif event.type is EventType.COMMENT_DELETED:
        writes.append(Write(DELETE_COMMENT, (version, event.reel_id, data["comment_id"])))
    return writes
