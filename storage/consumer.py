"""A Kafka consumer loop for projections: apply, then commit, with a dead-letter topic.

Offsets are committed only after the handler has written a record's effects, so
a crash replays the uncommitted tail. Handlers must therefore be idempotent,
which the version-guarded writes of every projection are. A record that cannot
be decoded or applied is copied to the dead-letter topic with its origin and
the error, and the loop moves past it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata

from reelwire.config import Settings
from reelwire.errors import StorageError
from reelwire.events import Event, InvalidEvent, decode_event
from storage.kafka import make_producer

logger = logging.getLogger(__name__)

Handler = Callable[[list[Event]], Awaitable[None]]
RETRY_DELAYS_S = (0.2, 0.5, 1.0, 2.0, 5.0)


class ProjectionConsumer:
    """Feed the events topic to one projection, as one member of a consumer group."""

    def __init__(self, settings: Settings, group_id: str, handler: Handler, *, max_records: int = 500) -> None:
        self.settings = settings
        self.group_id = group_id
        self.handler = handler
        self.max_records = max_records
        self.applied = 0
        self.dead_lettered = 0
        self._unlogged = 0
        self._last_logged = 0.0
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set. Cancelling is safe: nothing uncommitted is lost."""
        self._consumer = AIOKafkaConsumer(
            self.settings.events_topic,
            bootstrap_servers=self.settings.kafka_bootstrap,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        self._producer = make_producer(self.settings, client_id=f"{self.group_id}-dlq")
        await self._consumer.start()
        await self._producer.start()
        logger.info("consumer group %s started on %s", self.group_id, self.settings.events_topic)
        try:
            while not stop.is_set():
                batches = await self._consumer.getmany(timeout_ms=200, max_records=self.max_records)
                if batches:
                    await self._process(batches)
        finally:
            await self._consumer.stop()
            await self._producer.stop()
            logger.info("consumer group %s stopped", self.group_id)

    async def _process(self, batches: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        """Apply one poll's records of every partition in one handler call, then commit them.

        One call per poll lets a projection with a costly commit step, such as
        the search index, pay for it once per poll instead of once per partition.
        """
        records = [record for partition_records in batches.values() for record in partition_records]
        events: list[Event] = []
        for record in records:
            try:
                events.append(decode_event(record.value))
            except InvalidEvent as exc:
                await self._dead_letter(record, exc)

        await self._apply_with_retry(records, events)
        for tp, partition_records in batches.items():
            await self._commit(tp, partition_records[-1].offset + 1)

    async def _commit(self, tp: TopicPartition, next_offset: int) -> None:
        assert self._consumer is not None
        await self._consumer.commit({tp: OffsetAndMetadata(next_offset, "")})

    async def _apply_with_retry(self, records: list[ConsumerRecord], events: list[Event]) -> None:
        if not events:
            return
        for attempt, delay in enumerate((*RETRY_DELAYS_S, None)):
            try:
                await self.handler(events)
                self.applied += len(events)
                return
            except StorageError as exc:
                # A storage outage is not the record's fault: wait and try again,
                # with no commit, so nothing is skipped.
                if delay is None:
                    raise
                logger.warning("group %s: %s; retry %d in %.1f s", self.group_id, exc, attempt + 1, delay)
                await asyncio.sleep(delay)
            except Exception as exc:  # noqa: BLE001 - any other failure is the record's fault
                logger.warning("group %s: a batch of %d events failed (%r); applying one by one",
                               self.group_id, len(events), exc)
                await self._apply_one_by_one(records, events)
                return

    async def _apply_one_by_one(self, records: list[ConsumerRecord], events: list[Event]) -> None:
        by_event_id = {}
        for record in records:
            try:
                by_event_id[decode_event(record.value).event_id] = record
            except InvalidEvent:
                continue
        for event in events:
            try:
                await self.handler([event])
                self.applied += 1
            except StorageError:
                raise
            except Exception as exc:  # noqa: BLE001
                await self._dead_letter(by_event_id[event.event_id], exc)

    async def _dead_letter(self, record: ConsumerRecord, error: BaseException) -> None:
        assert self._producer is not None
        headers = [
            ("source_topic", record.topic.encode()),
            ("source_partition", str(record.partition).encode()),
            ("source_offset", str(record.offset).encode()),
            ("consumer_group", self.group_id.encode()),
            ("error", json.dumps(repr(error)[:1000]).encode()),
        ]
        try:
            await self._producer.send_and_wait(
                self.settings.dead_letter_topic, value=record.value, key=record.key, headers=headers
            )
        except KafkaError as exc:
            raise StorageError(f"could not write to dead-letter topic {self.settings.dead_letter_topic}: {exc}") from exc
        self.dead_lettered += 1
        # A burst of bad records logs one line per second, with the count it stands for.
        now = time.monotonic()
        self._unlogged += 1
        if now - self._last_logged >= 1.0:
            logger.warning(
                "group %s: %d record(s) moved to %s, the last %s[%d]@%d: %s",
                self.group_id, self._unlogged, self.settings.dead_letter_topic,
                record.topic, record.partition, record.offset, error,
            )
            self._unlogged = 0
            self._last_logged = now
