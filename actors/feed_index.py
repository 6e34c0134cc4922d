"""The feed projection of one feed shard, and trending scores; free of I/O.

Trending uses a gravity score in the style of Hacker News: engagement divided
by a power of age, so a new reel with a burst of likes outranks an old one with
more likes in total.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any

from reelwire.events import Counts, Event, EventType

SHARE_WEIGHT = 2.0
COMMENT_WEIGHT = 3.0
GRAVITY = 1.5
AGE_OFFSET_HOURS = 2.0


@dataclass(slots=True)
class FeedItem:
    reel_id: str
    creator_id: str
    caption: str
    hashtags: list[str]
    media_url: str
    created_at_ms: int
    version: int = 1
    counts: Counts = field(default_factory=Counts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "reel_id": self.reel_id,
            "creator_id": self.creator_id,
            "caption": self.caption,
            "hashtags": self.hashtags,
            "media_url": self.media_url,
            "created_at_ms": self.created_at_ms,
            "version": self.version,
            "counts": self.counts.to_dict(),
        }


def trending_score(counts: Counts, created_at_ms: int, now_ms: int) -> float:
    engagement = counts.likes + SHARE_WEIGHT * counts.shares + COMMENT_WEIGHT * counts.comments
    age_hours = max(0.0, (now_ms - created_at_ms) / 3_600_000)
    return engagement / (age_hours + AGE_OFFSET_HOURS) ** GRAVITY


class FeedIndex:
    """Reel summaries of one feed shard, kept current from the event log."""

    def __init__(self) -> None:
        self.items: dict[str, FeedItem] = {}

    def apply(self, event: Event) -> None:
        if event.type is EventType.REEL_CREATED:
            data = event.data
            self.items[event.reel_id] = FeedItem(
                reel_id=event.reel_id,
                creator_id=event.user_id,
                caption=str(data.get("caption", "")),
                hashtags=[str(tag) for tag in data.get("hashtags", [])],
                media_url=str(data.get("media_url", "")),
                created_at_ms=event.at_ms,
                version=event.version,
                counts=event.counts,
            )
            return
        item = self.items.get(event.reel_id)
        if item is not None and event.version > item.version:
            item.version = event.version
            item.counts = event.counts

    def recent(self, limit: int, before_ms: int | None = None) -> list[FeedItem]:
        """Return the newest reels, newest first, created strictly before ``before_ms``."""
        candidates = (
            item for item in self.items.values() if before_ms is None or item.created_at_ms < before_ms
        )
        return heapq.nlargest(limit, candidates, key=lambda item: (item.created_at_ms, item.reel_id))

    def trending(self, limit: int, now_ms: int) -> list[tuple[float, FeedItem]]:
        """Return the top reels by trending score, highest first, with their scores."""
        scored = ((trending_score(item.counts, item.created_at_ms, now_ms), item) for item in self.items.values())
        return heapq.nlargest(limit, scored, key=lambda pair: (pair[0], pair[1].reel_id))
