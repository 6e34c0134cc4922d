"""The Strapi peer: likes, comments and reel reads through a Strapi 5 Content API.

The project in ``reelwire/bench/strapi_app`` defines ``reel``, ``like`` and
``comment`` collection types with Strapi's core router, controller and service
factories, on SQLite. ``scripts/strapi.sh install`` copies it to
``.local/peers/strapi`` and installs it with npm. The project's bootstrap lets
the public role call find, findOne and create, so the load needs no token.

A like is a new ``like`` entry that points at its reel, as a developer would
model it in a CMS. A reel's like count is read with the core findOne and
``populate[likes][count]=true``, for which Strapi 5.54 returns
``"likes": {"count": N}`` in place of the list of likes.

NOTE: nothing in this model stops a user from liking a reel twice, unlike
Reelwire's like. The load gives every like a new user, so its figures do not
depend on that difference.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import random
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from reelwire.bench.clients import LoadResult
from reelwire.bench.processes import ManagedProcess, free_port, run_peer_script, start_ready
from reelwire.bench.workload import ZipfPicker
from reelwire.config import REPO_ROOT

logger = logging.getLogger(__name__)

INSTALL_SCRIPT = REPO_ROOT / "scripts" / "strapi.sh"
# The first install downloads about 1,400 npm packages and compiles
# better-sqlite3. It took 3 to 4 minutes on a 2-core machine.
INSTALL_TIMEOUT_S = 1800.0
# Strapi 5.54 starts in about 5 s, plus its migrations on an empty database.
START_TIMEOUT_S = 180.0
REQUEST_TIMEOUT_S = 60.0
ZIPF_EXPONENT = 1.1
WORKLOADS = ("like", "comment", "read")
LIKE_COUNT_QUERY = "populate[likes][count]=true"


@dataclass
class StrapiPeer:
    base_url: str
    process: ManagedProcess
    version: str

    def rss_mb(self) -> float:
        """Resident memory of the Strapi process and its children, in MiB."""
        return self.process.rss_mb()

    def stop(self) -> None:
        self.process.stop()


async def start_strapi(run_dir: Path) -> StrapiPeer:
    """Install Strapi if needed, start it on a free port of 127.0.0.1 and wait until the Content API responds.

    The database is a new SQLite file in ``run_dir``, and every secret is
    random, so no state carries over between runs.
    """
    project_dir = await _install(run_dir)
    port = free_port()
    database = run_dir / "strapi.db"
    for suffix in ("", "-journal", "-wal", "-shm"):
        database.with_name(database.name + suffix).unlink(missing_ok=True)

    env = dict(
        os.environ,
        HOST="127.0.0.1",
        PORT=str(port),
        DATABASE_FILENAME=str(database.resolve()),
        NODE_ENV="production",
        APP_KEYS=",".join(secrets.token_urlsafe(24) for _ in range(4)),
        ADMIN_JWT_SECRET=secrets.token_urlsafe(24),
        API_TOKEN_SALT=secrets.token_urlsafe(24),
        TRANSFER_TOKEN_SALT=secrets.token_urlsafe(24),
        ENCRYPTION_KEY=secrets.token_urlsafe(24),
        JWT_SECRET=secrets.token_urlsafe(24),
        STRAPI_TELEMETRY_DISABLED="true",
        BROWSER="false",
    )
    # Strapi takes the project from its working directory. The public role
    # can list reels only after the bootstrap granted its permissions, so a
    # 200 there means the peer is ready for the load.
    base_url = f"http://127.0.0.1:{port}"
    command = [str(project_dir / "node_modules" / ".bin" / "strapi"), "start"]
    process = await start_ready("strapi", command, env, run_dir, f"{base_url}/api/reels", START_TIMEOUT_S,
                                cwd=project_dir)
    version = _installed_version(project_dir)
    logger.info("Strapi %s started on %s (pid %d)", version, base_url, process.process.pid)
    return StrapiPeer(base_url, process, version)


async def strapi_load(
    peer: StrapiPeer, *, reels: int, duration_s: float, concurrency: int = 50, seed: int = 7
) -> list[dict[str, Any]]:
    """Create ``reels`` reels, then run the like, comment and read phases, each ``duration_s`` long.

    Every phase keeps ``concurrency`` requests in flight on as many connections
    and picks reels with a Zipf distribution. Each like comes from a new user.
    Returns one summary per phase, in that order.
    """
    if reels < 1:
        raise ValueError(f"reels must be at least 1, got {reels}")
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    if duration_s <= 0:
        raise ValueError(f"duration_s must be positive, got {duration_s}")

    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(peer.base_url, connector=connector, timeout=timeout) as session:
        reel_ids = await create_reels(session, reels, concurrency)
        phases = []
        for workload in WORKLOADS:
            result = await _run_phase(session, workload, reel_ids, duration_s=duration_s, concurrency=concurrency,
                                      seed=seed)
            logger.info("Strapi %s: %d acknowledged, %d errors in %.1f s", workload, result.acknowledged,
                        result.latency.errors, result.elapsed_s)
            phases.append(_phase_summary(workload, result))
    return phases


def _phase_summary(workload: str, result: LoadResult) -> dict[str, Any]:
    summary = {"target": "Strapi", "transport": "REST", "workload": workload, **result.summary()}
    if workload == "read":
        # Every request of this phase is a read, and its figures are the
        # phase's own, so the read fields repeat them for the report.
        summary.update(reads=summary["acknowledged"], reads_per_second=summary["per_second"],
                       read_p50_ms=summary["p50_ms"], read_p99_ms=summary["p99_ms"])
    return summary


async def create_reels(session: aiohttp.ClientSession, count: int, concurrency: int) -> list[str]:
    """Create ``count`` reels with up to ``concurrency`` requests at once; return their document ids in order."""
    slots = asyncio.Semaphore(concurrency)

    async def create(number: int) -> str:
        async with slots:
            data = await post_entry(session, "/api/reels", {"title": f"benchmark reel {number}"})
            return str(data["documentId"])

    return list(await asyncio.gather(*(create(number) for number in range(count))))


async def post_entry(session: aiohttp.ClientSession, path: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Create one entry through the Content API; return its ``data``. Raise RuntimeError on a status other than 201."""
    async with session.post(path, json={"data": fields}) as response:
        text = await response.text()
        if response.status != 201:
            raise RuntimeError(f"POST {path} failed with HTTP {response.status}: {text[:500]}")
    return dict(json.loads(text)["data"])


