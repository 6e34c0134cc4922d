"""Settings, read from ``REELWIRE_*`` environment variables with local defaults.

Every default points at the services that ``scripts/services.sh`` starts on
127.0.0.1, so a developer needs no configuration at all.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
DEV_JWT_SECRET = "reelwire-development-secret-do-not-use-in-production"


class Settings(BaseSettings):
    """All tunables of one Reelwire deployment."""

    model_config = SettingsConfigDict(env_prefix="REELWIRE_", extra="ignore")

    namespace: str = Field(
        "reelwire",
        pattern=r"^[a-z][a-z0-9_]{0,40}$",
        description="Prefix of Kafka topics, the Cassandra keyspace, Redis channels and Ray actor names.",
    )

    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_partitions: int = Field(16, ge=1, le=4096)
    kafka_replication: int = Field(1, ge=1)
    kafka_min_insync: int = Field(1, ge=1)

    cassandra_hosts: list[str] = ["127.0.0.1"]
    cassandra_port: int = 9042
    cassandra_replication: int = Field(1, ge=1)

    redis_url: str = "redis://127.0.0.1:6379/0"

    ray_address: str | None = Field(None, description="Ray cluster address; unset starts a local head.")
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = 8265

    shards: int = Field(4, ge=1, le=1024, description="Interaction shard actors.")
    feed_shards: int = Field(2, ge=1, le=256, description="Feed shard actors.")

    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8000

    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    jwt_algorithm: str = "HS256"
    jwt_issuer: str = "reelwire"
    token_ttl_s: int = Field(3600, ge=1)

    data_dir: Path = REPO_ROOT / ".local" / "data" / "reelwire"

    snapshot_interval_s: float = Field(30.0, gt=0, description="Seconds between shard snapshots.")
    snapshot_requests_per_reel: int = Field(
        1000, ge=0, description="Newest request ids per reel kept in a snapshot, for retries across a restart."
    )
    reel_idle_s: int = Field(300, ge=1, description="Seconds after which an unchanged reel leaves shard memory.")
    max_reels_per_shard: int = Field(200_000, ge=100, description="Reels a shard keeps in memory at most.")

    resume_events: int = Field(256, ge=0, description="Recent events per reel kept for resuming clients.")

    idempotency_window_s: int = Field(900, ge=1, description="Seconds a request id is remembered.")
    idempotency_max_per_reel: int = Field(
        100_000, ge=100, description="Request ids a reel remembers at most; a hot reel forgets older ones sooner."
    )
    batch_max: int = Field(256, ge=1, description="Commands per batch toward one shard.")
    batches_in_flight: int = Field(
        1, ge=1, le=64,
        description="Batches per shard awaiting their outcome at once; fewer in flight makes batches larger.",
    )
    batch_tick_ms: float = Field(2.0, ge=0.1, description="Maximum wait in milliseconds before a partial batch is sent.")
    push_tick_ms: int = Field(50, ge=5, description="Count updates per reel are coalesced per tick.")
    send_queue_max: int = Field(256, ge=8, description="Frames queued per socket before it counts as slow.")

    max_body_bytes: int = Field(65536, ge=1024, description="Largest REST body or WebSocket frame.")
    comment_max_chars: int = Field(2200, ge=1)
    caption_max_chars: int = Field(2200, ge=1)
    hashtags_max: int = Field(30, ge=0)

    @field_validator("cassandra_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str) and not value.startswith("["):
            return [host.strip() for host in value.split(",") if host.strip()]
        return value

    @property
    def events_topic(self) -> str:
        return f"{self.namespace}.events"

    @property
    def dead_letter_topic(self) -> str:
        return f"{self.namespace}.events.dlq"

    @property
    def keyspace(self) -> str:
        return self.namespace

    def reel_channel(self, reel_id: str) -> str:
        return f"{self.namespace}:reel:{reel_id}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read once from the environment."""
    return Settings()
