"""The interaction shard actor: owner of the state of every reel on its partitions.

Commands arrive in batches. The shard applies a batch to its reels, appends the
resulting events to Kafka in one go and returns the outcomes once Kafka has
acknowledged them (``acks=all``). Then it publishes the events to Redis for the
gateways. If an append fails, the in-memory state may be ahead of the log, so
the actor process exits. Ray restarts it, the new process rebuilds its reels
from its snapshots and the log after them, and Ray retries the batches that
were in flight. Request ids make those retries return the first outcome
instead of applying twice.

Every ``snapshot_interval_s`` the shard writes the reels that changed to
Cassandra, then a checkpoint per partition. Reels that stay idle, or that
exceed ``max_reels_per_shard``, leave memory once their snapshot is written,
and are loaded again from it on demand.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import OrderedDict, deque
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from actors.snapshot import copy_for_snapshot, decode_state, encode_state
from actors.state import ReelState, VersionGap, apply_command, evolve
from reelwire.config import Settings
from reelwire.errors import ReelwireError, StorageError, Unavailable
from reelwire.events import Command, Counts, Event, InvalidEvent, Outcome, decode_event, encode_event
from reelwire.hashing import partition_for, partitions_of
from reelwire.ids import IdGenerator
from reelwire.logs import configure_logging
from storage import redis_bus
from storage.cassandra import CassandraStore
from storage.kafka import make_producer, read_partitions
from storage.snapshots import SnapshotStore

logger = logging.getLogger(__name__)


class InteractionShard:
    """Ray actor: the reels of the Kafka partitions ``p`` with ``p % shards == index``."""

    def __init__(self, index: int, settings: Settings) -> None:
        configure_logging()
        self.index = index
        self.settings = settings
        self.partitions = partitions_of(index, settings.shards, settings.kafka_partitions)
        # Least recently used first, so eviction takes from the front.
        self.reels: OrderedDict[str, ReelState] = OrderedDict()
        self.ids = IdGenerator(node=index)
        self.events_appended = 0
        self.commands_applied = 0
        self.reels_evicted = 0
        self.snapshots_written = 0
        self._dirty: set[str] = set()
        self._recent: dict[str, deque[Event]] = {}
        # Version and counts of each reel as of its last event that Kafka has
        # acknowledged. Reads use this view, so they never show a change that
        # could still be lost.
        self._acked: dict[str, tuple[int, Counts]] = {}
        self._next_offset: dict[int, int] = {}
        self._in_flight = 0
        self._drained: asyncio.Condition | None = None
        self._producer: AIOKafkaProducer | None = None
        self._redis: Any = None
        self._store: CassandraStore | None = None
        self._snapshots: SnapshotStore | None = None
        self._start_task: asyncio.Task[None] | None = None
        self._snapshot_task: asyncio.Task[None] | None = None
        self._append_lock: asyncio.Lock | None = None

    async def ready(self) -> dict[str, Any]:
        """Wait until the shard has rebuilt its reels; return its stats."""
        await self._ensure_started()
        return await self.stats()

    async def apply_batch(self, commands: list[Command]) -> list[Outcome]:
        """Apply commands in order and return one outcome each, once their events are durable.

        Raises Unavailable when the shard cannot start or a reel cannot be
        loaded. When the append fails, the process exits so that Ray rebuilds
        it from the log and retries the batch.
        """
        await self._ensure_started()
        assert self._append_lock is not None
        assert self._producer is not None
        assert self._drained is not None
        await self._preload({command.reel_id for command in commands})
        now_ms = int(time.time() * 1000)
        window_ms = self.settings.idempotency_window_s * 1000
        outcomes: list[Outcome] = []
        events: list[Event] = []
        pending: list[tuple[int, int, asyncio.Future[Any]]] = []
        acked: list[Any] = []

        # State changes and send() calls happen under one lock, so the order of
        # events in each partition is the order in which they changed the state.
        async with self._append_lock:
            await self._preload({command.reel_id for command in commands})
            for command in commands:
                state = self.reels.get(command.reel_id) or ReelState(reel_id=command.reel_id)
                outcome, event = apply_command(
                    state, command, now_ms=now_ms, new_id=self.ids.new_id, window_ms=window_ms,
                    max_requests=self.settings.idempotency_max_per_reel,
                )
                if state.exists:
                    self.reels[command.reel_id] = state
                    self.reels.move_to_end(command.reel_id)
                outcomes.append(outcome)
                if event is not None:
                    events.append(event)
                    self._dirty.add(event.reel_id)
            encoded = [encode_event(event) for event in events]
            try:
                pending = await self._append(events, encoded)
            except KafkaError as exc:
                self._abandon(exc)
            self._in_flight += 1

        try:
            acked = await asyncio.gather(*(future for _, _, future in pending))
        except KafkaError as exc:
            self._abandon(exc)
        finally:
            async with self._drained:
                self._in_flight -= 1
                self._drained.notify_all()

        for (partition, records, _), metadata in zip(pending, acked):
            # A batch's metadata carries the offset of its first record.
            self._next_offset[partition] = max(self._next_offset.get(partition, 0), metadata.offset + records)
        for event in events:
            self._remember_event(event)
            known = self._acked.get(event.reel_id)
            if known is None or known[0] < event.version:
                self._acked[event.reel_id] = (event.version, event.counts)
        self.commands_applied += len(commands)
        self.events_appended += len(events)
        await redis_bus.publish_events(self._redis, self.settings, events, encoded)
        return outcomes

    async def get_states(
        self, reel_ids: list[str], since: dict[str, int] | None = None
    ) -> list[dict[str, Any] | None]:
        """Return the current counts and version of each reel, or None if it does not exist.

        For a reel named in ``since``, the entry also has ``events``: the
        acknowledged events after that version, oldest first, or None when they
        are no longer all in memory and the client needs a fresh snapshot.
        """
        await self._ensure_started()
        await self._preload(set(reel_ids))
        result: list[dict[str, Any] | None] = []
        for reel_id in reel_ids:
            acked = self._acked.get(reel_id)
            if acked is None:
                result.append(None)
                continue
            version, counts = acked
            entry: dict[str, Any] = {"reel_id": reel_id, "version": version, "counts": counts.to_dict()}
            if since is not None and reel_id in since:
                entry["events"] = self._events_since(reel_id, since[reel_id], version)
            result.append(entry)
        return result

    async def snapshot_now(self) -> int:
        """Write a snapshot of every changed reel and a checkpoint; return the reels written."""
        await self._ensure_started()
        return await self._checkpoint()

    async def stats(self) -> dict[str, Any]:
        return {
            "shard": self.index,
            "partitions": self.partitions,
            "reels_in_memory": len(self.reels),
            "reels_evicted": self.reels_evicted,
            "commands_applied": self.commands_applied,
            "events_appended": self.events_appended,
            "snapshots_written": self.snapshots_written,
            "pid": os.getpid(),
        }

    async def _append(self, events: list[Event], encoded: list[bytes]) -> list[tuple[int, int, asyncio.Future[Any]]]:
        """Hand events to the producer as one record batch per partition, in order.

        Returns (partition, records, future) per batch. Building batches here
        costs far less than one ``send`` per record.
        """
        assert self._producer is not None
        by_partition: dict[int, list[tuple[bytes, bytes]]] = {}
        for event, value in zip(events, encoded):
            partition = partition_for(event.reel_id, self.settings.kafka_partitions)
            by_partition.setdefault(partition, []).append((event.reel_id.encode("utf-8"), value))

        pending = []
        for partition, records in by_partition.items():
            batch = self._producer.create_batch()
            count = 0
            for key, value in records:
                if batch.append(key=key, value=value, timestamp=None) is None:
                    future = await self._producer.send_batch(batch, self.settings.events_topic, partition=partition)
                    pending.append((partition, count, future))
                    batch = self._producer.create_batch()
                    count = 0
                    if batch.append(key=key, value=value, timestamp=None) is None:
                        raise KafkaError(f"an event of {len(value)} bytes exceeds the producer's batch size")
                count += 1
            future = await self._producer.send_batch(batch, self.settings.events_topic, partition=partition)
            pending.append((partition, count, future))
        return pending

    def _remember_event(self, event: Event) -> None:
        if self.settings.resume_events <= 0:
            return
        recent = self._recent.get(event.reel_id)
        if recent is None:
            recent = self._recent[event.reel_id] = deque(maxlen=self.settings.resume_events)
        recent.append(event)

    def _events_since(self, reel_id: str, since: int, current: int) -> list[Event] | None:
        if since == current:
            return []
        if since > current or since < 0:
            return None
        recent = self._recent.get(reel_id)
        # The buffer must start at or before the first missed version, or there is a gap.
        if not recent or recent[0].version > since + 1:
            return None
        return [event for event in recent if event.version > since]

    def _abandon(self, exc: BaseException) -> None:
        logger.error("shard %d: Kafka append failed, restarting to rebuild from the log: %s", self.index, exc)
        # Exiting the process is the only way to drop state that may be ahead of
        # the log; Ray restarts the actor and retries the in-flight batches.
        os._exit(1)

    async def _preload(self, reel_ids: set[str]) -> None:
        """Load the snapshots of reels that are not in memory."""
        missing = [reel_id for reel_id in reel_ids if reel_id not in self.reels]
        if not missing:
            return
        assert self._snapshots is not None
        try:
            blobs = await self._snapshots.load_many(missing)
        except StorageError as exc:
            raise Unavailable(f"shard {self.index} cannot load reels: {exc.message}", code="shard_unavailable") from exc
        for reel_id, blob in blobs.items():
            # Another batch may have loaded and changed the reel meanwhile; keep that copy.
            if reel_id not in self.reels:
                state = self.reels[reel_id] = decode_state(blob)
                self._acked[reel_id] = (state.version, state.counts())

    async def _ensure_started(self) -> None:
        if self._start_task is None or (self._start_task.done() and self._start_task.exception() is not None):
            self._start_task = asyncio.ensure_future(self._start())
        try:
            await asyncio.shield(self._start_task)
        except ReelwireError:
            raise
        except Exception as exc:
            raise Unavailable(f"shard {self.index} failed to start: {exc}", code="shard_unavailable") from exc

    async def _start(self) -> None:
        started = time.monotonic()
        self._append_lock = asyncio.Lock()
        self._drained = asyncio.Condition()
        if self._store is None:
            self._store = CassandraStore(self.settings)
            await asyncio.to_thread(self._store.connect)
            self._snapshots = SnapshotStore(self._store)
        replayed = await self._rebuild()
        producer = make_producer(self.settings, client_id=f"{self.settings.namespace}-shard-{self.index}")
        try:
            await producer.start()
        except KafkaError as exc:
            await producer.stop()
            raise StorageError(f"shard {self.index} cannot reach Kafka: {exc}") from exc
        self._producer = producer
        self._redis = redis_bus.connect(self.settings)
        self._snapshot_task = asyncio.ensure_future(self._snapshot_loop())
        logger.info(
            "shard %d ready: %d reels rebuilt from %d events after the checkpoints on partitions %s in %.2f s",
            self.index, len(self.reels), replayed, self.partitions, time.monotonic() - started,
        )

    async def _rebuild(self) -> int:
        """Load snapshots and replay the log after the checkpoints; return the events replayed."""
        assert self._snapshots is not None
        replayed = 0
        start_offsets = await self._snapshots.checkpoints(self.partitions)
        self._next_offset = dict(start_offsets)
        try:
            async for record in read_partitions(self.settings, self.settings.events_topic, start_offsets):
                self._next_offset[record.partition] = record.offset + 1
                try:
                    event = decode_event(record.value)
                except InvalidEvent as exc:
                    logger.warning("shard %d: skipping undecodable record at %d/%d: %s",
                                   self.index, record.partition, record.offset, exc)
                    continue
                if event.reel_id not in self.reels:
                    await self._preload({event.reel_id})
                state = self.reels.setdefault(event.reel_id, ReelState(reel_id=event.reel_id))
                try:
                    if evolve(state, event):
                        self._dirty.add(event.reel_id)
                        self._remember_event(event)
                        self._acked[event.reel_id] = (state.version, event.counts)
                except VersionGap as exc:
                    logger.error("shard %d: %s", self.index, exc)
                    raise
                self.ids.observe(event.event_id)
                replayed += 1
        except KafkaError as exc:
            raise StorageError(f"shard {self.index} cannot read the log: {exc}") from exc
        return replayed

    async def _snapshot_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.snapshot_interval_s)
            try:
                await self._checkpoint()
            except StorageError as exc:
                logger.warning("shard %d: snapshot failed, retrying next interval: %s", self.index, exc.message)
            except Exception:
                logger.exception("shard %d: snapshot failed", self.index)

    async def _checkpoint(self) -> int:
        assert self._append_lock is not None
        assert self._drained is not None
        assert self._snapshots is not None

        # Under the lock no batch can start, and once in-flight appends are
        # acknowledged every state change has a known log offset.
        async with self._append_lock:
            async with self._drained:
                await self._drained.wait_for(lambda: self._in_flight == 0)
            offsets = dict(self._next_offset)
            dirty = [reel_id for reel_id in self._dirty if reel_id in self.reels]
            keep = self.settings.snapshot_requests_per_reel
            copies = [copy_for_snapshot(self.reels[reel_id], keep) for reel_id in dirty]
            self._dirty.clear()

        # Encoding runs in a thread and outside the lock, so batches go on meanwhile.
        blobs = await asyncio.to_thread(lambda: [(copy.reel_id, copy.version, encode_state(copy)) for copy in copies])
        try:
            await self._snapshots.save(blobs)
            await self._snapshots.save_checkpoints(offsets)
        except StorageError:
            self._dirty.update(dirty)
            raise
        self.snapshots_written += len(blobs)

        async with self._append_lock:
            self._evict()
        return len(blobs)

    def _evict(self) -> None:
        """Drop reels whose snapshot is current and that are idle or over the memory cap."""
        cutoff_ms = int(time.time() * 1000) - self.settings.reel_idle_s * 1000
        over = len(self.reels) - self.settings.max_reels_per_shard
        for reel_id in list(self.reels):
            if reel_id in self._dirty:
                continue
            state = self.reels[reel_id]
            idle = _last_touched_ms(state) < cutoff_ms
            if not idle and over <= 0:
                break
            del self.reels[reel_id]
            self._recent.pop(reel_id, None)
            self._acked.pop(reel_id, None)
            self.reels_evicted += 1
            over -= 1


def _last_touched_ms(state: ReelState) -> int:
    if state.requests:
        return next(reversed(state.requests.values())).at_ms
    return state.created_at_ms
