"""Micro-batching of commands toward shard actors.

One Ray actor call costs far more than applying one command, so commands for
the same shard are gathered into one call. A batch leaves when it reaches
``batch_max`` commands or when ``batch_tick_ms`` has passed since its first
command, whichever comes first. Each shard has its own lane, so a hot reel
fills only its shard's batches and never delays the other shards.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ray.exceptions import RayActorError, RayError, RayTaskError

from reelwire.config import Settings
from reelwire.errors import ReelwireError, Unavailable
from reelwire.events import Command, Outcome
from reelwire.hashing import shard_for

logger = logging.getLogger(__name__)

MAX_IN_FLIGHT_PER_SHARD = 8


class _Lane:
    def __init__(self, shard: Any) -> None:
        self.shard = shard
        self.pending: list[tuple[Command, asyncio.Future[Outcome]]] = []
        self.timer: asyncio.TimerHandle | None = None
        self.in_flight = asyncio.Semaphore(MAX_IN_FLIGHT_PER_SHARD)


class CommandBatcher:
    """Route commands to their shard actors in batches and return each outcome."""

    def __init__(self, settings: Settings, shards: list[Any]) -> None:
        self.settings = settings
        self._lanes = [_Lane(shard) for shard in shards]
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches_sent = 0

    async def submit(self, command: Command) -> Outcome:
        """Send one command and return its outcome.

        Raises Unavailable when the shard cannot be reached. Cancelling the
        caller does not withdraw the command: it may still be applied.
        """
        index = shard_for(command.reel_id, self.settings.kafka_partitions, len(self._lanes))
        lane = self._lanes[index]
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        lane.pending.append((command, future))
        if len(lane.pending) >= self.settings.batch_max:
            self._flush(lane)
        elif lane.timer is None:
            lane.timer = asyncio.get_running_loop().call_later(self.settings.batch_tick_ms / 1000, self._flush, lane)
        return await asyncio.shield(future)

    def _flush(self, lane: _Lane) -> None:
        if lane.timer is not None:
            lane.timer.cancel()
            lane.timer = None
        if not lane.pending:
            return
        batch, lane.pending = lane.pending, []
        task = asyncio.ensure_future(self._send(lane, batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, lane: _Lane, batch: list[tuple[Command, asyncio.Future[Outcome]]]) -> None:
        async with lane.in_flight:
            self.batches_sent += 1
            try:
                outcomes = await lane.shard.apply_batch.remote([command for command, _ in batch])
            except RayTaskError as exc:
                error = _unwrap(exc)
                _fail_all(batch, error)
                return
            except (RayActorError, RayError) as exc:
                logger.warning("shard call failed for a batch of %d commands: %s", len(batch), exc)
                _fail_all(batch, Unavailable(
                    "the shard that owns this reel is restarting; retry with the same request_id",
                    code="shard_unavailable",
                ))
                return
            for (_, future), outcome in zip(batch, outcomes):
                if not future.done():
                    future.set_result(outcome)


def _unwrap(exc: RayTaskError) -> ReelwireError:
    cause = exc.cause if hasattr(exc, "cause") else None
    if isinstance(cause, ReelwireError):
        return cause
    logger.error("shard raised an unexpected error: %s", exc)
    return Unavailable("the shard failed to apply the command; retry with the same request_id", code="shard_failed")


def _fail_all(batch: list[tuple[Command, asyncio.Future[Outcome]]], error: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(error)
