"""The Redis copy of a room's rules (SPEC §6): loaded from SQL when missing (a new room,
a flushed Redis) instead of letting anything through, written in ``rules_rev`` order so
a late write never undoes a newer one; moderators deleting others' messages; access
checks dropped after a missed event."""

from __future__ import annotations

import pytest

from chatroom.controllers.errors import ForbiddenError
from chatroom.controllers.room_values import RoomRef
from chatroom.models import AuditEntry, Room
from chatroom.models.moderation import rules_snapshot
from chatroom.models.room_rules import RoomRulesRepository
from tests.controllers.conftest import ChatEnv
from tests.controllers.moderation_helpers import promote, public_general


def ref_of(name: str) -> RoomRef:
    room = Room.by_name(name)
    return RoomRef(room.id, room.name, room.is_direct)


async def test_a_flushed_redis_does_not_unmute_anyone(env: ChatEnv) -> None:
    alice, bob, carol = await public_general(env)
    await env.graph.moderation.mute(alice, "general", "bob")
    await env.graph.moderation.ban(alice, "general", "carol")
    await env.redis.flushall()  # every rule in Redis is gone; SQL has them
    with pytest.raises(ForbiddenError, match="muted"):
        await env.chat.post(bob, "general", "free at last?")
    with pytest.raises(ForbiddenError, match="banned"):
        await env.chat.post(carol, "general", "me too?")
    assert await env.chat.post(alice, "general", "still the owner") == 1
    key = env.graph.keys.rules("general", ref_of("general").id)
    assert await env.redis.hget(key, "v") == b"1" and await env.redis.hget(key, "m:bob") == b"0"


async def test_edits_and_reactions_also_reload_missing_rules(env: ChatEnv) -> None:
    alice, bob, _ = await public_general(env)
    mid = await env.chat.post(bob, "general", "hello")
    await env.graph.moderation.mute(alice, "general", "bob")
    await env.redis.delete(env.graph.keys.rules("general", ref_of("general").id))
    with pytest.raises(ForbiddenError, match="muted"):
        await env.chat.change(bob, "general", "react", mid, "👍", True)
    await env.redis.delete(env.graph.keys.rules("general", ref_of("general").id))
    with pytest.raises(ForbiddenError, match="muted"):
        await env.chat.change(bob, "general", "edit", mid, "bye")


async def test_a_reload_that_read_sql_before_a_ban_does_not_undo_it(env: ChatEnv) -> None:
    """The race of a reload (after a flush) and a ban: the reload read SQL before the ban
    committed, and writes after the ban's own write. The ban must stand."""
    alice, bob, _ = await public_general(env)
    ref = ref_of("general")
    stale = await env.run(rules_snapshot, ref.id)  # read before the ban
    await env.redis.flushall()
    await env.graph.moderation.ban(alice, "general", "bob")  # commits, writes its field
    repo = RoomRulesRepository(env.redis, env.graph.keys)
    await repo.write(ref.name, ref.id, stale.rev, {"ro": ""}, whole=True)  # the late reload
    with pytest.raises(ForbiddenError, match="banned"):
        await env.chat.post(bob, "general", "slipped in?")


async def test_writes_apply_in_rev_order_whatever_order_they_land_in(env: ChatEnv) -> None:
    repo = RoomRulesRepository(env.redis, env.graph.keys)
    key = env.graph.keys.rules("r", 9)
    await repo.write("r", 9, 5, {"b:x": "0"})
    await repo.write("r", 9, 4, {"b:x": ""})  # older: ignored
    assert await env.redis.hget(key, "b:x") == b"0"
    await repo.write("r", 9, 3, {}, whole=True)  # an older whole set keeps newer fields
    assert await env.redis.hget(key, "b:x") == b"0" and await env.redis.hget(key, "v") == b"1"
    await repo.write("r", 9, 6, {"m:y": "0"}, whole=True)  # a newer one clears the rest
    assert await env.redis.hgetall(key) == {
        b"v": b"1",
        b"m:y": b"0",
        b"#m:y": b"6",
        b"#b:x": b"6",
    }
    await repo.write("r", 9, 7, {"m:y": ""})
    assert await env.redis.hget(key, "m:y") is None


async def test_direct_rooms_need_no_rules(env: ChatEnv) -> None:
    alice, _ = await env.user("alice"), await env.user("bob")
    assert await env.chat.post(alice, "dm:alice:bob", "psst") == 1
    found = [k async for k in env.redis.scan_iter(match="*rules*")]
    assert found == []


async def test_staff_delete_others_messages_and_it_is_audited(env: ChatEnv) -> None:
    alice, bob, carol = await public_general(env)
    mod = env.graph.moderation
    first = await env.chat.post(bob, "general", "rude")
    second = await env.chat.post(bob, "general", "ruder")
    with pytest.raises(ForbiddenError):
        await env.chat.change(carol, "general", "delete", first)  # a member
    await mod.set_role(alice, "general", "carol", "moderator")
    result = await env.chat.change(carol, "general", "delete", first)
    assert result.id == first
    await mod.set_role(alice, "general", "carol", "member")  # read fresh: no longer
    with pytest.raises(ForbiddenError):
        await env.chat.change(carol, "general", "delete", second)
    await env.chat.change(alice, "general", "delete", second)  # the owner
    page = await env.messages.history("general")
    assert [m.get("deleted") for m in page.decoded()] == [True, True]
    entries = [(e.actor, e.action, e.target, e.detail) for e in AuditEntry.newest()]
    assert entries[0] == ("alice", "delete_message", "bob", f"#{second}")
    assert ("carol", "delete_message", "bob", f"#{first}") in entries
    own = await env.chat.post(bob, "general", "mine")
    await env.chat.change(bob, "general", "delete", own)  # one's own: not audited
    assert AuditEntry.select().where(AuditEntry.action == "delete_message").count() == 2


async def test_site_admins_delete_in_lobby_but_not_in_direct_rooms(env: ChatEnv) -> None:
    alice, bob = await env.user("alice"), await env.user("bob")
    admin = await promote(env, alice)
    mid = await env.chat.post(bob, "lobby", "spam")
    await env.chat.change(admin, "lobby", "delete", mid)
    dm = await env.chat.post(bob, "dm:alice:bob", "a private word")
    with pytest.raises(ForbiddenError):
        await env.chat.change(admin, "dm:alice:bob", "delete", dm)


async def test_a_missed_removal_drops_older_access_checks_on_resubscribe(env: ChatEnv) -> None:
    alice = await env.user("alice")
    a = await env.joined(alice)
    await env.chat.send(a, "lobby", "cached")
    assert list(env.chat._access) == [(alice.id, "lobby")]
    await env.events.next_access_version()  # a change whose event this process missed
    await env.chat._catch_up_access()  # what the listener runs when it subscribes again
    assert list(env.chat._access) == [] and env.chat._access.version == 1
