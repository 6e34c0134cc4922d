"""The whole loop on real services: REST and WebSocket commands, live pushes, projections."""

from __future__ import annotations

import json
import secrets

import httpx
import pytest
from tests.integration.conftest import Stack, cassandra_rows, eventually, open_socket, receive_until

pytestmark = pytest.mark.integration

REEL_BODY = {
    "caption": "Golden hour kayaking on the fjord",
    "hashtags": ["#Kayak", "norway"],
    "media_url": "https://media.example.com/kayak.mp4",
}


async def create_reel(http: httpx.AsyncClient, stack: Stack, user: str = "creator", **overrides) -> str:
    response = await http.post("/reels", json={**REEL_BODY, **overrides}, headers=stack.auth(user))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "applied"
    assert body["version"] == 1
    return body["reel_id"]


async def test_like_reaches_other_socket_and_projections(stack: Stack, http: httpx.AsyncClient):
    # A caption word of its own, so that other tests' reels cannot crowd it out of the first page of hits.
    marker = f"marker{secrets.token_hex(4)}"
    reel_id = await create_reel(http, stack, caption=f"Golden hour kayaking on the fjord {marker}")

    viewer = await open_socket(stack)
    await viewer.send(json.dumps({"op": "subscribe", "reel_ids": [reel_id]}))
    await receive_until(viewer, lambda f: f["type"] == "subscribed")
    snapshot = await receive_until(viewer, lambda f: f["type"] == "reel.state")
    assert snapshot["counts"] == {"likes": 0, "shares": 0, "comments": 0}

    # A like over REST by one user reaches another client's socket.
    liked = await http.post(f"/reels/{reel_id}/like", headers=stack.auth("bob"))
    assert liked.status_code == 200, liked.text
    assert liked.json()["counts"]["likes"] == 1
    pushed = await receive_until(viewer, lambda f: f["type"] == "reel.state" and f["counts"]["likes"] == 1)
    assert pushed["reel_id"] == reel_id
    assert pushed["version"] == 2

    # A like and a comment over the WebSocket by a third user.
    carol = await open_socket(stack, "carol")
    await carol.send(json.dumps({"op": "like", "reel_id": reel_id, "request_id": "carol-like-1"}))
    ack = await receive_until(carol, lambda f: f["type"] == "ack")
    assert ack["status"] == "applied"
    assert ack["counts"]["likes"] == 2
    await carol.send(json.dumps({"op": "comment", "reel_id": reel_id, "request_id": "carol-c-1", "text": "Wow 🌅"}))
    comment_ack = await receive_until(carol, lambda f: f["type"] == "ack")
    added = await receive_until(viewer, lambda f: f["type"] == "comment.added")
    assert added["comment"]["text"] == "Wow 🌅"
    assert added["comment"]["comment_id"] == comment_ack["comment_id"]
    await receive_until(viewer, lambda f: f["type"] == "reel.state" and f["counts"] == {"likes": 2, "shares": 0, "comments": 1})

    # The like lands in Cassandra.
    async def projected():
        response = await http.get(f"/reels/{reel_id}", headers=stack.auth("bob"))
        body = response.json() if response.status_code == 200 else None
        return body if body and body["counts"]["likes"] == 2 and body["counts"]["comments"] == 1 else None

    reel = await eventually(projected, what="the counts in Cassandra")
    assert reel["liked"] is True
    assert reel["hashtags"] == ["kayak", "norway"]
    rows = cassandra_rows(stack.settings.keyspace, f"SELECT user_id FROM likes WHERE reel_id = '{reel_id}'")
    assert rows == {("bob",), ("carol",)}

    # The reel lands in search.
    async def found():
        response = await http.get("/search", params={"q": f"fjord {marker} #kayak"})
        return [hit for hit in response.json()["hits"] if hit["reel_id"] == reel_id]

    await eventually(found, what="the reel in the search index")

    await viewer.close()
    await carol.close()


async def test_unlike_and_share_over_both_transports(stack: Stack, http: httpx.AsyncClient):
    reel_id = await create_reel(http, stack)
    await http.post(f"/reels/{reel_id}/like", headers=stack.auth("dan"))
    unliked = await http.delete(f"/reels/{reel_id}/like", headers=stack.auth("dan"))
    assert unliked.json()["counts"]["likes"] == 0
    again = await http.delete(f"/reels/{reel_id}/like", headers=stack.auth("dan"))
    assert again.json()["status"] == "unchanged"

    shared = await http.post(f"/reels/{reel_id}/shares", headers=stack.auth("dan"))
    assert shared.json()["counts"]["shares"] == 1

    erin = await open_socket(stack, "erin")
    await erin.send(json.dumps({"op": "like", "reel_id": reel_id, "request_id": "e1"}))
    await receive_until(erin, lambda f: f["type"] == "ack" and f["request_id"] == "e1")
    await erin.send(json.dumps({"op": "unlike", "reel_id": reel_id, "request_id": "e2"}))
    unlike_ack = await receive_until(erin, lambda f: f["type"] == "ack" and f["request_id"] == "e2")
    assert unlike_ack["counts"]["likes"] == 0
    await erin.send(json.dumps({"op": "share", "reel_id": reel_id, "request_id": "e3"}))
    share_ack = await receive_until(erin, lambda f: f["type"] == "ack" and f["request_id"] == "e3")
    assert share_ack["counts"]["shares"] == 2
    await erin.close()


