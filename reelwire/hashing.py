"""Placement of reels onto Kafka partitions, interaction shards and feed shards.

A reel's partition is a stable hash of its id. Shards own whole partitions, so
the shard that owns a reel is the only producer of that reel's events, and a
restarted shard can rebuild its reels by reading only its own partitions.
"""

from __future__ import annotations

import hashlib


def partition_for(reel_id: str, partitions: int) -> int:
    """Return the Kafka partition of a reel; stable across processes and hosts."""
    digest = hashlib.blake2b(reel_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


def owner_of_partition(partition: int, owners: int) -> int:
    """Return the index of the shard (of ``owners``) that owns ``partition``."""
    return partition % owners


def partitions_of(owner: int, owners: int, partitions: int) -> list[int]:
    """Return the partitions that shard ``owner`` owns."""
    return [partition for partition in range(partitions) if partition % owners == owner]


def shard_for(reel_id: str, partitions: int, shards: int) -> int:
    return owner_of_partition(partition_for(reel_id, partitions), shards)
