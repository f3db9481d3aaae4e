"""Bans, mutes, read-only rooms, room settings and room deletes (SPEC §6) at the
controller layer: each is enforced by the send, edit and react scripts themselves, and
each refusal is the right error."""

from __future__ import annotations

import asyncio

import pytest

from chatroom.controllers.errors import (
    BadRequestError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
)
from chatroom.models import AuditEntry, Membership, RedisKeys, Room
from tests.controllers.conftest import ChatEnv
from tests.controllers.moderation_helpers import promote, public_general


async def test_a_ban_removes_refuses_everything_and_can_be_lifted(env: ChatEnv) -> None:
    alice, bob, _ = await public_general(env)
    mod = env.graph.moderation
    a, b = await env.joined(alice, "general"), await env.joined(bob, "general")
    await env.chat.send(b, "general", "spam")  # bob's access is cached here now
    ban, after_id = await mod.ban(alice, "general", "bob")
    assert (ban.name, ban.until, ban.by, after_id) == ("bob", None, "alice", 1)
    (removed,) = await b.wait_for("removed")
    assert removed == {"type": "removed", "room": "general", "reason": "banned"}
    for attempt in (
        env.chat.post(bob, "general", "again"),
        env.rooms.join(bob, "general"),
        env.rooms.history(bob, "general", None),
        env.chat.change(bob, "general", "delete", 1),
        env.graph.archive.search(bob, "spam", room="general"),
        mod.members(bob, "general"),
    ):
        with pytest.raises(ForbiddenError):
            await attempt
    with pytest.raises(ConflictError):
        await mod.add_member(alice, "general", "bob")
    assert Membership.of(bob.id, Room.by_name("general").id) is None
    assert [s.name for s in await mod.bans(alice, "general")] == ["bob"]

    assert await mod.unban(alice, "general", "bob") is True
    assert await mod.unban(alice, "general", "bob") is False  # nothing to lift
    await env.chat.join(b, "general")  # public: joinable again
    await env.chat.send(b, "general", "sorry")
    await env.sync("general", a)
    assert [m["text"] for m in a.of_type("message")] == ["spam", "sorry"]
    actions = [(e.action, e.target, e.detail) for e in AuditEntry.newest()]
    assert actions == [("unban", "bob", ""), ("ban", "bob", "until lifted")]


async def test_a_timed_ban_ends_by_itself(env: ChatEnv) -> None:
    alice, bob, _ = await public_general(env)
    mod = env.graph.moderation
    ban, _ = await mod.ban(alice, "general", "bob", 1)
    assert ban.until is not None
    with pytest.raises(ForbiddenError):
        await env.chat.post(bob, "general", "too soon")
    await asyncio.sleep(1.1)
    assert await env.chat.post(bob, "general", "back") == 1


async def test_a_pre_emptive_ban_of_a_non_member(env: ChatEnv) -> None:
    alice, *_ = await public_general(env)
    mallory = await env.user("mallory")
    await env.graph.moderation.ban(alice, "general", "mallory")
    with pytest.raises(ForbiddenError):
        await env.rooms.join(mallory, "general")
    assert "general" in [s.name for s in await env.rooms.list_rooms(mallory)]


async def test_ban_and_mute_refusals(env: ChatEnv) -> None:
    alice, bob, carol = await public_general(env)
    mod = env.graph.moderation
    for action in (mod.ban, mod.mute):
        with pytest.raises(ForbiddenError):
            await action(bob, "general", "carol")  # a member
        with pytest.raises(BadRequestError):
            await action(alice, "general", "alice")  # oneself
        with pytest.raises(NotFoundError):
            await action(alice, "general", "nobody")
        with pytest.raises(NotFoundError):
            await action(alice, "nowhere", "bob")
        for seconds in (0, -1, 1.5, "60", True, 10**12, [60], float("nan")):
            with pytest.raises(BadRequestError):
                await action(alice, "general", "bob", seconds)
    await mod.set_role(alice, "general", "bob", "moderator")
    with pytest.raises(ForbiddenError):
        await mod.ban(bob, "general", "alice")  # a moderator never an owner
    with pytest.raises(ForbiddenError):
        await mod.mute(bob, "general", "alice")
    await mod.mute(bob, "general", "carol", 60)
    for lift in (mod.unban, mod.unmute):
        with pytest.raises(ForbiddenError):
            await lift(carol, "general", "carol")
    assert await mod.unmute(bob, "general", "carol") is True
    assert AuditEntry.select().where(AuditEntry.action == "ban").count() == 0


