"""A whole Reelwire deployment on the real local services, shared by the integration tests.

The deployment runs ``reelwire up`` in a subprocess, on its own Kafka topics,
Cassandra keyspace, Redis channels and Ray instance (a fresh namespace per
test run), so it never touches a developer's running stack.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import httpx  # noqa: E402
import pytest  # noqa: E402
from websockets.asyncio.client import ClientConnection, connect  # noqa: E402

from gateway.auth import mint_token  # noqa: E402
from reelwire.bench.processes import free_port  # noqa: E402
from reelwire.config import REPO_ROOT, Settings  # noqa: E402

SERVICES = {"Redis": 6379, "Kafka": 9092, "Cassandra": 9042}
START_TIMEOUT_S = 240
T = TypeVar("T")


@dataclass
class Stack:
    settings: Settings
    base_url: str
    ws_url: str
    dashboard_port: int
    log_path: Path
    env: dict[str, str]

    def token(self, user_id: str, ttl_s: int | None = None) -> str:
        return mint_token(self.settings, user_id, ttl_s)

    def auth(self, user_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user_id)}"}


def _require_services() -> None:
    for name, port in SERVICES.items():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        except OSError:
            pytest.fail(f"{name} is not listening on 127.0.0.1:{port}; run 'scripts/services.sh start' first")


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    _require_services()
    namespace = f"it_{secrets.token_hex(4)}"
    port = free_port()
    dashboard_port = free_port()
    data_dir = tmp_path_factory.mktemp("reelwire-data")
    log_dir = REPO_ROOT / ".local" / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"test-stack-{namespace}.log"
    env = dict(
        os.environ,
        REELWIRE_NAMESPACE=namespace,
        REELWIRE_GATEWAY_PORT=str(port),
        REELWIRE_DASHBOARD_PORT=str(dashboard_port),
        REELWIRE_SHARDS="2",
        REELWIRE_FEED_SHARDS="2",
        REELWIRE_KAFKA_PARTITIONS="8",
        REELWIRE_DATA_DIR=str(data_dir),
        REELWIRE_TOKEN_TTL_S="600",
        REELWIRE_RESUME_EVENTS="16",
    )
    settings = Settings(
        namespace=namespace, gateway_port=port, dashboard_port=dashboard_port, shards=2, feed_shards=2,
        kafka_partitions=8, data_dir=data_dir, resume_events=16,
    )
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "reelwire.cli", "up", "--no-seed"],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT, start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(process, base_url, log_path)
        yield Stack(settings, base_url, f"ws://127.0.0.1:{port}/ws", dashboard_port, log_path, env)
    finally:
        _stop(process)
        _drop_namespace(settings)


def _wait_healthy(process: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"reelwire up exited with {process.returncode}; log:\n{_tail(log_path)}")
        try:
            if httpx.get(f"{base_url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"reelwire up was not healthy after {START_TIMEOUT_S} s; log:\n{_tail(log_path)}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _drop_namespace(settings: Settings) -> None:
    """Remove the run's keyspace and topics so test runs do not pile up data."""
    cluster = short_cluster()
    try:
        cluster.connect().execute(f"DROP KEYSPACE IF EXISTS {settings.keyspace}", timeout=60)
    except Exception as exc:  # noqa: BLE001 - clean-up must not hide the test result
        print(f"dropping keyspace {settings.keyspace} failed: {exc}", file=sys.stderr)
    finally:
        cluster.shutdown()

    async def delete_topics() -> None:
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
        await admin.start()
        try:
            await admin.delete_topics([settings.events_topic, settings.dead_letter_topic])
        finally:
            await admin.close()

    try:
        asyncio.run(delete_topics())
    except Exception as exc:  # noqa: BLE001
        print(f"deleting topics of {settings.namespace} failed: {exc}", file=sys.stderr)


def _tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as client:
        yield client


async def eventually(check: Callable[[], Awaitable[T | None]], timeout_s: float = 30, what: str = "condition") -> T:
    """Poll ``check`` until it returns a truthy value; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what} did not hold within {timeout_s} s; last value: {last!r}")


async def receive_until(
    socket_: ClientConnection, match: Callable[[dict[str, Any]], bool], timeout_s: float = 15
) -> dict[str, Any]:
    """Read frames until one matches; return it. Fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    seen = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no matching frame within {timeout_s} s; saw {seen[-10:]!r}")
        try:
            frame = json.loads(await asyncio.wait_for(socket_.recv(), remaining))
        except asyncio.TimeoutError:
            continue
        seen.append(frame)
        if match(frame):
            return frame


