"""``reelwire bench``: start what is needed, run the workloads, print and save the results.

Every phase is bounded by ``--duration`` seconds, every address is 127.0.0.1,
and every process the run starts is stopped at the end. Reelwire runs first;
its deployment is stopped before the peers run, so that they do not share the
cores with it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import secrets
import subprocess
import sys
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from tqdm.contrib.logging import logging_redirect_tqdm

from gateway.auth import mint_token
from reelwire.bench import PEERS
from reelwire.bench.clients import LoadResult, rest_commands, websocket_commands
from reelwire.bench.comparisons import compare
from reelwire.bench.fanout import FanoutResult, FanoutSpec, fanout_load, naive_fanout_load
from reelwire.bench.memory import component_rss_mb
from reelwire.bench.plots import write_plots
from reelwire.bench.processes import free_port, own_rss_mb, python, start_process, wait_http
from reelwire.bench.progress import Progress
from reelwire.bench.report import machine_info, render_markdown, render_table, versions
from reelwire.bench.settle import wait_until_projected
from reelwire.bench.verify import LagResult, check_consistency, sample_lag
from reelwire.bench.workload import OperationMix
from reelwire.config import REPO_ROOT, Settings
from storage.cassandra import CassandraStore

LIKES_ONLY = OperationMix(like=1, unlike=0, share=0, comment=0, read=0)
COMMENTS_ONLY = OperationMix(like=0, unlike=0, share=0, comment=1, read=0)
READS_ONLY = OperationMix(like=0, unlike=0, share=0, comment=0, read=1)
SETTLE_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class BenchOptions:
    duration_s: float = 15.0
    reels: int = 200
    sockets: int = 16
    window: int = 128
    rest_concurrency: int = 50
    users: int = 2000
    mix: OperationMix = OperationMix()
    output: Path = REPO_ROOT / "results"
    seed: int = 7
    fanout_viewers: tuple[int, ...] = (1000, 5000)
    fanout_rate: float = 2000.0
    reels_per_viewer: int = 3
    peers: tuple[str, ...] = PEERS
    progress: bool = True


@dataclass
class _Run:
    """The figures that the phases of one run collect."""

    options: BenchOptions
    progress: Progress
    phases: list[dict[str, Any]] = field(default_factory=list)
    fanouts: list[dict[str, Any]] = field(default_factory=list)
    memory: dict[str, float] = field(default_factory=dict)
    peer_versions: dict[str, str] = field(default_factory=dict)
    settling: list[dict[str, Any]] = field(default_factory=list)
    lag: LagResult = field(default_factory=LagResult)
    consistency: dict[str, Any] = field(default_factory=dict)

    async def phase(self, target: str, transport: str, workload: str, load: Awaitable[LoadResult]) -> LoadResult:
        result = await self.progress.phase(f"{target} {transport} {workload}", self.options.duration_s, load)
        summary = {"target": target, "transport": transport, "workload": workload, **result.summary()}
        if workload == "read":
            summary.update(per_second=summary["reads_per_second"], p50_ms=summary["read_p50_ms"],
                           p99_ms=summary["read_p99_ms"])
        self.phases.append(summary)
        return result

    async def fanout(self, target: str, load: Awaitable[FanoutResult]) -> FanoutResult:
        result = await self.progress.phase(f"{target} fan-out", self.options.duration_s, load)
        self.fanouts.append({"target": target, **result.summary()})
        return result


def planned_phases(options: BenchOptions) -> int:
    """Count the timed phases that a run with ``options`` goes through."""
    reelwire = 6 + len(options.fanout_viewers)
    naive = (1 + len(options.fanout_viewers)) if "naive" in options.peers else 0
    centrifugo = len(options.fanout_viewers) if "centrifugo" in options.peers else 0
    strapi = 3 if "strapi" in options.peers else 0
    return reelwire + naive + centrifugo + strapi


async def run_bench(options: BenchOptions) -> dict[str, Any]:
    """Run every phase and return the results; also written as JSON under ``options.output``."""
    unknown = set(options.peers) - set(PEERS)
    if unknown:
        raise ValueError(f"unknown peers {sorted(unknown)}; choose from {', '.join(PEERS)}")
    run_dir = options.output / datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    run_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(["bash", str(REPO_ROOT / "scripts" / "services.sh"), "start"], check=True,
                   stdout=subprocess.DEVNULL)
    progress = Progress(planned_phases(options) * options.duration_s, enabled=options.progress)
    run = _Run(options, progress)
    # Log lines print above the bar instead of on its line.
    with logging_redirect_tqdm():
        await _measure_all(run, run_dir)
    return _report(run, run_dir)


async def _measure_all(run: _Run, run_dir: Path) -> None:
    options = run.options
    try:
        reel_ids = await _measure_reelwire(run, run_dir)
        if "naive" in options.peers:
            await _measure_naive(run, run_dir, reel_ids)
        if "centrifugo" in options.peers:
            await _measure_centrifugo(run, run_dir)
        if "strapi" in options.peers:
            await _measure_strapi(run, run_dir)
    finally:
        run.progress.close()


def _report(run: _Run, run_dir: Path) -> dict[str, Any]:
    """Write results.json, results.md and the plots, print the tables and return the results."""
    options = run.options
    results: dict[str, Any] = {
        "command": "reelwire bench " + _describe(options),
        "machine": machine_info(),
        "versions": versions(run.peer_versions),
        "options": {**{k: v for k, v in options.__dict__.items() if k not in ("mix", "output", "progress")},
                    "mix": options.mix.__dict__},
        "phases": run.phases,
        "fanout": run.fanouts,
        "replication_lag": run.lag.summary(),
        "consistency": run.consistency,
        "memory_mb": {name: round(value, 1) for name, value in run.memory.items()},
        "settling": run.settling,
    }
    comparisons = compare(results)
    results["comparisons"] = [row.as_dict() for row in comparisons]
    (run_dir / "results.json").write_text(json.dumps(_finite(results), indent=2, allow_nan=False))
    write_plots(results, run_dir)
    (run_dir / "results.md").write_text(render_markdown(results, comparisons))
    print(render_table(results, comparisons))
    print(f"bench: results in {run_dir}")
    return results


async def _measure_reelwire(run: _Run, run_dir: Path) -> list[str]:
    """Start a deployment of its own, run Reelwire's phases, check its counts, stop it; return its reel ids."""
    options = run.options
    namespace = f"bench_{secrets.token_hex(3)}"
    port = free_port()
    settings = Settings(namespace=namespace, gateway_port=port, dashboard_port=free_port(),
                        data_dir=run_dir / "data")
    env = dict(
        os.environ,
        REELWIRE_NAMESPACE=namespace,
        REELWIRE_GATEWAY_PORT=str(port),
        REELWIRE_DASHBOARD_PORT=str(settings.dashboard_port),
        REELWIRE_DATA_DIR=str(settings.data_dir),
        REELWIRE_LOG_LEVEL="WARNING",
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
        RAY_AUTH_MODE="disabled",
    )
    stack = start_process("reelwire", [python(), "-m", "reelwire.cli", "up", "--no-seed"], env, run_dir)
    try:
        base_url = f"http://127.0.0.1:{port}"
        ws_url = f"ws://127.0.0.1:{port}/ws"
        run.progress.note(f"starting Reelwire ({namespace}) on {base_url}")
        await wait_http(stack, f"{base_url}/health", 300)
        tokens = [mint_token(settings, f"user-{number}", 7200) for number in range(options.users)]
        reel_ids = await _create_reels(base_url, tokens, options.reels)
        applied = len(reel_ids)
        store = CassandraStore(settings)
        await asyncio.to_thread(store.connect)

        def rest(mix: OperationMix, seed: int, **extra: Any) -> Awaitable[LoadResult]:
            return rest_commands(base_url, tokens, reel_ids, mix, duration_s=options.duration_s,
                                 concurrency=options.rest_concurrency, seed=seed, **extra)

        def websocket(mix: OperationMix, first: int, seed: int) -> Awaitable[LoadResult]:
            return websocket_commands(ws_url, tokens[first: first + options.sockets], reel_ids, mix,
                                      duration_s=options.duration_s, window=options.window, seed=seed)

        async def settle(before: str) -> None:
            waited, left = await wait_until_projected(settings, SETTLE_TIMEOUT_S)
            run.settling.append({"before": before, "waited_s": round(waited, 1), "backlog_left": left})
            if left:
                run.progress.note(f"projections still {left} events behind after {waited:.0f} s; going on")

        # Replication lag is sampled while the WebSocket mix phase loads the system.
        stop_sampling = asyncio.Event()
        sampler = asyncio.ensure_future(sample_lag(base_url, store, mint_token(settings, "lag-probe", 7200),
                                                   stop_sampling))
        await run.phase("Reelwire", "WebSocket", "mix", websocket(options.mix, 0, options.seed))
        stop_sampling.set()
        lag = run.lag = await sampler
        # Each later phase starts once the projections have caught up, so that
        # it does not pay for the backlog of the phase before it.
        await settle("REST mix")
        await run.phase("Reelwire", "REST", "mix", rest(options.mix, options.seed))
        await settle("WebSocket like")
        await run.phase("Reelwire", "WebSocket", "like", websocket(LIKES_ONLY, options.sockets, options.seed + 1))
        await settle("REST like")
        await run.phase("Reelwire", "REST", "like", rest(LIKES_ONLY, options.seed + 1))
        await settle("REST comment")
        await run.phase("Reelwire", "REST", "comment", rest(COMMENTS_ONLY, options.seed + 2))
        await settle("REST read")
        await run.phase("Reelwire", "REST", "read", rest(READS_ONLY, options.seed + 3, read_kinds=("reel",)))
        run.memory.update(component_rss_mb(stack))

        unanswered = sum(phase["unanswered"] for phase in run.phases)
        for viewers in options.fanout_viewers:
            hot = (await _create_reels(base_url, tokens, 1))[0]
            applied += 1
            await settle(f"fan-out {viewers}")
            run.progress.note(f"Reelwire fan-out to {viewers} viewers at {options.fanout_rate:g} likes/s")
            prefix = f"fan-{viewers}"
            result = await run.fanout("Reelwire", fanout_load(
                ws_url, hot, _fanout_spec(options, viewers, reel_ids),
                partial(_fan_token, settings, prefix), lambda: own_rss_mb(stack.process.pid),
            ))
            applied += result.likes_acknowledged
            unanswered += result.unanswered

        applied += lag.applied + sum(phase["statuses"].get("applied", 0) for phase in run.phases)
        run.progress.note("checking counts in the actors, in Cassandra and in the Kafka log")
        run.consistency = await check_consistency(settings, store, _shard_reader(settings), applied, unanswered)
        store.close()
        return reel_ids
    finally:
        _leave_ray()
        stack.stop()


