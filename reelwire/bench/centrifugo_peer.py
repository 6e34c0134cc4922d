"""The Centrifugo peer: the fan-out workload run against a Centrifugo v6 server.

Centrifugo gets the same updates as Reelwire. Likes on the hot reel are
simulated here: each increments a count and records when it happened. Every
``tick_ms`` a publisher sends the latest count to the hot channel through
Centrifugo's server HTTP API, much as Reelwire coalesces a reel's pushes to
one per viewer every 50 ms. The viewers speak Centrifugo's JSON client
protocol over ``/connection/websocket``. Each subscribes to the hot channel
and to a few channels from a small pool, and the latency of a like is
measured as in :mod:`reelwire.bench.fanout`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import os
import random
import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from reelwire.bench.fanout import CONNECT_BATCH, FanoutResult, record_push_latency, viewer_reels
from reelwire.bench.processes import ManagedProcess, free_port, run_peer_script, start_ready
from reelwire.config import REPO_ROOT

logger = logging.getLogger(__name__)

INSTALL_SCRIPT = REPO_ROOT / "scripts" / "centrifugo.sh"
# The first build downloads and compiles Centrifugo and all its modules: it
# took 332 s on a 2-core machine with empty Go caches.
INSTALL_TIMEOUT_S = 1800.0
START_TIMEOUT_S = 60.0

# Anonymous clients may subscribe only to channels of this namespace, so the
# benchmark's open access covers nothing else on the server.
NAMESPACE = "reel"
OTHER_CHANNELS = [f"{NAMESPACE}:{number}" for number in range(1, 21)]

REPLY_TIMEOUT_S = 60.0
PUBLISH_TIMEOUT_S = 10.0
PUBLISH_DRAIN_S = 60.0
LIKE_TICK_S = 0.01


@dataclass
class CentrifugoPeer:
    process: ManagedProcess
    ws_url: str
    api_url: str
    api_key: str = field(repr=False)
    version: str = "unknown"

    def rss_mb(self) -> float:
        """Resident memory of the Centrifugo process, in MiB."""
        return self.process.rss_mb()

    def stop(self) -> None:
        self.process.stop()


async def start_centrifugo(run_dir: Path) -> CentrifugoPeer:
    """Build Centrifugo if needed, start it on a free port of 127.0.0.1 and wait until it is healthy."""
    binary = await _install(run_dir)
    port = free_port()
    api_key = secrets.token_hex(16)
    config_path = run_dir / "centrifugo.json"
    config_path.write_text(json.dumps(_config(port, api_key), indent=2))
    config_path.chmod(0o600)

    base_url = f"http://127.0.0.1:{port}"
    process = await start_ready("centrifugo", [str(binary), "--config", str(config_path)], dict(os.environ),
                                run_dir, f"{base_url}/health", START_TIMEOUT_S)
    logger.info("Centrifugo started on %s (pid %d)", base_url, process.process.pid)
    return CentrifugoPeer(process, f"ws://127.0.0.1:{port}/connection/websocket", f"{base_url}/api", api_key,
                          await _version(binary))


async def _version(binary: Path) -> str:
    """Return the version the binary reports, such as 'v6.9.1', or 'unknown'."""
    command = await asyncio.create_subprocess_exec(str(binary), "version", stdout=asyncio.subprocess.PIPE)
    output, _ = await command.communicate()
    words = output.decode().split()
    return words[1] if len(words) > 1 else "unknown"


async def _install(run_dir: Path) -> Path:
    return await run_peer_script(INSTALL_SCRIPT, "Centrifugo", run_dir, INSTALL_TIMEOUT_S)


def _config(port: int, api_key: str) -> dict[str, Any]:
    """Return a Centrifugo v6 configuration for the benchmark (option names as of v6.9.1)."""
    return {
        "http_server": {"address": "127.0.0.1", "port": port},
        "log": {"level": "warn"},
        "http_api": {"key": api_key},
        "health": {"enabled": True},
        # Otherwise the server sends anonymous usage statistics to its developers.
        "usage_stats": {"disabled": True},
        "client": {"allow_anonymous_connect_without_token": True},
        "channel": {
            "namespaces": [
                {"name": NAMESPACE, "allow_subscribe_for_anonymous": True, "allow_subscribe_for_client": True},
            ],
        },
    }


class _Viewer:
    """One client connection: counts publications and, when sampled, records when each count arrived."""

    def __init__(self, socket: ClientConnection, sampled: bool) -> None:
        self.socket = socket
        self.sampled = sampled
        self.publications = 0
        self.arrivals: list[tuple[int, float]] = []
        self.close_code: int | None = None
        self.closed_early = False

    def reset(self) -> None:
        self.publications = 0
        self.arrivals.clear()

    async def read(self, stop: asyncio.Event) -> None:
        """Read frames until ``stop`` is set, and reply to every server ping with a pong."""
        try:
            async for message in self.socket:
                arrived = time.perf_counter()
                if stop.is_set():
                    return
                if not self.sampled and isinstance(message, str) and "{}" not in message:
                    # Without a ping in the frame, counting is all there is to do.
                    self.publications += message.count('"pub":')
                    continue
                for line in _lines(message):
                    if line == "{}":
                        # A ping is an empty object, and so is its pong. Centrifugo
                        # closes connections that miss a pong, and also those that
                        # send one when no ping came.
                        await self.socket.send("{}")
                    elif '"pub":' in line:
                        self.publications += 1
                        if self.sampled:
                            self.arrivals.append((int(json.loads(line)["push"]["pub"]["data"]["likes"]), arrived))
        except ConnectionClosed as closed:
            self.close_code = closed.rcvd.code if closed.rcvd else None
        if not stop.is_set():
            self.closed_early = True


def _lines(message: str | bytes) -> Iterator[str]:
    """Split a frame into its JSON messages: Centrifugo joins several in one frame with newlines."""
    text = message.decode() if isinstance(message, bytes) else message
    for line in text.split("\n"):
        if line:
            yield line


async def _join(ws_url: str, channels: list[str], sampled: bool) -> _Viewer:
    """Open a connection, connect anonymously and subscribe to ``channels``. Raise RuntimeError on an error reply."""
    # Centrifugo's own pings keep the connection checked, so the client's
    # WebSocket-level keepalive is off.
    socket = await connect(ws_url, max_size=None, open_timeout=REPLY_TIMEOUT_S, ping_interval=None)
    try:
        await socket.send(json.dumps({"id": 1, "connect": {}}))
        await _await_replies(socket, {1})
        numbered = list(enumerate(channels, 2))
        await socket.send("\n".join(json.dumps({"id": number, "subscribe": {"channel": channel}})
                                    for number, channel in numbered))
        await _await_replies(socket, {number for number, _ in numbered})
    except BaseException:
        await socket.close()
        raise
    return _Viewer(socket, sampled)


async def _await_replies(socket: ClientConnection, ids: set[int]) -> None:
    waiting = set(ids)
    deadline = time.monotonic() + REPLY_TIMEOUT_S
    while waiting:
        message = await asyncio.wait_for(socket.recv(), max(0.0, deadline - time.monotonic()))
        for line in _lines(message):
            reply = json.loads(line)
            if "error" in reply:
                raise RuntimeError(f"Centrifugo rejected command {reply.get('id')}: {reply['error']}")
            if reply == {}:
                await socket.send("{}")
            waiting.discard(reply.get("id", 0))


async def _join_all(
    ws_url: str, hot: str, viewers: int, channels_per_viewer: int, sample_every: int, rng: random.Random,
    stop: asyncio.Event,
) -> tuple[list[_Viewer], list[asyncio.Future[None]]]:
    """Connect the viewers in batches and start each one's reader at once, so no ping goes unanswered."""
    members: list[_Viewer] = []
    readers: list[asyncio.Future[None]] = []
    try:
        for start in range(0, viewers, CONNECT_BATCH):
            numbers = range(start, min(viewers, start + CONNECT_BATCH))
            joined = await asyncio.gather(
                *(_join(ws_url, viewer_reels(hot, OTHER_CHANNELS, channels_per_viewer, rng), n % sample_every == 0)
                  for n in numbers),
                return_exceptions=True,
            )
            failures = [outcome for outcome in joined if isinstance(outcome, BaseException)]
            for outcome in joined:
                if isinstance(outcome, _Viewer):
                    members.append(outcome)
                    readers.append(asyncio.ensure_future(outcome.read(stop)))
            if failures:
                raise RuntimeError(
                    f"{len(failures)} of {len(numbers)} viewers failed to join {ws_url}: {failures[0]!r}"
                ) from failures[0]
    except BaseException:
        await _close_all(members, readers)
        raise
    return members, readers