async def open_socket(stack: Stack, user_id: str | None = None) -> ClientConnection:
    headers = stack.auth(user_id) if user_id else None
    socket_ = await connect(stack.ws_url, additional_headers=headers, max_size=None)
    hello = json.loads(await socket_.recv())
    assert hello["type"] == "hello"
    return socket_


__all__ = ["Stack", "eventually", "receive_until", "open_socket", "connect"]


@pytest.fixture(scope="session")
def ray_session(stack: Stack) -> Iterator[Any]:
    """Connect this test process to the deployment's Ray instance as a driver."""
    import ray

    from reelwire.server import runtime_file

    info = json.loads(runtime_file(stack.settings).read_text())
    ray.init(address=info["ray_address"], namespace=stack.settings.namespace, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def cassandra_rows(keyspace: str, cql: str) -> set[tuple[Any, ...]]:
    """Return every row of a query as a set of tuples, read with a short-lived session."""
    cluster = short_cluster()
    try:
        rows = cluster.connect(keyspace).execute(cql, timeout=60)
        return {tuple(tuple(value) if isinstance(value, list) else value for value in row) for row in rows}
    finally:
        cluster.shutdown()


def short_cluster() -> Any:
    """Return a cassandra-driver Cluster for the local node, for checks outside the product."""
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import RoundRobinPolicy

    profile = ExecutionProfile(load_balancing_policy=RoundRobinPolicy(), request_timeout=60)
    return Cluster(["127.0.0.1"], port=9042, protocol_version=5, execution_profiles={EXEC_PROFILE_DEFAULT: profile})


@dataclass
class Gateway:
    """One more gateway process, attached to the deployment's actors."""

    process: subprocess.Popen[bytes]
    base_url: str
    ws_url: str
    log_path: Path


def start_gateway(stack: Stack, name: str) -> Gateway:
    """Start ``reelwire gateway`` on a free port and wait until it is healthy."""
    from reelwire.server import runtime_file

    info = json.loads(runtime_file(stack.settings).read_text())
    port = free_port()
    log_path = stack.log_path.with_name(f"{stack.log_path.stem}-{name}.log")
    env = dict(stack.env, REELWIRE_RAY_ADDRESS=info["ray_address"], REELWIRE_GATEWAY_PORT=str(port))
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "reelwire.cli", "gateway", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT, start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    _wait_healthy(process, base_url, log_path)
    return Gateway(process, base_url, f"ws://127.0.0.1:{port}/ws", log_path)


@pytest.fixture(scope="session")
def second_gateway(stack: Stack) -> Iterator[Gateway]:
    gateway = start_gateway(stack, "gateway-b")
    try:
        yield gateway
    finally:
        _stop(gateway.process)


async def raw_websocket(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a WebSocket by hand, for frames that a client library refuses to send."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(secrets.token_bytes(16)).decode()
    writer.write(
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


def masked_frame(opcode: int, payload: bytes) -> bytes:
    """Encode one final client frame, masked as RFC 6455 section 5.3 requires."""
    mask = secrets.token_bytes(4)
    length = len(payload)
    if length < 126:
        header = bytes([0x80 | opcode, 0x80 | length])
    elif length < 65536:
        header = bytes([0x80 | opcode, 0x80 | 126]) + length.to_bytes(2, "big")
    else:
        header = bytes([0x80 | opcode, 0x80 | 127]) + length.to_bytes(8, "big")
    masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
    return header + mask + masked


async def read_close_code(reader: asyncio.StreamReader, timeout_s: float = 10) -> int:
    """Read server frames until a close frame; return its status code."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        first, second = await asyncio.wait_for(reader.readexactly(2), timeout_s)
        length = second & 0x7F
        if length == 126:
            length = int.from_bytes(await reader.readexactly(2), "big")
        elif length == 127:
            length = int.from_bytes(await reader.readexactly(8), "big")
        payload = await reader.readexactly(length)
        if first & 0x0F == 0x8:
            return int.from_bytes(payload[:2], "big")
    raise AssertionError("no close frame arrived")
