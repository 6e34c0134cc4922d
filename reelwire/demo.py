"""A small demo data set: a few reels with likes, shares and comments."""

from __future__ import annotations

import logging

from gateway.service import GatewayService
from reelwire.events import Command, CommandKind, ReelContent

logger = logging.getLogger(__name__)

DEMO_REELS = (
    ("demo-alice", "Sunrise over the harbour, one minute of calm", ("sunrise", "travel", "calm")),
    ("demo-bob", "Three-ingredient pasta in under ten minutes", ("food", "pasta", "quick")),
    ("demo-carol", "Kickflip attempts, day 41", ("skate", "practice")),
    ("demo-dave", "Rainy street in Tokyo at night", ("travel", "tokyo", "rain")),
    ("demo-erin", "My cat discovers the robot vacuum", ("cats", "funny")),
)
DEMO_VIEWERS = ("demo-frank", "demo-grace", "demo-heidi")


async def seed_demo(service: GatewayService) -> list[str]:
    """Create the demo reels unless the feed already has reels; return the new reel ids."""
    if await service.feed("recent", 1, None):
        logger.info("demo data skipped: the feed already has reels")
        return []
    reel_ids = []
    for number, (creator, caption, tags) in enumerate(DEMO_REELS):
        content = ReelContent(caption=caption, hashtags=tags, media_url=f"https://media.example.com/demo/{number}.mp4")
        outcome = await service.create_reel(creator, f"demo-reel-{number}", content)
        reel_id = outcome.reel_id
        reel_ids.append(reel_id)
        for position, viewer in enumerate(DEMO_VIEWERS[: number % len(DEMO_VIEWERS) + 1]):
            await service.execute(Command(CommandKind.LIKE, reel_id, viewer, f"demo-like-{number}-{position}"))
        await service.execute(Command(
            CommandKind.COMMENT, reel_id, DEMO_VIEWERS[0], f"demo-comment-{number}", text="Love this one!"
        ))
        if number % 2 == 0:
            await service.execute(Command(CommandKind.SHARE, reel_id, DEMO_VIEWERS[1], f"demo-share-{number}"))
    logger.info("seeded %d demo reels", len(reel_ids))
    return reel_ids
