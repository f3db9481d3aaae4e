"""RoomController with real SQLite and Redis: create, list, open, DMs, unread, history."""

from __future__ import annotations

import pytest

from chatroom.controllers.errors import (
    BadRequestError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
)
from chatroom.controllers.validation import dm_room_name
from chatroom.models import Membership, Room
from tests.controllers.conftest import ChatEnv


def by_name(summaries) -> dict:
    return {s.name: s for s in summaries}


async def post(env: ChatEnv, room: str, count: int, user: str = "someone") -> None:
    for i in range(count):
        await env.messages.append(room, user, f"message {i}")


async def test_create_makes_the_creator_a_member(env: ChatEnv) -> None:
    alice = await env.user("alice")
    summary = await env.rooms.create(alice, "general", "all things")
    assert (summary.name, summary.topic, summary.member, summary.unread) == (
        "general",
        "all things",
        True,
        0,
    )
    room = Room.by_name("general")
    assert room.created_by_id == alice.id and not room.is_direct
    assert [r["name"] for r in await env.rooms.memberships(alice)] == ["general", "lobby"]


async def test_create_on_a_name_with_history_starts_read(env: ChatEnv) -> None:
    alice = await env.user("alice")
    await post(env, "reused", 4)  # e.g. the database was reset, Redis kept
    summary = await env.rooms.create(alice, "reused")
    assert (summary.last_id, summary.unread) == (4, 0)
    assert by_name(await env.rooms.list_rooms(alice))["reused"].unread == 0


async def test_create_existing_room_conflicts(env: ChatEnv) -> None:
    alice = await env.user("alice")
    await env.rooms.create(alice, "general")
    for name in ("general", "lobby"):
        with pytest.raises(ConflictError):
            await env.rooms.create(alice, name)
    assert Room.select().where(Room.name == "general").count() == 1


@pytest.mark.parametrize(
    "name",
    [
        "",
        "General",
        "-general",
        "_general",
        "has space",
        "a" * 65,
        "général",
        "general\n",
        "dm:alice:bob",
        "a.b",
        None,
        7,
    ],
)
async def test_create_invalid_name_is_a_bad_request(env: ChatEnv, name: object) -> None:
    alice = await env.user("alice")
    with pytest.raises(BadRequestError):
        await env.rooms.create(alice, name)


@pytest.mark.parametrize("name", ["a", "0", "a" * 64, "room-1_x", "9lives"])
async def test_create_valid_names(env: ChatEnv, name: str) -> None:
    alice = await env.user("alice")
    assert (await env.rooms.create(alice, name)).name == name


async def test_create_rejects_a_bad_topic(env: ChatEnv) -> None:
    alice = await env.user("alice")
    for topic in ("x" * 201, 5, "nul\x00"):
        with pytest.raises(BadRequestError):
            await env.rooms.create(alice, "general", topic)


async def test_list_rooms(env: ChatEnv) -> None:
    alice, bob, carol = [await env.user(n) for n in ("Alice", "bob", "carol")]
    await env.rooms.create(alice, "general")
    await env.rooms.join(alice, dm_room_name("Alice", "bob"))
    await env.rooms.join(bob, "dm:bob:carol")
    await post(env, "lobby", 3)
    await post(env, "dm:alice:bob", 2)

    alices = by_name(await env.rooms.list_rooms(alice))
    assert list(alices) == ["dm:alice:bob", "general", "lobby"]
    assert alices["lobby"].public() == {
        "name": "lobby",
        "topic": "Everyone's room",
        "is_direct": False,
        "members": 3,
        "member": True,
        "unread": 3,
        "last_id": 3,
        "mentions": 0,
        "private": False,
        "role": "member",
    }
    assert (alices["general"].members, alices["general"].last_id) == (1, 0)
    assert (alices["dm:alice:bob"].unread, alices["dm:alice:bob"].is_direct) == (2, True)

    carols = by_name(await env.rooms.list_rooms(carol))
    assert list(carols) == ["dm:bob:carol", "general", "lobby"]
    # Not a member: listed, but nothing unread.
    assert (carols["general"].member, carols["general"].unread) == (False, 0)


async def test_unknown_room_is_not_found(env: ChatEnv) -> None:
    alice = await env.user("alice")
    for call in (env.rooms.open, env.rooms.join):
        with pytest.raises(NotFoundError) as caught:
            await call(alice, "nowhere")
        assert caught.value.code == "not_found"
    with pytest.raises(NotFoundError):
        await env.rooms.history(alice, "nowhere", None)
    assert Room.by_name("nowhere") is None


async def test_dm_room_names() -> None:
    assert dm_room_name("Bob", "alice") == "dm:alice:bob"
    assert dm_room_name("alice", "Bob") == "dm:alice:bob"
    assert dm_room_name("X.y", "x-Y") == "dm:x-y:x.y"


