"""Private rooms over HTTP and the socket (SPEC §6): ``"private": true`` at creation, and
a 403 ``forbidden`` everywhere else for non-members — the room list, history, paging,
search, uploads, the page and ``join``."""

from __future__ import annotations

import pytest

from tests.helpers import body


async def test_a_private_room_is_the_creators_and_invisible_to_others(app):
    alice_token = await app.api.user("alice")
    created = await app.api.request(
        "POST", "/api/rooms", {"name": "staff", "topic": "us", "private": True}, alice_token
    )
    assert created.code == 201, created.body
    room = body(created)["room"]
    assert (room["name"], room["private"], room["role"], room["member"]) == (
        "staff",
        True,
        "owner",
        True,
    )
    alice = await app.client("alice", join="staff")
    await alice.send("the secret plan", room="staff", client_id="s1")
    await alice.next("ack", client_id="s1")

    bob_token = await app.api.user("bob")
    rooms = body(await app.api.request("GET", "/api/rooms", token=bob_token))["rooms"]
    assert [r["name"] for r in rooms] == ["lobby"]
    assert rooms[0]["private"] is False and rooms[0]["role"] == "member"
    mine = body(await app.api.request("GET", "/api/rooms", token=alice_token))["rooms"]
    assert [(r["name"], r["private"], r["role"]) for r in mine] == [
        ("lobby", False, "member"),
        ("staff", True, "owner"),
    ]

    for path in (
        "/api/rooms/staff/messages",
        "/api/rooms/staff/messages?since=0",
        "/api/rooms/staff/messages?limit=5",
        "/api/search?q=secret&room=staff",
    ):
        refused = await app.api.request("GET", path, token=bob_token)
        assert refused.code == 403, (path, refused.body)
        assert body(refused)["error"]["code"] == "forbidden"
    assert body(await app.api.request("GET", "/api/search?q=secret", token=bob_token)) == {
        "results": [],
        "more": False,
    }
    page = await app.api.request("GET", "/rooms/staff", token=bob_token)
    assert page.code == 403 and b"secret" not in page.body
    upload = await app.api.request(
        "POST", "/api/rooms/staff/files?name=a.txt", token=bob_token, raw=b"hello"
    )
    assert upload.code == 403
    sent = await app.api.request(
        "POST", "/api/rooms/staff/messages", {"text": "hi", "client_id": "b1"}, bob_token
    )
    assert sent.code == 403 and body(sent)["error"]["code"] == "forbidden"

    bob = await app.client("bob")
    assert [r["name"] for r in bob.hello["rooms"]] == ["lobby"]
    await bob.send_frame({"type": "join", "room": "staff"})
    error = await bob.next("error")
    assert (error["code"], error["room"]) == ("forbidden", "staff")
    await bob.nothing("joined")
    await bob.nothing("message")


@pytest.mark.parametrize("private", ["true", 1, 0, [], {"x": 1}, "yes"])
async def test_a_private_flag_that_is_not_a_boolean_is_400(app, private):
    token = await app.api.user("alice")
    response = await app.api.request(
        "POST", "/api/rooms", {"name": "general", "private": private}, token
    )
    assert response.code == 400 and body(response)["error"]["code"] == "bad_request"
    rooms = body(await app.api.request("GET", "/api/rooms", token=token))["rooms"]
    assert [r["name"] for r in rooms] == ["lobby"]


async def test_private_null_or_absent_is_a_public_room(app):
    token = await app.api.user("alice")
    for name, extra in (("one", {"private": None}), ("two", {}), ("three", {"private": False})):
        created = await app.api.request("POST", "/api/rooms", {"name": name, **extra}, token)
        assert created.code == 201 and body(created)["room"]["private"] is False
