"""The interaction state machine of one reel, free of I/O.

``apply_command`` decides what a command does, returns the event to append (or
none), and moves the state forward. ``evolve`` is the only code that changes a
reel from an event, and both live commands and log replay go through it, so a
replayed log rebuilds exactly the state that served the commands.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

from reelwire.errors import Conflict, Forbidden, InvalidRequest, NotFound, ReelwireError
from reelwire.events import (
    Command,
    CommandKind,
    Counts,
    Event,
    EventType,
    Outcome,
    OutcomeStatus,
)


@dataclass(slots=True)
class CommentMeta:
    author: str
    deleted: bool = False


@dataclass(slots=True)
class RequestRecord:
    """The first outcome of a request id, replayed to every retry of it."""

    kind: CommandKind
    outcome: Outcome
    at_ms: int


@dataclass(slots=True)
class ReelState:
    reel_id: str
    version: int = 0
    creator_id: str | None = None
    created_at_ms: int = 0
    likers: set[str] = field(default_factory=set)
    shares: int = 0
    comments: dict[str, CommentMeta] = field(default_factory=dict)
    live_comments: int = 0
    # Oldest first; an OrderedDict because expiry pops from the front, which a
    # plain dict makes slower the more entries it has deleted.
    requests: OrderedDict[str, RequestRecord] = field(default_factory=OrderedDict)

    @property
    def exists(self) -> bool:
        return self.version > 0

    def counts(self) -> Counts:
        return Counts(likes=len(self.likers), shares=self.shares, comments=self.live_comments)


class VersionGap(RuntimeError):
    """An event skips versions, so some earlier event of the reel is missing."""


def request_key(user_id: str, request_id: str) -> str:
    return f"{user_id}\x00{request_id}"


def apply_command(
    state: ReelState,
    command: Command,
    *,
    now_ms: int,
    new_id: Callable[[], str],
    window_ms: int,
    max_requests: int = 100_000,
) -> tuple[Outcome, Event | None]:
    """Apply one command to a reel and return its outcome and event.

    A retry of a request id seen within ``window_ms`` returns the first outcome
    and no event, as long as the reel has seen at most ``max_requests`` newer
    requests. That cap bounds the memory of a hot reel. Rejections are
    outcomes too, never exceptions, so one bad command cannot fail the rest of
    its batch.
    """
    _forget_old_requests(state, now_ms - window_ms, max_requests)
    key = request_key(command.user_id, command.request_id)
    seen = state.requests.get(key)
    if seen is not None:
        if seen.kind != command.kind:
            return _rejected(command, Conflict(
                f"request id {command.request_id!r} was already used for a {seen.kind.value} command",
                code="request_id_reused",
            )), None
        return seen.outcome, None

    try:
        event = _decide(state, command, now_ms=now_ms, new_id=new_id)
    except ReelwireError as exc:
        return _rejected(command, exc), None

    if event is None:
        outcome = Outcome(
            request_id=command.request_id,
            reel_id=state.reel_id,
            status=OutcomeStatus.UNCHANGED,
            version=state.version,
            counts=state.counts(),
        )
        state.requests[key] = RequestRecord(command.kind, outcome, now_ms)
        return outcome, None

    evolve(state, event)
    return state.requests[key].outcome, event


def evolve(state: ReelState, event: Event) -> bool:
    """Apply an event to a reel; return False if the reel already includes it.

    Raises VersionGap when the event is more than one version ahead.
    """
    if event.version <= state.version:
        return False
    if event.version != state.version + 1:
        raise VersionGap(
            f"reel {state.reel_id} is at version {state.version}, event {event.event_id} has {event.version}"
        )

    data = event.data
    if event.type is EventType.REEL_CREATED:
        state.creator_id = event.user_id
        state.created_at_ms = event.at_ms
    elif event.type is EventType.LIKED:
        state.likers.add(event.user_id)
    elif event.type is EventType.UNLIKED:
        state.likers.discard(event.user_id)
    elif event.type is EventType.SHARED:
        state.shares += 1
    elif event.type is EventType.COMMENT_ADDED:
        state.comments[data["comment_id"]] = CommentMeta(author=event.user_id)
        state.live_comments += 1
    elif event.type is EventType.COMMENT_DELETED:
        meta = state.comments.get(data["comment_id"])
        if meta is not None and not meta.deleted:
            meta.deleted = True
            state.live_comments -= 1
    state.version = event.version

    # The outcome of the command behind this event is remembered, so that a
    # retry after a crash and replay still returns the first outcome.
    kind = _KIND_OF_EVENT[event.type]
    state.requests[request_key(event.user_id, event.request_id)] = RequestRecord(
        kind,
        Outcome(
            request_id=event.request_id,
            reel_id=event.reel_id,
            status=OutcomeStatus.APPLIED,
            version=event.version,
            counts=event.counts,
            comment_id=data.get("comment_id"),
        ),
        event.at_ms,
    )
    return True


_KIND_OF_EVENT = {
    EventType.REEL_CREATED: CommandKind.CREATE_REEL,
    EventType.LIKED: CommandKind.LIKE,
    EventType.UNLIKED: CommandKind.UNLIKE,
    EventType.SHARED: CommandKind.SHARE,
    EventType.COMMENT_ADDED: CommandKind.COMMENT,
    EventType.COMMENT_DELETED: CommandKind.DELETE_COMMENT,
}


def _decide(
    state: ReelState, command: Command, *, now_ms: int, new_id: Callable[[], str]
) -> Event | None:
    """Return the event a command causes, None when it changes nothing, or raise."""
    kind = command.kind
    if kind is CommandKind.CREATE_REEL:
        if state.exists:
            raise Conflict(f"reel {state.reel_id} already exists", code="reel_exists")
        if command.content is None:
            raise InvalidRequest("a new reel needs its content", code="missing_content")
        content = command.content
        return _event(state, command, EventType.REEL_CREATED, Counts(), now_ms, new_id, {
            "caption": content.caption,
            "hashtags": list(content.hashtags),
            "media_url": content.media_url,
        })

    if not state.exists:
        raise NotFound(f"reel {state.reel_id} not found", code="reel_not_found")
    counts = state.counts()
    user = command.user_id

    if kind is CommandKind.LIKE:
        if user in state.likers:
            return None
        after = Counts(counts.likes + 1, counts.shares, counts.comments)
        return _event(state, command, EventType.LIKED, after, now_ms, new_id, {})

    if kind is CommandKind.UNLIKE:
        if user not in state.likers:
            return None
        after = Counts(counts.likes - 1, counts.shares, counts.comments)
        return _event(state, command, EventType.UNLIKED, after, now_ms, new_id, {})

    if kind is CommandKind.SHARE:
        after = Counts(counts.likes, counts.shares + 1, counts.comments)
        return _event(state, command, EventType.SHARED, after, now_ms, new_id, {})

    if kind is CommandKind.COMMENT:
        if not command.text:
            raise InvalidRequest("a comment needs non-empty text", code="invalid_comment")
        after = Counts(counts.likes, counts.shares, counts.comments + 1)
        comment_id = new_id()
        return _event(state, command, EventType.COMMENT_ADDED, after, now_ms, new_id, {
            "comment_id": comment_id,
            "text": command.text,
        })

    if kind is CommandKind.DELETE_COMMENT:
        comment_id = command.comment_id or ""
        meta = state.comments.get(comment_id)
        if meta is None:
            raise NotFound(f"comment {comment_id} not found on reel {state.reel_id}", code="comment_not_found")
        if meta.author != user:
            raise Forbidden("only the author can delete a comment", code="not_comment_author")
        if meta.deleted:
            return None
        after = Counts(counts.likes, counts.shares, counts.comments - 1)
        return _event(state, command, EventType.COMMENT_DELETED, after, now_ms, new_id, {"comment_id": comment_id})

    raise InvalidRequest(f"unknown command kind {kind!r}", code="unknown_command")


def _event(
    state: ReelState,
    command: Command,
    event_type: EventType,
    counts: Counts,
    now_ms: int,
    new_id: Callable[[], str],
    data: dict[str, object],
) -> Event:
    return Event(
        event_id=new_id(),
        type=event_type,
        reel_id=state.reel_id,
        version=state.version + 1,
        user_id=command.user_id,
        request_id=command.request_id,
        at_ms=now_ms,
        counts=counts,
        data=data,
    )


def _rejected(command: Command, error: ReelwireError) -> Outcome:
    return Outcome(
        request_id=command.request_id,
        reel_id=command.reel_id,
        status=OutcomeStatus.REJECTED,
        error=(type(error).__name__, error.to_dict()),
    )


def _forget_old_requests(state: ReelState, cutoff_ms: int, max_requests: int) -> None:
    # Records are inserted in time order, so the oldest ones are at the front.
    requests = state.requests
    while requests:
        key = next(iter(requests))
        if requests[key].at_ms >= cutoff_ms and len(requests) <= max_requests:
            break
        requests.popitem(last=False)
