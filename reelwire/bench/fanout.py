"""The fan-out workload: many viewers on one hot reel while likes stream in.

Likes come from one socket that authenticates as a new user before each like,
so that every like changes the count. Every viewer counts the state frames it
receives. One viewer in ``sample_every`` also records when each version
arrived. The like-to-push latency of a like is the time from sending it to the
first push that includes its version.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from reelwire.bench.workload import LatencyRecorder

CONNECT_BATCH = 200
ACK_DRAIN_S = 60.0


@dataclass
class FanoutResult:
    viewers: int
    likes_sent: int = 0
    likes_acknowledged: int = 0
    pushes: int = 0
    elapsed_s: float = 0.0
    latency: LatencyRecorder = field(default_factory=LatencyRecorder)
    gateway_mb_per_1000: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "viewers": self.viewers,
            "likes_per_second": round(self.likes_acknowledged / self.elapsed_s, 1) if self.elapsed_s else 0.0,
            "pushes_per_second": round(self.pushes / self.elapsed_s, 1) if self.elapsed_s else 0.0,
            "push_p50_ms": round(self.latency.percentile_ms(50), 2),
            "push_p99_ms": round(self.latency.percentile_ms(99), 2),
            "push_max_ms": round(self.latency.max_ms(), 2),
            "samples": self.latency.count,
            "gateway_mb_per_1000_sockets": round(self.gateway_mb_per_1000, 1),
        }


class _Viewer:
    def __init__(self, socket: ClientConnection, sampled: bool) -> None:
        self.socket = socket
        self.sampled = sampled
        self.frames = 0
        self.arrivals: list[tuple[int, float]] = []

    async def read(self, stop: asyncio.Event) -> None:
        try:
            async for raw in self.socket:
                if stop.is_set():
                    return
                self.frames += 1
                if self.sampled:
                    frame = json.loads(raw)
                    if frame.get("type") == "reel.state":
                        self.arrivals.append((frame["version"], time.perf_counter()))
        except Exception:  # noqa: BLE001 - a viewer closed by the server ends its own count only
            return


async def fanout_load(
    ws_url: str,
    reel_id: str,
    viewers: int,
    token_for: Callable[[int], str],
    *,
    rate: float,
    duration_s: float,
    gateway_rss_mb: Callable[[], float],
    sample_every: int = 50,
) -> FanoutResult:
    """Connect ``viewers`` sockets to one reel, stream likes at ``rate`` per second, and measure."""
    result = FanoutResult(viewers)
    rss_before = gateway_rss_mb()
    stop = asyncio.Event()
    members: list[_Viewer] = []
    subscribe = json.dumps({"op": "subscribe", "reel_ids": [reel_id]})

    async def join(number: int) -> _Viewer:
        socket = await connect(ws_url, max_size=None, open_timeout=60)
        await socket.recv()
        await socket.send(subscribe)
        return _Viewer(socket, number % sample_every == 0)

    for start in range(0, viewers, CONNECT_BATCH):
        members.extend(await asyncio.gather(*(join(n) for n in range(start, min(viewers, start + CONNECT_BATCH)))))
    await asyncio.sleep(1.0)
    result.gateway_mb_per_1000 = (gateway_rss_mb() - rss_before) / viewers * 1000
    readers = [asyncio.ensure_future(member.read(stop)) for member in members]
    await asyncio.sleep(0.5)
    for member in members:
        member.frames = 0
        member.arrivals.clear()

    sent_at: dict[str, float] = {}
    version_sent_at: list[tuple[int, float]] = []
    ingest = await connect(ws_url, max_size=None)
    await ingest.recv()

    async def read_acks() -> None:
        async for raw in ingest:
            frame = json.loads(raw)
            if frame.get("type") == "ack" and frame.get("status") == "applied":
                started = sent_at.pop(frame["request_id"], None)
                if started is not None:
                    result.likes_acknowledged += 1
                    version_sent_at.append((frame["version"], started))

    acks = asyncio.ensure_future(read_acks())
    started = time.perf_counter()
    tick = 0.01
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
        await asyncio.sleep(tick)

    # Every like sent is waited for, so that the run's count of acknowledged
    # commands matches the events in the log. Rates include this wait, because
    # likes and pushes go on during it.
    drain_deadline = time.perf_counter() + ACK_DRAIN_S
    while sent_at and time.perf_counter() < drain_deadline and not acks.done():
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    result.elapsed_s = time.perf_counter() - started
    stop.set()

    for member in members:
        result.pushes += member.frames
    version_sent_at.sort()
    for member in members:
        if not member.sampled or not member.arrivals:
            continue
        versions = [version for version, _ in member.arrivals]
        for version, sent in version_sent_at:
            position = bisect.bisect_left(versions, version)
            if position < len(versions):
                result.latency.record_seconds(member.arrivals[position][1] - sent)
            else:
                result.latency.errors += 1

    acks.cancel()
    for reader in readers:
        reader.cancel()
    await asyncio.gather(acks, *readers, return_exceptions=True)
    await ingest.close()
    await asyncio.gather(*(member.socket.close() for member in members), return_exceptions=True)
    return result
