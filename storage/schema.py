"""The CQL schema, as numbered migrations applied in order and recorded.

Every projection write carries ``USING TIMESTAMP <event version>``. Cassandra
keeps the cell with the highest write timestamp, so replaying events in any
order and any number of times leaves the same rows. No counter columns are used:
a counter write that timed out may or may not have been applied and cannot be
retried safely.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from reelwire.config import Settings
from storage.cassandra import CassandraStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "reels, counts, likes and comments",
        (
            """CREATE TABLE IF NOT EXISTS reels (
                reel_id text PRIMARY KEY,
                creator_id text,
                caption text,
                hashtags list<text>,
                media_url text,
                created_at timestamp
            )""",
            """CREATE TABLE IF NOT EXISTS reel_counts (
                reel_id text PRIMARY KEY,
                likes bigint,
                shares bigint,
                comments bigint,
                version bigint
            )""",
            """CREATE TABLE IF NOT EXISTS likes (
                reel_id text,
                user_id text,
                liked_at timestamp,
                PRIMARY KEY ((reel_id), user_id)
            )""",
            """CREATE TABLE IF NOT EXISTS comments (
                reel_id text,
                comment_id text,
                user_id text,
                body text,
                created_at timestamp,
                PRIMARY KEY ((reel_id), comment_id)
            ) WITH CLUSTERING ORDER BY (comment_id ASC)""",
        ),
    ),
    Migration(
        2,
        "shard snapshots and partition checkpoints",
        (
            """CREATE TABLE IF NOT EXISTS reel_snapshots (
                reel_id text PRIMARY KEY,
                version bigint,
                state blob
            )""",
            """CREATE TABLE IF NOT EXISTS partition_checkpoints (
                partition int PRIMARY KEY,
                next_offset bigint
            )""",
        ),
    ),
)


def ensure_schema(settings: Settings) -> int:
    """Create the keyspace and apply pending migrations; return the schema version.

    Blocking: call it at start-up, before serving. Safe to run concurrently from
    several processes because every statement is ``IF NOT EXISTS``.
    """
    store = CassandraStore(settings)
    session = store.connect()
    try:
        session.execute(
            f"CREATE KEYSPACE IF NOT EXISTS {settings.keyspace} WITH replication = "
            f"{{'class': 'SimpleStrategy', 'replication_factor': {settings.cassandra_replication}}}",
            timeout=60,
        )
        session.set_keyspace(settings.keyspace)
        session.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                version int PRIMARY KEY, description text, applied_at timestamp)""",
            timeout=60,
        )
        applied = {row.version for row in session.execute("SELECT version FROM schema_migrations")}
        for migration in MIGRATIONS:
            if migration.version in applied:
                continue
            for statement in migration.statements:
                session.execute(statement, timeout=60)
            session.execute(
                "INSERT INTO schema_migrations (version, description, applied_at) VALUES (%s, %s, toTimestamp(now()))",
                (migration.version, migration.description),
            )
            logger.info("applied schema migration %d: %s", migration.version, migration.description)
        return max(m.version for m in MIGRATIONS)
    finally:
        store.close()
