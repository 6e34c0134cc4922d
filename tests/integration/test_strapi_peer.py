"""The Strapi peer installs, starts and serves all three workloads at a tiny size. No timing is asserted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from reelwire.bench.strapi_peer import StrapiPeer, create_reels, post_entry, read_like_count, start_strapi, strapi_load

pytestmark = pytest.mark.integration

SUMMARY_KEYS = ("acknowledged", "errors", "elapsed_s", "per_second", "p50_ms", "p99_ms", "max_ms", "statuses")


@pytest.fixture(scope="module")
async def strapi(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[StrapiPeer]:
    peer = await start_strapi(Path(tmp_path_factory.mktemp("strapi-run")))
    try:
        yield peer
    finally:
        peer.stop()


async def test_strapi_load_runs_three_phases(strapi: StrapiPeer) -> None:
    phases = await strapi_load(strapi, reels=3, duration_s=1, concurrency=4)

    assert [phase["workload"] for phase in phases] == ["like", "comment", "read"]
    for phase in phases:
        assert phase["target"] == "Strapi"
        assert phase["transport"] == "REST"
        for key in SUMMARY_KEYS:
            assert key in phase, f"{phase['workload']} summary lacks {key}"
        assert phase["acknowledged"] > 0, phase
        assert sum(phase["statuses"].values()) == phase["acknowledged"] + phase["errors"]
    assert set(phases[0]["statuses"]) <= {"201"}, phases[0]["statuses"]
    assert set(phases[1]["statuses"]) <= {"201"}, phases[1]["statuses"]
    assert set(phases[2]["statuses"]) <= {"200"}, phases[2]["statuses"]


async def test_strapi_read_returns_exact_like_count(strapi: StrapiPeer) -> None:
    likes = 20
    async with aiohttp.ClientSession(strapi.base_url) as session:
        reel_id, other_reel_id = await create_reels(session, 2, concurrency=2)
        assert await read_like_count(session, reel_id) == 0

        # The likes arrive concurrently, as they do under load.
        await asyncio.gather(
            *(post_entry(session, "/api/likes", {"user": f"exact-{number}", "reel": reel_id}) for number in range(likes))
        )
        await post_entry(session, "/api/likes", {"user": "exact-other", "reel": other_reel_id})

        assert await read_like_count(session, reel_id) == likes
        assert await read_like_count(session, other_reel_id) == 1


async def test_strapi_reports_memory_and_version(strapi: StrapiPeer) -> None:
    assert strapi.rss_mb() > 0
    assert strapi.version.startswith("5.")
