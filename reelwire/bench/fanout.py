"""The fan-out workload: many viewers, each watching a few reels, while likes stream into the hot one.

Every viewer subscribes to the hot reel and to ``reels_per_viewer - 1`` other
reels picked by Zipf popularity. Likes go to the hot reel at a fixed rate,
each from a new user so that every like changes the count. Every viewer
counts the frames it receives; one viewer in ``sample_every`` also records
when each count of the hot reel arrived. The like-to-push latency of a like
is the time from sending it to the first push at a sampled viewer whose count
includes it.

The same measurement drives Reelwire and the naive peer; the Centrifugo peer
reuses :class:`FanoutResult` and :func:`record_push_latency`.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from websockets.asyncio.client import ClientConnection, connect

from reelwire.bench.workload import LatencyRecorder, ZipfPicker

CONNECT_BATCH = 200
# After the last like is sent, the run waits this long for the outstanding
# outcomes, so that an overloaded deployment can still acknowledge every like.
ACK_DRAIN_S = 180.0
# The naive peer's REST call for one like gives up after this many seconds.
NAIVE_LIKE_TIMEOUT_S = 60.0
NAIVE_LIKES_IN_FLIGHT = 64

# A frame parser returns the hot reel's count or version carried by a frame, or None.
FrameParser = Callable[[str | bytes], int | None]


@dataclass(frozen=True)
class FanoutSpec:
    """Sizes of one fan-out measurement, the same for Reelwire and every peer."""

    viewers: int
    rate: float
    duration_s: float
    other_reels: tuple[str, ...] = ()
    reels_per_viewer: int = 3
    sample_every: int = 50
    seed: int = 7

    def reels_for_viewer(self, hot: str, rng: random.Random) -> list[str]:
        return viewer_reels(hot, list(self.other_reels), self.reels_per_viewer, rng)


@dataclass
class FanoutResult:
    viewers: int
    likes_sent: int = 0
    likes_acknowledged: int = 0
    # Likes sent whose outcome never arrived before the drain timed out.
    unanswered: int = 0
    pushes: int = 0
    elapsed_s: float = 0.0
    latency: LatencyRecorder = field(default_factory=LatencyRecorder)
    gateway_mb_per_1000: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "viewers": self.viewers,
            "likes_sent": self.likes_sent,
            "likes_acknowledged": self.likes_acknowledged,
            "likes_unanswered": self.unanswered,
            "likes_per_second": round(self.likes_acknowledged / self.elapsed_s, 1) if self.elapsed_s else 0.0,
            "pushes_per_second": round(self.pushes / self.elapsed_s, 1) if self.elapsed_s else 0.0,
            "push_p50_ms": round(self.latency.percentile_ms(50), 2),
            "push_p99_ms": round(self.latency.percentile_ms(99), 2),
            "push_max_ms": round(self.latency.max_ms(), 2),
            "samples": self.latency.count,
            "gateway_mb_per_1000_sockets": round(self.gateway_mb_per_1000, 1),
        }


def record_push_latency(
    latency: LatencyRecorder, sent: list[tuple[int, float]], arrivals: list[tuple[int, float]]
) -> None:
    """Record, for every sent ``(count, time)``, the wait until the first arrival carrying that count or more.

    ``arrivals`` are one viewer's ``(count, time)`` pairs in arrival order; a
    count lower than one seen before is ignored, since it brings nothing new.
    A sent count that never arrived is recorded as an error.
    """
    counts: list[int] = []
    times: list[float] = []
    for count, arrived in arrivals:
        if not counts or count > counts[-1]:
            counts.append(count)
            times.append(arrived)
    for count, sent_at in sent:
        position = bisect.bisect_left(counts, count)
        if position < len(counts):
            latency.record_seconds(times[position] - sent_at)
        else:
            latency.errors += 1


def viewer_reels(hot: str, others: list[str], per_viewer: int, rng: random.Random) -> list[str]:
    """Return the hot reel and ``per_viewer - 1`` distinct others, picked by Zipf popularity."""
    chosen = [hot]
    if not others:
        return chosen
    picker = ZipfPicker(len(others), 1.1, rng)
    target = min(per_viewer, len(others) + 1)
    while len(chosen) < target:
        reel_id = others[picker.pick()]
        if reel_id not in chosen:
            chosen.append(reel_id)
    return chosen


class _Viewer:
    def __init__(self, socket: ClientConnection, sampled: bool) -> None:
        self.socket = socket
        self.sampled = sampled
        self.frames = 0
        self.arrivals: list[tuple[int, float]] = []

    async def read(self, parse: FrameParser, stop: asyncio.Event) -> None:
        try:
            async for raw in self.socket:
                if stop.is_set():
                    return
                self.frames += 1
                if self.sampled:
                    count = parse(raw)
                    if count is not None:
                        self.arrivals.append((count, time.perf_counter()))
        except Exception:  # noqa: BLE001 - a viewer closed by the server ends its own count only
            return


async def _measure(
    result: FanoutResult,
    join: Callable[[int], Awaitable[ClientConnection]],
    parse: FrameParser,
    send_likes: Callable[[list[tuple[int, float]], float], Awaitable[None]],
    server_rss_mb: Callable[[], float],
    sample_every: int,
) -> None:
    """Connect the viewers, run ``send_likes`` and fill ``result``, then close every socket.

    ``send_likes(sent, started)`` appends ``(count, time sent)`` for each
    acknowledged like. It returns once every like it sent got a response or
    timed out.
    """
    rss_before = server_rss_mb()
    stop = asyncio.Event()
    members: list[_Viewer] = []
    for start in range(0, result.viewers, CONNECT_BATCH):
        sockets = await asyncio.gather(*(join(n) for n in range(start, min(result.viewers, start + CONNECT_BATCH))))
        members.extend(_Viewer(socket, (start + offset) % sample_every == 0) for offset, socket in enumerate(sockets))
    await asyncio.sleep(1.0)
    result.gateway_mb_per_1000 = (server_rss_mb() - rss_before) / result.viewers * 1000
    readers = [asyncio.ensure_future(member.read(parse, stop)) for member in members]
    await asyncio.sleep(0.5)
    for member in members:
        member.frames = 0
        member.arrivals.clear()

    sent: list[tuple[int, float]] = []
    started = time.perf_counter()
    try:
        await send_likes(sent, started)
        await asyncio.sleep(0.5)
        result.elapsed_s = time.perf_counter() - started
        stop.set()
        result.likes_acknowledged = len(sent)
        sent.sort()
        for member in members:
            result.pushes += member.frames
            if member.sampled:
                record_push_latency(result.latency, sent, member.arrivals)
    finally:
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        await asyncio.gather(*(member.socket.close() for member in members), return_exceptions=True)


async def fanout_load(
    ws_url: str,
    reel_id: str,
    spec: FanoutSpec,
    token_for: Callable[[int], str],
    gateway_rss_mb: Callable[[], float],
) -> FanoutResult:
    """Measure Reelwire: viewers on its WebSocket, likes from one socket that signs in as a new user each time."""
    result = FanoutResult(spec.viewers)
    rng = random.Random(spec.seed)
    rate, duration_s = spec.rate, spec.duration_s

    async def join(number: int) -> ClientConnection:
        socket = await connect(ws_url, max_size=None, open_timeout=60)
        await socket.recv()
        await socket.send(json.dumps({"op": "subscribe", "reel_ids": spec.reels_for_viewer(reel_id, rng)}))
        return socket

    def parse(raw: str | bytes) -> int | None:
        frame = json.loads(raw)
        if frame.get("type") == "reel.state" and frame.get("reel_id") == reel_id:
            return int(frame["version"])
        return None

    async def send_likes(sent: list[tuple[int, float]], started: float) -> None:
        sent_at: dict[str, float] = {}
        ingest = await connect(ws_url, max_size=None)
        await ingest.recv()

        async def read_acks() -> None:
            async for raw in ingest:
                frame = json.loads(raw)
                if frame.get("type") == "ack" and frame.get("status") == "applied":
                    began = sent_at.pop(frame["request_id"], None)
                    if began is not None:
                        sent.append((frame["version"], began))

        acks = asyncio.ensure_future(read_acks())
        user = 0
        while time.perf_counter() - started < duration_s:
            due = int((time.perf_counter() - started) * rate) - result.likes_sent
            for _ in range(max(0, due)):
                user += 1
                request_id = f"fan-{user}"
                await ingest.send(json.dumps({"op": "auth", "token": token_for(user)}))
                sent_at[request_id] = time.perf_counter()
                await ingest.send(json.dumps({"op": "like", "reel_id": reel_id, "request_id": request_id}))
                result.likes_sent += 1
            await asyncio.sleep(0.01)
        # Every like sent is waited for, so that the run's count of acknowledged
        # commands matches the events in the log. Rates include this wait,
        # because likes and pushes go on during it.
        drain_deadline = time.perf_counter() + ACK_DRAIN_S
        while sent_at and time.perf_counter() < drain_deadline and not acks.done():
            await asyncio.sleep(0.05)
        result.unanswered = len(sent_at)
        acks.cancel()
        await asyncio.gather(acks, return_exceptions=True)
        await ingest.close()

    await _measure(result, join, parse, send_likes, gateway_rss_mb, spec.sample_every)
    return result


async def naive_fanout_load(
    base_url: str, ws_url: str, reel_id: str, spec: FanoutSpec, server_rss_mb: Callable[[], float]
) -> FanoutResult:
    """Measure the naive peer: viewers on its WebSocket, likes over its REST endpoint."""
    result = FanoutResult(spec.viewers)
    rng = random.Random(spec.seed)
    rate, duration_s = spec.rate, spec.duration_s

    async def join(number: int) -> ClientConnection:
        socket = await connect(ws_url, max_size=None, open_timeout=60)
        await socket.send(json.dumps({"reel_ids": spec.reels_for_viewer(reel_id, rng)}))
        return socket

    def parse(raw: str | bytes) -> int | None:
        frame = json.loads(raw)
        return int(frame["likes"]) if frame.get("reel_id") == reel_id else None

    async def send_likes(sent: list[tuple[int, float]], started: float) -> None:
        slots = asyncio.Semaphore(NAIVE_LIKES_IN_FLIGHT)
        pending: set[asyncio.Task[None]] = set()
        timeout = aiohttp.ClientTimeout(total=NAIVE_LIKE_TIMEOUT_S)
        async with aiohttp.ClientSession(base_url, timeout=timeout) as session:

            async def like(user: int) -> None:
                began = time.perf_counter()
                try:
                    async with session.post(f"/reels/{reel_id}/like", headers={"X-User": f"fan-{user}"}) as response:
                        if response.status == 200:
                            sent.append((int((await response.json())["likes"]), began))
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    result.latency.errors += 1
                finally:
                    slots.release()

            while time.perf_counter() - started < duration_s:
                due = int((time.perf_counter() - started) * rate) - result.likes_sent
                for _ in range(max(0, due)):
                    await slots.acquire()
                    if time.perf_counter() - started >= duration_s:
                        slots.release()
                        break
                    result.likes_sent += 1
                    task = asyncio.ensure_future(like(result.likes_sent))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                await asyncio.sleep(0.01)
            await asyncio.gather(*pending, return_exceptions=True)

    await _measure(result, join, parse, send_likes, server_rss_mb, spec.sample_every)
    return result