async def _close_all(members: list[_Viewer], readers: list[asyncio.Future[None]]) -> None:
    for reader in readers:
        reader.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    await asyncio.gather(*(member.socket.close() for member in members), return_exceptions=True)


class _Publisher:
    """Simulated likes on the hot channel and the HTTP API calls that publish their count."""

    def __init__(self, api_url: str, api_key: str, channel: str) -> None:
        self.api_url = api_url
        self.api_key = api_key
        self.channel = channel
        self.created: list[float] = []
        self.acknowledged = 0
        self.failures = 0
        self.first_failure = ""

    async def run(self, rate: float, duration_s: float, tick_s: float) -> float:
        """Create likes for ``duration_s``, publish their count every ``tick_s``, and return the start time.

        Returns once the last like is published or the drain time is over.
        """
        headers = {"X-API-Key": self.api_key}
        async with httpx.AsyncClient(base_url=self.api_url, headers=headers, timeout=PUBLISH_TIMEOUT_S) as client:
            started = time.perf_counter()
            likes = asyncio.ensure_future(self._create_likes(rate, started, duration_s))
            try:
                await self._publish_every(client, tick_s, likes)
            finally:
                likes.cancel()
                await asyncio.gather(likes, return_exceptions=True)
        return started

    async def _create_likes(self, rate: float, started: float, duration_s: float) -> None:
        """Add likes at ``rate`` per second until ``duration_s`` has passed, each stamped when it was added."""
        while (now := time.perf_counter()) - started < duration_s:
            due = int((now - started) * rate) - len(self.created)
            self.created.extend([now] * max(0, due))
            await asyncio.sleep(LIKE_TICK_S)

    async def _publish_every(self, client: httpx.AsyncClient, tick_s: float, likes: asyncio.Future[None]) -> None:
        next_tick = time.perf_counter()
        drain_deadline: float | None = None
        while True:
            finished = likes.done()
            if finished and drain_deadline is None:
                drain_deadline = time.perf_counter() + PUBLISH_DRAIN_S
            count = len(self.created)
            if count > self.acknowledged:
                await self._publish(client, count)
            if finished and self.acknowledged >= len(self.created):
                return
            if drain_deadline is not None and time.perf_counter() > drain_deadline:
                return
            next_tick += tick_s
            # A publish that took longer than a tick skips the ticks it missed.
            next_tick = max(next_tick, time.perf_counter())
            await asyncio.sleep(next_tick - time.perf_counter())

    async def _publish(self, client: httpx.AsyncClient, count: int) -> None:
        try:
            response = await client.post("/publish", json={"channel": self.channel, "data": {"likes": count}})
            reply = response.json() if response.status_code == 200 else {"status": response.status_code}
        except (httpx.HTTPError, ValueError) as error:
            reply = {"exception": repr(error)}
        if "result" in reply and "error" not in reply:
            self.acknowledged = count
            return
        self.failures += 1
        # Only the first failure is kept in full, so a dead server does not
        # flood the log.
        if self.failures == 1:
            self.first_failure = f"publishing count {count} to {self.channel} failed: {reply}"


