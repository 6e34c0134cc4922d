"""The read model's reel query over an in-memory stand-in for Cassandra."""

from __future__ import annotations

import asyncio
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from storage.queries import SELECT_COUNTS, SELECT_LIKE, SELECT_REEL, ReadModel


class FakeStore:
    """A stand-in store: serves the three reel queries from dictionaries and records each statement."""

    def __init__(self) -> None:
        self.reels: dict[str, SimpleNamespace] = {}
        self.counts: dict[str, SimpleNamespace] = {}
        self.likes: set[tuple[str, str]] = set()
        self.statements: list[str] = []

    async def execute(self, cql: str, params: tuple[Any, ...]) -> list[Any]:
        self.statements.append(cql)
        if cql == SELECT_REEL:
            return [self.reels[params[0]]] if params[0] in self.reels else []
        if cql == SELECT_COUNTS:
            return [self.counts[params[0]]] if params[0] in self.counts else []
        if cql == SELECT_LIKE:
            return [SimpleNamespace(user_id=params[1])] if tuple(params) in self.likes else []
        raise AssertionError(f"unexpected statement {cql}")


def _add_reel(store: FakeStore, reel_id: str, likes: int) -> None:
    store.reels[reel_id] = SimpleNamespace(reel_id=reel_id, creator_id="ann", caption="hi", hashtags=["a"],
                                           media_url="https://cdn.test/v.mp4", created_at=datetime(2026, 1, 1))
    store.counts[reel_id] = SimpleNamespace(likes=likes, shares=0, comments=0, version=likes + 1)


def test_get_reel_caches_row_not_counts():
    store = FakeStore()
    _add_reel(store, "r1", 2)
    model = ReadModel(store)  # type: ignore[arg-type]
    first = asyncio.run(model.get_reel("r1", None))
    store.counts["r1"].likes = 3
    second = asyncio.run(model.get_reel("r1", None))
    assert first is not None and second is not None
    assert first["counts"]["likes"] == 2
    assert second["counts"]["likes"] == 3
    assert second["caption"] == "hi"
    assert store.statements.count(SELECT_REEL) == 1
    assert store.statements.count(SELECT_COUNTS) == 2


def test_get_reel_missing_is_not_cached():
    store = FakeStore()
    model = ReadModel(store)  # type: ignore[arg-type]
    assert asyncio.run(model.get_reel("r9", None)) is None
    _add_reel(store, "r9", 0)
    found = asyncio.run(model.get_reel("r9", None))
    assert found is not None
    assert found["reel_id"] == "r9"


def test_get_reel_liked_for_signed_in_viewer():
    store = FakeStore()
    _add_reel(store, "r1", 1)
    store.likes.add(("r1", "bob"))
    model = ReadModel(store)  # type: ignore[arg-type]
    assert asyncio.run(model.get_reel("r1", "bob"))["liked"] is True  # type: ignore[index]
    assert asyncio.run(model.get_reel("r1", "eve"))["liked"] is False  # type: ignore[index]
    assert "liked" not in asyncio.run(model.get_reel("r1", None))  # type: ignore[operator]


def test_reel_cache_drops_least_recent():
    store = FakeStore()
    for number in range(3):
        _add_reel(store, f"r{number}", 0)
    model = ReadModel(store, reel_cache_max=2)  # type: ignore[arg-type]
    for reel_id in ("r0", "r1", "r2", "r0"):
        asyncio.run(model.get_reel(reel_id, None))
    assert store.statements.count(SELECT_REEL) == 4