async def read_like_count(session: aiohttp.ClientSession, reel_id: str) -> int:
    """Read one reel with the core findOne and return the like count that Strapi computed."""
    path = _read_path(reel_id)
    async with session.get(path) as response:
        text = await response.text()
        if response.status != 200:
            raise RuntimeError(f"GET {path} failed with HTTP {response.status}: {text[:500]}")
    return int(json.loads(text)["data"]["likes"]["count"])


async def _run_phase(
    session: aiohttp.ClientSession,
    workload: str,
    reel_ids: list[str],
    *,
    duration_s: float,
    concurrency: int,
    seed: int,
) -> LoadResult:
    result = LoadResult(f"strapi-{workload}")
    started = time.perf_counter()
    deadline = started + duration_s

    async def worker(number: int) -> None:
        # A string seed keeps each worker's picks reproducible and different
        # from those of the other phases.
        rng = random.Random(f"{seed}-{workload}-{number}")
        picker = ZipfPicker(len(reel_ids), ZIPF_EXPONENT, rng)
        counter = itertools.count()
        while time.perf_counter() < deadline:
            reel_id = reel_ids[picker.pick()]
            user = f"bench-{seed}-{workload}-{number}-{next(counter)}"
            method, path, body = _request(workload, reel_id, user)
            began = time.perf_counter()
            try:
                async with session.request(method, path, json=body) as response:
                    await response.read()
                    key = str(response.status)
                    ok = 200 <= response.status < 300
            except aiohttp.ClientError:
                key, ok = "transport_error", False
            except TimeoutError:
                key, ok = "timeout", False
            result.statuses[key] = result.statuses.get(key, 0) + 1
            if ok:
                result.acknowledged += 1
                result.latency.record_seconds(time.perf_counter() - began)
            else:
                result.latency.errors += 1

    await asyncio.gather(*(worker(number) for number in range(concurrency)))
    result.elapsed_s = time.perf_counter() - started
    return result


def _request(workload: str, reel_id: str, user: str) -> tuple[str, str, dict[str, Any] | None]:
    if workload == "like":
        return "POST", "/api/likes", {"data": {"user": user, "reel": reel_id}}
    if workload == "comment":
        return "POST", "/api/comments", {"data": {"user": user, "body": "benchmark comment", "reel": reel_id}}
    if workload == "read":
        return "GET", _read_path(reel_id), None
    raise ValueError(f"unknown workload {workload!r}; use one of {', '.join(WORKLOADS)}")


def _read_path(reel_id: str) -> str:
    return f"/api/reels/{reel_id}?{LIKE_COUNT_QUERY}"


async def _install(run_dir: Path) -> Path:
    return await run_peer_script(INSTALL_SCRIPT, "Strapi", run_dir, INSTALL_TIMEOUT_S)


def _installed_version(project_dir: Path) -> str:
    manifest = project_dir / "node_modules" / "@strapi" / "strapi" / "package.json"
    try:
        return str(json.loads(manifest.read_text())["version"])
    except (OSError, ValueError, KeyError) as error:
        logger.warning("could not read the Strapi version from %s: %s", manifest, error)
        return "unknown"
