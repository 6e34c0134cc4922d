"""The reel state machine against a simple model, and its edge cases."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.state import ReelState, VersionGap, apply_command, evolve
from reelwire.events import Command, CommandKind, OutcomeStatus, ReelContent

WINDOW_MS = 60_000
REEL = "01JREELREELREELREELREELREE"
CONTENT = ReelContent(caption="hello", hashtags=("a",), media_url="https://example.com/v.mp4")


def make_ids():
    counter = itertools.count(1)
    return lambda: f"{next(counter):026d}"


def new_reel(ids=None):
    ids = ids or make_ids()
    state = ReelState(reel_id=REEL)
    apply_command(state, Command(CommandKind.CREATE_REEL, REEL, "creator", "create-1", content=CONTENT),
                  now_ms=1, new_id=ids, window_ms=WINDOW_MS)
    return state, ids


def run(state, ids, kind, user, request_id, now_ms=10, **fields):
    return apply_command(state, Command(kind, REEL, user, request_id, **fields), now_ms=now_ms, new_id=ids,
                         window_ms=WINDOW_MS)


def test_like_twice_counts_once():
    state, ids = new_reel()
    first, event = run(state, ids, CommandKind.LIKE, "u1", "r1")
    second, again = run(state, ids, CommandKind.LIKE, "u1", "r2")
    assert first.status is OutcomeStatus.APPLIED
    assert event is not None
    assert second.status is OutcomeStatus.UNCHANGED
    assert again is None
    assert state.counts().likes == 1


def test_unlike_without_like_emits_nothing():
    state, ids = new_reel()
    outcome, event = run(state, ids, CommandKind.UNLIKE, "u1", "r1")
    assert outcome.status is OutcomeStatus.UNCHANGED
    assert event is None
    assert state.counts().likes == 0
    assert state.version == 1


def test_retry_returns_first_outcome():
    state, ids = new_reel()
    first, _ = run(state, ids, CommandKind.LIKE, "u1", "r1")
    run(state, ids, CommandKind.UNLIKE, "u1", "r2")
    retry, event = run(state, ids, CommandKind.LIKE, "u1", "r1")
    assert retry == first
    assert event is None
    assert state.counts().likes == 0


def test_retry_after_window_is_new_request():
    state, ids = new_reel()
    run(state, ids, CommandKind.SHARE, "u1", "r1", now_ms=10)
    outcome, event = run(state, ids, CommandKind.SHARE, "u1", "r1", now_ms=10 + WINDOW_MS + 1)
    assert outcome.status is OutcomeStatus.APPLIED
    assert event is not None
    assert state.shares == 2


def test_request_id_reused_for_other_kind_is_conflict():
    state, ids = new_reel()
    run(state, ids, CommandKind.LIKE, "u1", "r1")
    outcome, event = run(state, ids, CommandKind.SHARE, "u1", "r1")
    assert outcome.status is OutcomeStatus.REJECTED
    assert outcome.error is not None
    assert outcome.error[1]["code"] == "request_id_reused"
    assert event is None


def test_request_id_scoped_per_user():
    state, ids = new_reel()
    run(state, ids, CommandKind.LIKE, "u1", "same")
    run(state, ids, CommandKind.LIKE, "u2", "same")
    assert state.counts().likes == 2


def test_command_on_missing_reel_is_rejected():
    state = ReelState(reel_id=REEL)
    outcome, event = run(state, make_ids(), CommandKind.LIKE, "u1", "r1")
    assert outcome.status is OutcomeStatus.REJECTED
    assert outcome.error[1]["code"] == "reel_not_found"
    assert event is None
    assert not state.exists


def test_create_twice_is_conflict():
    state, ids = new_reel()
    outcome, _ = run(state, ids, CommandKind.CREATE_REEL, "creator", "create-2", content=CONTENT)
    assert outcome.error[1]["code"] == "reel_exists"


def test_comment_delete_by_author_twice_is_harmless():
    state, ids = new_reel()
    added, _ = run(state, ids, CommandKind.COMMENT, "u1", "c1", text="nice")
    first, event = run(state, ids, CommandKind.DELETE_COMMENT, "u1", "d1", comment_id=added.comment_id)
    second, again = run(state, ids, CommandKind.DELETE_COMMENT, "u1", "d2", comment_id=added.comment_id)
    assert first.status is OutcomeStatus.APPLIED
    assert event is not None
    assert second.status is OutcomeStatus.UNCHANGED
    assert again is None
    assert state.counts().comments == 0


def test_comment_delete_by_other_user_is_forbidden():
    state, ids = new_reel()
    added, _ = run(state, ids, CommandKind.COMMENT, "u1", "c1", text="nice")
    outcome, event = run(state, ids, CommandKind.DELETE_COMMENT, "u2", "d1", comment_id=added.comment_id)
    assert outcome.error[1]["code"] == "not_comment_author"
    assert event is None
    assert state.counts().comments == 1


def test_comment_delete_unknown_is_not_found():
    state, ids = new_reel()
    outcome, _ = run(state, ids, CommandKind.DELETE_COMMENT, "u1", "d1", comment_id="0" * 26)
    assert outcome.error[1]["code"] == "comment_not_found"


def test_evolve_skips_old_and_rejects_gaps():
    state, ids = new_reel()
    _, event = run(state, ids, CommandKind.SHARE, "u1", "r1")
    assert evolve(state, event) is False
    assert state.shares == 1
    gap = ReelState(reel_id=REEL)
    try:
        evolve(gap, event)
    except VersionGap:
        pass
    else:
        raise AssertionError("a version gap must raise")


OPS = st.tuples(
    st.sampled_from(["like", "unlike", "share", "comment", "delete"]),
    st.sampled_from(["u1", "u2", "u3"]),
    st.integers(min_value=0, max_value=12),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(OPS, max_size=80))
def test_counts_match_model(operations):
    """Random interleavings with retries: counts equal a plain model, and replay rebuilds the same state."""
    state, ids = new_reel()
    events = []
    model_likers: set[str] = set()
    model_shares = 0
    model_comments: dict[str, str] = {}
    seen_requests: dict[tuple[str, str], object] = {}
    comment_ids: list[str] = []

    for kind_name, user, request_number in operations:
        request_id = f"{kind_name}-{request_number}"
        kind = {
            "like": CommandKind.LIKE, "unlike": CommandKind.UNLIKE, "share": CommandKind.SHARE,
            "comment": CommandKind.COMMENT, "delete": CommandKind.DELETE_COMMENT,
        }[kind_name]
        target = comment_ids[request_number % len(comment_ids)] if comment_ids else "0" * 26
        outcome, event = run(state, ids, kind, user, request_id, text="t", comment_id=target)
        if event is not None:
            events.append(event)

        key = (user, request_id)
        if key in seen_requests:
            assert event is None
            assert outcome == seen_requests[key] or outcome.status is OutcomeStatus.REJECTED
            continue
        if outcome.status is not OutcomeStatus.REJECTED:
            seen_requests[key] = outcome

        if kind is CommandKind.LIKE:
            model_likers.add(user)
        elif kind is CommandKind.UNLIKE:
            model_likers.discard(user)
        elif kind is CommandKind.SHARE:
            model_shares += 1
        elif kind is CommandKind.COMMENT:
            model_comments[outcome.comment_id] = user
            comment_ids.append(outcome.comment_id)
        elif kind is CommandKind.DELETE_COMMENT and model_comments.get(target) == user:
            del model_comments[target]

        counts = state.counts()
        assert counts.likes == len(model_likers)
        assert counts.shares == model_shares
        assert counts.comments == len(model_comments)
        assert counts.likes >= 0
        assert counts.comments >= 0

    versions = [event.version for event in events]
    assert versions == list(range(2, 2 + len(events)))

    replayed, _ = new_reel(make_ids())
    for event in events:
        evolve(replayed, event)
    assert replayed.counts() == state.counts()
    assert replayed.version == state.version
    assert replayed.likers == state.likers
