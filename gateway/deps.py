"""FastAPI dependencies: the service and the caller's identity."""

from __future__ import annotations

from fastapi import Request

from gateway.auth import Principal, bearer_token, verify_token
from gateway.service import GatewayService
from reelwire.errors import Unauthorized


def get_service(request: Request) -> GatewayService:
    return request.app.state.service


def optional_principal(request: Request) -> Principal | None:
    """Return the caller if a bearer token is present; raise Unauthorized if it is bad."""
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        return None
    return verify_token(request.app.state.settings, token)


def require_principal(request: Request) -> Principal:
    principal = optional_principal(request)
    if principal is None:
        raise Unauthorized("this request needs 'Authorization: Bearer <token>'", code="token_missing")
    return principal
