"""Fan-out of reel updates from Redis pub/sub to this gateway's sockets.

One Redis connection carries every channel of the gateway, and a channel is
subscribed only while the reel has a viewer here. Each update is encoded once
and the same text is queued on every viewer's socket. Count updates and viewer
counts are coalesced: at most one frame of each per reel per ``push_tick_ms``,
and a socket that reads slowly gets only the newest. Comment frames are never
coalesced.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.connection import Connection
from gateway.presence import PRESENCE_PING, Presence
from gateway.protocol import dumps, event_frame, state_frame
from reelwire.config import Settings
from reelwire.events import Event, InvalidEvent, decode_event_list

logger = logging.getLogger(__name__)

# Maximum wait of a subscription change for the listener to pick it up, in seconds.
LISTEN_POLL_S = 0.02

StateReader = Callable[[list[str], dict[str, int] | None], Awaitable[list[dict[str, Any] | None]]]


class Fanout:
    def __init__(self, settings: Settings, redis: aioredis.Redis, read_states: StateReader) -> None:
        self.settings = settings
        self.redis = redis
        self.read_states = read_states
        self.viewers: dict[str, set[Connection]] = {}
        self.presence = Presence(settings, redis, self._on_viewer_total)
        self.pushes = 0
        self.resyncs = 0
        self._latest: dict[str, tuple[int, dict[str, int]]] = {}
        self._dirty: set[str] = set()
        self._viewer_totals_dirty: set[str] = set()
        self._pubsub: Any = None
        # Channel changes wait here for the listener task, which alone uses the
        # subscription connection: redis-py can hang when one task changes
        # subscriptions while another reads from the same connection.
        self._channel_changes: asyncio.Queue[tuple[str, list[str], asyncio.Future[None]]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._control_channel = f"{settings.namespace}:gateways"

    async def start(self) -> None:
        self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        # A control channel keeps the connection subscribed while no reel has viewers.
        await self._pubsub.subscribe(self._control_channel)
        await self.presence.start()
        self._tasks = [asyncio.ensure_future(self._listen()), asyncio.ensure_future(self._tick())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.presence.stop()
        if self._pubsub is not None:
            await self._pubsub.aclose()

    async def subscribe(
        self,
        connection: Connection,
        reel_ids: list[str],
        since: dict[str, int] | None = None,
        on_subscribed: Callable[[], None] | None = None,
    ) -> None:
        """Add a viewer to reels and bring it up to date.

        ``on_subscribed`` runs once the channels are subscribed, before any
        catch-up frame is queued, so that a client that sees its result has
        missed no update.

        Without ``since`` a reel's current state is sent. With a last-seen
        version, the viewer gets every comment event it missed and the current
        state, or a state frame marked ``"resync": true`` when the missed
        events are no longer available.
        """
        new_channels = []
        for reel_id in reel_ids:
            connection.hold(reel_id)
            viewers = self.viewers.setdefault(reel_id, set())
            if not viewers:
                new_channels.append(self.settings.reel_channel(reel_id))
            if connection not in viewers:
                viewers.add(connection)
                self.presence.set_local(reel_id, len(viewers))
            connection.subscriptions.add(reel_id)
        try:
            if new_channels:
                await self._change_channels("subscribe", new_channels)
            if on_subscribed is not None:
                on_subscribed()
            # The snapshot is read after the channel subscription, so no update falls between them.
            states = await self.read_states(reel_ids, since)
        except BaseException:
            for reel_id in reel_ids:
                connection.release(reel_id, 0, [], None)
            raise

        for reel_id, state in zip(reel_ids, states):
            if state is None:
                connection.release(reel_id, 0, [], None)
                continue
            version, counts = state["version"], state["counts"]
            self._remember(reel_id, version, counts)
            catch_up: list[str] = []
            resync = False
            if since is not None and reel_id in since:
                events: list[Event] | None = state.get("events")
                if events is None:
                    resync = True
                else:
                    catch_up = [frame for frame in (event_frame(event) for event in events) if frame is not None]
            frame = state_frame(reel_id, version, counts, resync=resync)
            connection.release(reel_id, version, catch_up, (version, frame))
            total = self.presence.totals.get(reel_id)
            if total is not None:
                connection.send_latest(f"viewers:{reel_id}", viewers_frame(reel_id, total))

    async def unsubscribe(self, connection: Connection, reel_ids: list[str]) -> None:
        gone = []
        for reel_id in reel_ids:
            connection.subscriptions.discard(reel_id)
            connection.forget(reel_id)
            viewers = self.viewers.get(reel_id)
            if viewers is None or connection not in viewers:
                continue
            viewers.discard(connection)
            self.presence.set_local(reel_id, len(viewers))
            if not viewers:
                del self.viewers[reel_id]
                self._latest.pop(reel_id, None)
                self._dirty.discard(reel_id)
                gone.append(self.settings.reel_channel(reel_id))
        if gone:
            try:
                await self._change_channels("unsubscribe", gone)
            except (RedisError, OSError) as exc:
                logger.warning("unsubscribing %d channels failed: %s", len(gone), exc)

    async def drop(self, connection: Connection) -> None:
        await self.unsubscribe(connection, list(connection.subscriptions))

    def _remember(self, reel_id: str, version: int, counts: dict[str, int]) -> bool:
        known = self._latest.get(reel_id)
        if known is not None and known[0] >= version:
            return False
        self._latest[reel_id] = (version, counts)
        return True

    def _on_viewer_total(self, reel_id: str, total: int) -> None:
        self._viewer_totals_dirty.add(reel_id)

    def _reel_of_channel(self, channel: str) -> str:
        return channel.rsplit(":", 1)[-1]

    def _on_message(self, channel: str, data: bytes) -> None:
        if data == PRESENCE_PING:
            self.presence.on_ping(self._reel_of_channel(channel))
            return
        try:
            events = decode_event_list(data)
        except InvalidEvent as exc:
            logger.warning("ignoring undecodable message on %s: %s", channel, exc)
            return
        for event in events:
            viewers = self.viewers.get(event.reel_id)
            if not viewers:
                continue
            frame = event_frame(event)
            if frame is not None:
                for connection in list(viewers):
                    connection.send_event(event.reel_id, event.version, frame)
                self.pushes += len(viewers)
            if self._remember(event.reel_id, event.version, event.counts.to_dict()):
                self._dirty.add(event.reel_id)

    async def _change_channels(self, action: str, channels: list[str]) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._channel_changes.put_nowait((action, channels, done))
        await done

    async def _apply_channel_changes(self) -> None:
        while not self._channel_changes.empty():
            action, channels, done = self._channel_changes.get_nowait()
            try:
                if action == "subscribe":
                    await self._pubsub.subscribe(*channels)
                else:
                    await self._pubsub.unsubscribe(*channels)
            except (RedisError, OSError) as exc:
                if not done.done():
                    done.set_exception(exc)
                raise
            if not done.done():
                done.set_result(None)

    async def _listen(self) -> None:
        while True:
            try:
                await self._apply_channel_changes()
                message = await self._pubsub.get_message(timeout=LISTEN_POLL_S)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                logger.warning("Redis subscription lost (%s); resubscribing", exc)
                await self._resubscribe()
                continue
            if message is None or message.get("type") != "message":
                continue
            channel = message["channel"]
            channel = channel.decode() if isinstance(channel, bytes) else channel
            self._on_message(channel, message["data"])

    async def _resubscribe(self) -> None:
        """Re-create the subscription, then resend every watched reel's current state.

        Updates published while the subscription was down never reach this
        gateway, so its viewers get a fresh state from the shards, marked
        ``"resync": true`` so that clients reload comments they may have missed.
        """
        while True:
            try:
                await self._pubsub.aclose()
                self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                channels = [self.settings.reel_channel(reel_id) for reel_id in self.viewers]
                await self._pubsub.subscribe(self._control_channel, *channels)
                break
            except (RedisError, OSError) as exc:
                logger.warning("resubscribing to Redis failed (%s); retrying in 1 s", exc)
                await asyncio.sleep(1)
        self.resyncs += 1
        reel_ids = list(self.viewers)
        if not reel_ids:
            return
        try:
            states = await self.read_states(reel_ids, None)
        except Exception as exc:  # noqa: BLE001 - the next update or resync repairs the viewers
            logger.warning("reading reel states after resubscribing failed: %s", exc)
            return
        for reel_id, state in zip(reel_ids, states):
            if state is None:
                continue
            self._remember(reel_id, state["version"], state["counts"])
            frame = state_frame(reel_id, state["version"], state["counts"], resync=True)
            for connection in list(self.viewers.get(reel_id, ())):
                connection.send(frame)
        logger.info("Redis subscription restored; resynchronized %d reels", len(reel_ids))

    async def _tick(self) -> None:
        interval = self.settings.push_tick_ms / 1000
        last_sweep = time.monotonic()
        while True:
            await asyncio.sleep(interval)
            try:
                self._push_states()
                await self.presence.flush()
                self._push_viewer_totals()
                # A socket that stalled after its last frame was queued is found here.
                if time.monotonic() - last_sweep >= 1.0:
                    last_sweep = time.monotonic()
                    for connection in {c for viewers in self.viewers.values() for c in viewers}:
                        connection.close_if_stalled()
            except Exception:
                logger.exception("fan-out tick failed")

    def _push_states(self) -> None:
        if not self._dirty:
            return
        dirty, self._dirty = self._dirty, set()
        for reel_id in dirty:
            viewers = self.viewers.get(reel_id)
            latest = self._latest.get(reel_id)
            if not viewers or latest is None:
                continue
            frame = state_frame(reel_id, latest[0], latest[1])
            for connection in list(viewers):
                connection.send_state(reel_id, latest[0], frame)
            self.pushes += len(viewers)

    def _push_viewer_totals(self) -> None:
        if not self._viewer_totals_dirty:
            return
        dirty, self._viewer_totals_dirty = self._viewer_totals_dirty, set()
        for reel_id in dirty:
            viewers = self.viewers.get(reel_id)
            total = self.presence.totals.get(reel_id)
            if not viewers or total is None:
                continue
            frame = viewers_frame(reel_id, total)
            key = f"viewers:{reel_id}"
            for connection in list(viewers):
                connection.send_latest(key, frame)
            self.pushes += len(viewers)


def viewers_frame(reel_id: str, total: int) -> str:
    return dumps({"type": "reel.viewers", "reel_id": reel_id, "viewers": total})
