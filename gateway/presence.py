"""Live viewer counts per reel, summed across every gateway through Redis.

Each gateway writes its own viewer count of a reel into the hash
``<ns>:viewers:<reel>`` (one field per gateway) and announces the change on
the reel's channel. Gateways are alive while their heartbeat in the sorted set
``<ns>:gateways`` is younger than ``DEAD_AFTER_S``. A gateway that dies stops
being counted when the others sweep, so within ``DEAD_AFTER_S + SWEEP_S``
seconds (20 s). Writes and recounts are batched per tick.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from reelwire.config import Settings

logger = logging.getLogger(__name__)

HEARTBEAT_S = 5.0
DEAD_AFTER_S = 15.0
SWEEP_S = 5.0
PRESENCE_PING = b"presence"


class Presence:
    def __init__(self, settings: Settings, redis: aioredis.Redis, on_total: Callable[[str, int], None]) -> None:
        self.settings = settings
        self.redis = redis
        self.on_total = on_total
        self.gateway_id = secrets.token_hex(6)
        self.local: dict[str, int] = {}
        self.totals: dict[str, int] = {}
        self._changed: set[str] = set()
        self._recount: set[str] = set()
        self._alive: set[str] = {self.gateway_id}
        self._gateways_key = f"{settings.namespace}:gateways"
        self._tasks: list[asyncio.Task[None]] = []

    def viewers_key(self, reel_id: str) -> str:
        return f"{self.settings.namespace}:viewers:{reel_id}"

    async def start(self) -> None:
        await self._heartbeat_once()
        await self._refresh_alive()
        self._tasks = [asyncio.ensure_future(self._heartbeat()), asyncio.ensure_future(self._sweep())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for reel_id in self.local:
                    pipe.hdel(self.viewers_key(reel_id), self.gateway_id)
                    pipe.publish(self.settings.reel_channel(reel_id), PRESENCE_PING)
                pipe.zrem(self._gateways_key, self.gateway_id)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            logger.warning("removing presence of gateway %s failed: %s", self.gateway_id, exc)

    def set_local(self, reel_id: str, viewers: int) -> None:
        if viewers:
            self.local[reel_id] = viewers
        else:
            self.local.pop(reel_id, None)
            self.totals.pop(reel_id, None)
        self._changed.add(reel_id)

    def on_ping(self, reel_id: str) -> None:
        self._recount.add(reel_id)

    async def flush(self) -> None:
        """Write this gateway's changed counts, then recount the reels others announced."""
        changed, self._changed = self._changed, set()
        recount, self._recount = self._recount, set()
        try:
            if changed:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for reel_id in changed:
                        viewers = self.local.get(reel_id, 0)
                        if viewers:
                            pipe.hset(self.viewers_key(reel_id), self.gateway_id, viewers)
                        else:
                            pipe.hdel(self.viewers_key(reel_id), self.gateway_id)
                        pipe.publish(self.settings.reel_channel(reel_id), PRESENCE_PING)
                    await pipe.execute()
            await self._recount_reels([reel_id for reel_id in recount | changed if reel_id in self.local])
        except (RedisError, OSError) as exc:
            logger.warning("presence update failed: %s", exc)
            self._changed |= changed

    async def _recount_reels(self, reel_ids: list[str]) -> None:
        if not reel_ids:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for reel_id in reel_ids:
                pipe.hgetall(self.viewers_key(reel_id))
            answers = await pipe.execute()
        for reel_id, fields in zip(reel_ids, answers):
            total = sum(int(count) for gateway, count in fields.items() if _text(gateway) in self._alive)
            if self.totals.get(reel_id) != total:
                self.totals[reel_id] = total
                self.on_total(reel_id, total)

    async def _heartbeat_once(self) -> None:
        await self.redis.zadd(self._gateways_key, {self.gateway_id: time.time()})

    async def _refresh_alive(self) -> None:
        cutoff = time.time() - DEAD_AFTER_S
        alive = await self.redis.zrangebyscore(self._gateways_key, cutoff, "+inf")
        self._alive = {_text(gateway) for gateway in alive} | {self.gateway_id}
        await self.redis.zremrangebyscore(self._gateways_key, "-inf", cutoff)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            try:
                await self._heartbeat_once()
            except (RedisError, OSError) as exc:
                logger.warning("gateway heartbeat failed: %s", exc)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_S)
            try:
                await self._refresh_alive()
                await self._recount_reels(list(self.local))
            except (RedisError, OSError) as exc:
                logger.warning("presence sweep failed: %s", exc)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
