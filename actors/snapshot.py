"""Serialization of a reel's state for snapshots, free of I/O.

A snapshot is compressed JSON. It carries everything ``evolve`` builds and
the newest request ids (see ``copy_for_snapshot``), so that a reel loaded from
its snapshot returns the first outcome to a retry of any of those requests.
"""

from __future__ import annotations

import json
import zlib
from collections import OrderedDict
from typing import Any

from actors.state import CommentMeta, ReelState, RequestRecord
from reelwire.events import CommandKind, Counts, Outcome, OutcomeStatus

SNAPSHOT_FORMAT = 1


def copy_for_snapshot(state: ReelState, max_requests: int) -> ReelState:
    """Return a copy of a reel that a snapshot can encode while the original changes.

    Only the newest ``max_requests`` request records are kept, so a hot reel's
    snapshot stays small. A retry of an older request after a shard restart is
    applied as new.
    """
    requests = state.requests
    if len(requests) > max_requests:
        keys = list(requests)[-max_requests:]
        newest = OrderedDict((key, requests[key]) for key in keys)
    else:
        newest = OrderedDict(requests)
    return ReelState(
        reel_id=state.reel_id,
        version=state.version,
        creator_id=state.creator_id,
        created_at_ms=state.created_at_ms,
        likers=set(state.likers),
        shares=state.shares,
        comments={comment_id: CommentMeta(meta.author, meta.deleted) for comment_id, meta in state.comments.items()},
        live_comments=state.live_comments,
        requests=newest,
    )


def encode_state(state: ReelState) -> bytes:
    body = {
        "format": SNAPSHOT_FORMAT,
        "reel_id": state.reel_id,
        "version": state.version,
        "creator_id": state.creator_id,
        "created_at_ms": state.created_at_ms,
        "likers": sorted(state.likers),
        "shares": state.shares,
        "comments": [[comment_id, meta.author, meta.deleted] for comment_id, meta in state.comments.items()],
        "requests": [_encode_request(key, record) for key, record in state.requests.items()],
    }
    return zlib.compress(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def decode_state(blob: bytes) -> ReelState:
    """Rebuild a reel from a snapshot; raise ValueError if the blob is not one."""
    try:
        body = json.loads(zlib.decompress(blob))
    except (zlib.error, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"invalid reel snapshot: {exc}") from exc
    if body.get("format") != SNAPSHOT_FORMAT:
        raise ValueError(f"unsupported reel snapshot format {body.get('format')!r}")
    comments = {comment_id: CommentMeta(author, deleted) for comment_id, author, deleted in body["comments"]}
    return ReelState(
        reel_id=body["reel_id"],
        version=body["version"],
        creator_id=body["creator_id"],
        created_at_ms=body["created_at_ms"],
        likers=set(body["likers"]),
        shares=body["shares"],
        comments=comments,
        live_comments=sum(1 for meta in comments.values() if not meta.deleted),
        requests=OrderedDict(_decode_request(item, body["reel_id"]) for item in body["requests"]),
    )


def _encode_request(key: str, record: RequestRecord) -> list[Any]:
    outcome = record.outcome
    return [
        key,
        record.kind.value,
        record.at_ms,
        outcome.request_id,
        outcome.status.value,
        outcome.version,
        outcome.counts.to_dict() if outcome.counts else None,
        outcome.comment_id,
    ]


def _decode_request(item: list[Any], reel_id: str) -> tuple[str, RequestRecord]:
    key, kind, at_ms, request_id, status, version, counts, comment_id = item
    outcome = Outcome(
        request_id=request_id,
        reel_id=reel_id,
        status=OutcomeStatus(status),
        version=version,
        counts=Counts(**counts) if counts else None,
        comment_id=comment_id,
    )
    return key, RequestRecord(CommandKind(kind), outcome, at_ms)