@dataclass
class _PublishOutcome:
    """The publisher's start time, the time of each like, and how many likes a successful publish carried."""

    started: float
    created: list[float]
    acknowledged: int
    failures: int
    first_failure: str

    def sent(self) -> list[tuple[int, float]]:
        """Return ``(count, time the like happened)`` for every like that a successful publish carried."""
        return [(number, self.created[number - 1]) for number in range(1, self.acknowledged + 1)]


def _publish_likes(
    api_url: str, api_key: str, channel: str, rate: float, duration_s: float, tick_s: float
) -> _PublishOutcome:
    """Run a publisher until its last like is published. The publisher process runs this function."""
    publisher = _Publisher(api_url, api_key, channel)
    started = asyncio.run(publisher.run(rate, duration_s, tick_s))
    return _PublishOutcome(
        started, publisher.created, publisher.acknowledged, publisher.failures, publisher.first_failure
    )


def _start_worker() -> None:
    """Do nothing: submitted once so the publisher process is started before the measured window."""


async def centrifugo_fanout(
    peer: CentrifugoPeer,
    viewers: int,
    *,
    rate: float,
    duration_s: float,
    channels_per_viewer: int = 3,
    tick_ms: int = 50,
    sample_every: int = 50,
    seed: int = 7,
) -> FanoutResult:
    """Connect ``viewers`` clients to Centrifugo, publish likes at ``rate`` per second for ``duration_s``, and measure.

    ``pushes`` counts publications received, not WebSocket frames, because
    Centrifugo may put several publications in one frame.
    """
    result = FanoutResult(viewers)
    hot = f"{NAMESPACE}:hot-{viewers}-{secrets.token_hex(3)}"
    stop = asyncio.Event()

    # NOTE: Go keeps freed heap for a while before returning it to the OS, so
    # a run that follows another on the same server may show less growth.
    rss_before = peer.rss_mb()
    members, readers = await _join_all(
        peer.ws_url, hot, viewers, channels_per_viewer, sample_every, random.Random(seed), stop
    )
    # The publisher does the work of Reelwire's server-side coalescing, so it
    # runs in a process of its own. On the viewers' busy event loop, or on a
    # thread that shares their interpreter lock, its publishes would come late
    # and so lower the load that the viewers have to read.
    publisher = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(publisher, _start_worker)
        await asyncio.sleep(1.0)
        result.gateway_mb_per_1000 = (peer.rss_mb() - rss_before) / viewers * 1000
        await asyncio.sleep(0.5)
        for member in members:
            member.reset()

        # perf_counter reads CLOCK_MONOTONIC on Linux, one clock for every
        # process, so the publisher's like times and the viewers' arrival
        # times can be subtracted.
        outcome = await loop.run_in_executor(
            publisher, _publish_likes, peer.api_url, peer.api_key, hot, rate, duration_s, tick_ms / 1000
        )
        await asyncio.sleep(0.5)
        result.elapsed_s = time.perf_counter() - outcome.started
        stop.set()

        result.likes_sent = len(outcome.created)
        result.likes_acknowledged = outcome.acknowledged
        sent = outcome.sent()
        for member in members:
            result.pushes += member.publications
            if member.sampled:
                record_push_latency(result.latency, sent, member.arrivals)
        _log_problems(members, outcome)
    finally:
        stop.set()
        # After a failure the publisher may still be running, and it stops by
        # itself within duration_s plus the drain time.
        publisher.shutdown(wait=False, cancel_futures=True)
        await _close_all(members, readers)
    return result


def _log_problems(members: list[_Viewer], outcome: _PublishOutcome) -> None:
    dropped = [member for member in members if member.closed_early]
    if dropped:
        codes = sorted({member.close_code for member in dropped}, key=str)
        logger.warning(
            "%d of %d viewers were closed during the run (close codes %s)", len(dropped), len(members), codes
        )
    if outcome.failures:
        logger.warning("%d publish calls failed; the first: %s", outcome.failures, outcome.first_failure)
    unpublished = len(outcome.created) - outcome.acknowledged
    if unpublished:
        logger.warning("%d likes were never published: the drain ended after %.0f s", unpublished, PUBLISH_DRAIN_S)