async def test_comments_paged_and_deleted(stack: Stack, http: httpx.AsyncClient):
    reel_id = await create_reel(http, stack)
    ids = []
    for number in range(5):
        response = await http.post(
            f"/reels/{reel_id}/comments", json={"text": f"comment {number}"}, headers=stack.auth("fay")
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["comment_id"])
    assert ids == sorted(ids)

    async def all_projected():
        response = await http.get(f"/reels/{reel_id}/comments", params={"limit": 100})
        return len(response.json()["comments"]) == 5

    await eventually(all_projected, what="five comments in Cassandra")
    first = (await http.get(f"/reels/{reel_id}/comments", params={"limit": 2})).json()
    assert [c["text"] for c in first["comments"]] == ["comment 0", "comment 1"]
    second = (await http.get(f"/reels/{reel_id}/comments", params={"limit": 2, "cursor": first["next_cursor"]})).json()
    assert [c["text"] for c in second["comments"]] == ["comment 2", "comment 3"]
    third = (await http.get(f"/reels/{reel_id}/comments", params={"limit": 2, "cursor": second["next_cursor"]})).json()
    assert [c["text"] for c in third["comments"]] == ["comment 4"]
    assert third["next_cursor"] is None

    other = await http.delete(f"/reels/{reel_id}/comments/{ids[0]}", headers=stack.auth("mallory"))
    assert other.status_code == 403
    assert other.json()["error"]["code"] == "not_comment_author"
    deleted = await http.delete(f"/reels/{reel_id}/comments/{ids[0]}", headers=stack.auth("fay"))
    assert deleted.json()["status"] == "applied"
    assert deleted.json()["counts"]["comments"] == 4
    twice = await http.delete(f"/reels/{reel_id}/comments/{ids[0]}", headers=stack.auth("fay"))
    assert twice.json()["status"] == "unchanged"

    async def gone():
        response = await http.get(f"/reels/{reel_id}/comments", params={"limit": 100})
        return [c["comment_id"] for c in response.json()["comments"]] == ids[1:]

    await eventually(gone, what="the deleted comment gone from Cassandra")


async def test_feed_recent_and_trending(stack: Stack, http: httpx.AsyncClient):
    quiet = await create_reel(http, stack, caption="quiet reel")
    busy = await create_reel(http, stack, caption="busy reel")
    for user in ("u1", "u2", "u3"):
        await http.post(f"/reels/{busy}/like", headers=stack.auth(user))

    async def in_recent():
        reels = (await http.get("/feed", params={"kind": "recent", "limit": 100})).json()["reels"]
        ids = [reel["reel_id"] for reel in reels]
        return busy in ids and quiet in ids and ids.index(busy) < ids.index(quiet)

    await eventually(in_recent, what="both reels in the recent feed, newest first")

    async def busy_trending():
        reels = (await http.get("/feed", params={"kind": "trending", "limit": 100})).json()["reels"]
        ranks = {reel["reel_id"]: position for position, reel in enumerate(reels)}
        return busy in ranks and quiet in ranks and ranks[busy] < ranks[quiet]

    await eventually(busy_trending, what="the liked reel ranked above the quiet one")


async def test_retried_create_returns_same_reel(stack: Stack, http: httpx.AsyncClient):
    headers = {**stack.auth("gus"), "Idempotency-Key": "create-once"}
    first = await http.post("/reels", json=REEL_BODY, headers=headers)
    second = await http.post("/reels", json=REEL_BODY, headers=headers)
    assert first.json()["reel_id"] == second.json()["reel_id"]
    assert second.json()["version"] == 1


async def test_rest_errors_use_error_form(stack: Stack, http: httpx.AsyncClient):
    reel_id = await create_reel(http, stack)
    cases = [
        (await http.post(f"/reels/{reel_id}/like"), 401, "token_missing"),
        (await http.post(f"/reels/{reel_id}/like", headers={"Authorization": "Bearer nope"}), 401, "token_invalid"),
        (await http.post(f"/reels/{reel_id}/like", headers={"Authorization": f"Bearer {stack.token('x', ttl_s=-5)}"}),
         401, "token_expired"),
        (await http.post("/reels/not-an-id/like", headers=stack.auth("x")), 400, "invalid_reel_id"),
        (await http.post(f"/reels/{'0' * 26}/like", headers=stack.auth("x")), 404, "reel_not_found"),
        (await http.get(f"/reels/{'0' * 26}"), 404, "reel_not_found"),
        (await http.post("/reels", content=b"{not json", headers={**stack.auth("x"), "Content-Type": "application/json"}),
         422, "invalid_request"),
        (await http.post("/reels", json={**REEL_BODY, "media_url": "ftp://x"}, headers=stack.auth("x")),
         400, "invalid_media_url"),
        (await http.post(f"/reels/{reel_id}/comments", json={"text": "x" * 70_000}, headers=stack.auth("x")),
         413, "payload_too_large"),
        (await http.post(f"/reels/{reel_id}/comments", json={"text": "a\u0000b"}, headers=stack.auth("x")),
         400, "invalid_text"),
        (await http.get(f"/reels/{reel_id}/comments", params={"cursor": "garbage"}), 400, "invalid_cursor"),
        (await http.get("/nowhere"), 404, "not_found"),
    ]
    for response, status, code in cases:
        assert response.status_code == status, (code, response.text)
        assert response.json()["error"]["code"] == code
        assert response.json()["error"]["message"]


async def test_docs_and_dashboard_served(stack: Stack, http: httpx.AsyncClient):
    docs = await http.get("/docs")
    assert docs.status_code == 200
    spec = (await http.get("/openapi.json")).json()
    assert "/reels/{reel_id}/like" in spec["paths"]
    async with httpx.AsyncClient(timeout=10) as client:
        dashboard = await client.get(f"http://127.0.0.1:{stack.dashboard_port}/")
    assert dashboard.status_code in (200, 401)
