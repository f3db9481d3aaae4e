"""Blocking over HTTP and the WebSocket (SPEC §6): ``/api/blocks``, a blocked user's
direct messages refused on a socket already in the conversation, and the chat page
that hides a blocked user's messages."""

from __future__ import annotations

import json
import re

import pytest

from tests.helpers import PASSWORD, Browser, body

DM = "dm:alice:bob"


def error_code(response) -> str:
    return body(response)["error"]["code"]


async def test_block_list_and_unblock(app):
    alice = await app.api.user("alice")
    await app.api.user("Bob")
    first = await app.api.request("POST", "/api/blocks", {"user": "bob"}, alice)
    assert first.code == 201 and body(first) == {"user": "Bob", "blocked": True}
    again = await app.api.request("POST", "/api/blocks", {"user": "BOB"}, alice)
    assert again.code == 200 and body(again) == {"user": "Bob", "blocked": True}
    listed = body(await app.api.request("GET", "/api/blocks", token=alice))["blocks"]
    assert [b["user"] for b in listed] == ["Bob"] and listed[0]["since"]
    gone = await app.api.request("DELETE", "/api/blocks/bob", token=alice)
    assert gone.code == 200 and body(gone) == {"user": "Bob", "blocked": False}
    assert (await app.api.request("DELETE", "/api/blocks/bob", token=alice)).code == 200
    assert body(await app.api.request("GET", "/api/blocks", token=alice)) == {"blocks": []}


@pytest.mark.parametrize(
    "method, path, payload, raw, status",
    [
        ("POST", "/api/blocks", None, b"{oops", 400),
        ("POST", "/api/blocks", None, b'"bob"', 400),
        ("POST", "/api/blocks", {}, None, 400),
        ("POST", "/api/blocks", {"user": 5}, None, 400),
        ("POST", "/api/blocks", {"user": ["bob"]}, None, 400),
        ("POST", "/api/blocks", {"user": "x" * 50_000}, None, 400),
        ("POST", "/api/blocks", {"user": "nobody"}, None, 404),
        ("POST", "/api/blocks", {"user": "alice"}, None, 400),
        ("POST", "/api/blocks", {"user": "bob\n"}, None, 400),
        ("DELETE", "/api/blocks/nobody", None, None, 404),
        ("DELETE", "/api/blocks/no%20spaces", None, None, 400),
        ("DELETE", "/api/blocks/" + "x" * 3000, None, None, 400),
        ("PUT", "/api/blocks", {"user": "bob"}, None, 405),
        ("GET", "/api/blocks/bob", None, None, 405),
    ],
)
async def test_bad_input_to_the_blocks_api(app, method, path, payload, raw, status):
    alice = await app.api.user("alice")
    await app.api.user("bob")
    response = await app.api.request(method, path, payload, alice, raw=raw)
    assert response.code == status, response.body
    assert "error" in body(response)
    assert body(await app.api.request("GET", "/api/blocks", token=alice)) == {"blocks": []}


async def test_the_blocks_api_needs_a_signed_in_user(app):
    for method, path, payload in [
        ("GET", "/api/blocks", None),
        ("POST", "/api/blocks", {"user": "bob"}),
        ("DELETE", "/api/blocks/bob", None),
    ]:
        response = await app.api.request(method, path, payload)
        assert (response.code, error_code(response)) == (401, "unauthorized")


async def test_an_oversized_block_body_is_413(app):
    alice = await app.api.user("alice")
    raw = b'{"user": "' + b"b" * (1024 * 1024 + 10) + b'"}'
    response = await app.api.request("POST", "/api/blocks", None, alice, raw=raw)
    assert response.code == 413


async def test_a_socket_in_the_direct_room_is_refused_once_blocked(app):
    alice_token = await app.api.user("alice")
    bob = await app.client("bob", join=DM)
    alice = await app.client("alice", join=DM)
    await bob.send("hi alice", room=DM, client_id="b1")
    assert (await bob.answer())["type"] == "ack"
    await alice.next("message", room=DM)
    blocked = await app.api.request("POST", "/api/blocks", {"user": "bob"}, alice_token)
    assert blocked.code == 201
    await bob.send("are you there?", room=DM, client_id="b2")
    refused = await bob.answer()
    assert (refused["type"], refused["code"], refused.get("client_id")) == (
        "error",
        "forbidden",
        "b2",
    )
    await bob.send_frame({"type": "typing", "room": DM})
    assert (await bob.next("error"))["code"] == "forbidden"
    await alice.send("one last word", room=DM, client_id="a1")
    assert (await alice.answer())["code"] == "forbidden", "the blocker cannot write either"
    await alice.nothing("message", room=DM)
    bob_token = await app.api.login("bob")
    history = await app.api.request("GET", f"/api/rooms/{DM}/messages", token=bob_token)
    assert (history.code, error_code(history)) == (403, "forbidden")
    # Lobby goes on as before.
    await bob.send("in lobby", client_id="b3")
    assert (await bob.answer())["type"] == "ack"
    # Unblocked: the conversation is open again, with its history.
    await app.api.request("DELETE", "/api/blocks/bob", token=alice_token)
    await bob.send("friends again?", room=DM, client_id="b4")
    assert (await bob.answer())["type"] == "ack"
    texts = [
        m["text"]
        for m in body(await app.api.request("GET", f"/api/rooms/{DM}/messages", token=bob_token))[
            "messages"
        ]
    ]
    assert texts == ["hi alice", "friends again?"]


async def test_the_dm_page_and_form_refuse_a_blocked_user(app):
    alice_token = await app.api.user("alice")
    await app.api.register("bob")
    blocked = await app.api.request("POST", "/api/blocks", {"user": "bob"}, alice_token)
    assert blocked.code == 201
    browser = Browser(app)
    await browser.post_form("/login", {"username": "bob", "password": PASSWORD})
    page = await browser.get(f"/rooms/{DM}")
    assert page.code == 403
    posted = await browser.post_form(f"/rooms/{DM}", {"text": "hello?", "client_id": "x1"})
    assert posted.code == 403


async def test_the_chat_page_hides_a_blocked_users_messages(app):
    bob = await app.client("bob")
    await bob.send("from bob", client_id="b1")
    await bob.answer()
    carol = await app.client("carol")
    await carol.send("from carol", client_id="c1")
    await carol.answer()
    await app.api.register("alice")
    browser = Browser(app)
    await browser.post_form("/login", {"username": "alice", "password": PASSWORD})
    alice_token = await app.api.login("alice")
    await app.api.request("POST", "/api/blocks", {"user": "BOB"}, alice_token)
    html = (await browser.get("/")).body.decode()
    assert json.loads(
        re.search(r'data-blocked="([^"]*)"', html).group(1).replace("&quot;", '"')
    ) == ["bob"]
    items = re.findall(r'<li class="message([^"]*)"[^>]*data-user="([^"]+)"', html)
    assert [(user, "blocked" in classes) for classes, user in items] == [
        ("bob", True),
        ("carol", False),
    ]
    assert "Message from a user you blocked" in html and 'class="reveal-toggle"' in html