async def test_a_muted_user_reads_but_neither_sends_edits_nor_reacts(env: ChatEnv) -> None:
    alice, bob, _ = await public_general(env)
    mod = env.graph.moderation
    first = await env.chat.post(bob, "general", "before")
    mute, _ = await mod.mute(alice, "general", "bob", 600)
    members = {m.name: m for m in (await mod.members(alice, "general"))[0]}
    assert members["bob"].muted and members["bob"].muted_until == mute.until
    b = await env.joined(bob, "general")  # reading is fine
    assert [m["text"] for m in b.of_type("joined")[0]["messages"]] == ["before"]
    for verb, args in (
        ("send", ()),
        ("edit", (first, "changed")),
        ("react", (first, "👍", True)),
    ):
        with pytest.raises(ForbiddenError, match="muted"):
            if verb == "send":
                await env.chat.post(bob, "general", "let me speak")
            else:
                await env.chat.change(bob, "general", verb, *args)
    await env.chat.change(bob, "general", "delete", first)  # taking one's words back is fine
    assert await env.messages.last_id("general") == 1
    await mod.unmute(alice, "general", "bob")
    assert await env.chat.post(bob, "general", "thanks") == 2


async def test_read_only_rooms_are_for_staff_and_site_admins(env: ChatEnv) -> None:
    alice, bob, carol = await public_general(env)
    mod = env.graph.moderation
    mid = await env.chat.post(bob, "general", "open floor")
    await mod.set_role(alice, "general", "carol", "moderator")
    standing = await mod.update_room(alice, "general", read_only=True)
    assert standing.read_only
    with pytest.raises(ForbiddenError, match="read-only"):
        await env.chat.post(bob, "general", "me too")
    with pytest.raises(ForbiddenError):
        await env.chat.change(bob, "general", "react", mid, "👍", True)
    with pytest.raises(ForbiddenError):
        await env.chat.change(bob, "general", "edit", mid, "edited")
    await env.chat.post(alice, "general", "announcement")  # owner
    await env.chat.post(carol, "general", "note")  # moderator
    dave = await promote(env, await env.user("dave"))
    await env.chat.post(dave, "general", "site admin")
    await mod.set_role(alice, "general", "carol", "member")  # no longer staff
    with pytest.raises(ForbiddenError):
        await env.chat.post(carol, "general", "hm")
    await mod.update_room(alice, "general", read_only=False)
    await env.chat.post(bob, "general", "open again")
    assert (await env.messages.last_id("general")) == 5


async def test_room_settings_and_their_refusals(env: ChatEnv) -> None:
    alice, bob, _ = await public_general(env)
    mod = env.graph.moderation
    standing = await mod.update_room(alice, "general", "New topic")
    assert (standing.topic, standing.read_only) == ("New topic", False)
    assert Room.by_name("general").topic == "New topic"
    for topic, read_only in (
        (None, None),
        ("x" * 201, None),
        ("nul\x00", None),
        (5, None),
        (None, "yes"),
        (None, 1),
    ):
        with pytest.raises(BadRequestError):
            await mod.update_room(alice, "general", topic, read_only)
    with pytest.raises(ForbiddenError):
        await mod.update_room(bob, "general", "mine now")
    await env.rooms.join(alice, "dm:alice:bob")
    with pytest.raises(ForbiddenError):
        await mod.update_room(alice, "dm:alice:bob", "ours")
    (entry,) = AuditEntry.newest()
    assert (entry.action, entry.detail) == ("room_settings", "topic='New topic'")


async def test_deleting_a_room(env: ChatEnv) -> None:
    alice, bob, carol = await public_general(env)
    mod = env.graph.moderation
    b = await env.joined(bob, "general")
    await env.chat.send(b, "general", "last words")
    await mod.set_role(alice, "general", "carol", "moderator")
    with pytest.raises(ForbiddenError):
        await mod.delete_room(carol, "general")  # moderators do not delete rooms
    with pytest.raises(ForbiddenError):
        await mod.delete_room(bob, "general")
    await mod.delete_room(alice, "general")
    (removed,) = await b.wait_for("removed")
    assert removed == {"type": "removed", "room": "general", "reason": "deleted"}
    assert Room.by_name("general") is None
    assert not [k async for k in env.redis.scan_iter(match=RedisKeys().room_keys("general"))]
    with pytest.raises(NotFoundError):
        await mod.delete_room(alice, "general")
    admin = await promote(env, carol)
    with pytest.raises(ForbiddenError):
        await mod.delete_room(admin, "lobby")
    await env.rooms.join(carol, "dm:bob:carol")
    with pytest.raises(ForbiddenError):
        await mod.delete_room(admin, "dm:bob:carol")
    # A private room the admin is not in: they may delete it without reading it.
    await env.rooms.create(bob, "hidden", None, True)
    with pytest.raises(ForbiddenError):
        await mod.members(admin, "hidden")
    await mod.delete_room(admin, "hidden")
    assert Room.by_name("hidden") is None
    assert [(e.actor, e.action, e.room) for e in AuditEntry.newest()][:2] == [
        ("carol", "delete_room", "hidden"),
        ("alice", "delete_room", "general"),
    ]
