"""[issue 13] A kick, ban or room delete published while this process's Redis subscription
was down: when it subscribes again, it finds the shared access version moved, drops its
older access checks, checks each of its subscriptions again in SQL and removes (with
``removed`` and the reason SQL gives) those no longer allowed; the rest go on."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from chatroom.controllers.errors import ForbiddenError
from tests.controllers.conftest import ChatEnv
from tests.controllers.moderation_helpers import private_club

pytestmark = pytest.mark.timeout(60)


@contextlib.asynccontextmanager
async def subscription_down(env: ChatEnv, monkeypatch):
    """Kill the listener's subscription and hold it down inside the block; it subscribes
    again (catching up) on leaving it."""
    hub = env.chat._hub
    gate = asyncio.Event()
    listen = hub._listen

    async def gated(reconnect):
        await gate.wait()
        await listen(reconnect)

    monkeypatch.setattr(hub, "_listen", gated)
    await env.redis.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    for _ in range(200):
        if not hub.listening.is_set():
            break
        await asyncio.sleep(0.02)
    assert not hub.listening.is_set()
    yield
    gate.set()
    await asyncio.wait_for(hub.listening.wait(), 10)


async def test_removals_missed_while_unsubscribed_are_applied_on_resubscribe(
    env: ChatEnv, monkeypatch
) -> None:
    alice, bob, carol = await private_club(env)
    mod = env.graph.moderation
    dave, erin = await env.user("dave"), await env.user("erin")
    await mod.add_member(alice, "club", "erin")
    await env.rooms.create(alice, "general")
    await env.rooms.create(alice, "doomed")
    bobs = [await env.joined(bob, "club") for _ in range(2)]
    in_lobby = await env.joined(bob)  # bob's socket that never joined club
    carols = await env.joined(carol, "general")
    daves = await env.joined(dave, "doomed")
    erins = await env.joined(erin, "club")
    await env.chat.send(erins, "club", "cached")  # erin's check of club is cached

    async with subscription_down(env, monkeypatch):
        await mod.remove_member(alice, "club", "bob")
        await mod.ban(alice, "general", "carol")
        await mod.delete_room(alice, "doomed")

    for conn, room, reason in [
        (bobs[0], "club", "kicked"),
        (bobs[1], "club", "kicked"),
        (in_lobby, "club", "kicked"),
        (carols, "general", "banned"),
        (daves, "doomed", "deleted"),
    ]:
        (removed,) = await conn.wait_for("removed")
        assert removed == {"type": "removed", "room": room, "reason": reason}
    assert erins.of_type("removed") == []

    # Nothing more of club reaches bob; erin, checked again and still a member, reads on.
    await env.chat.post(alice, "club", "after the outage")
    await env.chat.post(alice, "lobby", "lobby goes on")
    await env.sync("club", erins)
    await env.sync("lobby", in_lobby)
    assert [f["text"] for f in erins.of_type("message")] == ["cached", "after the outage"]
    for conn in bobs:
        assert [f["text"] for f in conn.of_type("message")] == ["cached"]  # from before
    assert in_lobby.of_type("message")[-1]["text"] == "lobby goes on"
    club = env.chat._hub._subscribers.get("club", {})
    assert not any(conn.conn_id == bobs[0].conn_id for conn in club)


async def test_a_resubscribe_with_nothing_missed_checks_nothing(env: ChatEnv, monkeypatch):
    alice, _bob, _ = await private_club(env)
    await env.graph.moderation.remove_member(alice, "club", "bob")  # heard: version 1
    owner = await env.joined(alice, "club")
    await env.sync("club", owner)
    assert env.chat._access.version == 1
    asked: list = []
    lost = env.chat._control._lost

    async def counting(pairs):
        asked.append(pairs)
        return await lost(pairs)

    monkeypatch.setattr(env.chat._control, "_lost", counting)
    async with subscription_down(env, monkeypatch):
        pass
    await env.sync("club", owner)
    assert asked == [] and owner.of_type("removed") == []


async def test_access_lost_answers_per_pair_across_batches(env: ChatEnv, monkeypatch) -> None:
    monkeypatch.setattr("chatroom.controllers.room_standing.RECHECK_BATCH", 2)
    alice, bob, carol = await private_club(env)
    mod = env.graph.moderation
    await env.rooms.create(alice, "general")
    await env.rooms.join(carol, "general")
    await mod.ban(alice, "general", "carol")
    club = (await env.rooms.open(alice, "club")).id
    general = (await env.rooms.open(alice, "general")).id
    lobby = (await env.rooms.open(alice, "lobby")).id
    dm = (await env.rooms.open(alice, "dm:alice:carol")).id
    pairs = [
        (alice.id, club),
        (bob.id, club),
        (carol.id, club),
        (carol.id, general),
        (bob.id, general),
        (carol.id, dm),
        (bob.id, lobby),
        (bob.id, 10**9),
    ]
    assert await env.rooms.access_lost(pairs) == {
        (carol.id, club): "kicked",
        (carol.id, general): "banned",
        (bob.id, general): "kicked",
        (bob.id, 10**9): "deleted",
    }
    assert await env.rooms.access_lost([]) == {}


async def test_a_failing_recheck_leaves_the_listener_running(env: ChatEnv, monkeypatch, caplog):
    alice, bob, _ = await private_club(env)
    b, a = await env.joined(bob, "club"), await env.joined(alice, "club")

    async def database_down(pairs):
        raise OSError("the database is down")

    monkeypatch.setattr(env.chat._control, "_lost", database_down)
    async with subscription_down(env, monkeypatch):
        await env.graph.moderation.remove_member(alice, "club", "bob")
    assert "could not check subscriptions again" in caplog.text
    await env.chat.post(alice, "club", "still live")
    await env.sync("club", a)
    assert a.of_type("message")[-1]["text"] == "still live"
    # bob's next use of the room is checked in SQL again (his check was dropped).
    with pytest.raises(ForbiddenError, match="private"):
        await env.chat.send(b, "club", "let me in")
