"""The one exception hierarchy of Reelwire.

ReelwireError
├── InvalidRequest        bad input from a client (HTTP 400 / 422)
│   └── PayloadTooLarge   a body or frame over its size cap (HTTP 413)
├── Unauthorized          missing, invalid or expired credentials (HTTP 401)
├── Forbidden             valid credentials, action not allowed (HTTP 403)
├── NotFound              the reel or comment does not exist (HTTP 404)
├── Conflict              a request id reused for a different command (HTTP 409)
└── Unavailable           a dependency failed or timed out; retry later (HTTP 503)
    └── StorageError      Kafka, Cassandra, Redis or the search index failed

Each error carries a stable machine-readable ``code`` that clients may branch on,
and a ``status`` that the HTTP layer uses.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ReelwireError(Exception):
    """Base class of every error that Reelwire raises on purpose."""

    status: ClassVar[int] = 500
    default_code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """Return the error in the API's wire form, without the HTTP status."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return body


class InvalidRequest(ReelwireError):
    status = 400
    default_code = "invalid_request"


class PayloadTooLarge(InvalidRequest):
    status = 413
    default_code = "payload_too_large"


class Unauthorized(ReelwireError):
    status = 401
    default_code = "unauthorized"


class Forbidden(ReelwireError):
    status = 403
    default_code = "forbidden"


class NotFound(ReelwireError):
    status = 404
    default_code = "not_found"


class Conflict(ReelwireError):
    status = 409
    default_code = "conflict"


class Unavailable(ReelwireError):
    status = 503
    default_code = "unavailable"


class StorageError(Unavailable):
    default_code = "storage_unavailable"


_BY_NAME: dict[str, type[ReelwireError]] = {
    cls.__name__: cls
    for cls in (
        ReelwireError,
        InvalidRequest,
        PayloadTooLarge,
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        Unavailable,
        StorageError,
    )
}


def error_from_dict(kind: str, body: dict[str, Any]) -> ReelwireError:
    """Rebuild an error that crossed a process boundary as ``(class name, to_dict())``."""
    cls = _BY_NAME.get(kind, ReelwireError)
    return cls(body.get("message", ""), code=body.get("code"), details=body.get("details"))
