"""Replication lag sampling and the end-of-run correctness check."""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from reelwire.bench.workload import LatencyRecorder
from reelwire.config import Settings
from storage.cassandra import CassandraStore
from storage.rebuild import summarize_log

SELECT_VERSION = "SELECT version FROM {ks}.reel_counts WHERE reel_id = ?"
SELECT_ALL_COUNTS = "SELECT reel_id, likes, shares, comments, version FROM {ks}.reel_counts"
POLL_S = 0.005
GIVE_UP_S = 30.0


@dataclass
class LagResult:
    cassandra: LatencyRecorder = field(default_factory=LatencyRecorder)
    search: LatencyRecorder = field(default_factory=LatencyRecorder)
    applied: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "cassandra_p50_ms": round(self.cassandra.percentile_ms(50), 2),
            "cassandra_p99_ms": round(self.cassandra.percentile_ms(99), 2),
            "cassandra_samples": self.cassandra.count,
            "search_p50_ms": round(self.search.percentile_ms(50), 2),
            "search_p99_ms": round(self.search.percentile_ms(99), 2),
            "search_samples": self.search.count,
        }


async def sample_lag(base_url: str, store: CassandraStore, token: str, stop: asyncio.Event) -> LagResult:
    """Until ``stop``, measure from acknowledgement to Cassandra row and to search hit.

    Each round creates a reel with a caption word of its own and likes it,
    then polls Cassandra for the like's version and search for the word.
    """
    result = LagResult()
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        while not stop.is_set():
            word = f"lag{secrets.token_hex(4)}"
            created = await client.post("/reels", headers=headers, json={
                "caption": f"lag probe {word}", "hashtags": ["probe"], "media_url": "https://cdn.test/p.mp4",
            })
            if created.status_code != 201:
                result.search.errors += 1
                continue
            created_at = time.perf_counter()
            result.applied += 1
            reel_id = created.json()["reel_id"]
            liked = await client.post(f"/reels/{reel_id}/like", headers=headers)
            liked_at = time.perf_counter()
            version = liked.json().get("version", 0)
            if liked.status_code == 200:
                result.applied += 1

            while time.perf_counter() - liked_at < GIVE_UP_S:
                rows = await store.execute(SELECT_VERSION, (reel_id,))
                if rows and rows[0].version >= version:
                    result.cassandra.record_seconds(time.perf_counter() - liked_at)
                    break
                await asyncio.sleep(POLL_S)
            else:
                result.cassandra.errors += 1

            while time.perf_counter() - created_at < GIVE_UP_S:
                hits = (await client.get("/search", params={"q": word})).json().get("hits", [])
                if any(hit["reel_id"] == reel_id for hit in hits):
                    result.search.record_seconds(time.perf_counter() - created_at)
                    break
                await asyncio.sleep(POLL_S)
            else:
                result.search.errors += 1
            await asyncio.sleep(0.2)
    return result


async def check_consistency(settings: Settings, store: CassandraStore, shard_states: Any,
                            applied_acks: int, unanswered: int = 0, timeout_s: float = 180) -> dict[str, Any]:
    """Compare counts in the actors, in Cassandra and recomputed from the Kafka log.

    ``shard_states(reel_ids)`` returns the actors' states. ``applied_acks`` is
    the number of commands acknowledged as applied; each wrote one event.
    ``unanswered`` commands got no outcome, so each may have written one
    event or none. Waits up to ``timeout_s`` for the Cassandra projection.
    """
    summary = await summarize_log(settings)
    deadline = time.monotonic() + timeout_s
    cassandra: dict[str, tuple[int, int, int, int]] = {}
    while time.monotonic() < deadline:
        rows = await store.execute(SELECT_ALL_COUNTS, ())
        cassandra = {row.reel_id: (row.likes, row.shares, row.comments, row.version) for row in rows}
        if all(cassandra.get(reel_id, (0, 0, 0, 0))[3] >= version for reel_id, version in summary.versions.items()):
            break
        await asyncio.sleep(0.5)

    reel_ids = list(summary.counts)
    actor_states = await shard_states(reel_ids)
    actor_mismatch = cassandra_mismatch = 0
    for reel_id, state in zip(reel_ids, actor_states, strict=True):
        expected = summary.counts[reel_id]
        triple = (expected.likes, expected.shares, expected.comments)
        counts = state["counts"] if state else None
        if counts is None or (counts["likes"], counts["shares"], counts["comments"]) != triple:
            actor_mismatch += 1
        if cassandra.get(reel_id, (None, None, None, None))[:3] != triple:
            cassandra_mismatch += 1
    return {
        "reels": len(reel_ids),
        "events_in_log": summary.events,
        "applied_acknowledgements": applied_acks,
        "unanswered_commands": unanswered,
        "acks_equal_events": applied_acks == summary.events,
        "events_within_bounds": applied_acks <= summary.events <= applied_acks + unanswered,
        "actors_differing_from_log": actor_mismatch,
        "cassandra_differing_from_log": cassandra_mismatch,
        "undecodable_records": summary.undecodable,
    }
