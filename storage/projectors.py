"""Ray actors that keep the read side current: the Cassandra tables and the search index."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from reelwire.config import Settings
from reelwire.events import Event
from reelwire.logs import configure_logging
from storage.cassandra import CassandraStore
from storage.consumer import ProjectionConsumer
from storage.projection import writes_for
from storage.search import SearchIndex

logger = logging.getLogger(__name__)

WRITE_CONCURRENCY = 64


class _ProjectorBase:
    group_suffix = ""

    def __init__(self, settings: Settings) -> None:
        configure_logging()
        self.settings = settings
        self.consumer = ProjectionConsumer(settings, f"{settings.namespace}.{self.group_suffix}", self.apply)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def ready(self) -> dict[str, Any]:
        if self._task is None or self._task.done():
            self._stop = asyncio.Event()
            self._task = asyncio.ensure_future(self._run())
        return await self.stats()

    async def stats(self) -> dict[str, Any]:
        return {
            "group": self.consumer.group_id,
            "applied": self.consumer.applied,
            "dead_lettered": self.consumer.dead_lettered,
        }

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await asyncio.wait([self._task], timeout=10)

    async def apply(self, events: list[Event]) -> None:
        raise NotImplementedError

    async def _run(self) -> None:
        # The loop restarts after an unexpected failure; committed offsets make
        # the restart resume exactly where the projection stopped.
        while not self._stop.is_set():
            try:
                await self.consumer.run(self._stop)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("projection %s failed; restarting in 1 s", self.consumer.group_id)
                await asyncio.sleep(1)


class CassandraProjector(_ProjectorBase):
    """Ray actor: projects events into the Cassandra read tables."""

    group_suffix = "cassandra"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.store = CassandraStore(settings)
        self.store.connect()
        self._limit = asyncio.Semaphore(WRITE_CONCURRENCY)

    async def apply(self, events: list[Event]) -> None:
        async def run(cql: str, params: tuple[Any, ...]) -> None:
            async with self._limit:
                await self.store.execute(cql, params)

        await asyncio.gather(*(run(write.cql, write.params) for event in events for write in writes_for(event)))


class SearchProjector(_ProjectorBase):
    """Ray actor: indexes reels for search and runs search queries."""

    group_suffix = "search"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.index = SearchIndex(settings.data_dir / settings.namespace / "search")

    async def apply(self, events: list[Event]) -> None:
        await asyncio.to_thread(self.index.apply, events)

    async def search(self, query: str, limit: int) -> list[dict[str, Any]]:
        hits = await asyncio.to_thread(self.index.search, query, limit)
        return [{"reel_id": hit.reel_id, "score": hit.score} for hit in hits]

    async def stats(self) -> dict[str, Any]:
        return dict(await super().stats(), documents=self.index.count())
