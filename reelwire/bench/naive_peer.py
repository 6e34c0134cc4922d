"""The naive peer: what a developer writes by hand in a day.

A FastAPI endpoint that does Redis SADD, SCARD and PUBLISH per like, and a
Redis pub/sub listener that broadcasts every message to its WebSocket clients.
No log, no batching, no idempotency beyond the set itself.

Run: python -m reelwire.bench.naive_peer --port 8101 [--redis-url redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
import uvicorn
from fastapi import FastAPI, Header, WebSocket, WebSocketDisconnect


def create_app(redis_url: str, prefix: str) -> FastAPI:
    client = aioredis.Redis.from_url(redis_url)
    sockets: dict[str, set[WebSocket]] = {}

    async def listen() -> None:
        pubsub = client.pubsub()
        await pubsub.psubscribe(f"{prefix}:likes:*")
        async for message in pubsub.listen():
            if message["type"] != "pmessage":
                continue
            reel_id = message["channel"].decode().rsplit(":", 1)[-1]
            text = message["data"].decode()
            for socket in list(sockets.get(reel_id, ())):
                try:
                    await socket.send_text(text)
                except Exception:  # noqa: BLE001 - a dead socket is dropped on disconnect
                    pass

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.ensure_future(listen())
        yield
        task.cancel()
        await client.aclose()

    app = FastAPI(lifespan=lifespan)

    @app.post("/reels/{reel_id}/like")
    async def like(reel_id: str, x_user: str = Header(...)) -> dict[str, int]:
        await client.sadd(f"{prefix}:likes:{reel_id}", x_user)
        count = await client.scard(f"{prefix}:likes:{reel_id}")
        await client.publish(f"{prefix}:likes:{reel_id}", json.dumps({"reel_id": reel_id, "likes": count}))
        return {"likes": count}

    @app.websocket("/ws")
    async def watch(socket: WebSocket) -> None:
        """Add the reels of each text frame {"reel_ids": [...]} to what the socket receives."""
        await socket.accept()
        watched: set[str] = set()
        try:
            while True:
                message = json.loads(await socket.receive_text())
                for reel_id in message.get("reel_ids", []):
                    sockets.setdefault(reel_id, set()).add(socket)
                    watched.add(reel_id)
        except (WebSocketDisconnect, ValueError, AttributeError):
            pass
        finally:
            for reel_id in watched:
                sockets[reel_id].discard(socket)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="The naive like endpoint, for comparison.")
    parser.add_argument("--port", type=int, required=True, help="port on 127.0.0.1")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="Redis to use")
    parser.add_argument("--prefix", default="naive", help="prefix of the Redis keys and channels")
    args = parser.parse_args()
    uvicorn.run(create_app(args.redis_url, args.prefix), host="127.0.0.1", port=args.port, log_level="warning",
                access_log=False, ws="websockets")


if __name__ == "__main__":
    main()
