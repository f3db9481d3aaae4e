"""The HTTP history carries the room's epoch (SPEC §8), so a client that kept ``since``
can tell when the ids it counts belong to another life of the room's history."""

from __future__ import annotations

from tests.helpers import body


async def test_history_over_http_names_the_epoch_and_a_flush_changes_it(app):
    alice = await app.client("alice")
    token = await app.api.login("alice")
    await alice.send("first")
    await alice.next("ack")
    page = body(await app.api.request("GET", "/api/rooms/lobby/messages", token=token))
    epoch = page["epoch"]
    assert isinstance(epoch, str) and epoch == alice.hello["rooms"][0]["epoch"]
    assert [m["text"] for m in page["messages"]] == ["first"]

    await app.server.controllers.redis.flushall()  # Redis lost the room's history
    await alice.send("after the flush", client_id="c2")
    await alice.next("ack", client_id="c2")
    again = body(await app.api.request("GET", "/api/rooms/lobby/messages?since=1", token=token))
    assert again["epoch"] not in (None, epoch)
    assert [m["id"] for m in again["messages"]] == [2]  # ids went on, never back


async def test_a_room_nobody_used_has_no_epoch_yet(app):
    token = await app.api.user("bob")
    created = await app.api.request("POST", "/api/rooms", {"name": "quiet"}, token=token)
    assert created.code == 201
    page = body(await app.api.request("GET", "/api/rooms/quiet/messages", token=token))
    assert page == {"messages": [], "gap": False, "missing": 0, "epoch": page["epoch"]}
    assert page["epoch"] is None or isinstance(page["epoch"], str)
