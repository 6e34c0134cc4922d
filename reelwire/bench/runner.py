"""``reelwire bench``: start what is needed, run the workloads, print and save the results.

Every phase is bounded by ``--duration`` seconds, every address is 127.0.0.1,
and every process the run starts is stopped at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import secrets
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx

from gateway.auth import mint_token
from reelwire.bench.clients import LoadResult, rest_commands, websocket_commands
from reelwire.bench.fanout import fanout_load
from reelwire.bench.plots import write_plots
from reelwire.bench.verify import LagResult, check_consistency, sample_lag
from reelwire.bench.processes import ManagedProcess, free_port, own_rss_mb, python, start_process, wait_http
from reelwire.bench.workload import OperationMix
from reelwire.config import REPO_ROOT, Settings
from storage.cassandra import CassandraStore


@dataclass(frozen=True)
class BenchOptions:
    duration_s: float = 15.0
    reels: int = 200
    sockets: int = 16
    window: int = 128
    rest_concurrency: int = 64
    users: int = 2000
    mix: OperationMix = OperationMix()
    output: Path = REPO_ROOT / "results"
    seed: int = 7
    fanout_viewers: tuple[int, ...] = (1000, 5000)
    fanout_rate: float = 2000.0


async def run_bench(options: BenchOptions) -> dict[str, Any]:
    """Run every phase and return the results; also written as JSON under ``options.output``."""
    run_dir = options.output / datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    run_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(["bash", str(REPO_ROOT / "scripts" / "services.sh"), "start"], check=True,
                   stdout=subprocess.DEVNULL)

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
    peer: ManagedProcess | None = None
    phases: list[dict[str, Any]] = []
    fanouts: list[dict[str, Any]] = []
    lag = LagResult()
    consistency: dict[str, Any] = {}
    try:
        base_url = f"http://127.0.0.1:{port}"
        print(f"bench: starting Reelwire ({namespace}) on {base_url}", flush=True)
        await wait_http(stack, f"{base_url}/health", 300)
        tokens = [mint_token(settings, f"user-{number}", 7200) for number in range(options.users)]
        reel_ids = await _create_reels(base_url, tokens, options.reels)
        applied = len(reel_ids)
        store = CassandraStore(settings)
        await asyncio.to_thread(store.connect)

        # Replication lag is sampled while the WebSocket mix phase loads the system.
        stop_sampling = asyncio.Event()
        sampler = asyncio.ensure_future(sample_lag(base_url, store, mint_token(settings, "lag-probe", 7200),
                                                   stop_sampling))
        phases.append(await _phase("Reelwire", "WebSocket", "mix", websocket_commands(
            f"ws://127.0.0.1:{port}/ws", tokens[: options.sockets], reel_ids, options.mix,
            duration_s=options.duration_s, window=options.window, seed=options.seed)))
        stop_sampling.set()
        lag = await sampler
        phases.append(await _phase("Reelwire", "REST", "mix", rest_commands(
            base_url, tokens, reel_ids, options.mix, duration_s=options.duration_s,
            concurrency=options.rest_concurrency, seed=options.seed)))
        likes_only = OperationMix(like=1, unlike=0, share=0, comment=0, read=0)
        phases.append(await _phase("Reelwire", "WebSocket", "like", websocket_commands(
            f"ws://127.0.0.1:{port}/ws", tokens[options.sockets: 2 * options.sockets], reel_ids, likes_only,
            duration_s=options.duration_s, window=options.window, seed=options.seed + 1)))
        phases.append(await _phase("Reelwire", "REST", "like", rest_commands(
            base_url, tokens, reel_ids, likes_only, duration_s=options.duration_s,
            concurrency=options.rest_concurrency, seed=options.seed + 1)))
        memory = {"reelwire (gateway + Ray + actors)": stack.rss_mb()}

        for viewers in options.fanout_viewers:
            hot = (await _create_reels(base_url, tokens, 1))[0]
            applied += 1
            print(f"bench: fan-out to {viewers} viewers at {options.fanout_rate:g} likes/s ...", flush=True)
            result = await fanout_load(
                f"ws://127.0.0.1:{port}/ws", hot, viewers,
                lambda user: mint_token(settings, f"fan-{viewers}-{user}", 7200),
                rate=options.fanout_rate, duration_s=options.duration_s,
                gateway_rss_mb=lambda: own_rss_mb(stack.process.pid),
            )
            fanouts.append(result.summary())
            applied += result.likes_acknowledged

        applied += lag.applied + sum(phase["statuses"].get("applied", 0) for phase in phases)
        print("bench: checking counts in the actors, in Cassandra and in the Kafka log ...", flush=True)
        consistency = await check_consistency(settings, store, _shard_reader(settings), applied)
        store.close()

        peer_port = free_port()
        peer = start_process("naive-peer", [python(), "-m", "reelwire.bench.naive_peer", "--port", str(peer_port),
                                            "--prefix", namespace], env, run_dir)
        await wait_http(peer, f"http://127.0.0.1:{peer_port}/docs", 60)
        phases.append(await _phase("naive peer", "REST", "like", rest_commands(
            f"http://127.0.0.1:{peer_port}", tokens, reel_ids, likes_only, duration_s=options.duration_s,
            concurrency=options.rest_concurrency, seed=options.seed + 1, naive=True)))
        memory["naive peer"] = peer.rss_mb()
    finally:
        if peer is not None:
            peer.stop()
        stack.stop()

    results = {
        "command": "reelwire bench " + _describe(options),
        "machine": machine_info(),
        "versions": versions(),
        "options": {**{k: v for k, v in options.__dict__.items() if k not in ("mix", "output")},
                    "mix": options.mix.__dict__},
        "phases": phases,
        "fanout": fanouts,
        "replication_lag": lag.summary(),
        "consistency": consistency,
        "memory_mb": {name: round(value, 1) for name, value in memory.items()},
    }
    (run_dir / "results.json").write_text(json.dumps(results, indent=2))
    write_plots(results, run_dir)
    print(render_table(results))
    print(f"bench: results in {run_dir}")
    return results


def _shard_reader(settings: Settings) -> Any:
    """Return a coroutine function that reads reel states from the deployment's shard actors."""
    import ray

    from reelwire.hashing import shard_for
    from reelwire.server import runtime_file

    info = json.loads(runtime_file(settings).read_text())
    if not ray.is_initialized():
        ray.init(address=info["ray_address"], namespace=settings.namespace, log_to_driver=False)
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


