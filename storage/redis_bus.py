"""Redis pub/sub: the bus that carries reel updates from shards to every gateway.

Each reel has one channel. A message is the event exactly as it is in Kafka, so
gateways decode one format. Delivery is best-effort: a gateway that misses
messages catches up from the shard's current state (see gateway.fanout).
"""

from __future__ import annotations

import logging

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from reelwire.config import Settings
from reelwire.events import Event, encode_event

logger = logging.getLogger(__name__)


def connect(settings: Settings) -> aioredis.Redis:
    return aioredis.Redis.from_url(settings.redis_url, socket_connect_timeout=5, health_check_interval=15)


async def publish_events(client: aioredis.Redis, settings: Settings, events: list[Event]) -> bool:
    """Publish events to their reels' channels in one round trip; return False on failure.

    A failure is logged, not raised: the events are already durable in Kafka.
    """
    if not events:
        return True
    try:
        async with client.pipeline(transaction=False) as pipe:
            for event in events:
                pipe.publish(settings.reel_channel(event.reel_id), encode_event(event))
            await pipe.execute()
    except (RedisError, OSError) as exc:
        logger.warning("publishing %d events to Redis failed: %s", len(events), exc)
        return False
    return True
