"""Live fan-out on real Redis, Ray and WebSocket clients: coalescing, resume, slow and bad clients, presence."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import time

import httpx
import pytest
import redis.asyncio as aioredis
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.integration.conftest import (
    Gateway,
    Stack,
    masked_frame,
    open_socket,
    raw_websocket,
    read_close_code,
    receive_until,
    start_gateway,
)
from tests.integration.test_flow import create_reel

pytestmark = pytest.mark.integration


async def subscribe(socket, reel_ids, since=None):
    frame = {"op": "subscribe", "reel_ids": reel_ids}
    if since is not None:
        frame["since"] = since
    await socket.send(json.dumps(frame))
    await receive_until(socket, lambda f: f["type"] == "subscribed")


async def drain(socket, seconds: float) -> list[dict]:
    """Collect every frame that arrives within ``seconds``."""
    frames = []
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            frames.append(json.loads(await asyncio.wait_for(socket.recv(), remaining)))
        except asyncio.TimeoutError:
            break
    return frames


async def test_one_socket_many_reels(stack: Stack, http: httpx.AsyncClient):
    reels = [await create_reel(http, stack) for _ in range(3)]
    viewer = await open_socket(stack)
    await subscribe(viewer, reels)
    for reel_id in reels:
        await http.post(f"/reels/{reel_id}/like", headers=stack.auth("many"))
    liked: set[str] = set()
    while liked != set(reels):
        frame = await receive_until(viewer, lambda f: f["type"] == "reel.state" and f["counts"]["likes"] == 1)
        liked.add(frame["reel_id"])

    await viewer.send(json.dumps({"op": "unsubscribe", "reel_ids": [reels[0]]}))
    await receive_until(viewer, lambda f: f["type"] == "unsubscribed")
    await http.post(f"/reels/{reels[0]}/shares", headers=stack.auth("many"))
    await http.post(f"/reels/{reels[1]}/shares", headers=stack.auth("many"))
    await receive_until(viewer, lambda f: f["type"] == "reel.state" and f["reel_id"] == reels[1]
                        and f["counts"]["shares"] == 1)
    late = await drain(viewer, 0.5)
    assert not [f for f in late if f.get("reel_id") == reels[0] and f["type"] == "reel.state"]
    await viewer.close()


async def test_counts_coalesced_last_exact(stack: Stack, http: httpx.AsyncClient):
    reel_id = await create_reel(http, stack)
    viewer = await open_socket(stack)
    await subscribe(viewer, [reel_id])
    await receive_until(viewer, lambda f: f["type"] == "reel.state")

    started = time.monotonic()
    likes = 150
    responses = await asyncio.gather(*(
        http.post(f"/reels/{reel_id}/like", headers=stack.auth(f"burst-{n}")) for n in range(likes)
    ))
    assert all(response.status_code == 200 for response in responses)
    final = await receive_until(viewer, lambda f: f["type"] == "reel.state" and f["counts"]["likes"] == likes)
    elapsed = time.monotonic() - started
    frames = [final, *await drain(viewer, 0.3)]
    states = [f for f in frames if f["type"] == "reel.state"]
    assert states[-1]["counts"]["likes"] == likes
    assert states[-1]["version"] == likes + 1

    # At most one state frame per push tick reached the viewer during the burst.
    tick_s = stack.settings.push_tick_ms / 1000
    assert len(states) <= elapsed / tick_s + 2
    await viewer.close()


async def test_burst_state_frames_bounded(stack: Stack, http: httpx.AsyncClient):
    reel_id = await create_reel(http, stack)
    viewer = await open_socket(stack)
    await subscribe(viewer, [reel_id])
    await receive_until(viewer, lambda f: f["type"] == "reel.state")
    writer = await open_socket(stack, "burst-writer")

    started = time.monotonic()
    for number in range(200):
        await writer.send(json.dumps({"op": "share", "reel_id": reel_id, "request_id": f"burst-{number}"}))
    frames = []
    while True:
        frame = json.loads(await asyncio.wait_for(viewer.recv(), 15))
        frames.append(frame)
        if frame["type"] == "reel.state" and frame["counts"]["shares"] == 200:
            break
    elapsed = time.monotonic() - started
    states = [f for f in frames if f["type"] == "reel.state"]
    assert len(states) <= elapsed / (stack.settings.push_tick_ms / 1000) + 2
    assert len(states) < 200
    await writer.close()
    await viewer.close()


async def test_every_comment_delivered_in_order(stack: Stack, http: httpx.AsyncClient):
    reel_id = await create_reel(http, stack)
    viewer = await open_socket(stack)
    await subscribe(viewer, [reel_id])
    author = await open_socket(stack, "chatty")

    async def write() -> None:
        for number in range(40):
            await author.send(json.dumps({
                "op": "comment", "reel_id": reel_id, "request_id": f"c-{number}", "text": f"comment {number}",
            }))

    async def read() -> list[dict]:
        frames = []
        while len(frames) < 40:
            frame = json.loads(await asyncio.wait_for(viewer.recv(), 15))
            if frame["type"] == "comment.added":
                frames.append(frame)
        return frames

    _, received = await asyncio.gather(write(), read())
    assert [f["comment"]["text"] for f in received] == [f"comment {n}" for n in range(40)]
    versions = [f["version"] for f in received]
    assert versions == sorted(versions)
    assert len(set(versions)) == 40
    assert not [f for f in await drain(viewer, 0.3) if f["type"] == "comment.added"]
    await author.close()
    await viewer.close()


async def test_resume_gets_exactly_missed(stack: Stack, http: httpx.AsyncClient):
    reel_id = await create_reel(http, stack)
    viewer = await open_socket(stack)
    await subscribe(viewer, [reel_id])
    seen = await receive_until(viewer, lambda f: f["type"] == "reel.state")
    await viewer.close()

    missed = []
    for number in range(3):
        response = await http.post(f"/reels/{reel_id}/comments", json={"text": f"missed {number}"},
                                   headers=stack.auth("resumer"))
        missed.append(response.json()["comment_id"])
    await http.post(f"/reels/{reel_id}/like", headers=stack.auth("resumer"))
    latest = (await http.post(f"/reels/{reel_id}/shares", headers=stack.auth("resumer"))).json()

    again = await open_socket(stack)
    await subscribe(again, [reel_id], since={reel_id: seen["version"]})
    frames = await drain(again, 1.0)
    comments = [f["comment"]["comment_id"] for f in frames if f["type"] == "comment.added"]
    assert comments == missed
    states = [f for f in frames if f["type"] == "reel.state"]
    assert states[-1]["version"] == latest["version"]
    assert states[-1]["counts"] == latest["counts"]
    assert not any(f.get("resync") for f in states)
    await again.close()


async def test_resume_too_far_behind_resyncs(stack: Stack, http: httpx.AsyncClient):
    reel_id = await create_reel(http, stack)
    for number in range(stack.settings.resume_events + 4):
        await http.post(f"/reels/{reel_id}/shares", headers={**stack.auth("far"), "Idempotency-Key": f"far-{number}"})
    socket = await open_socket(stack)
    await subscribe(socket, [reel_id], since={reel_id: 1})
    state = await receive_until(socket, lambda f: f["type"] == "reel.state")
    assert state["resync"] is True
    assert state["counts"]["shares"] == stack.settings.resume_events + 4

    future = await open_socket(stack)
    await subscribe(future, [reel_id], since={reel_id: 10_000})
    assert (await receive_until(future, lambda f: f["type"] == "reel.state"))["resync"] is True
    await socket.close()
    await future.close()


async def test_redis_subscription_loss_resyncs(stack: Stack, http: httpx.AsyncClient):
    reel_id = await create_reel(http, stack)
    viewer = await open_socket(stack)
    await subscribe(viewer, [reel_id])
    await receive_until(viewer, lambda f: f["type"] == "reel.state")

    client = aioredis.Redis.from_url(stack.settings.redis_url)
    try:
        killed = await client.client_kill_filter(_type="pubsub")
    finally:
        await client.aclose()
    assert killed >= 1
    resync = await receive_until(viewer, lambda f: f["type"] == "reel.state" and f.get("resync"), timeout_s=20)
    assert resync["reel_id"] == reel_id

    await http.post(f"/reels/{reel_id}/like", headers=stack.auth("after-loss"))
    await receive_until(viewer, lambda f: f["type"] == "reel.state" and f["counts"]["likes"] == 1)
    await viewer.close()


async def test_slow_reader_closed_others_fine(stack: Stack, http: httpx.AsyncClient):
    reel_id = await create_reel(http, stack)
    # A tiny queue in the client library and a small socket buffer: once they
    # are full, the client stops reading from TCP.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", stack.settings.gateway_port))
    slow = await connect(stack.ws_url, max_queue=1, sock=sock)
    await slow.recv()
    await slow.send(json.dumps({"op": "subscribe", "reel_ids": [reel_id]}))
    healthy = await open_socket(stack)
    await subscribe(healthy, [reel_id])

    author = await open_socket(stack, "flooder")
    count = 2500
    text = "x" * 2200

    async def flood() -> None:
        for number in range(count):
            await author.send(json.dumps({"op": "comment", "reel_id": reel_id, "request_id": f"f-{number}", "text": text}))

    async def read_all() -> int:
        received = 0
        while received < count:
            frame = json.loads(await asyncio.wait_for(healthy.recv(), 60))
            if frame["type"] == "comment.added":
                received += 1
        return received

    _, received = await asyncio.gather(flood(), read_all())
    assert received == count

    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(slow.recv(), 30)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1013
    assert "not reading" in closed.value.rcvd.reason
    await author.close()
    await healthy.close()


async def test_bad_frames_get_errors(stack: Stack):
    socket = await open_socket(stack, "sloppy")
    cases = [
        ("not json at all", "invalid_json"),
        ("[1, 2, 3]", "invalid_frame"),
        (json.dumps({"op": 42}), "invalid_frame"),
        (json.dumps({"op": "teleport"}), "unknown_op"),
        (json.dumps({"op": "like"}), "invalid_request_id"),
        (json.dumps({"op": "like", "request_id": "r1"}), "invalid_reel_id"),
        (json.dumps({"op": "comment", "request_id": "r1", "reel_id": "0" * 26}), "invalid_text"),
        (json.dumps({"op": "subscribe", "reel_ids": "nope"}), "invalid_frame"),
    ]
    for text, code in cases:
        await socket.send(text)
        error = await receive_until(socket, lambda f: f["type"] == "error")
        assert error["code"] == code, text
    await socket.send(b"\x00\x01 binary")
    assert (await receive_until(socket, lambda f: f["type"] == "error"))["code"] == "invalid_frame"
    await socket.send(json.dumps({"op": "ping"}))
    assert (await receive_until(socket, lambda f: f["type"] in ("pong", "error")))["type"] == "pong"
    await socket.close()


async def test_invalid_utf8_closes_1007(stack: Stack):
    bystander = await open_socket(stack)
    reader, writer = await raw_websocket(stack.settings.gateway_port)
    writer.write(masked_frame(0x1, b'{"op": "ping", "x": "\xff\xfe"}'))
    await writer.drain()
    assert await read_close_code(reader) == 1007
    writer.close()
    await bystander.send(json.dumps({"op": "ping"}))
    assert (await receive_until(bystander, lambda f: f["type"] == "pong"))["type"] == "pong"
    await bystander.close()


async def test_oversized_frame_closes_1009(stack: Stack):
    bystander = await open_socket(stack)
    reader, writer = await raw_websocket(stack.settings.gateway_port)
    # Only the header and a little of the payload are sent: the server must
    # reject the frame from its declared length, before buffering it.
    frame = masked_frame(0x1, b"x" * (stack.settings.max_body_bytes + 1))
    writer.write(frame[:1024])
    await writer.drain()
    assert await read_close_code(reader) == 1009
    writer.close()
    await bystander.send(json.dumps({"op": "ping"}))
    assert (await receive_until(bystander, lambda f: f["type"] == "pong"))["type"] == "pong"
    await bystander.close()


async def test_expired_token_reauth_same_socket(stack: Stack, http: httpx.AsyncClient):
    reel_id = await create_reel(http, stack)
    socket = await open_socket(stack)
    await socket.send(json.dumps({"op": "auth", "token": stack.token("shortlived", ttl_s=2)}))
    await receive_until(socket, lambda f: f["type"] == "authenticated")
    await subscribe(socket, [reel_id])
    await socket.send(json.dumps({"op": "like", "reel_id": reel_id, "request_id": "before"}))
    assert (await receive_until(socket, lambda f: f.get("request_id") == "before"))["type"] == "ack"

    await asyncio.sleep(2.5)
    await socket.send(json.dumps({"op": "share", "reel_id": reel_id, "request_id": "after"}))
    rejected = await receive_until(socket, lambda f: f.get("request_id") == "after")
    assert rejected["type"] == "error"
    assert rejected["code"] == "token_expired"

    # Reads go on: another user's like still reaches this socket.
    await http.post(f"/reels/{reel_id}/like", headers=stack.auth("someone-else"))
    await receive_until(socket, lambda f: f["type"] == "reel.state" and f["counts"]["likes"] == 2)

    await socket.send(json.dumps({"op": "auth", "token": stack.token("shortlived")}))
    await receive_until(socket, lambda f: f["type"] == "authenticated")
    await socket.send(json.dumps({"op": "share", "reel_id": reel_id, "request_id": "after"}))
    assert (await receive_until(socket, lambda f: f.get("request_id") == "after"))["type"] == "ack"
    await socket.close()


async def test_viewers_on_a_commands_via_b(stack: Stack, http: httpx.AsyncClient, second_gateway: Gateway):
    reel_id = await create_reel(http, stack)
    viewer = await open_socket(stack)
    await subscribe(viewer, [reel_id])
    await receive_until(viewer, lambda f: f["type"] == "reel.state")

    async with httpx.AsyncClient(base_url=second_gateway.base_url, timeout=30) as other:
        liked = await other.post(f"/reels/{reel_id}/like", headers=stack.auth("via-b"))
        assert liked.status_code == 200
    commenter = await connect(second_gateway.ws_url, additional_headers=stack.auth("via-b"))
    await commenter.recv()
    await commenter.send(json.dumps({"op": "comment", "reel_id": reel_id, "request_id": "b-1", "text": "from B"}))
    # The comment frame and the coalesced state frame may come in either order.
    seen: list[dict] = []

    def collect(frame: dict) -> bool:
        seen.append(frame)
        comments = [f for f in seen if f["type"] == "comment.added"]
        states = [f for f in seen if f["type"] == "reel.state" and f["counts"] == {"likes": 1, "shares": 0, "comments": 1}]
        return bool(comments) and bool(states)

    await receive_until(viewer, collect)
    assert [f["comment"]["text"] for f in seen if f["type"] == "comment.added"] == ["from B"]
    await commenter.close()
    await viewer.close()


async def test_presence_summed_and_dead_gateway_dropped(stack: Stack, http: httpx.AsyncClient):
    reel_id = await create_reel(http, stack)
    watcher = await open_socket(stack)
    await subscribe(watcher, [reel_id])
    companion = await open_socket(stack)
    await subscribe(companion, [reel_id])
    await receive_until(watcher, lambda f: f["type"] == "reel.viewers" and f["viewers"] == 2)

    doomed = start_gateway(stack, "gateway-doomed")
    try:
        remote = await connect(doomed.ws_url)
        await remote.recv()
        await subscribe(remote, [reel_id])
        await receive_until(watcher, lambda f: f["type"] == "reel.viewers" and f["viewers"] == 3)

        # A gateway that dies without cleaning up stops being counted.
        os.killpg(doomed.process.pid, signal.SIGKILL)
        doomed.process.wait(timeout=10)
        await receive_until(watcher, lambda f: f["type"] == "reel.viewers" and f["viewers"] == 2, timeout_s=30)
    finally:
        if doomed.process.poll() is None:
            os.killpg(doomed.process.pid, signal.SIGKILL)

    await companion.close()
    await receive_until(watcher, lambda f: f["type"] == "reel.viewers" and f["viewers"] == 1)
    await watcher.close()