async def _phase(target: str, transport: str, workload: str, load: Any) -> dict[str, Any]:
    print(f"bench: {target} over {transport}, workload {workload} ...", flush=True)
    result: LoadResult = await load
    return {"target": target, "transport": transport, "workload": workload, **result.summary()}


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


def render_table(results: dict[str, Any]) -> str:
    header = f"{'target':<12} {'transport':<10} {'workload':<8} {'acked/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
    lines = [header, "-" * len(header)]
    for phase in results["phases"]:
        lines.append(
            f"{phase['target']:<12} {phase['transport']:<10} {phase['workload']:<8} {phase['per_second']:>10.0f} "
            f"{phase['p50_ms']:>8.2f} {phase['p99_ms']:>8.2f} {phase['errors']:>7}"
        )
    lag = results.get("replication_lag")
    if lag:
        lines += ["", f"replication lag, ack to Cassandra row: p50 {lag['cassandra_p50_ms']:.1f} ms, "
                      f"p99 {lag['cassandra_p99_ms']:.1f} ms ({lag['cassandra_samples']} samples); "
                      f"ack to search hit: p50 {lag['search_p50_ms']:.1f} ms, p99 {lag['search_p99_ms']:.1f} ms "
                      f"({lag['search_samples']} samples)"]
    check = results.get("consistency")
    if check:
        lines += [f"correctness: {check['reels']} reels, {check['events_in_log']} events in the log, "
                  f"{check['applied_acknowledgements']} applied acknowledgements "
                  f"({'equal' if check['acks_equal_events'] else 'NOT equal'}); actors differing from the log: "
                  f"{check['actors_differing_from_log']}; Cassandra differing from the log: "
                  f"{check['cassandra_differing_from_log']}"]
    if results.get("fanout"):
        header = (f"{'viewers':>8} {'likes/s':>8} {'pushes/s':>9} {'push p50':>9} {'push p99':>9} {'push max':>9} "
                  f"{'MiB/1000 sockets':>17}")
        lines += ["", header, "-" * len(header)]
        for row in results["fanout"]:
            lines.append(
                f"{row['viewers']:>8} {row['likes_per_second']:>8.0f} {row['pushes_per_second']:>9.0f} "
                f"{row['push_p50_ms']:>9.1f} {row['push_p99_ms']:>9.1f} {row['push_max_ms']:>9.1f} "
                f"{row['gateway_mb_per_1000_sockets']:>17.1f}"
            )
    return "\n".join(lines)


def machine_info() -> dict[str, Any]:
    memory_kb = 0
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kb / 1024 / 1024, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": _cpu_model(),
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def versions() -> dict[str, str]:
    names = ["reelwire", "ray", "fastapi", "uvicorn", "websockets", "redis", "aiokafka", "cassandra-driver", "tantivy"]
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    found.update({"kafka": "3.9.1", "cassandra": "5.0.6"})
    return found


def _describe(options: BenchOptions) -> str:
    return (f"--duration {options.duration_s:g} --reels {options.reels} --sockets {options.sockets} "
            f"--window {options.window} --rest-concurrency {options.rest_concurrency}")