async def test_dm_is_created_on_first_use_for_both(env: ChatEnv) -> None:
    alice, bob = await env.user("Alice"), await env.user("Bob")
    ref = await env.rooms.join(bob, "dm:alice:bob")
    assert (ref.name, ref.is_direct) == ("dm:alice:bob", True)
    room = Room.by_name("dm:alice:bob")
    members = {m.user.name for m in Membership.select().where(Membership.room == room)}
    assert members == {"Alice", "Bob"}
    # Opening it again (by either) finds the same room.
    assert (await env.rooms.open(alice, "dm:alice:bob")).id == ref.id
    assert "dm:alice:bob" in [r["name"] for r in await env.rooms.memberships(alice)]


async def test_dm_is_forbidden_to_a_third_user(env: ChatEnv) -> None:
    alice, _, carol = [await env.user(n) for n in ("alice", "bob", "carol")]
    await env.rooms.join(alice, "dm:alice:bob")
    await post(env, "dm:alice:bob", 2)
    for call in (env.rooms.open, env.rooms.join):
        with pytest.raises(ForbiddenError) as caught:
            await call(carol, "dm:alice:bob")
        assert caught.value.code == "forbidden"
    with pytest.raises(ForbiddenError):
        await env.rooms.history(carol, "dm:alice:bob", None)
    # Even before it exists.
    with pytest.raises(ForbiddenError):
        await env.rooms.open(carol, "dm:alice:dave")
    assert "dm:alice:bob" not in by_name(await env.rooms.list_rooms(carol))


async def test_dm_name_must_be_sorted_lowercase_and_name_real_users(env: ChatEnv) -> None:
    alice = await env.user("alice")
    await env.user("bob")
    with pytest.raises(NotFoundError):
        await env.rooms.open(alice, "dm:bob:alice")
    with pytest.raises(NotFoundError):
        await env.rooms.open(alice, "dm:alice:nobody")
    for name in ("dm:Alice:bob", "dm:alice", "dm:alice:bob:carol", "dm::alice", "dm:alice:bob\n"):
        with pytest.raises(BadRequestError):
            await env.rooms.open(alice, name)
    assert Room.select().where(Room.is_direct).count() == 0


async def test_a_dm_room_name_cannot_be_opened_as_public(env: ChatEnv) -> None:
    alice = await env.user("alice")
    with pytest.raises(BadRequestError):
        await env.rooms.create(alice, "dm:alice:bob")


async def test_new_member_of_a_room_with_history_has_nothing_unread(env: ChatEnv) -> None:
    alice, bob = await env.user("alice"), await env.user("bob")
    await env.rooms.create(alice, "general")
    await post(env, "general", 7)
    await env.rooms.join(bob, "general")
    assert {r["name"]: r["unread"] for r in await env.rooms.memberships(bob)}["general"] == 0
    assert by_name(await env.rooms.list_rooms(bob))["general"].unread == 0
    await post(env, "general", 2)
    assert by_name(await env.rooms.list_rooms(bob))["general"].unread == 2
    # Joining again does not reset the marker.
    await env.rooms.join(bob, "general")
    assert by_name(await env.rooms.list_rooms(bob))["general"].unread == 2
    assert by_name(await env.rooms.list_rooms(alice))["general"].unread == 9


async def test_mark_read_is_exact_forward_only_and_clamped(env: ChatEnv) -> None:
    alice = await env.user("alice")
    ref = await env.rooms.join(alice, "lobby")
    await post(env, "lobby", 10)

    async def unread() -> tuple[int, int]:
        hello = {r["name"]: r for r in await env.rooms.memberships(alice)}["lobby"]
        listed = by_name(await env.rooms.list_rooms(alice))["lobby"]
        assert (hello["last_id"], listed.last_id) == (10 + extra, 10 + extra)
        return hello["unread"], listed.unread

    extra = 0
    assert await unread() == (10, 10)
    await env.rooms.mark_read(alice, ref, 4)
    assert await unread() == (6, 6)
    await env.rooms.mark_read(alice, ref, 2)
    assert await unread() == (6, 6)
    await env.rooms.mark_read(alice, ref, 10)
    assert await unread() == (0, 0)
    # A marker past the newest message is clamped: later messages still count.
    await env.rooms.mark_read(alice, ref, 1000)
    await post(env, "lobby", 1)
    extra = 1
    assert await unread() == (1, 1)


async def test_history_through_the_controller(make_env) -> None:
    env = await make_env(history_size=5)
    alice = await env.user("alice")
    await post(env, "lobby", 8)
    page = await env.rooms.history(alice, "lobby", None)
    assert [m["id"] for m in page.decoded()] == [4, 5, 6, 7, 8]
    page = await env.rooms.history(alice, "lobby", 1)
    assert ([m["id"] for m in page.decoded()], page.missing, page.gap) == ([4, 5, 6, 7, 8], 2, True)
    page = await env.rooms.history(alice, "lobby", 6)
    assert ([m["id"] for m in page.decoded()], page.missing) == ([7, 8], 0)


async def test_find_user(env: ChatEnv) -> None:
    alice = await env.user("Alice")
    assert await env.rooms.find_user("ALICE") == alice
    assert await env.rooms.find_user("nobody") is None
