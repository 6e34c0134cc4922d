"""Redis pub/sub: the bus that carries reel updates from shards to every gateway.

Each reel has one channel. A message is a JSON array of the reel's events from
one shard batch, each exactly as it is in Kafka, so gateways decode one format. Delivery is best-effort: a gateway that misses
messages catches up from the shard's current state (see gateway.fanout).
"""

from __future__ import annotations

import logging

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from reelwire.config import Settings
from reelwire.events import Event, encode_event, encode_event_list

logger = logging.getLogger(__name__)


REDIS_POOL_SIZE = 64


def connect(settings: Settings) -> aioredis.Redis:
    """Return a client whose pool waits for a free connection instead of failing when all are busy."""
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url, max_connections=REDIS_POOL_SIZE, timeout=10, socket_connect_timeout=5,
        health_check_interval=15,
    )
    return aioredis.Redis(connection_pool=pool)


async def publish_events(
    client: aioredis.Redis, settings: Settings, events: list[Event], encoded: list[bytes] | None = None
) -> bool:
    """Publish events in one round trip, one message per reel; return False on failure.

    A message is a JSON array of the reel's events in version order.
    ``encoded`` may carry the events already encoded. A failure is logged,
    not raised: the events are already durable in Kafka.
    """
    if not events:
        return True
    values = encoded if encoded is not None else [encode_event(event) for event in events]
    by_reel: dict[str, list[bytes]] = {}
    for event, value in zip(events, values):
        by_reel.setdefault(event.reel_id, []).append(value)
    try:
        async with client.pipeline(transaction=False) as pipe:
            for reel_id, reel_values in by_reel.items():
                pipe.publish(settings.reel_channel(reel_id), encode_event_list(reel_values))
            await pipe.execute()
    except (RedisError, OSError) as exc:
        logger.warning("publishing %d events to Redis failed: %s", len(events), exc)
        return False
    return True
