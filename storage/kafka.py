"""Kafka: the log of record. Topic set-up, the producer and bounded log reads."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.structs import ConsumerRecord

from reelwire.config import Settings
from reelwire.errors import StorageError

logger = logging.getLogger(__name__)


async def ensure_topics(settings: Settings) -> None:
    """Create the events topic and its dead-letter topic unless they exist.

    The events topic keeps records forever (``retention.ms=-1``) because every
    projection and every shard is rebuilt from it.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id=f"{settings.namespace}-admin")
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                settings.events_topic,
                num_partitions=settings.kafka_partitions,
                replication_factor=settings.kafka_replication,
                topic_configs={
                    "retention.ms": "-1",
                    "min.insync.replicas": str(settings.kafka_min_insync),
                },
            ),
            NewTopic(
                settings.dead_letter_topic,
                num_partitions=1,
                replication_factor=settings.kafka_replication,
                topic_configs={"min.insync.replicas": str(settings.kafka_min_insync)},
            ),
        ]
        missing = [topic for topic in wanted if topic.name not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass
            logger.info("created Kafka topics %s", ", ".join(topic.name for topic in missing))
        partitions = 0
        for _ in range(20):
            # A topic created a moment ago may not show its partitions in metadata yet.
            described = await admin.describe_topics([settings.events_topic])
            partitions = len(described[0]["partitions"]) if described else 0
            if partitions:
                break
            await asyncio.sleep(0.25)
    except KafkaError as exc:
        raise StorageError(f"Kafka at {settings.kafka_bootstrap} failed while creating topics: {exc}") from exc
    finally:
        await admin.close()

    if partitions != settings.kafka_partitions:
        raise StorageError(
            f"topic {settings.events_topic} has {partitions} partitions but REELWIRE_KAFKA_PARTITIONS is "
            f"{settings.kafka_partitions}; reels would land on the wrong shards",
            code="partition_mismatch",
        )


def make_producer(settings: Settings, client_id: str) -> AIOKafkaProducer:
    """Return an idempotent producer that waits for every in-sync replica.

    With ``acks="all"`` an append is acknowledged only once it survives the loss
    of the leader; idempotence removes the duplicates that producer retries
    would otherwise write.
    """
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=1,
        max_batch_size=256 * 1024,
        request_timeout_ms=15000,
    )


async def read_partitions(
    settings: Settings,
    topic: str,
    start_offsets: dict[int, int],
) -> AsyncIterator[ConsumerRecord]:
    """Yield the records of some partitions from given offsets up to their current end.

    The end is fixed when the read starts, so the iteration stops even while
    producers keep appending. A start offset of 0 reads from the beginning.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        group_id=None,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, partition) for partition in start_offsets]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        pending: set[TopicPartition] = set()
        for tp in partitions:
            begin = max(start_offsets[tp.partition], (await consumer.beginning_offsets([tp]))[tp])
            if begin < ends[tp]:
                consumer.seek(tp, begin)
                pending.add(tp)
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=1000)
            for tp, records in batches.items():
                for record in records:
                    if record.offset < ends[tp]:
                        yield record
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
    finally:
        await consumer.stop()


def topic_partitions(topic: str, partitions: Iterable[int]) -> list[TopicPartition]:
    return [TopicPartition(topic, partition) for partition in partitions]
