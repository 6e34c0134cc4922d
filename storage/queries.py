"""The read model: queries over the Cassandra projections."""

from __future__ import annotations

from datetime import timezone
from typing import Any

from storage.cassandra import CassandraStore

SELECT_REEL = "SELECT reel_id, creator_id, caption, hashtags, media_url, created_at FROM {ks}.reels WHERE reel_id = ?"
SELECT_COUNTS = "SELECT likes, shares, comments, version FROM {ks}.reel_counts WHERE reel_id = ?"
SELECT_LIKE = "SELECT user_id FROM {ks}.likes WHERE reel_id = ? AND user_id = ?"
SELECT_COMMENTS_FIRST = (
    "SELECT comment_id, user_id, body, created_at FROM {ks}.comments WHERE reel_id = ? LIMIT ?"
)
SELECT_COMMENTS_AFTER = (
    "SELECT comment_id, user_id, body, created_at FROM {ks}.comments WHERE reel_id = ? AND comment_id > ? LIMIT ?"
)


class ReadModel:
    def __init__(self, store: CassandraStore) -> None:
        self.store = store

    async def get_reel(self, reel_id: str, viewer_id: str | None) -> dict[str, Any] | None:
        """Return a reel with its counts and, for a signed-in viewer, whether they like it."""
        reels = await self.store.execute(SELECT_REEL, (reel_id,))
        if not reels:
            return None
        reel = reels[0]
        counts = await self.store.execute(SELECT_COUNTS, (reel_id,))
        row = counts[0] if counts else None
        body: dict[str, Any] = {
            "reel_id": reel.reel_id,
            "creator_id": reel.creator_id,
            "caption": reel.caption or "",
            "hashtags": list(reel.hashtags or []),
            "media_url": reel.media_url,
            "created_at_ms": _ms(reel.created_at),
            "version": row.version if row else 0,
            "counts": {
                "likes": row.likes if row else 0,
                "shares": row.shares if row else 0,
                "comments": row.comments if row else 0,
            },
        }
        if viewer_id is not None:
            body["liked"] = bool(await self.store.execute(SELECT_LIKE, (reel_id, viewer_id)))
        return body

    async def list_comments(self, reel_id: str, after: str | None, limit: int) -> tuple[list[dict[str, Any]], bool]:
        """Return up to ``limit`` comments in order after ``after``, and whether more follow."""
        if after is None:
            rows = await self.store.execute(SELECT_COMMENTS_FIRST, (reel_id, limit + 1))
        else:
            rows = await self.store.execute(SELECT_COMMENTS_AFTER, (reel_id, after, limit + 1))
        comments = [
            {
                "comment_id": row.comment_id,
                "user_id": row.user_id,
                "text": row.body,
                "created_at_ms": _ms(row.created_at),
            }
            for row in rows[:limit]
        ]
        return comments, len(rows) > limit

    async def get_counts(self, reel_id: str) -> dict[str, int] | None:
        rows = await self.store.execute(SELECT_COUNTS, (reel_id,))
        if not rows:
            return None
        row = rows[0]
        return {"likes": row.likes, "shares": row.shares, "comments": row.comments, "version": row.version}


def _ms(value: Any) -> int | None:
    if value is None:
        return None
    # The driver returns naive datetimes that are in UTC.
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return int(value.timestamp() * 1000)
