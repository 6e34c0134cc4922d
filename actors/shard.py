"""The interaction shard actor: owner of the state of every reel on its partitions.

Commands arrive in batches. The shard applies a batch to its reels, appends the
resulting events to Kafka in one go and answers only after Kafka has
acknowledged them (``acks=all``). Then it publishes the events to Redis for the
gateways. If an append fails, the in-memory state may be ahead of the log, so
the actor process exits; Ray restarts it, the new process rebuilds its reels
from the log, and Ray retries the batches that were in flight. Request ids make
those retries return the first outcome instead of applying twice.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from actors.state import ReelState, VersionGap, apply_command, evolve
from reelwire.config import Settings
from reelwire.errors import ReelwireError, StorageError, Unavailable
from reelwire.events import Command, Event, InvalidEvent, Outcome, decode_event, encode_event
from reelwire.hashing import partition_for, partitions_of
from reelwire.ids import IdGenerator
from reelwire.logs import configure_logging
from storage import redis_bus
from storage.kafka import make_producer, read_partitions

logger = logging.getLogger(__name__)


class InteractionShard:
    """Ray actor: the reels of the Kafka partitions ``p`` with ``p % shards == index``."""

    def __init__(self, index: int, settings: Settings) -> None:
        configure_logging()
        self.index = index
        self.settings = settings
        self.partitions = partitions_of(index, settings.shards, settings.kafka_partitions)
        self.reels: dict[str, ReelState] = {}
        self.ids = IdGenerator(node=index)
        self.events_appended = 0
        self.commands_applied = 0
        self._producer: AIOKafkaProducer | None = None
        self._redis: Any = None
        self._start_task: asyncio.Task[None] | None = None
        self._append_lock: asyncio.Lock | None = None

    async def ready(self) -> dict[str, Any]:
        """Wait until the shard has rebuilt its reels from the log; return its stats."""
        await self._ensure_started()
        return await self.stats()

    async def apply_batch(self, commands: list[Command]) -> list[Outcome]:
        """Apply commands in order and return one outcome each, once their events are durable.

        Raises Unavailable when the shard cannot start or the append failed; in
        the second case the process exits so that Ray rebuilds it from the log.
        """
        await self._ensure_started()
        assert self._append_lock is not None and self._producer is not None
        now_ms = int(time.time() * 1000)
        window_ms = self.settings.idempotency_window_s * 1000
        outcomes: list[Outcome] = []
        events: list[Event] = []
        pending: list[asyncio.Future[Any]] = []

        # State changes and send() calls happen under one lock, so the order of
        # events in each partition is the order in which they changed the state.
        async with self._append_lock:
            for command in commands:
                state = self.reels.get(command.reel_id) or ReelState(reel_id=command.reel_id)
                outcome, event = apply_command(state, command, now_ms=now_ms, new_id=self.ids.new_id, window_ms=window_ms)
                if state.exists:
                    self.reels[command.reel_id] = state
                outcomes.append(outcome)
                if event is not None:
                    events.append(event)
            try:
                pending = [await self._send(event) for event in events]
            except KafkaError as exc:
                self._abandon(exc)

        try:
            await asyncio.gather(*pending)
        except KafkaError as exc:
            self._abandon(exc)

        self.commands_applied += len(commands)
        self.events_appended += len(events)
        await redis_bus.publish_events(self._redis, self.settings, events)
        return outcomes

    async def get_states(self, reel_ids: list[str]) -> list[dict[str, Any] | None]:
        """Return the current counts and version of each reel, or None if unknown."""
        await self._ensure_started()
        result: list[dict[str, Any] | None] = []
        for reel_id in reel_ids:
            state = self.reels.get(reel_id)
            if state is None:
                result.append(None)
            else:
                result.append({"reel_id": reel_id, "version": state.version, "counts": state.counts().to_dict()})
        return result

    async def stats(self) -> dict[str, Any]:
        return {
            "shard": self.index,
            "partitions": self.partitions,
            "reels": len(self.reels),
            "commands_applied": self.commands_applied,
            "events_appended": self.events_appended,
            "pid": os.getpid(),
        }

    async def _send(self, event: Event) -> "asyncio.Future[Any]":
        assert self._producer is not None
        return await self._producer.send(
            self.settings.events_topic,
            value=encode_event(event),
            key=event.reel_id.encode("utf-8"),
            partition=partition_for(event.reel_id, self.settings.kafka_partitions),
        )

    def _abandon(self, exc: BaseException) -> None:
        logger.error("shard %d: Kafka append failed, restarting to rebuild from the log: %s", self.index, exc)
        # Exiting the process is the only way to drop state that may be ahead of
        # the log; Ray restarts the actor and retries the in-flight batches.
        os._exit(1)

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
        replayed = await self._rebuild_from_log()
        producer = make_producer(self.settings, client_id=f"{self.settings.namespace}-shard-{self.index}")
        try:
            await producer.start()
        except KafkaError as exc:
            await producer.stop()
            raise StorageError(f"shard {self.index} cannot reach Kafka: {exc}") from exc
        self._producer = producer
        self._redis = redis_bus.connect(self.settings)
        logger.info(
            "shard %d ready: %d reels rebuilt from %d events on partitions %s in %.2f s",
            self.index, len(self.reels), replayed, self.partitions, time.monotonic() - started,
        )

    async def _rebuild_from_log(self) -> int:
        replayed = 0
        start_offsets = {partition: 0 for partition in self.partitions}
        try:
            async for record in read_partitions(self.settings, self.settings.events_topic, start_offsets):
                try:
                    event = decode_event(record.value)
                except InvalidEvent as exc:
                    logger.warning("shard %d: skipping undecodable record at %d/%d: %s",
                                   self.index, record.partition, record.offset, exc)
                    continue
                state = self.reels.get(event.reel_id)
                if state is None:
                    state = self.reels[event.reel_id] = ReelState(reel_id=event.reel_id)
                try:
                    evolve(state, event)
                except VersionGap as exc:
                    logger.error("shard %d: %s", self.index, exc)
                    raise
                self.ids.observe(event.event_id)
                replayed += 1
        except KafkaError as exc:
            raise StorageError(f"shard {self.index} cannot read the log: {exc}") from exc
        return replayed
