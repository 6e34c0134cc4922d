"""Shard snapshots in Cassandra: one row per reel, one checkpoint per Kafka partition.

A checkpoint is the offset before which every event of its partition is
included in the snapshot of the event's reel. A restarted shard therefore reads only the
log after its checkpoints, and loads the snapshot of each reel it meets.
Snapshots are written before the checkpoint that relies on them, so a crash
between the two only makes the next replay a little longer.
"""

from __future__ import annotations

import asyncio
from typing import Any

from storage.cassandra import CassandraStore

SELECT_SNAPSHOT = "SELECT version, state FROM {ks}.reel_snapshots WHERE reel_id = ?"
INSERT_SNAPSHOT = "INSERT INTO {ks}.reel_snapshots (reel_id, version, state) VALUES (?, ?, ?) USING TIMESTAMP ?"
SELECT_CHECKPOINT = "SELECT next_offset FROM {ks}.partition_checkpoints WHERE partition = ?"
INSERT_CHECKPOINT = "INSERT INTO {ks}.partition_checkpoints (partition, next_offset) VALUES (?, ?)"
WRITE_CONCURRENCY = 32


class SnapshotStore:
    def __init__(self, store: CassandraStore) -> None:
        self.store = store

    async def load(self, reel_id: str) -> bytes | None:
        rows = await self.store.execute(SELECT_SNAPSHOT, (reel_id,))
        return rows[0].state if rows else None

    async def load_many(self, reel_ids: list[str]) -> dict[str, bytes]:
        blobs = await asyncio.gather(*(self.load(reel_id) for reel_id in reel_ids))
        return {reel_id: blob for reel_id, blob in zip(reel_ids, blobs) if blob is not None}

    async def save(self, snapshots: list[tuple[str, int, bytes]]) -> None:
        """Write (reel id, version, blob) rows; a newer version always wins over an older one."""
        limit = asyncio.Semaphore(WRITE_CONCURRENCY)

        async def write(reel_id: str, version: int, blob: bytes) -> None:
            async with limit:
                await self.store.execute(INSERT_SNAPSHOT, (reel_id, version, blob, version))

        await asyncio.gather(*(write(*snapshot) for snapshot in snapshots))

    async def checkpoints(self, partitions: list[int]) -> dict[int, int]:
        """Return the next offset to replay from for each partition (0 when none is stored)."""
        rows: list[list[Any]] = await asyncio.gather(
            *(self.store.execute(SELECT_CHECKPOINT, (partition,)) for partition in partitions)
        )
        return {partition: (found[0].next_offset if found else 0) for partition, found in zip(partitions, rows)}

    async def save_checkpoints(self, offsets: dict[int, int]) -> None:
        await asyncio.gather(
            *(self.store.execute(INSERT_CHECKPOINT, (partition, offset)) for partition, offset in offsets.items())
        )
