"""The feed shard actor: recent and trending reels for one slice of the partitions.

Each feed shard reads its partitions of the events topic from the beginning
and then follows them, so it rebuilds itself from the log on every start. The
gateway queries every feed shard and merges the results.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from actors.feed_index import FeedIndex
from reelwire.config import Settings
from reelwire.events import InvalidEvent, decode_event
from reelwire.hashing import partitions_of
from reelwire.logs import configure_logging
from storage.kafka import topic_partitions

logger = logging.getLogger(__name__)


class FeedShard:
    """Ray actor: the feed projection of partitions ``p`` with ``p % feed_shards == index``."""

    def __init__(self, index: int, settings: Settings) -> None:
        configure_logging()
        self.index = index
        self.settings = settings
        self.partitions = partitions_of(index, settings.feed_shards, settings.kafka_partitions)
        self.feed = FeedIndex()
        self.events_seen = 0
        self._positions: dict[int, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._caught_up: asyncio.Event | None = None

    async def ready(self) -> dict[str, Any]:
        """Start following the log and wait until the log as of now is applied."""
        if self._caught_up is None:
            self._caught_up = asyncio.Event()
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._follow())
        await self._caught_up.wait()
        return {"feed_shard": self.index, "partitions": self.partitions, "reels": len(self.feed.items)}

    async def recent(self, limit: int, before_ms: int | None = None) -> list[dict[str, Any]]:
        return [item.to_dict() for item in self.feed.recent(limit, before_ms)]

    async def trending(self, limit: int) -> list[dict[str, Any]]:
        now_ms = int(time.time() * 1000)
        return [dict(item.to_dict(), score=score) for score, item in self.feed.trending(limit, now_ms)]

    async def _follow(self) -> None:
        while True:
            try:
                await self._consume()
            except asyncio.CancelledError:
                raise
            except KafkaError as exc:
                logger.warning("feed shard %d: Kafka failed (%s); reconnecting in 1 s", self.index, exc)
                await asyncio.sleep(1)

    async def _consume(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            enable_auto_commit=False,
            group_id=None,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            partitions = topic_partitions(self.settings.events_topic, self.partitions)
            consumer.assign(partitions)
            # A reconnect resumes where the projection stopped, not at the start.
            for tp in partitions:
                if tp.partition in self._positions:
                    consumer.seek(tp, self._positions[tp.partition])
                else:
                    await consumer.seek_to_beginning(tp)
            ends = await consumer.end_offsets(partitions)
            while True:
                if self._caught_up is not None and not self._caught_up.is_set():
                    positions = {tp: await consumer.position(tp) for tp in partitions}
                    if all(positions[tp] >= ends[tp] for tp in partitions):
                        self._caught_up.set()
                batches = await consumer.getmany(timeout_ms=500, max_records=1000)
                for tp, records in batches.items():
                    for record in records:
                        try:
                            self.feed.apply(decode_event(record.value))
                        except InvalidEvent as exc:
                            logger.warning("feed shard %d: skipping record %d/%d: %s",
                                           self.index, record.partition, record.offset, exc)
                        self.events_seen += 1
                    self._positions[tp.partition] = records[-1].offset + 1
        finally:
            await consumer.stop()
