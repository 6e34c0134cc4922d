"""The read model: queries over the Cassandra projections."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable
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


# Reel rows never change once written, so a found row can be kept for good.
# The cache keeps this many reels and drops the least recently read first.
REEL_CACHE_MAX = 50_000


class ReadModel:
    def __init__(self, store: CassandraStore, reel_cache_max: int = REEL_CACHE_MAX) -> None:
        self.store = store
        self._reels: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._reel_cache_max = reel_cache_max

    async def get_reel(self, reel_id: str, viewer_id: str | None) -> dict[str, Any] | None:
        """Return a reel with its counts and, for a signed-in viewer, whether they like it.

        The reel's row (from the cache or Cassandra), its counts and the
        viewer's like are read at the same time.
        """
        queries: list[Awaitable[Any]] = [self.store.execute(SELECT_COUNTS, (reel_id,))]
        if viewer_id is not None:
            queries.append(self.store.execute(SELECT_LIKE, (reel_id, viewer_id)))
        queries.append(self._reel_row(reel_id))
        answers = await asyncio.gather(*queries, return_exceptions=True)
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer
        reel = answers[-1]
        if reel is None:
            return None
        row = answers[0][0] if answers[0] else None
        body: dict[str, Any] = {
            **reel,
            "version": row.version if row else 0,
            "counts": {
                "likes": row.likes if row else 0,
                "shares": row.shares if row else 0,
                "comments": row.comments if row else 0,
            },
        }
        if viewer_id is not None:
            body["liked"] = bool(answers[1])
        return body

    async def _reel_row(self, reel_id: str) -> dict[str, Any] | None:
        cached = self._reels.get(reel_id)
        if cached is not None:
            self._reels.move_to_end(reel_id)
            return cached
        rows = await self.store.execute(SELECT_REEL, (reel_id,))
        if not rows:
            # A miss is not cached: the reel may be created a moment later.
            return None
        reel = rows[0]
        found = {
            "reel_id": reel.reel_id,
            "creator_id": reel.creator_id,
            "caption": reel.caption or "",
            "hashtags": list(reel.hashtags or []),
            "media_url": reel.media_url,
            "created_at_ms": _ms(reel.created_at),
        }
        self._reels[reel_id] = found
        if len(self._reels) > self._reel_cache_max:
            self._reels.popitem(last=False)
        return found

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
