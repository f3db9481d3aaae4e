"""SPEC §5.3 mentions: parsed on the server at send and edit time, listed in the
message, counted per user and room in ``hello`` and ``GET /api/rooms`` until read."""

from __future__ import annotations

import pytest

from tests.helpers import body
from tests.views.test_message_changes import change, posted

pytestmark = pytest.mark.timeout(60)


async def counts(app, name: str) -> dict[str, int]:
    token = await app.api.login(name)
    rooms = body(await app.api.request("GET", "/api/rooms", token=token))["rooms"]
    return {r["name"]: r["mentions"] for r in rooms if r["member"]}


async def hello_counts(app, name: str) -> dict[str, int]:
    client = await app.client(name, join=None)
    return {r["name"]: r["mentions"] for r in client.hello["rooms"]}


async def test_mentions_are_parsed_listed_and_counted_until_read(app):
    await app.api.register("Bob")
    await app.api.register("carol")
    alice = await app.client("alice")
    m = await posted(alice, "@bob, x@carol @nobody and @CAROL. (@alice too) mail@bob")
    assert m["mentions"] == ["Bob", "carol", "alice"]
    assert await counts(app, "bob") == {"lobby": 1}
    assert await hello_counts(app, "carol") == {"lobby": 1}
    assert await counts(app, "alice") == {"lobby": 0}  # one's own never counts
    # An edit that drops bob's mention drops his count; a delete drops carol's.
    await change(
        alice, {"type": "edit", "room": "lobby", "id": m["id"], "text": "@carol", "client_id": "e"}
    )
    assert await counts(app, "bob") == {"lobby": 0}
    assert await counts(app, "carol") == {"lobby": 1}
    edited = await alice.next("edited")
    token = await app.api.login("alice")
    history = body(await app.api.request("GET", "/api/rooms/lobby/messages", token=token))
    history = history["messages"]
    assert history[-1]["mentions"] == ["carol"] and edited["rev"] == history[-1]["rev"]
    await change(alice, {"type": "delete", "room": "lobby", "id": m["id"], "client_id": "d"})
    assert await counts(app, "carol") == {"lobby": 0}
    # Reading clears the count.
    second = await posted(alice, "hey @bob")
    assert await counts(app, "bob") == {"lobby": 1}
    bob = await app.client("bob")
    await bob.send_frame({"type": "read", "room": "lobby", "id": second["id"]})
    await bob.send_frame({"type": "ping"})
    await bob.next("pong")
    assert await counts(app, "bob") == {"lobby": 0}


async def test_everyone_and_direct_rooms(app):
    alice = await app.client("alice")
    await app.client("bob")
    await app.api.register("carol")  # a member of lobby too (registration joins it)
    m = await posted(alice, "@all lunch?")
    assert sorted(m["mentions"]) == ["alice", "bob", "carol"]
    assert (await counts(app, "carol"))["lobby"] == 1
    # In a direct room only the two may be mentioned.
    await alice.join("dm:alice:bob")
    dm = await posted(alice, "@bob @carol", room="dm:alice:bob")
    assert dm["mentions"] == ["bob"]
    assert (await counts(app, "carol")).get("dm:alice:bob") is None
    assert (await counts(app, "bob"))["dm:alice:bob"] == 1
