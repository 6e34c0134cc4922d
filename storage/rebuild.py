"""Rebuilding from the Kafka log: counts recomputed from events, and projections replayed.

These prove the log is the record: every count and every projection row can be
derived again from it alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field

from actors.state import ReelState, evolve
from reelwire.config import Settings
from reelwire.events import Counts, InvalidEvent, decode_event
from storage.cassandra import CassandraStore
from storage.kafka import read_partitions
from storage.projection import writes_for

logger = logging.getLogger(__name__)

REPLAY_CONCURRENCY = 64


@dataclass
class LogSummary:
    """Counts of every reel recomputed from the log, with the log's event and request totals."""

    counts: dict[str, Counts] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    events: int = 0
    undecodable: int = 0


async def summarize_log(settings: Settings) -> LogSummary:
    """Replay the whole events topic through the state machine and return every reel's counts."""
    summary = LogSummary()
    reels: dict[str, ReelState] = {}
    start = {partition: 0 for partition in range(settings.kafka_partitions)}
    async for record in read_partitions(settings, settings.events_topic, start):
        try:
            event = decode_event(record.value)
        except InvalidEvent:
            summary.undecodable += 1
            continue
        state = reels.setdefault(event.reel_id, ReelState(reel_id=event.reel_id))
        if evolve(state, event):
            summary.events += 1
            summary.requests[(event.user_id, event.request_id)] += 1
    for reel_id, state in reels.items():
        summary.counts[reel_id] = state.counts()
        summary.versions[reel_id] = state.version
    return summary


async def replay_into(settings: Settings, target: CassandraStore) -> int:
    """Project the whole log into the tables of ``target``; return the events applied.

    Raises StorageError if any write fails.
    """
    limit = asyncio.Semaphore(REPLAY_CONCURRENCY)
    applied = 0
    chunk: list[tuple[str, tuple[object, ...]]] = []

    async def write(cql: str, params: tuple[object, ...]) -> None:
        async with limit:
            await target.execute(cql, params)

    async def flush() -> None:
        await asyncio.gather(*(write(cql, params) for cql, params in chunk))
        chunk.clear()

    start = {partition: 0 for partition in range(settings.kafka_partitions)}
    async for record in read_partitions(settings, settings.events_topic, start):
        try:
            event = decode_event(record.value)
        except InvalidEvent:
            continue
        chunk.extend((item.cql, item.params) for item in writes_for(event))
        applied += 1
        if len(chunk) >= 8 * REPLAY_CONCURRENCY:
            await flush()
    await flush()
    logger.info("replayed %d events into keyspace %s", applied, target.settings.keyspace)
    return applied
