"""Load clients: WebSocket and REST command streams against a gateway, and reads.

Every client stops by itself after ``duration_s`` and sends traffic only to the
URLs it is given, which the runner builds from 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from websockets.asyncio.client import connect

from reelwire.bench.workload import LatencyRecorder, OperationMix, ZipfPicker

READ_KINDS = ("reel", "comments", "feed", "search")


@dataclass
class LoadResult:
    name: str
    acknowledged: int = 0
    elapsed_s: float = 0.0
    latency: LatencyRecorder = field(default_factory=LatencyRecorder)
    statuses: dict[str, int] = field(default_factory=dict)
    reads: LatencyRecorder = field(default_factory=LatencyRecorder)
    # Commands sent whose outcome never arrived: each may or may not have been applied.
    unanswered: int = 0

    @property
    def per_second(self) -> float:
        return self.acknowledged / self.elapsed_s if self.elapsed_s else 0.0

    def summary(self) -> dict[str, Any]:
        """Commands and reads are reported apart: only commands are acknowledged interactions."""
        return {
            "name": self.name,
            "acknowledged": self.acknowledged,
            "errors": self.latency.errors + self.reads.errors,
            "elapsed_s": round(self.elapsed_s, 3),
            "per_second": round(self.per_second, 1),
            "p50_ms": round(self.latency.percentile_ms(50), 3),
            "p99_ms": round(self.latency.percentile_ms(99), 3),
            "max_ms": round(self.latency.max_ms(), 3),
            "reads": self.reads.count,
            "reads_per_second": round(self.reads.count / self.elapsed_s, 1) if self.elapsed_s else 0.0,
            "read_p50_ms": round(self.reads.percentile_ms(50), 3),
            "read_p99_ms": round(self.reads.percentile_ms(99), 3),
            "unanswered": self.unanswered,
            "statuses": self.statuses,
        }


def _choose(weights: dict[str, float], rng: random.Random) -> str:
    names = list(weights)
    return rng.choices(names, weights=[weights[name] for name in names])[0]


async def websocket_commands(
    url: str,
    tokens: list[str],
    reel_ids: list[str],
    mix: OperationMix,
    *,
    duration_s: float,
    window: int,
    seed: int,
    on_ack: Callable[[dict[str, Any]], None] | None = None,
) -> LoadResult:
    """Drive one socket per token, each with up to ``window`` unacknowledged commands."""
    result = LoadResult("websocket")
    weights = mix.command_weights()
    started = time.perf_counter()
    deadline = started + duration_s

    async def run_socket(number: int, token: str) -> None:
        rng = random.Random(seed + number)
        picker = ZipfPicker(len(reel_ids), 1.1, rng)
        sent_at: dict[str, float] = {}
        sending = True
        slots = asyncio.Semaphore(window)
        counter = itertools.count()
        async with connect(url, additional_headers={"Authorization": f"Bearer {token}"}, max_size=None) as socket:
            await socket.recv()  # hello

            async def receive() -> None:
                async for raw in socket:
                    frame = json.loads(raw)
                    request_id = frame.get("request_id")
                    started_at = sent_at.pop(request_id, None) if request_id else None
                    if started_at is None:
                        continue
                    if frame["type"] == "ack":
                        result.acknowledged += 1
                        result.latency.record_seconds(time.perf_counter() - started_at)
                        result.statuses[frame["status"]] = result.statuses.get(frame["status"], 0) + 1
                        if on_ack is not None:
                            on_ack(frame)
                    else:
                        result.latency.errors += 1
                        code = frame.get("code", "error")
                        result.statuses[code] = result.statuses.get(code, 0) + 1
                    slots.release()
                    # Only after the sender has stopped can an empty map mean that every ack arrived.
                    if not sending and not sent_at:
                        return

            receiver = asyncio.ensure_future(receive())
            while time.perf_counter() < deadline and not receiver.done():
                await slots.acquire()
                if time.perf_counter() >= deadline:
                    slots.release()
                    break
                op = _choose(weights, rng)
                request_id = f"b{seed}-{number}-{next(counter)}"
                frame: dict[str, Any] = {"op": op, "reel_id": reel_ids[picker.pick()], "request_id": request_id}
                if op == "comment":
                    frame["text"] = "benchmark comment"
                sent_at[request_id] = time.perf_counter()
                await socket.send(json.dumps(frame))
            sending = False
            if not sent_at:
                receiver.cancel()
            try:
                await asyncio.wait_for(receiver, timeout=30)
            except asyncio.CancelledError:
                pass
            except asyncio.TimeoutError:
                result.latency.errors += len(sent_at)
                result.unanswered += len(sent_at)
                receiver.cancel()

    await asyncio.gather(*(run_socket(number, token) for number, token in enumerate(tokens)))
    result.elapsed_s = time.perf_counter() - started
    return result


async def rest_commands(
    base_url: str,
    tokens: list[str],
    reel_ids: list[str],
    mix: OperationMix,
    *,
    duration_s: float,
    concurrency: int,
    seed: int,
    naive: bool = False,
    read_kinds: tuple[str, ...] = READ_KINDS,
) -> LoadResult:
    """Send REST commands and reads from ``concurrency`` workers, each as one of the users.

    A read takes the next of ``read_kinds`` in turn: a reel with its counts, a
    page of its comments, the feed or a hashtag search. With ``naive`` the target is the naive peer,
    which only understands likes and takes the user from an ``X-User`` header.
    """
    result = LoadResult("rest-naive" if naive else "rest")
    weights = {"like": 1.0} if naive else {**mix.command_weights(), "read": mix.read}
    started = time.perf_counter()
    deadline = started + duration_s
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)

    async with aiohttp.ClientSession(base_url, connector=connector) as session:

        async def worker(number: int) -> None:
            rng = random.Random(seed + number)
            picker = ZipfPicker(len(reel_ids), 1.1, rng)
            token = tokens[number % len(tokens)]
            headers = {"X-User": f"user-{number % len(tokens)}"} if naive else {"Authorization": f"Bearer {token}"}
            counter = itertools.count()
            while time.perf_counter() < deadline:
                op = _choose(weights, rng)
                sequence = next(counter)
                reel_id = reel_ids[picker.pick()]
                reading = op == "read"
                if reading:
                    method, path, body = _read_request(read_kinds[sequence % len(read_kinds)], reel_id)
                else:
                    method, path, body = _rest_request(op, reel_id)
                request_headers = dict(headers, **{"Idempotency-Key": f"r{seed}-{number}-{sequence}"})
                began = time.perf_counter()
                try:
                    async with session.request(method, path, json=body, headers=request_headers) as response:
                        payload = await response.read()
                        ok = response.status < 300
                        key = str(response.status)
                        if ok:
                            key = "ok" if naive or reading else json.loads(payload).get("status", "ok")
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    ok, key = False, "transport_error"
                    if not reading:
                        result.unanswered += 1
                key = f"read {key}" if reading else key
                result.statuses[key] = result.statuses.get(key, 0) + 1
                recorder = result.reads if reading else result.latency
                if ok:
                    result.acknowledged += 0 if reading else 1
                    recorder.record_seconds(time.perf_counter() - began)
                else:
                    recorder.errors += 1

        await asyncio.gather(*(worker(number) for number in range(concurrency)))
    result.elapsed_s = time.perf_counter() - started
    return result


def _read_request(kind: str, reel_id: str) -> tuple[str, str, None]:
    if kind == "reel":
        return "GET", f"/reels/{reel_id}", None
    if kind == "comments":
        return "GET", f"/reels/{reel_id}/comments?limit=20", None
    if kind == "feed":
        return "GET", "/feed?limit=20", None
    return "GET", "/search?q=%23bench&limit=20", None


def _rest_request(op: str, reel_id: str) -> tuple[str, str, dict[str, Any] | None]:
    if op == "like":
        return "POST", f"/reels/{reel_id}/like", None
    if op == "unlike":
        return "DELETE", f"/reels/{reel_id}/like", None
    if op == "share":
        return "POST", f"/reels/{reel_id}/shares", None
    return "POST", f"/reels/{reel_id}/comments", {"text": "benchmark comment"}
