"""Micro-batching of commands toward shard actors.

One Ray actor call costs far more than applying one command, so commands for
the same shard travel together. Each shard has a lane with a pump task: the
pump waits up to ``batch_tick_ms`` for a batch to fill, then takes up to
``batch_max`` commands as soon as one of the lane's in-flight slots is free.
While every slot is busy, commands keep gathering, so batches grow with load
instead of queueing as many small calls. A hot reel fills only its own
shard's lane and never delays the other shards.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from ray.exceptions import RayActorError, RayError, RayTaskError

from reelwire.config import Settings
from reelwire.errors import ReelwireError, Unavailable
from reelwire.events import Command, Outcome
from reelwire.hashing import shard_for

logger = logging.getLogger(__name__)

Pending = tuple[Command, "asyncio.Future[Outcome]"]


class _Lane:
    def __init__(self, index: int, shard: Any, in_flight: int) -> None:
        self.index = index
        self.shard = shard
        self.pending: deque[Pending] = deque()
        self.wakeup = asyncio.Event()
        self.slots = asyncio.Semaphore(in_flight)
        self.pump: asyncio.Task[None] | None = None


class CommandBatcher:
    """Route commands to their shard actors in batches and return each outcome."""

    def __init__(self, settings: Settings, shards: list[Any]) -> None:
        self.settings = settings
        self._shards = shards
        self._lanes: list[_Lane] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches_sent = 0
        self.commands_sent = 0

    async def submit(self, command: Command) -> Outcome:
        """Send one command and return its outcome.

        Raises Unavailable when the shard cannot be reached. Cancelling the
        caller does not withdraw the command: it may still be applied.
        """
        return await asyncio.shield(self.enqueue(command))

    def enqueue(self, command: Command) -> "asyncio.Future[Outcome]":
        """Queue one command and return the future of its outcome, without a task per command."""
        lanes = self._ensure_lanes()
        lane = lanes[shard_for(command.reel_id, self.settings.kafka_partitions, len(lanes))]
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        lane.pending.append((command, future))
        lane.wakeup.set()
        return future

    async def close(self) -> None:
        for lane in self._lanes or []:
            if lane.pump is not None:
                lane.pump.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _ensure_lanes(self) -> list[_Lane]:
        # Lanes are made on first use, inside the running event loop.
        if self._lanes is None:
            in_flight = self.settings.batches_in_flight
            self._lanes = [_Lane(index, shard, in_flight) for index, shard in enumerate(self._shards)]
            for lane in self._lanes:
                lane.pump = asyncio.ensure_future(self._pump(lane))
        return self._lanes

    async def _pump(self, lane: _Lane) -> None:
        tick = self.settings.batch_tick_ms / 1000
        batch_max = self.settings.batch_max
        while True:
            if not lane.pending:
                lane.wakeup.clear()
                await lane.wakeup.wait()
            if len(lane.pending) < batch_max:
                await asyncio.sleep(tick)
            await lane.slots.acquire()
            batch = [lane.pending.popleft() for _ in range(min(batch_max, len(lane.pending)))]
            if not batch:
                lane.slots.release()
                continue
            task = asyncio.ensure_future(self._send(lane, batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, lane: _Lane, batch: list[Pending]) -> None:
        try:
            self.batches_sent += 1
            self.commands_sent += len(batch)
            outcomes = await lane.shard.apply_batch.remote([command for command, _ in batch])
        except RayTaskError as exc:
            _fail_all(batch, _unwrap(exc))
            return
        except (RayActorError, RayError) as exc:
            logger.warning("shard %d failed a batch of %d commands: %s", lane.index, len(batch), exc)
            _fail_all(batch, Unavailable(
                "the shard that owns this reel is restarting; retry with the same request_id",
                code="shard_unavailable",
            ))
            return
        finally:
            lane.slots.release()
        for (_, future), outcome in zip(batch, outcomes):
            if not future.done():
                future.set_result(outcome)


def _unwrap(exc: RayTaskError) -> ReelwireError:
    cause = getattr(exc, "cause", None)
    if isinstance(cause, ReelwireError):
        return cause
    logger.error("shard raised an unexpected error: %s", exc)
    return Unavailable("the shard failed to apply the command; retry with the same request_id", code="shard_failed")


def _fail_all(batch: list[Pending], error: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(error)
