"""The ``reelwire`` command."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from reelwire.bench import PEERS as BENCH_PEERS
from reelwire.config import Settings
from reelwire.errors import ReelwireError
from reelwire.logs import configure_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="reelwire", description="Realtime backend for short-video apps.")
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="run Ray actors, consumers and the gateway until Ctrl-C")
    up.add_argument("--no-seed", action="store_true", help="do not create the demo reels")
    up.add_argument("--port", type=int, help="gateway port (default: REELWIRE_GATEWAY_PORT or 8000)")

    gateway = commands.add_parser("gateway", help="run one more gateway process against running actors")
    gateway.add_argument("--port", type=int, required=True, help="port of this gateway")

    token = commands.add_parser("token", help="print a development JWT for a user")
    token.add_argument("user_id", help="the user the token names")
    token.add_argument("--ttl", type=int, default=None, help="lifetime in seconds (default: REELWIRE_TOKEN_TTL_S)")

    commands.add_parser("migrate", help="create the keyspace, tables and topics")

    bench = commands.add_parser("bench", help="measure Reelwire and the peers on this machine")
    bench.add_argument("--duration", type=float, default=15.0, help="seconds per phase (default 15)")
    bench.add_argument("--reels", type=int, default=200, help="reels in the Zipf workload (default 200)")
    bench.add_argument("--sockets", type=int, default=16, help="WebSocket command connections (default 16)")
    bench.add_argument("--window", type=int, default=128, help="unacknowledged commands per socket (default 128)")
    bench.add_argument("--rest-concurrency", type=int, default=50,
                       help="concurrent REST connections, for Reelwire and the peers alike (default 50)")
    bench.add_argument("--mix", default="like=60,unlike=10,share=15,comment=5,read=10",
                       help="operation weights (default like=60,unlike=10,share=15,comment=5,read=10)")
    bench.add_argument("--output", default=None, help="results folder (default results/ in the checkout)")
    bench.add_argument("--viewers", default="1000,5000",
                       help="comma-separated viewer counts for the fan-out phases (default 1000,5000)")
    bench.add_argument("--fanout-rate", type=float, default=2000.0,
                       help="likes per second during the fan-out phases (default 2000)")
    bench.add_argument("--reels-per-viewer", type=int, default=3,
                       help="reels each fan-out viewer subscribes to, the hot one among them (default 3)")
    bench.add_argument("--peers", default=",".join(BENCH_PEERS),
                       help=f"peers to measure beside Reelwire, comma-separated (default {','.join(BENCH_PEERS)})")
    bench.add_argument("--no-progress", action="store_true", help="do not draw the progress bar")

    args = parser.parse_args(argv)
    configure_logging()
    settings = Settings()
    try:
        if args.command == "token":
            from gateway.auth import mint_token

            print(mint_token(settings, args.user_id, args.ttl))
            return 0
        if args.command == "migrate":
            return asyncio.run(_migrate(settings))
        if args.command == "bench":
            return _bench(args)
        if args.port is not None:
            settings = settings.model_copy(update={"gateway_port": args.port})
        if not settings.ray_address:
            _keep_ray_on_loopback()
        from reelwire.server import run

        own = args.command == "up"
        if not own and not settings.ray_address:
            # An extra gateway joins the Ray instance that `reelwire up` started.
            settings = settings.model_copy(update={"ray_address": "auto"})
        asyncio.run(run(settings, seed=own and not args.no_seed, own_actors=own))
        return 0
    except ReelwireError as exc:
        print(f"reelwire: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # Ctrl-C is how `up` and `gateway` are meant to stop; shutdown has run by now.
        return 0 if args.command in ("up", "gateway") else 130


def _bench(args: argparse.Namespace) -> int:
    from pathlib import Path

    # The benchmark reads shard states through Ray, as a driver of the local instance it starts.
    _keep_ray_on_loopback()

    from reelwire.bench.runner import BenchOptions, run_bench
    from reelwire.bench.workload import OperationMix

    try:
        mix = OperationMix.parse(args.mix)
    except ValueError as exc:
        print(f"reelwire bench: invalid --mix: {exc}", file=sys.stderr)
        return 2
    peers = tuple(part.strip() for part in args.peers.split(",") if part.strip())
    unknown = sorted(set(peers) - set(BENCH_PEERS))
    if unknown:
        print(f"reelwire bench: unknown peers {', '.join(unknown)}; choose from {', '.join(BENCH_PEERS)}",
              file=sys.stderr)
        return 2
    options = BenchOptions(
        duration_s=args.duration,
        reels=args.reels,
        sockets=args.sockets,
        window=args.window,
        rest_concurrency=args.rest_concurrency,
        mix=mix,
        fanout_viewers=tuple(int(part) for part in args.viewers.split(",") if part.strip()),
        fanout_rate=args.fanout_rate,
        reels_per_viewer=args.reels_per_viewer,
        peers=peers,
        progress=not args.no_progress,
        **({"output": Path(args.output)} if args.output else {}),
    )
    asyncio.run(run_bench(options))
    return 0


def _keep_ray_on_loopback() -> None:
    """Set the environment of a single-node Ray, before ray is imported."""
    # Ray otherwise advertises the host's network address; this switch makes
    # it bind and advertise 127.0.0.1.
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    # The dashboard listens on 127.0.0.1 only, so Ray's token authentication
    # would only stand between the operator and the dashboard. Clusters keep it.
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    # Each actor logs its own start-up line; Ray would merge identical ones.
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")


async def _migrate(settings: Settings) -> int:
    from storage.kafka import ensure_topics
    from storage.schema import ensure_schema

    version = await asyncio.to_thread(ensure_schema, settings)
    await ensure_topics(settings)
    print(f"schema at version {version}; topics {settings.events_topic} and {settings.dead_letter_topic} ready")
    return 0


if __name__ == "__main__":
    sys.exit(main())
