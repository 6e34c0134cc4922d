"""Projection consumers on the real services: a crash before commit, and a poison record."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from reelwire.config import Settings
from storage.cassandra import CassandraStore
from storage.consumer import ProjectionConsumer
from storage.projection import writes_for
from storage.rebuild import summarize_log
from storage.schema import ensure_schema
from tests.integration.conftest import Stack, cassandra_rows, eventually
from tests.integration.test_exactness import LIVE_TABLES
from tests.integration.test_flow import create_reel

pytestmark = pytest.mark.integration


class SimulatedCrash(Exception):
    """Stands for the process dying after its writes and before its offset commit."""


class CrashBeforeCommit(ProjectionConsumer):
    async def _commit(self, tp: TopicPartition, next_offset: int) -> None:
        raise SimulatedCrash(f"died before committing {tp} at {next_offset}")


def cassandra_handler(store: CassandraStore):
    async def apply(events):
        await asyncio.gather(*(store.execute(w.cql, w.params) for event in events for w in writes_for(event)))

    return apply


async def test_consumer_crash_before_commit_replays_safely(stack: Stack, http: httpx.AsyncClient):
    settings = stack.settings
    reel_id = await create_reel(http, stack)
    for user in ("k1", "k2", "k3"):
        await http.post(f"/reels/{reel_id}/like", headers=stack.auth(user))
    await http.delete(f"/reels/{reel_id}/like", headers=stack.auth("k2"))
    summary = await summarize_log(settings)

    target_settings = Settings(namespace=f"{settings.namespace}_crash")
    await asyncio.to_thread(ensure_schema, target_settings)
    store = CassandraStore(target_settings)
    await asyncio.to_thread(store.connect)
    group = f"{settings.namespace}.crash-test"
    try:
        crashing = CrashBeforeCommit(settings, group, cassandra_handler(store))
        with pytest.raises(SimulatedCrash):
            await asyncio.wait_for(crashing.run(asyncio.Event()), timeout=60)
        assert crashing.applied > 0

        # Nothing was committed, so the next member of the group starts over.
        probe = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=group, enable_auto_commit=False)
        await probe.start()
        try:
            committed = [await probe.committed(TopicPartition(settings.events_topic, p)) for p in range(settings.kafka_partitions)]
        finally:
            await probe.stop()
        assert all(offset is None for offset in committed)

        stop = asyncio.Event()
        survivor = ProjectionConsumer(settings, group, cassandra_handler(store))
        task = asyncio.ensure_future(survivor.run(stop))

        async def caught_up() -> bool:
            return survivor.applied >= summary.events

        try:
            await eventually(caught_up, timeout_s=60, what="the second consumer applied the whole log")
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=30)

        rows = cassandra_rows(target_settings.keyspace, LIVE_TABLES["reel_counts"])
        counts = {row[0]: (row[1], row[2], row[3]) for row in rows}
        for reel, expected in summary.counts.items():
            assert counts[reel] == (expected.likes, expected.shares, expected.comments)
        likes = cassandra_rows(target_settings.keyspace, f"SELECT user_id FROM likes WHERE reel_id = '{reel_id}'")
        assert likes == {("k1",), ("k3",)}
    finally:
        store.session.execute(f"DROP KEYSPACE IF EXISTS {target_settings.keyspace}", timeout=60)
        store.close()


async def test_poison_record_goes_to_dead_letter_topic(stack: Stack, http: httpx.AsyncClient):
    settings = stack.settings
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        poison = await producer.send_and_wait(settings.events_topic, value=b"\x00not an event", key=b"poison", partition=0)
    finally:
        await producer.stop()

    # The projection moves past the poison record: a later like still lands.
    reel_id = await create_reel(http, stack)
    await http.post(f"/reels/{reel_id}/like", headers=stack.auth("after-poison"))

    async def projected():
        body = (await http.get(f"/reels/{reel_id}")).json()
        return body.get("counts", {}).get("likes") == 1

    await eventually(projected, what="a like after the poison record in Cassandra")

    consumer = AIOKafkaConsumer(
        settings.dead_letter_topic, bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    dead = []
    try:
        async def dead_lettered():
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                dead.extend(records)
            return [r for r in dead if r.value == b"\x00not an event" and dict(r.headers).get("consumer_group")]

        found = await eventually(dead_lettered, what="the poison record in the dead-letter topic")
    finally:
        await consumer.stop()
    groups = {dict(record.headers)["consumer_group"].decode() for record in found}
    assert f"{settings.namespace}.cassandra" in groups
    headers = dict(found[0].headers)
    assert headers["source_partition"] == b"0"
    assert headers["source_offset"] == str(poison.offset).encode()
    assert b"InvalidEvent" in headers["error"]