async def _measure_naive(run: _Run, run_dir: Path, reel_ids: list[str]) -> None:
    options = run.options
    port = free_port()
    prefix = f"naive_{secrets.token_hex(3)}"
    peer = start_process("naive-peer", [python(), "-m", "reelwire.bench.naive_peer", "--port", str(port),
                                        "--prefix", prefix], dict(os.environ), run_dir)
    try:
        base_url = f"http://127.0.0.1:{port}"
        run.progress.note(f"starting the naive peer on {base_url}")
        await wait_http(peer, f"{base_url}/docs", 60)
        users = [f"user-{number}" for number in range(options.users)]
        await run.phase("naive peer", "REST", "like", rest_commands(
            base_url, users, reel_ids, LIKES_ONLY, duration_s=options.duration_s,
            concurrency=options.rest_concurrency, seed=options.seed + 1, naive=True))
        for viewers in options.fanout_viewers:
            run.progress.note(f"naive peer fan-out to {viewers} viewers at {options.fanout_rate:g} likes/s")
            await run.fanout("naive peer", naive_fanout_load(
                base_url, f"ws://127.0.0.1:{port}/ws", f"hot-{viewers}-{secrets.token_hex(3)}",
                _fanout_spec(options, viewers, reel_ids), lambda: own_rss_mb(peer.process.pid),
            ))
        run.memory["naive peer"] = peer.rss_mb()
    finally:
        peer.stop()


