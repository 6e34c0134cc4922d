"""Fan-out of reel updates from Redis pub/sub to this gateway's sockets.

One Redis connection carries every channel of the gateway, and a channel is
subscribed only while the reel has a viewer here. Each update is encoded once
and the same text is queued on every viewer's socket. Count updates are
coalesced: at most one reel-state frame per reel per ``push_tick_ms``, always
carrying the newest version seen. Comment frames are never coalesced.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.connection import Connection
from gateway.protocol import event_frame, state_frame
from reelwire.config import Settings
from reelwire.events import InvalidEvent, decode_event

logger = logging.getLogger(__name__)

StateReader = Callable[[list[str]], Awaitable[list[dict[str, Any] | None]]]


class Fanout:
    def __init__(self, settings: Settings, redis: aioredis.Redis, read_states: StateReader) -> None:
        self.settings = settings
        self.redis = redis
        self.read_states = read_states
        self.viewers: dict[str, set[Connection]] = {}
        self.pushes = 0
        self._latest: dict[str, tuple[int, dict[str, int]]] = {}
        self._dirty: set[str] = set()
        self._pubsub: Any = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        # A control channel keeps the connection subscribed while no reel has viewers.
        await self._pubsub.subscribe(f"{self.settings.namespace}:gateways")
        self._tasks = [asyncio.ensure_future(self._listen()), asyncio.ensure_future(self._tick())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._pubsub is not None:
            await self._pubsub.aclose()

    async def subscribe(self, connection: Connection, reel_ids: list[str]) -> None:
        """Add a viewer to reels and send it their current state."""
        new_channels = []
        for reel_id in reel_ids:
            viewers = self.viewers.setdefault(reel_id, set())
            if not viewers:
                new_channels.append(self.settings.reel_channel(reel_id))
            viewers.add(connection)
            connection.subscriptions.add(reel_id)
        if new_channels:
            await self._pubsub.subscribe(*new_channels)

        # The snapshot comes after the channel subscription, so no update can fall between them.
        states = await self.read_states(reel_ids)
        for reel_id, state in zip(reel_ids, states):
            if state is not None:
                self._remember(reel_id, state["version"], state["counts"])
                connection.send_state(reel_id, state_frame(reel_id, state["version"], state["counts"]))

    async def unsubscribe(self, connection: Connection, reel_ids: list[str]) -> None:
        gone = []
        for reel_id in reel_ids:
            connection.subscriptions.discard(reel_id)
            viewers = self.viewers.get(reel_id)
            if viewers is None:
                continue
            viewers.discard(connection)
            if not viewers:
                del self.viewers[reel_id]
                self._latest.pop(reel_id, None)
                self._dirty.discard(reel_id)
                gone.append(self.settings.reel_channel(reel_id))
        if gone:
            await self._pubsub.unsubscribe(*gone)

    async def drop(self, connection: Connection) -> None:
        await self.unsubscribe(connection, list(connection.subscriptions))

    def _remember(self, reel_id: str, version: int, counts: dict[str, int]) -> bool:
        known = self._latest.get(reel_id)
        if known is not None and known[0] >= version:
            return False
        self._latest[reel_id] = (version, counts)
        return True

    def _on_message(self, channel: str, data: bytes) -> None:
        try:
            event = decode_event(data)
        except InvalidEvent as exc:
            logger.warning("ignoring undecodable message on %s: %s", channel, exc)
            return
        viewers = self.viewers.get(event.reel_id)
        if not viewers:
            return
        frame = event_frame(event)
        if frame is not None:
            for connection in list(viewers):
                connection.send(frame)
            self.pushes += len(viewers)
        if self._remember(event.reel_id, event.version, event.counts.to_dict()):
            self._dirty.add(event.reel_id)

    async def _listen(self) -> None:
        while True:
            try:
                message = await self._pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                logger.warning("Redis subscription failed (%s); resubscribing in 1 s", exc)
                await asyncio.sleep(1)
                await self._resubscribe()
                continue
            if message is None or message.get("type") != "message":
                continue
            channel = message["channel"]
            channel = channel.decode() if isinstance(channel, bytes) else channel
            self._on_message(channel, message["data"])

    async def _resubscribe(self) -> None:
        """Re-create the subscription and resend every reel's current state to its viewers.

        Updates published while the subscription was down are lost on Redis, so
        viewers get a fresh snapshot from the shards instead.
        """
        try:
            await self._pubsub.aclose()
            self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            channels = [self.settings.reel_channel(reel_id) for reel_id in self.viewers]
            await self._pubsub.subscribe(f"{self.settings.namespace}:gateways", *channels)
            reel_ids = list(self.viewers)
            if reel_ids:
                states = await self.read_states(reel_ids)
                for reel_id, state in zip(reel_ids, states):
                    if state is not None and self._remember(reel_id, state["version"], state["counts"]):
                        self._dirty.add(reel_id)
            logger.info("Redis subscription restored for %d reels", len(reel_ids))
        except (RedisError, OSError) as exc:
            logger.warning("resubscribing to Redis failed: %s", exc)

    async def _tick(self) -> None:
        interval = self.settings.push_tick_ms / 1000
        while True:
            await asyncio.sleep(interval)
            if not self._dirty:
                continue
            dirty, self._dirty = self._dirty, set()
            for reel_id in dirty:
                viewers = self.viewers.get(reel_id)
                latest = self._latest.get(reel_id)
                if not viewers or latest is None:
                    continue
                frame = state_frame(reel_id, latest[0], latest[1])
                for connection in list(viewers):
                    connection.send_state(reel_id, frame)
                self.pushes += len(viewers)
