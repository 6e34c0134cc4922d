"""The gateway's handle on the rest of the system: shards, feeds, search and the read model.

Commands go to shard actors through the batcher; queries read projections
(Cassandra, the feed shards and the search actor). This is the CQRS split.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from gateway.batcher import CommandBatcher
from gateway.fanout import Fanout
from reelwire.config import Settings
from reelwire.errors import ReelwireError, Unavailable, error_from_dict
from reelwire.events import Command, CommandKind, Outcome, OutcomeStatus, ReelContent
from reelwire.hashing import shard_for
from reelwire.ids import IdGenerator, random_node
from storage import redis_bus
from storage.queries import ReadModel

logger = logging.getLogger(__name__)


def raise_if_rejected(outcome: Outcome) -> Outcome:
    """Return an outcome, or raise the ReelwireError that a rejected one carries."""
    if outcome.status is OutcomeStatus.REJECTED and outcome.error is not None:
        kind, body = outcome.error
        raise error_from_dict(kind, body)
    return outcome


@dataclass
class Actors:
    shards: list[Any]
    feeds: list[Any]
    cassandra: Any
    search: Any


class GatewayService:
    def __init__(self, settings: Settings, actors: Actors, read_model: ReadModel) -> None:
        self.settings = settings
        self.actors = actors
        self.read_model = read_model
        self.ids = IdGenerator(random_node())
        self.batcher = CommandBatcher(settings, actors.shards)
        self.redis = redis_bus.connect(settings)
        self.fanout = Fanout(settings, self.redis, self.read_states)

    async def start(self) -> None:
        await self.fanout.start()

    async def stop(self) -> None:
        await self.batcher.close()
        await self.fanout.stop()
        await self.redis.aclose()

    async def execute(self, command: Command) -> Outcome:
        """Run one command on its shard; raise the ReelwireError of a rejected outcome."""
        return raise_if_rejected(await self.batcher.submit(command))

    async def create_reel(self, user_id: str, request_id: str, content: ReelContent) -> Outcome:
        # The first create with a request id reserves the reel id in Redis for
        # the idempotency window, so a retry reaches the same reel and shard and
        # returns the first outcome instead of creating a second reel.
        key = f"{self.settings.namespace}:create:{user_id}:{request_id}"
        reel_id = self.ids.new_id()
        try:
            reserved = await self.redis.set(key, reel_id, nx=True, ex=self.settings.idempotency_window_s)
            if not reserved:
                existing = await self.redis.get(key)
                reel_id = existing.decode() if isinstance(existing, bytes) else str(existing)
        except (RedisError, OSError) as exc:
            raise Unavailable(f"reserving the reel id in Redis failed: {exc}", code="redis_unavailable") from exc
        return await self.execute(Command(CommandKind.CREATE_REEL, reel_id, user_id, request_id, content=content))

    async def read_states(
        self, reel_ids: list[str], since: dict[str, int] | None = None
    ) -> list[dict[str, Any] | None]:
        """Return the live counts and version of reels, straight from their shards.

        With ``since``, entries also carry the events after those versions
        (see ``InteractionShard.get_states``).
        """
        by_shard: dict[int, list[int]] = {}
        for position, reel_id in enumerate(reel_ids):
            shard = shard_for(reel_id, self.settings.kafka_partitions, len(self.actors.shards))
            by_shard.setdefault(shard, []).append(position)
        result: list[dict[str, Any] | None] = [None] * len(reel_ids)
        try:
            answers = await asyncio.gather(*(
                self.actors.shards[shard].get_states.remote(
                    [reel_ids[p] for p in positions],
                    {reel_ids[p]: since[reel_ids[p]] for p in positions if reel_ids[p] in since} if since else None,
                )
                for shard, positions in by_shard.items()
            ))
        except ReelwireError:
            raise
        except Exception as exc:  # noqa: BLE001 - Ray wraps every remote failure
            raise Unavailable(f"reading reel state from the shards failed: {exc}", code="shard_unavailable") from exc
        for (shard, positions), states in zip(by_shard.items(), answers):
            for position, state in zip(positions, states):
                result[position] = state
        return result

    async def feed(self, kind: str, limit: int, before_ms: int | None) -> list[dict[str, Any]]:
        try:
            if kind == "trending":
                parts = await asyncio.gather(*(feed.trending.remote(limit) for feed in self.actors.feeds))
                merged = [item for part in parts for item in part]
                merged.sort(key=lambda item: (item["score"], item["reel_id"]), reverse=True)
            else:
                parts = await asyncio.gather(*(feed.recent.remote(limit, before_ms) for feed in self.actors.feeds))
                merged = [item for part in parts for item in part]
                merged.sort(key=lambda item: (item["created_at_ms"], item["reel_id"]), reverse=True)
        except Exception as exc:  # noqa: BLE001
            raise Unavailable(f"the feed shards failed: {exc}", code="feed_unavailable") from exc
        return merged[:limit]

    async def search(self, query: str, limit: int) -> list[dict[str, Any]]:
        try:
            return await self.actors.search.search.remote(query, limit)
        except Exception as exc:  # noqa: BLE001
            raise Unavailable(f"the search index failed: {exc}", code="search_unavailable") from exc
