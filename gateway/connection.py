"""One client WebSocket: its subscriptions, its identity and a bounded send queue.

Frames are queued and written by one writer task per socket, so a client that
stops reading never blocks the code that broadcasts. Reel-state frames replace
the pending state of the same reel, because only the newest counts matter.
Frames that must all arrive (acks, errors, comments) go into a bounded queue.
The socket is closed with code 1013 ("try again later") when that queue holds
``queue_max`` frames and the socket has taken none for ``STALL_S`` seconds,
or when it holds ``4 * queue_max`` frames whatever the progress, so a burst
to a reader that keeps up is delivered and memory stays bounded.

While a subscription catches up (see ``hold`` and ``release``), live frames
of that reel wait, so the client sees the missed events first, in order, and
never twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

from starlette.websockets import WebSocket, WebSocketState

from gateway.auth import Principal

logger = logging.getLogger(__name__)

CLOSE_TRY_AGAIN_LATER = 1013
STALL_S = 5.0
HARD_LIMIT_FACTOR = 4


class Connection:
    def __init__(self, websocket: WebSocket, connection_id: str, queue_max: int) -> None:
        self.websocket = websocket
        self.id = connection_id
        self.queue_max = queue_max
        self.principal: Principal | None = None
        self.subscriptions: set[str] = set()
        self.closed = False
        self.frames_dropped = 0
        self._frames: deque[str] = deque()
        self._states: dict[str, str] = {}
        self._state_versions: dict[str, int] = {}
        self._synced_to: dict[str, int] = {}
        self._holding: dict[str, list[tuple[bool, int, str]]] = {}
        self._wakeup = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._last_progress = time.monotonic()

    def start(self) -> None:
        self._writer = asyncio.ensure_future(self._write_loop())

    def send(self, frame: str) -> None:
        """Queue a frame that must be delivered; close the socket if the queue is full."""
        if self.closed:
            return
        if self.close_if_stalled(extra=1):
            return
        self._frames.append(frame)
        self._wakeup.set()

    def send_event(self, reel_id: str, version: int, frame: str) -> None:
        """Queue a comment frame of a reel unless the catch-up already covered its version."""
        held = self._holding.get(reel_id)
        if held is not None:
            held.append((True, version, frame))
        elif version > self._synced_to.get(reel_id, 0):
            self.send(frame)

    def send_state(self, reel_id: str, version: int, frame: str) -> None:
        """Queue a reel-state frame, replacing any not yet sent for the same reel.

        States older than the newest one queued or sent are ignored.
        """
        if self.closed:
            return
        held = self._holding.get(reel_id)
        if held is not None:
            held.append((False, version, frame))
            return
        if version <= self._state_versions.get(reel_id, -1):
            return
        if reel_id in self._states:
            self.frames_dropped += 1
        self._state_versions[reel_id] = version
        self._states[reel_id] = frame
        self._wakeup.set()

    def close_if_stalled(self, extra: int = 0) -> bool:
        """Close the socket if its queue is over the limits above; return whether it closed.

        ``extra`` counts a frame about to be queued.
        """
        queued = len(self._frames) + extra
        if queued < self.queue_max or self.closed:
            return self.closed
        stalled = time.monotonic() - self._last_progress > STALL_S
        if stalled or queued > HARD_LIMIT_FACTOR * self.queue_max:
            logger.warning("connection %s: %d frames queued and the client is not reading; closing", self.id, queued)
            self.close_soon(CLOSE_TRY_AGAIN_LATER, "client is not reading fast enough")
            return True
        return False

    def send_latest(self, key: str, frame: str) -> None:
        """Queue a frame that replaces any not yet sent under the same key, such as a viewer count."""
        if self.closed:
            return
        if key in self._states:
            self.frames_dropped += 1
        self._states[key] = frame
        self._wakeup.set()

    def hold(self, reel_id: str) -> None:
        """Park live frames of a reel until ``release``."""
        self._holding.setdefault(reel_id, [])

    def release(self, reel_id: str, synced_to: int, catch_up: list[str], state: tuple[int, str] | None) -> None:
        """Send the catch-up frames, then the live frames parked meanwhile that it did not cover."""
        parked = self._holding.pop(reel_id, [])
        self._synced_to[reel_id] = max(self._synced_to.get(reel_id, 0), synced_to)
        for frame in catch_up:
            self.send(frame)
        if state is not None:
            self.send_state(reel_id, state[0], state[1])
        for is_event, version, frame in parked:
            if is_event:
                self.send_event(reel_id, version, frame)
            else:
                self.send_state(reel_id, version, frame)

    def forget(self, reel_id: str) -> None:
        self._holding.pop(reel_id, None)
        self._synced_to.pop(reel_id, None)
        self._state_versions.pop(reel_id, None)
        self._states.pop(reel_id, None)

    def close_soon(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self._frames.clear()
        self._states.clear()
        asyncio.ensure_future(self._close(code, reason))

    async def stop(self) -> None:
        self.closed = True
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)

    async def _close(self, code: int, reason: str) -> None:
        if self._writer is not None:
            self._writer.cancel()
        try:
            if self.websocket.application_state is WebSocketState.CONNECTED:
                await self.websocket.close(code=code, reason=reason)
        except (RuntimeError, OSError) as exc:
            logger.debug("connection %s: close failed: %s", self.id, exc)

    async def _write_loop(self) -> None:
        try:
            while not self.closed:
                await self._wakeup.wait()
                self._wakeup.clear()
                while self._frames and not self.closed:
                    await self.websocket.send_text(self._frames.popleft())
                    self._last_progress = time.monotonic()
                while self._states and not self.closed:
                    reel_id = next(iter(self._states))
                    await self.websocket.send_text(self._states.pop(reel_id))
                    self._last_progress = time.monotonic()
                self._last_progress = time.monotonic()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a broken socket ends only this connection
            logger.debug("connection %s: send failed: %s", self.id, exc)
            self.closed = True