async def _measure_centrifugo(run: _Run, run_dir: Path) -> None:
    from reelwire.bench.centrifugo_peer import centrifugo_fanout, start_centrifugo

    options = run.options
    run.progress.note("starting Centrifugo (built with go install on first use)")
    peer = await start_centrifugo(run_dir)
    try:
        for viewers in options.fanout_viewers:
            run.progress.note(f"Centrifugo fan-out to {viewers} viewers at {options.fanout_rate:g} likes/s")
            await run.fanout("Centrifugo", centrifugo_fanout(
                peer, viewers, rate=options.fanout_rate, duration_s=options.duration_s,
                channels_per_viewer=options.reels_per_viewer))
        run.memory["Centrifugo"] = peer.rss_mb()
        run.peer_versions["centrifugo"] = peer.version
    finally:
        peer.stop()


async def _measure_strapi(run: _Run, run_dir: Path) -> None:
    from reelwire.bench.strapi_peer import start_strapi, strapi_load

    options = run.options
    run.progress.note("starting Strapi (installed with npm on first use)")
    peer = await start_strapi(run_dir)
    try:
        phases = await run.progress.phase("Strapi REST like, comment, read", 3 * options.duration_s, strapi_load(
            peer, reels=options.reels, duration_s=options.duration_s, concurrency=options.rest_concurrency,
            seed=options.seed))
        run.phases.extend(phases)
        run.memory["Strapi"] = peer.rss_mb()
        run.peer_versions["strapi"] = peer.version
    finally:
        peer.stop()


