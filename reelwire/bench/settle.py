"""Waiting for the projections to catch up, so that each phase starts on a settled system."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from reelwire.config import Settings
from storage.kafka import topic_partitions

PROJECTION_GROUPS = ("cassandra", "search")
POLL_S = 0.5


async def _backlog(settings: Settings, admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer) -> int:
    """Return how many events the Cassandra and search projections have yet to commit."""
    partitions = topic_partitions(settings.events_topic, range(settings.kafka_partitions))
    ends = await consumer.end_offsets(partitions)
    backlog = 0
    for suffix in PROJECTION_GROUPS:
        committed = await admin.list_consumer_group_offsets(f"{settings.namespace}.{suffix}")
        for partition in partitions:
            done = committed[partition].offset if partition in committed else 0
            backlog += max(0, ends[partition] - max(0, done))
    return backlog


async def wait_until_projected(settings: Settings, timeout_s: float) -> tuple[float, int]:
    """Wait until both projections have committed every event, for up to ``timeout_s``.

    Returns the seconds waited and the backlog left (0 unless the wait timed out).
    """
    started = time.monotonic()
    client_id = f"{settings.namespace}-settle"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id=client_id)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, client_id=client_id, group_id=None,
                                enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        backlog = await _backlog(settings, admin, consumer)
        while backlog > 0 and time.monotonic() - started < timeout_s:
            await asyncio.sleep(POLL_S)
            backlog = await _backlog(settings, admin, consumer)
    finally:
        await consumer.stop()
        await admin.close()
    return time.monotonic() - started, backlog
