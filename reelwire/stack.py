"""Start-up and shutdown of one Reelwire deployment on Ray.

``connect_ray`` joins a cluster (``REELWIRE_RAY_ADDRESS``) or starts a local
head with the dashboard. ``launch_actors`` creates the named actors, or finds
them when another process already created them, so several gateway processes
share one set of shards.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import ray

from actors.feed import FeedShard
from actors.shard import InteractionShard
from gateway.service import Actors
from reelwire.config import Settings
from reelwire.errors import Unavailable
from storage.projectors import CassandraProjector, SearchProjector

logger = logging.getLogger(__name__)

ACTOR_READY_TIMEOUT_S = 180


def connect_ray(settings: Settings) -> dict[str, Any]:
    """Connect this process to Ray and return the address info.

    Without ``REELWIRE_RAY_ADDRESS`` this starts a local head bound to 127.0.0.1
    with the dashboard on ``dashboard_host:dashboard_port``.
    """
    if ray.is_initialized():
        return {}
    if settings.ray_address:
        context = ray.init(address=settings.ray_address, namespace=settings.namespace, log_to_driver=False)
    else:
        # Actor logs stay in Ray's log files and the dashboard; streaming every
        # line to this process would cost the gateway CPU under load.
        context = ray.init(
            namespace=settings.namespace,
            include_dashboard=True,
            dashboard_host=settings.dashboard_host,
            dashboard_port=settings.dashboard_port,
            _node_ip_address="127.0.0.1",
            log_to_driver=False,
        )
    logger.info("connected to Ray at %s", context.address_info.get("gcs_address"))
    return dict(context.address_info, dashboard_url=context.dashboard_url)


def _options(name: str, **extra: Any) -> dict[str, Any]:
    # Actors need no reserved CPU: they are I/O-bound, and a reserved CPU each
    # would cap a 2-core machine at two actors.
    return dict(name=name, get_if_exists=True, num_cpus=0, max_restarts=-1, max_concurrency=1000, **extra)


def launch_actors(settings: Settings) -> Actors:
    """Create or look up every actor of the deployment."""
    shard_cls = ray.remote(InteractionShard)
    feed_cls = ray.remote(FeedShard)
    shards = [
        shard_cls.options(**_options(f"shard-{index}", max_task_retries=3)).remote(index, settings)
        for index in range(settings.shards)
    ]
    feeds = [
        feed_cls.options(**_options(f"feed-{index}")).remote(index, settings)
        for index in range(settings.feed_shards)
    ]
    cassandra = ray.remote(CassandraProjector).options(**_options("projector-cassandra")).remote(settings)
    search = ray.remote(SearchProjector).options(**_options("projector-search")).remote(settings)
    return Actors(shards=shards, feeds=feeds, cassandra=cassandra, search=search)


async def wait_ready(actors: Actors, timeout_s: float = ACTOR_READY_TIMEOUT_S) -> list[dict[str, Any]]:
    """Wait until every actor has started; shards rebuild their reels from the log first."""
    started = time.monotonic()
    handles = [*actors.shards, *actors.feeds, actors.cassandra, actors.search]
    try:
        stats = await asyncio.wait_for(
            asyncio.gather(*(handle.ready.remote() for handle in handles)), timeout=timeout_s
        )
    except asyncio.TimeoutError as exc:
        raise Unavailable(f"actors were not ready after {timeout_s:.0f} s; see the Ray dashboard logs") from exc
    logger.info("%d actors ready in %.1f s", len(handles), time.monotonic() - started)
    return list(stats)


def kill_actors(actors: Actors) -> None:
    for handle in [*actors.shards, *actors.feeds, actors.cassandra, actors.search]:
        try:
            ray.kill(handle, no_restart=True)
        except Exception as exc:  # noqa: BLE001 - shutdown goes on for the other actors
            logger.warning("killing an actor failed: %s", exc)
