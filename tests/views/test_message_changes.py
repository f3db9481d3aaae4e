"""SPEC §5 over the real socket: edit, delete, react, reply, the room's rev, and the
errors each change answers with (room and client_id named, nothing stored or sent)."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from tests.helpers import body

pytestmark = pytest.mark.timeout(60)

_client_ids = itertools.count()


async def change(client, frame: dict) -> dict:
    """Send a change frame; its ``ack`` or ``error``."""
    await client.send_frame(frame)
    return await client.answer()


async def posted(client, text: str, room: str = "lobby", **fields) -> dict:
    """Send a message; the ``message`` frame it became (as the sender sees it)."""
    cid = f"c{next(_client_ids)}"
    await client.send_frame(
        {"type": "send", "room": room, "text": text, "client_id": cid, **fields}
    )
    ack = await client.answer()
    assert ack["type"] == "ack", ack
    return await client.next("message", id=ack["id"], room=room)


async def test_edit_delete_react_raise_rev_and_reach_everyone(app):
    alice = await app.client("alice")
    bob = await app.client("bob")
    first = await posted(alice, "helo")
    assert isinstance(first["rev"], int) and first["rev"] >= 1
    ack = await change(
        alice,
        {"type": "edit", "room": "lobby", "id": first["id"], "text": "hello", "client_id": "e1"},
    )
    assert ack == {"type": "ack", "client_id": "e1", "id": first["id"], "room": "lobby"}
    for client in (alice, bob):
        edited = await client.next("edited")
        assert edited["text"] == "hello" and edited["rev"] == first["rev"] + 1
        assert edited["edited"] >= first["ts"]
    await bob.send_frame(
        {"type": "react", "room": "lobby", "id": first["id"], "emoji": "👍", "on": True}
    )
    for client in (alice, bob):
        reaction = await client.next("reaction")
        assert reaction == {
            "type": "reaction",
            "room": "lobby",
            "id": first["id"],
            "emoji": "👍",
            "user": "bob",
            "on": True,
            "rev": first["rev"] + 2,
        }
    # Reacting twice is a no-op: acked, no rev change, nothing broadcast.
    ack = await change(
        bob,
        {
            "type": "react",
            "room": "lobby",
            "id": first["id"],
            "emoji": "👍",
            "on": True,
            "client_id": "r2",
        },
    )
    assert ack["type"] == "ack"
    await alice.nothing("reaction")
    history = body(
        await app.api.request("GET", "/api/rooms/lobby/messages", token=await app.api.login("bob"))
    )
    item = next(m for m in history["messages"] if m["id"] == first["id"])
    assert item["text"] == "hello" and item["reactions"] == {"👍": ["bob"]}
    assert item["rev"] == first["rev"] + 2
    # Delete: a tombstone keeps its id; reactions go.
    await alice.send_frame({"type": "delete", "room": "lobby", "id": first["id"]})
    for client in (alice, bob):
        deleted = await client.next("deleted")
        assert deleted == {
            "type": "deleted",
            "room": "lobby",
            "id": first["id"],
            "rev": first["rev"] + 3,
        }
    joined = await (await app.client("carol", join=None)).join("lobby")
    assert joined["rev"] == first["rev"] + 3
    tomb = next(m for m in joined["messages"] if m["id"] == first["id"])
    assert tomb["deleted"] is True and tomb["text"] == "" and "reactions" not in tomb


async def test_replies_quote_their_parent(app):
    alice = await app.client("alice")
    parent = await posted(alice, "x" * 300)
    reply = await posted(alice, "yes", reply_to=parent["id"])
    assert reply["reply_to"] == {"id": parent["id"], "user": "alice", "text": "x" * 200}
    await change(alice, {"type": "delete", "room": "lobby", "id": parent["id"], "client_id": "d"})
    after = await posted(alice, "again", reply_to=parent["id"])
    assert after["reply_to"] == {"id": parent["id"]}


@pytest.mark.parametrize(
    "frame, code",
    [
        ({"type": "edit", "id": 999, "text": "x"}, "not_found"),
        ({"type": "edit", "id": 0, "text": "x"}, "not_found"),
        ({"type": "edit", "id": "1", "text": "x"}, "bad_request"),
        ({"type": "edit", "id": True, "text": "x"}, "bad_request"),
        ({"type": "edit", "id": "MINE", "text": ""}, "bad_request"),
        ({"type": "edit", "id": "MINE", "text": "y" * 4001}, "too_long"),
        ({"type": "edit", "id": "BOBS", "text": "x"}, "forbidden"),
        ({"type": "delete", "id": "BOBS"}, "forbidden"),
        ({"type": "delete", "id": 999}, "not_found"),
        ({"type": "react", "id": "BOBS", "emoji": "a b", "on": True}, "bad_request"),
        ({"type": "react", "id": "BOBS", "emoji": "", "on": True}, "bad_request"),
        ({"type": "react", "id": "BOBS", "emoji": "x" * 33, "on": True}, "bad_request"),
        ({"type": "react", "id": "BOBS", "emoji": "\t", "on": True}, "bad_request"),
        ({"type": "react", "id": "BOBS", "emoji": "\u3000", "on": True}, "bad_request"),
        ({"type": "react", "id": "BOBS", "emoji": 5, "on": True}, "bad_request"),
        ({"type": "react", "id": "BOBS", "emoji": "👍", "on": 1}, "bad_request"),
        ({"type": "react", "id": 999, "emoji": "👍", "on": True}, "not_found"),
        ({"type": "send", "text": "r", "reply_to": 999}, "not_found"),
        ({"type": "send", "text": "r", "reply_to": "1"}, "bad_request"),
        ({"type": "send", "text": "r", "reply_to": 1.5}, "bad_request"),
    ],
)
async def test_hostile_changes_get_their_error_and_change_nothing(app, frame, code):
    alice = await app.client("alice")
    bob = await app.client("bob")
    mine = await posted(alice, "mine")
    bobs = await posted(bob, "bobs")
    await alice.next("message", id=bobs["id"])
    ids = {"MINE": mine["id"], "BOBS": bobs["id"]}
    frame = {**frame, "room": "lobby", "client_id": "hostile"}
    if frame.get("id") in ids:
        frame["id"] = ids[frame["id"]]
    bob.unread.clear()
    error = await change(alice, frame)
    assert error["type"] == "error" and error["code"] == code, error
    assert error["room"] == "lobby" and error["client_id"] == "hostile"
    for kind in ("edited", "deleted", "reaction", "message"):
        await bob.nothing(kind, wait=0.1)
    joined = await (await app.client("carol", join=None)).join("lobby")
    assert joined["rev"] == bobs["rev"]


async def test_the_21st_distinct_emoji_is_refused(app_factory):
    app = await app_factory(send_burst=100, send_per_second=100)
    alice = await app.client("alice")
    mine = await posted(alice, "react to me")
    for i in range(20):
        ack = await change(
            alice,
            {
                "type": "react",
                "room": "lobby",
                "id": mine["id"],
                "emoji": f"e{i}",
                "on": True,
                "client_id": f"r{i}",
            },
        )
        assert ack["type"] == "ack", ack
    error = await change(
        alice,
        {
            "type": "react",
            "room": "lobby",
            "id": mine["id"],
            "emoji": "e20",
            "on": True,
            "client_id": "r20",
        },
    )
    assert (error["code"], error["client_id"]) == ("bad_request", "r20")
    # An emoji already there can still be added by someone else.
    bob = await app.client("bob")
    ack = await change(
        bob,
        {
            "type": "react",
            "room": "lobby",
            "id": mine["id"],
            "emoji": "e3",
            "on": True,
            "client_id": "b",
        },
    )
    assert ack["type"] == "ack"


async def test_reactions_share_the_send_bucket(app_factory):
    app = await app_factory(send_burst=3, send_per_second=0.5)
    alice = await app.client("alice")
    mine = await posted(alice, "flood me")  # takes one token
    answers = []
    for i in range(4):
        answers.append(
            await change(
                alice,
                {
                    "type": "react",
                    "room": "lobby",
                    "id": mine["id"],
                    "emoji": f"f{i}",
                    "on": True,
                    "client_id": f"f{i}",
                },
            )
        )
    kinds = [a["type"] for a in answers]
    assert kinds[:2] == ["ack", "ack"] and "error" in kinds, answers
    refused = next(a for a in answers if a["type"] == "error")
    assert refused["code"] == "rate_limited" and refused["retry_after"] > 0
    assert refused["room"] == "lobby" and refused["client_id"].startswith("f")


async def test_changes_reach_the_archive_and_a_delete_removes_the_text(app):
    alice = await app.client("alice")
    doomed = await posted(alice, "the secretword is here")
    kept = await posted(alice, "draft text")
    archive = app.server.controllers.archive
    for _ in range(200):  # the running archiver copies both
        if (await archive.measure_lag()).messages == 0:
            break
        await asyncio.sleep(0.05)
    await change(alice, {"type": "delete", "room": "lobby", "id": doomed["id"], "client_id": "d"})
    await change(
        alice,
        {
            "type": "edit",
            "room": "lobby",
            "id": kept["id"],
            "text": "final wording",
            "client_id": "e",
        },
    )
    await app.server.controllers.chat.changes.settle()
    token = await app.api.login("alice")

    async def found(q: str) -> list[int]:
        response = await app.api.request("GET", f"/api/search?q={q}", token=token)
        return [r["id"] for r in body(response)["results"]]

    assert await found("secretword") == []
    assert await found("draft") == []
    assert await found("wording") == [kept["id"]]
    rows = await archive.export("lobby")
    assert rows[0]["deleted"] is True and rows[0]["text"] == ""
    assert rows[1]["text"] == "final wording" and "edited" in rows[1]
