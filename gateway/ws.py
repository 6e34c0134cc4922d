"""The WebSocket endpoint: subscriptions, commands with acks, and pushes. See docs/protocol.md.

A socket authenticates with an ``Authorization: Bearer`` header on the upgrade
request or with an ``auth`` frame, never with a token in the URL, because URLs
end up in logs. Reads need no token. A bad frame gets an error frame and the
socket stays open; only protocol violations close it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from gateway.auth import bearer_token, verify_token
from gateway.connection import Connection
from gateway.protocol import ClientOp, ack_frame, dumps, error_frame, parse_client_frame
from gateway.service import GatewayService, raise_if_rejected
from reelwire.errors import InvalidRequest, ReelwireError, Unauthorized
from reelwire.events import Command, CommandKind, Outcome

logger = logging.getLogger(__name__)
router = APIRouter()

MAX_COMMANDS_IN_FLIGHT = 256
_connection_ids = itertools.count(1)

_KINDS = {
    "like": CommandKind.LIKE,
    "unlike": CommandKind.UNLIKE,
    "share": CommandKind.SHARE,
    "comment": CommandKind.COMMENT,
    "delete_comment": CommandKind.DELETE_COMMENT,
}


@router.websocket("/ws")
async def websocket_endpoint(websocket: WebSocket) -> None:
    app = websocket.app
    service: GatewayService = app.state.service
    settings = service.settings
    await websocket.accept()
    connection = Connection(websocket, f"c{next(_connection_ids)}", settings.send_queue_max)
    connection.start()
    app.state.connections.add(connection)
    in_flight = InFlight(MAX_COMMANDS_IN_FLIGHT)

    try:
        header_token = bearer_token(websocket.headers.get("authorization"))
        if header_token is not None:
            connection.principal = verify_token(settings, header_token)
    except ReelwireError as exc:
        connection.send(error_frame(exc))
    connection.send(dumps({
        "type": "hello",
        "connection_id": connection.id,
        "user_id": connection.principal.user_id if connection.principal else None,
        "max_frame_bytes": settings.max_body_bytes,
    }))

    try:
        while not connection.closed:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            if text is None:
                connection.send(error_frame(InvalidRequest("frames must be JSON text, not binary", code="invalid_frame")))
                continue
            try:
                op = parse_client_frame(text, settings)
            except ReelwireError as exc:
                connection.send(error_frame(exc))
                continue
            if op.op in _KINDS:
                # Reading pauses while too many commands of this socket are pending.
                await in_flight.wait_for_room()
                _start_command(service, connection, op, in_flight)
            else:
                await _handle_control(service, connection, op)
    except WebSocketDisconnect:
        pass
    finally:
        await service.fanout.drop(connection)
        await connection.stop()
        app.state.connections.discard(connection)


async def _handle_control(service: GatewayService, connection: Connection, op: ClientOp) -> None:
    try:
        if op.op == "subscribe":
            subscribed = dumps({"type": "subscribed", "reel_ids": list(op.reel_ids)})
            await service.fanout.subscribe(
                connection, list(op.reel_ids), op.since, on_subscribed=lambda: connection.send(subscribed)
            )
        elif op.op == "unsubscribe":
            await service.fanout.unsubscribe(connection, list(op.reel_ids))
            connection.send(dumps({"type": "unsubscribed", "reel_ids": list(op.reel_ids)}))
        elif op.op == "auth":
            assert op.token is not None
            connection.principal = verify_token(service.settings, op.token)
            connection.send(dumps({
                "type": "authenticated",
                "user_id": connection.principal.user_id,
                "expires_at": connection.principal.expires_at,
            }))
        elif op.op == "ping":
            connection.send(dumps({"type": "pong", "time_ms": int(time.time() * 1000)}))
    except ReelwireError as exc:
        connection.send(error_frame(exc))


class InFlight:
    """A count of a socket's pending commands, with a wait for room below a limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0
        self._room = asyncio.Event()
        self._room.set()

    async def wait_for_room(self) -> None:
        while self.count >= self.limit:
            self._room.clear()
            await self._room.wait()

    def add(self) -> None:
        self.count += 1

    def done(self) -> None:
        self.count -= 1
        self._room.set()


def _start_command(service: GatewayService, connection: Connection, op: ClientOp, in_flight: InFlight) -> None:
    """Queue a command and send its ack or error when the outcome arrives.

    No task is created per command: a callback on the batcher's future sends
    the frame, which keeps the per-command cost low at high rates.
    """
    principal = connection.principal
    try:
        if principal is None:
            raise Unauthorized("commands need authentication; send an 'auth' frame first", code="token_missing")
        if principal.expires_at <= time.time():
            raise Unauthorized("the token has expired; send a new 'auth' frame", code="token_expired")
    except ReelwireError as exc:
        connection.send(error_frame(exc, op.request_id))
        return
    assert op.reel_id is not None and op.request_id is not None
    command = Command(_KINDS[op.op], op.reel_id, principal.user_id, op.request_id, text=op.text, comment_id=op.comment_id)
    in_flight.add()
    future = service.batcher.enqueue(command)

    def on_done(done: asyncio.Future[Outcome]) -> None:
        in_flight.done()
        try:
            connection.send(ack_frame(raise_if_rejected(done.result())))
        except ReelwireError as exc:
            connection.send(error_frame(exc, op.request_id))
        except Exception:
            logger.exception("connection %s: command %s failed unexpectedly", connection.id, op.op)
            connection.send(error_frame(ReelwireError("internal error"), op.request_id))

    future.add_done_callback(on_done)
