"""Changing messages that Redis no longer keeps (SPEC §5, §7), over the real socket and
the HTTP API: edit, delete and react reach everyone in the room with the next rev, the
archive (paging back) shows the result, and hostile changes are refused as for
retained messages, with ``room`` and ``client_id``."""

from __future__ import annotations

import asyncio
import time

import pytest

from chatroom.storage import initialise_database
from tests.helpers import body
from tests.views.test_message_changes import change

pytestmark = pytest.mark.timeout(60)


async def _archived(app) -> None:
    archive = app.server.controllers.archive
    deadline = time.monotonic() + 10
    while (await archive.measure_lag()).messages:
        assert time.monotonic() < deadline, "the archiver did not catch up"
        await asyncio.sleep(0.05)


@pytest.fixture
async def trimmed(app_factory):
    """Ten messages of alice in lobby; Redis keeps the newest 3, the archive all."""
    app = await app_factory(history_size=3, send_burst=100_000)
    app.alice = await app.client("alice")
    for n in range(1, 11):
        await app.alice.send(f"message {n}", client_id=f"m{n}")
        await app.alice.next("ack")
    await _archived(app)
    app.bob = await app.client("bob", join=None)
    joined = await app.bob.join()
    assert [m["id"] for m in joined["messages"]] == [8, 9, 10]
    app.rev = joined["rev"]
    app.token = await app.api.login("alice")
    return app


async def _page(app, before: int, limit: int) -> list[dict]:
    await app.server.controllers.chat.changes.settle()
    path = f"/api/rooms/lobby/messages?before={before}&limit={limit}"
    return body(await app.api.request("GET", path, token=app.token))["messages"]


async def test_archived_messages_change_over_the_socket_and_http(trimmed):
    app, alice, bob, rev = trimmed, trimmed.alice, trimmed.bob, trimmed.rev
    ack = await change(
        alice, {"type": "edit", "room": "lobby", "id": 2, "text": "two!", "client_id": "e"}
    )
    assert ack == {"type": "ack", "client_id": "e", "id": 2, "room": "lobby"}
    edited = await bob.next("edited", id=2)
    assert (edited["text"], edited["rev"]) == ("two!", rev + 1)

    ack = await change(
        bob,
        {"type": "react", "room": "lobby", "id": 2, "emoji": "👍", "on": True, "client_id": "r"},
    )
    assert ack["type"] == "ack"
    assert (await alice.next("reaction", id=2))["rev"] == rev + 2

    patched = await app.api.request(
        "PATCH", "/api/rooms/lobby/messages/3", {"text": "three, by HTTP"}, token=app.token
    )
    assert patched.code == 200, patched.body
    assert body(patched) == {"id": 3, "room": "lobby", "rev": rev + 3}
    assert (await bob.next("edited", id=3))["rev"] == rev + 3

    deleted = await app.api.request("DELETE", "/api/rooms/lobby/messages/4", token=app.token)
    assert body(deleted) == {"id": 4, "room": "lobby", "rev": rev + 4}
    assert (await bob.next("deleted", id=4))["rev"] == rev + 4

    shown = {m["id"]: m for m in await _page(app, 5, 4)}
    assert shown[2]["text"] == "two!" and shown[2]["reactions"] == {"👍": ["bob"]}
    assert "edited" in shown[2] and shown[3]["text"] == "three, by HTTP"
    assert shown[4]["text"] == "" and shown[4]["deleted"] is True
    assert shown[1]["text"] == "message 1" and "edited" not in shown[1]
    # A join afterwards carries the room's rev after those changes.
    carol = await app.client("carol", join=None)
    assert (await carol.join())["rev"] == rev + 4


