"""The REST API: commands (writes need a bearer token) and queries (reads may be anonymous)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from gateway.auth import Principal
from gateway.cursor import decode_cursor, encode_cursor
from gateway.deps import get_service, optional_principal, require_principal
from gateway.service import GatewayService
from gateway.validation import (
    MAX_PAGE,
    validate_id,
    validate_reel_content,
    validate_reel_id,
    validate_request_id,
    validate_text,
)
from reelwire.errors import NotFound
from reelwire.events import Command, CommandKind, Outcome

router = APIRouter()

IDEMPOTENCY_HEADER = Header(
    None,
    alias="Idempotency-Key",
    description="Client request id. A retry with the same key returns the first outcome and changes nothing.",
)


class NewReel(BaseModel):
    caption: str = Field("", description="Free text, at most 2200 characters by default.")
    hashtags: list[str] = Field(default_factory=list, description="Up to 30 tags, with or without '#'.")
    media_url: str = Field(..., description="Absolute http(s) URL of the video.")


class NewComment(BaseModel):
    text: str = Field(..., description="Stored and returned exactly as sent.")


def _request_id(service: GatewayService, key: str | None) -> str:
    if key is None:
        return f"auto-{service.ids.new_id()}"
    return validate_request_id(key)


def _outcome(outcome: Outcome, status_code: int = 200) -> JSONResponse:
    return JSONResponse(outcome.to_dict(), status_code=status_code)


@router.post("/reels", status_code=201, tags=["commands"])
async def create_reel(
    body: NewReel,
    principal: Principal = Depends(require_principal),
    service: GatewayService = Depends(get_service),
    idempotency_key: str | None = IDEMPOTENCY_HEADER,
) -> JSONResponse:
    """Publish a reel as the caller."""
    content = validate_reel_content(body.model_dump(), service.settings)
    outcome = await service.create_reel(principal.user_id, _request_id(service, idempotency_key), content)
    return _outcome(outcome, 201)


async def _interact(
    service: GatewayService,
    kind: CommandKind,
    reel_id: str,
    principal: Principal,
    key: str | None,
    **fields: Any,
) -> Outcome:
    command = Command(kind, validate_reel_id(reel_id), principal.user_id, _request_id(service, key), **fields)
    return await service.execute(command)


@router.post("/reels/{reel_id}/like", tags=["commands"])
async def like(
    reel_id: str,
    principal: Principal = Depends(require_principal),
    service: GatewayService = Depends(get_service),
    idempotency_key: str | None = IDEMPOTENCY_HEADER,
) -> JSONResponse:
    """Like a reel. Liking twice leaves it liked once."""
    return _outcome(await _interact(service, CommandKind.LIKE, reel_id, principal, idempotency_key))


@router.delete("/reels/{reel_id}/like", tags=["commands"])
async def unlike(
    reel_id: str,
    principal: Principal = Depends(require_principal),
    service: GatewayService = Depends(get_service),
    idempotency_key: str | None = IDEMPOTENCY_HEADER,
) -> JSONResponse:
    """Withdraw a like. Unliking a reel that is not liked changes nothing."""
    return _outcome(await _interact(service, CommandKind.UNLIKE, reel_id, principal, idempotency_key))


@router.post("/reels/{reel_id}/shares", tags=["commands"])
async def share(
    reel_id: str,
    principal: Principal = Depends(require_principal),
    service: GatewayService = Depends(get_service),
    idempotency_key: str | None = IDEMPOTENCY_HEADER,
) -> JSONResponse:
    """Count one share of a reel."""
    return _outcome(await _interact(service, CommandKind.SHARE, reel_id, principal, idempotency_key))


@router.post("/reels/{reel_id}/comments", status_code=201, tags=["commands"])
async def comment(
    reel_id: str,
    body: NewComment,
    principal: Principal = Depends(require_principal),
    service: GatewayService = Depends(get_service),
    idempotency_key: str | None = IDEMPOTENCY_HEADER,
) -> JSONResponse:
    """Add a comment; the response carries the server-assigned ``comment_id``."""
    text = validate_text(body.text, "text", service.settings.comment_max_chars)
    outcome = await _interact(service, CommandKind.COMMENT, reel_id, principal, idempotency_key, text=text)
    return _outcome(outcome, 201)


@router.delete("/reels/{reel_id}/comments/{comment_id}", tags=["commands"])
async def delete_comment(
    reel_id: str,
    comment_id: str,
    principal: Principal = Depends(require_principal),
    service: GatewayService = Depends(get_service),
    idempotency_key: str | None = IDEMPOTENCY_HEADER,
) -> JSONResponse:
    """Delete one of the caller's own comments. Deleting it again changes nothing."""
    comment_id = validate_id(comment_id, "comment_id")
    outcome = await _interact(
        service, CommandKind.DELETE_COMMENT, reel_id, principal, idempotency_key, comment_id=comment_id
    )
    return _outcome(outcome)


@router.get("/reels/{reel_id}", tags=["queries"])
async def get_reel(
    reel_id: str,
    principal: Principal | None = Depends(optional_principal),
    service: GatewayService = Depends(get_service),
) -> dict[str, Any]:
    """Return a reel with its counts from the read tables, and ``liked`` when the caller is signed in."""
    reel = await service.read_model.get_reel(validate_reel_id(reel_id), principal.user_id if principal else None)
    if reel is None:
        raise NotFound(f"reel {reel_id} not found", code="reel_not_found")
    return reel


@router.get("/reels/{reel_id}/comments", tags=["queries"])
async def list_comments(
    reel_id: str,
    cursor: str | None = Query(None, description="The next_cursor of the previous page."),
    limit: int = Query(20, ge=1, le=MAX_PAGE),
    service: GatewayService = Depends(get_service),
) -> dict[str, Any]:
    """Return one page of comments, oldest first."""
    after = decode_cursor(cursor) if cursor else None
    comments, more = await service.read_model.list_comments(validate_reel_id(reel_id), after, limit)
    next_cursor = encode_cursor(comments[-1]["comment_id"]) if more and comments else None
    return {"comments": comments, "next_cursor": next_cursor}


@router.get("/feed", tags=["queries"])
async def feed(
    kind: Literal["recent", "trending"] = Query("recent"),
    limit: int = Query(20, ge=1, le=MAX_PAGE),
    before_ms: int | None = Query(None, ge=0, description="For 'recent': only reels created before this time."),
    service: GatewayService = Depends(get_service),
) -> dict[str, Any]:
    """Return recent or trending reels, merged from every feed shard."""
    return {"kind": kind, "reels": await service.feed(kind, limit, before_ms)}


@router.get("/search", tags=["queries"])
async def search(
    q: str = Query(..., min_length=1, max_length=200, description="Words; '#tag' matches hashtags only."),
    limit: int = Query(20, ge=1, le=MAX_PAGE),
    service: GatewayService = Depends(get_service),
) -> dict[str, Any]:
    """Return the reels whose caption or hashtags match, best first."""
    return {"query": q, "hits": await service.search(q, limit)}


@router.get("/health", tags=["operations"])
async def health(request: Request) -> dict[str, Any]:
    service: GatewayService = request.app.state.service
    return {"status": "ok", "connections": len(request.app.state.connections), "reels_watched": len(service.fanout.viewers)}