def _finite(value: Any) -> Any:
    """Return ``value`` with every NaN (a percentile of no samples) replaced by None, as JSON has no NaN."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def _fan_token(settings: Settings, prefix: str, user: int) -> str:
    return mint_token(settings, f"{prefix}-{user}", 7200)


def _fanout_spec(options: BenchOptions, viewers: int, reel_ids: list[str]) -> FanoutSpec:
    return FanoutSpec(viewers, options.fanout_rate, options.duration_s, tuple(reel_ids), options.reels_per_viewer,
                      seed=options.seed)


def _leave_ray() -> None:
    """Disconnect this process from the deployment's Ray before the deployment stops.

    A Ray driver whose cluster is gone ends its own process after about a
    minute, and the peers' phases run after Reelwire's deployment stopped.
    """
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


def _shard_reader(settings: Settings) -> Any:
    """Return a coroutine function that reads reel states from the deployment's shard actors."""
    import ray

    from reelwire.hashing import shard_for
    from reelwire.server import runtime_file

    info = json.loads(runtime_file(settings).read_text())
    if not ray.is_initialized():
        ray.init(address=info["ray_address"], namespace=settings.namespace, log_to_driver=False,
                 logging_level=logging.WARNING)
    shards = [ray.get_actor(f"shard-{index}") for index in range(settings.shards)]

    async def read(reel_ids: list[str]) -> list[Any]:
        states: list[Any] = []
        for start in range(0, len(reel_ids), 500):
            chunk = reel_ids[start:start + 500]
            for reel_id in chunk:
                shard = shards[shard_for(reel_id, settings.kafka_partitions, settings.shards)]
                states.append((await shard.get_states.remote([reel_id]))[0])
        return states

    return read


async def _create_reels(base_url: str, tokens: list[str], count: int) -> list[str]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:

        async def create(number: int) -> str:
            response = await client.post(
                "/reels",
                json={"caption": f"bench reel {number}", "hashtags": ["bench"], "media_url": "https://cdn.test/v.mp4"},
                headers={"Authorization": f"Bearer {tokens[number % len(tokens)]}"},
            )
            response.raise_for_status()
            return response.json()["reel_id"]

        return list(await asyncio.gather(*(create(number) for number in range(count))))


def _describe(options: BenchOptions) -> str:
    mix = ",".join(f"{name}={weight:g}" for name, weight in options.mix.__dict__.items())
    return (f"--duration {options.duration_s:g} --reels {options.reels} --sockets {options.sockets} "
            f"--window {options.window} --rest-concurrency {options.rest_concurrency} --mix {mix} "
            f"--viewers {','.join(str(v) for v in options.fanout_viewers)} --fanout-rate {options.fanout_rate:g} "
            f"--reels-per-viewer {options.reels_per_viewer} --peers {','.join(options.peers)}")

