"""Exactness on the real services: concurrency, retries, a shard killed under load, and replay."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict

import httpx
import pytest

from reelwire.config import Settings
from reelwire.hashing import shard_for
from storage.cassandra import CassandraStore
from storage.rebuild import replay_into, summarize_log
from storage.schema import ensure_schema
from tests.integration.conftest import Stack, cassandra_rows, eventually, open_socket, receive_until
from tests.integration.test_flow import create_reel

pytestmark = pytest.mark.integration

LIVE_TABLES = {
    "reel_counts": "SELECT reel_id, likes, shares, comments, version FROM reel_counts",
    "likes": "SELECT reel_id, user_id FROM likes",
    "comments": "SELECT reel_id, comment_id, user_id, body FROM comments",
    "reels": "SELECT reel_id, creator_id, caption, hashtags, media_url FROM reels",
}


async def test_same_user_two_sockets_likes_once(stack: Stack, http: httpx.AsyncClient):
    reel_id = await create_reel(http, stack)
    first = await open_socket(stack, "twin")
    second = await open_socket(stack, "twin")
    for round_number in range(10):
        await asyncio.gather(
            first.send(json.dumps({"op": "like", "reel_id": reel_id, "request_id": f"a-{round_number}"})),
            second.send(json.dumps({"op": "like", "reel_id": reel_id, "request_id": f"b-{round_number}"})),
        )
        acks = await asyncio.gather(
            receive_until(first, lambda f: f.get("request_id") == f"a-{round_number}"),
            receive_until(second, lambda f: f.get("request_id") == f"b-{round_number}"),
        )
        assert all(ack["counts"]["likes"] == 1 for ack in acks)
        statuses = sorted(ack["status"] for ack in acks)
        if round_number == 0:
            assert statuses == ["applied", "unchanged"]
        else:
            assert statuses == ["unchanged", "unchanged"]
    await first.close()
    await second.close()


async def test_retry_same_request_id_counts_once(stack: Stack, http: httpx.AsyncClient):
    reel_id = await create_reel(http, stack)
    headers = {**stack.auth("retrier"), "Idempotency-Key": "share-1"}
    outcomes = [(await http.post(f"/reels/{reel_id}/shares", headers=headers)).json() for _ in range(5)]
    assert all(outcome == outcomes[0] for outcome in outcomes)
    assert outcomes[0]["counts"]["shares"] == 1

    socket = await open_socket(stack, "retrier")
    for _ in range(3):
        await socket.send(json.dumps({"op": "share", "reel_id": reel_id, "request_id": "share-1"}))
        ack = await receive_until(socket, lambda f: f["type"] == "ack")
        assert ack["version"] == outcomes[0]["version"]
        assert ack["counts"]["shares"] == 1
    await socket.send(json.dumps({"op": "like", "reel_id": reel_id, "request_id": "share-1"}))
    conflict = await receive_until(socket, lambda f: f["type"] == "error")
    assert conflict["code"] == "request_id_reused"
    await socket.close()

    state = (await http.post(f"/reels/{reel_id}/shares", headers={**stack.auth("retrier"), "Idempotency-Key": "share-2"})).json()
    assert state["counts"]["shares"] == 2


async def _send_until_acknowledged(http: httpx.AsyncClient, stack: Stack, method: str, path: str, user: str,
                                   request_id: str) -> dict:
    headers = {**stack.auth(user), "Idempotency-Key": request_id}
    for _ in range(60):
        try:
            response = await http.request(method, path, headers=headers)
        except httpx.TransportError:
            await asyncio.sleep(0.25)
            continue
        if response.status_code == 503:
            await asyncio.sleep(0.25)
            continue
        assert response.status_code == 200, response.text
        return response.json()
    raise AssertionError(f"{method} {path} by {user} was never acknowledged")


async def test_shard_killed_under_load(stack: Stack, http: httpx.AsyncClient, ray_session):
    settings = stack.settings
    reels = [await create_reel(http, stack) for _ in range(4)]
    victim_index = shard_for(reels[0], settings.kafka_partitions, settings.shards)
    victim = ray_session.get_actor(f"shard-{victim_index}")
    pid_before = (await victim.stats.remote())["pid"]
    acknowledged: list[tuple[str, str, str, dict]] = []

    async def client(number: int) -> None:
        for step in range(20):
            reel_id = reels[(number + step) % len(reels)]
            user = f"load-{number}"
            request_id = f"load-{number}-{step}"
            if step % 2:
                outcome = await _send_until_acknowledged(http, stack, "POST", f"/reels/{reel_id}/like", user, request_id)
                acknowledged.append(("like", reel_id, user, outcome))
            else:
                outcome = await _send_until_acknowledged(http, stack, "POST", f"/reels/{reel_id}/shares", user, request_id)
                acknowledged.append(("share", reel_id, user, outcome))

    async def kill_midway() -> None:
        while len(acknowledged) < 60:
            await asyncio.sleep(0.01)
        ray_session.kill(victim, no_restart=False)

    await asyncio.wait_for(asyncio.gather(*(client(number) for number in range(16)), kill_midway()), timeout=180)
    assert len(acknowledged) == 16 * 20

    pid_after = (await victim.stats.remote())["pid"]
    assert pid_after != pid_before

    expected_likes: dict[str, set[str]] = defaultdict(set)
    expected_shares: dict[str, int] = defaultdict(int)
    for kind, reel_id, user, outcome in acknowledged:
        if kind == "like":
            expected_likes[reel_id].add(user)
        else:
            assert outcome["status"] == "applied"
            expected_shares[reel_id] += 1

    # Counts in the actors.
    states = {}
    for reel_id in reels:
        shard = ray_session.get_actor(f"shard-{shard_for(reel_id, settings.kafka_partitions, settings.shards)}")
        states[reel_id] = (await shard.get_states.remote([reel_id]))[0]
    for reel_id in reels:
        assert states[reel_id]["counts"]["likes"] == len(expected_likes[reel_id])
        assert states[reel_id]["counts"]["shares"] == expected_shares[reel_id]

    # Counts recomputed from the log, and every acknowledged command in it exactly once.
    summary = await summarize_log(settings)
    for reel_id in reels:
        assert summary.counts[reel_id].likes == len(expected_likes[reel_id])
        assert summary.counts[reel_id].shares == expected_shares[reel_id]
    for kind, reel_id, user, outcome in acknowledged:
        if outcome["status"] == "applied":
            assert summary.requests[(user, outcome["request_id"])] == 1, (kind, user, outcome)

    # Counts in Cassandra.
    async def cassandra_matches():
        for reel_id in reels:
            body = (await http.get(f"/reels/{reel_id}")).json()
            if body["counts"]["likes"] != len(expected_likes[reel_id]):
                return False
            if body["counts"]["shares"] != expected_shares[reel_id]:
                return False
        return True

    await eventually(cassandra_matches, what="Cassandra counts equal to the acknowledged commands")


async def test_log_replay_matches_live_tables(stack: Stack, http: httpx.AsyncClient):
    settings = stack.settings
    reel_id = await create_reel(http, stack)
    await http.post(f"/reels/{reel_id}/like", headers=stack.auth("replayer"))
    await http.post(f"/reels/{reel_id}/comments", json={"text": "replayed"}, headers=stack.auth("replayer"))

    summary = await summarize_log(settings)

    async def live_caught_up():
        rows = cassandra_rows(settings.keyspace, LIVE_TABLES["reel_counts"])
        return {row[0]: row[4] for row in rows} == summary.versions

    await eventually(live_caught_up, timeout_s=60, what="the live projection caught up with the log")

    replay_settings = Settings(namespace=f"{settings.namespace}_replay")
    await asyncio.to_thread(ensure_schema, replay_settings)
    target = CassandraStore(replay_settings)
    await asyncio.to_thread(target.connect)
    try:
        applied = await replay_into(settings, target)
        assert applied == summary.events
        for table, cql in LIVE_TABLES.items():
            live = cassandra_rows(settings.keyspace, cql)
            rebuilt = cassandra_rows(replay_settings.keyspace, cql)
            assert rebuilt == live, table
    finally:
        target.session.execute(f"DROP KEYSPACE IF EXISTS {replay_settings.keyspace}", timeout=60)
        target.close()


async def test_shard_restores_from_snapshot(stack: Stack, http: httpx.AsyncClient, ray_session):
    settings = stack.settings
    reel_id = await create_reel(http, stack)
    for user in ("s1", "s2", "s3"):
        await http.post(f"/reels/{reel_id}/like", headers=stack.auth(user))
    shard = ray_session.get_actor(f"shard-{shard_for(reel_id, settings.kafka_partitions, settings.shards)}")
    assert await shard.snapshot_now.remote() >= 0
    snapshot = cassandra_rows(settings.keyspace, f"SELECT version FROM reel_snapshots WHERE reel_id = '{reel_id}'")
    assert snapshot == {(4,)}

    # One more change after the checkpoint must come back from the log tail.
    await http.post(f"/reels/{reel_id}/shares", headers=stack.auth("s4"))
    pid_before = (await shard.stats.remote())["pid"]
    ray_session.kill(shard, no_restart=False)

    async def restarted():
        try:
            return (await shard.stats.remote())["pid"] != pid_before
        except Exception:  # noqa: BLE001 - the actor is restarting
            return False

    await eventually(restarted, what="the shard actor restarted")
    state = (await shard.get_states.remote([reel_id]))[0]
    assert state["version"] == 5
    assert state["counts"] == {"likes": 3, "shares": 1, "comments": 0}
    retry = await http.post(f"/reels/{reel_id}/like", headers={**stack.auth("s1"), "Idempotency-Key": "after-restart"})
    assert retry.json()["status"] == "unchanged"
