"""FastAPI dependencies: the service and the caller's identity.

They are coroutines on purpose: FastAPI runs plain functions in a thread pool,
which costs more per request than the work they do.
"""

from __future__ import annotations

from fastapi import Request

from gateway.auth import Principal, bearer_token, verify_token
from gateway.service import GatewayService
from reelwire.errors import Unauthorized


async def get_service(request: Request) -> GatewayService:
    return request.app.state.service


async def optional_principal(request: Request) -> Principal | None:
    """Return the caller if a bearer token is present; raise Unauthorized if it is bad."""
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        return None
    return verify_token(request.app.state.settings, token)


async def require_principal(request: Request) -> Principal:
    principal = await optional_principal(request)
    if principal is None:
        raise Unauthorized("this request needs 'Authorization: Bearer <token>'", code="token_missing")
    return principal
