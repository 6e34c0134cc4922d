"""The FastAPI application: REST, WebSocket and the API docs at /docs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from gateway import rest, ws
from gateway.errors import BodySizeLimit, install_error_handlers
from gateway.service import GatewayService
from reelwire import __version__


def create_app(service: GatewayService) -> FastAPI:
    """Build the app around a service; the service starts and stops with the app."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(
        title="Reelwire",
        version=__version__,
        description="Realtime likes, shares and comments for short-video apps.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.settings = service.settings
    app.state.connections = set()
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=service.settings.max_body_bytes)
    app.include_router(rest.router)
    app.include_router(ws.router)
    return app
