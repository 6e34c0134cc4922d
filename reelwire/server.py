"""Run a whole deployment in one process: schema, topics, Ray actors and the gateway."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import ray
import uvicorn

from gateway.app import create_app
from gateway.service import GatewayService
from reelwire.config import DEV_JWT_SECRET, Settings
from reelwire.demo import seed_demo
from reelwire.stack import connect_ray, kill_actors, launch_actors, wait_ready
from storage.cassandra import CassandraStore
from storage.kafka import ensure_topics
from storage.queries import ReadModel
from storage.schema import ensure_schema

logger = logging.getLogger(__name__)


async def run(settings: Settings, *, seed: bool, own_actors: bool) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM), then shut down what this process started.

    With ``own_actors`` false the process is an extra gateway: it attaches to
    actors that another process created and leaves them running on exit.
    """
    if settings.jwt_secret.get_secret_value() == DEV_JWT_SECRET:
        logger.warning("REELWIRE_JWT_SECRET is not set: tokens are signed with the public development secret")

    logger.info("applying the Cassandra schema to keyspace %s", settings.keyspace)
    await asyncio.to_thread(ensure_schema, settings)
    await ensure_topics(settings)
    # ray.init must run on the main thread, where it installs its signal handlers.
    address = connect_ray(settings)
    actors = launch_actors(settings)
    await wait_ready(actors)

    store = CassandraStore(settings)
    await asyncio.to_thread(store.connect)
    service = GatewayService(settings, actors, ReadModel(store))
    config = uvicorn.Config(
        create_app(service),
        host=settings.gateway_host,
        port=settings.gateway_port,
        ws="websockets-sansio",
        ws_max_size=settings.max_body_bytes,
        ws_ping_interval=20,
        ws_ping_timeout=20,
        # Frames are small JSON; compressing each one costs more CPU than it saves.
        ws_per_message_deflate=False,
        access_log=False,
        log_config=None,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    serving = asyncio.ensure_future(server.serve())
    try:
        while not server.started:
            if serving.done():
                serving.result()
                raise RuntimeError("the gateway stopped during start-up")
            await asyncio.sleep(0.05)
        if seed:
            await seed_demo(service)
        if own_actors:
            _write_runtime_file(settings, address)
        _print_urls(settings, address.get("dashboard_url"))
        await serving
    finally:
        store.close()
        if own_actors:
            kill_actors(actors)
        ray.shutdown()
        logger.info("Reelwire stopped")


def _write_runtime_file(settings: Settings, address: dict[str, Any]) -> None:
    """Record where this deployment runs, for operators' tools and the tests."""
    path = runtime_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    info = {
        "pid": os.getpid(),
        "gateway": f"http://{settings.gateway_host}:{settings.gateway_port}",
        "ray_address": address.get("gcs_address") or settings.ray_address,
        "dashboard_url": address.get("dashboard_url"),
    }
    path.write_text(json.dumps(info, indent=2))


def runtime_file(settings: Settings) -> Path:
    return settings.data_dir / settings.namespace / "runtime.json"


def _print_urls(settings: Settings, dashboard_url: str | None) -> None:
    base = f"http://{settings.gateway_host}:{settings.gateway_port}"
    lines = [
        "Reelwire is running. Press Ctrl-C to stop.",
        f"  REST           {base}",
        f"  API docs       {base}/docs",
        f"  WebSocket      ws://{settings.gateway_host}:{settings.gateway_port}/ws",
        f"  Ray dashboard  {_with_scheme(dashboard_url) if dashboard_url else 'not started by this process'}",
    ]
    print("\n".join(lines), file=sys.stdout, flush=True)


def _with_scheme(url: str) -> str:
    return url if url.startswith("http") else f"http://{url}"
