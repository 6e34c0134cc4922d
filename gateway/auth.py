"""Bearer JWTs (HS256 by default), checked with PyJWT.

A token names its user in ``sub``. Writes need a valid token; reads may be
anonymous. Tokens and the signing secret are never logged.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from dataclasses import dataclass

import jwt

from reelwire.config import Settings
from reelwire.errors import InvalidRequest, Unauthorized

USER_ID_PATTERN = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    expires_at: int


def mint_token(settings: Settings, user_id: str, ttl_s: int | None = None) -> str:
    """Return a signed token for ``user_id``, valid for ``ttl_s`` seconds."""
    if not USER_ID_PATTERN.match(user_id):
        raise InvalidRequest("user id must be 1 to 64 letters, digits, '.', '_' or '-'", code="invalid_user_id")
    now = int(time.time())
    claims = {"sub": user_id, "iat": now, "exp": now + (ttl_s or settings.token_ttl_s), "iss": settings.jwt_issuer}
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm=settings.jwt_algorithm)


# Signature checks cost tens of microseconds each, and a client sends the same
# token with every request, so verified tokens are remembered until they expire.
_VERIFIED: OrderedDict[tuple[str, str, str], Principal] = OrderedDict()
VERIFIED_CACHE_SIZE = 10_000


def verify_token(settings: Settings, token: str) -> Principal:
    """Return the token's principal; raise Unauthorized if it is invalid or expired."""
    key = (settings.jwt_secret.get_secret_value(), settings.jwt_issuer, token)
    cached = _VERIFIED.get(key)
    if cached is not None:
        if cached.expires_at <= time.time():
            del _VERIFIED[key]
            raise Unauthorized("the token has expired; authenticate again", code="token_expired")
        return cached
    principal = _verify_signed(settings, token)
    _VERIFIED[key] = principal
    if len(_VERIFIED) > VERIFIED_CACHE_SIZE:
        _VERIFIED.popitem(last=False)
    return principal


def _verify_signed(settings: Settings, token: str) -> Principal:
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret.get_secret_value(),
            algorithms=[settings.jwt_algorithm],
            issuer=settings.jwt_issuer,
            options={"require": ["sub", "exp", "iss"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("the token has expired; authenticate again", code="token_expired") from exc
    except jwt.InvalidSignatureError as exc:
        raise Unauthorized("the token's signature does not match; get a new token", code="token_invalid") from exc
    except jwt.InvalidTokenError as exc:
        # The decoder's own message can quote raw token bytes, so it is not echoed.
        raise Unauthorized("the token is malformed, or lacks the sub, exp or iss claim", code="token_invalid") from exc
    user_id = claims.get("sub")
    if not isinstance(user_id, str) or not USER_ID_PATTERN.match(user_id):
        raise Unauthorized("the token's subject is not a valid user id", code="token_invalid")
    return Principal(user_id=user_id, expires_at=int(claims["exp"]))


def bearer_token(header: str | None) -> str | None:
    """Return the token of an ``Authorization: Bearer`` header, None if absent."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <token>'", code="token_invalid")
    return token.strip()