@pytest.mark.parametrize(
    ("who", "frame", "code"),
    [
        ("bob", {"type": "edit", "id": 2, "text": "mine now"}, "forbidden"),
        ("bob", {"type": "delete", "id": 2}, "forbidden"),
        ("alice", {"type": "edit", "id": 11, "text": "the future"}, "not_found"),
        ("alice", {"type": "delete", "id": 9_007_199_254_740_000}, "not_found"),
        ("bob", {"type": "react", "id": 11, "emoji": "👍", "on": True}, "not_found"),
        ("alice", {"type": "edit", "id": 1, "text": ""}, "bad_request"),
        ("bob", {"type": "react", "id": 1, "emoji": "a b", "on": True}, "bad_request"),
        ("alice", {"type": "edit", "id": 1, "text": "x" * 5000}, "too_long"),
    ],
)
async def test_hostile_changes_of_archived_messages(trimmed, who, frame, code):
    app = trimmed
    client = getattr(app, who)
    error = await change(client, {**frame, "room": "lobby", "client_id": "hostile"})
    assert error["type"] == "error" and error["code"] == code, error
    assert (error["room"], error["client_id"]) == ("lobby", "hostile")
    for other in (app.alice, app.bob):
        await other.nothing("edited", wait=0.1)
        await other.nothing("deleted", wait=0.05)
        await other.nothing("reaction", wait=0.05)
    assert [m["text"] for m in await _page(app, 3, 2)] == ["message 1", "message 2"]


async def test_a_deleted_archived_message_stays_deleted(trimmed):
    app = trimmed
    await change(app.alice, {"type": "delete", "room": "lobby", "id": 5, "client_id": "d"})
    await app.bob.next("deleted", id=5)
    for client, frame in (
        (app.alice, {"type": "edit", "id": 5, "text": "undo"}),
        (app.alice, {"type": "delete", "id": 5}),
        (app.bob, {"type": "react", "id": 5, "emoji": "👍", "on": True}),
    ):
        error = await change(client, {**frame, "room": "lobby", "client_id": "again"})
        assert (error["type"], error["code"]) == ("error", "forbidden"), error
    response = await app.api.request(
        "PATCH", "/api/rooms/lobby/messages/5", {"text": "undo"}, token=app.token
    )
    assert response.code == 403
    other = await app.api.user("bob")
    response = await app.api.request("DELETE", "/api/rooms/lobby/messages/6", token=other)
    assert response.code == 403  # someone else's
    response = await app.api.request(
        "PATCH", "/api/rooms/lobby/messages/77", {"text": "x"}, token=app.token
    )
    assert response.code == 404
    await app.bob.nothing("edited", wait=0.1)
    assert [m["text"] for m in await _page(app, 7, 2)] == ["", "message 6"]


async def test_archived_messages_change_on_a_sql_server(sql_url, config, app_factory):
    """The read of the archived row and the rev-guarded write, on PostgreSQL and MariaDB."""
    initialise_database(config.replace(database_url=sql_url))
    app = await app_factory(database_url=sql_url, history_size=2, send_burst=100_000)
    alice = await app.client("alice")
    for n in range(1, 6):
        await alice.send(f"message {n}", client_id=f"m{n}")
        await alice.next("ack")
    await _archived(app)
    bob = await app.client("bob")
    for client, frame in (
        (alice, {"type": "edit", "id": 1, "text": "one!"}),
        (bob, {"type": "react", "id": 1, "emoji": "👍", "on": True}),
        (alice, {"type": "react", "id": 1, "emoji": "👍", "on": True}),
        (alice, {"type": "delete", "id": 2}),
    ):
        ack = await change(client, {**frame, "room": "lobby", "client_id": "c"})
        assert ack["type"] == "ack", ack
    assert (await bob.next("deleted", id=2))["type"] == "deleted"
    app.token = await app.api.login("bob")
    shown = {m["id"]: m for m in await _page(app, 3, 2)}
    assert shown[1]["text"] == "one!" and shown[1]["reactions"] == {"👍": ["bob", "alice"]}
    assert shown[2]["deleted"] is True and shown[2]["text"] == ""
