"""Private rooms (SPEC §6) at the controller layer: invisible to non-members everywhere
(the room list, hello, join, history, paging, search, sends), with the answer a room that
exists but is not theirs gets; visible to members, with their role."""

from __future__ import annotations

import pytest

from chatroom.controllers.errors import BadRequestError, ConflictError, ForbiddenError
from chatroom.models import Membership, Room
from tests.controllers.conftest import ChatEnv


def names(summaries) -> list[str]:
    return [s.name for s in summaries]


async def test_the_creator_owns_a_private_room_and_sees_it_everywhere(env: ChatEnv) -> None:
    alice = await env.user("alice")
    created = await env.rooms.create(alice, "staff", "for us", True)
    assert (created.private, created.role, created.member) == (True, "owner", True)
    room = Room.by_name("staff")
    assert room.is_private and Membership.of(alice.id, room.id).role == "owner"

    listed = {s.name: s for s in await env.rooms.list_rooms(alice)}
    assert (listed["staff"].private, listed["staff"].role) == (True, "owner")
    assert (listed["lobby"].private, listed["lobby"].role) == (False, "member")
    conn = await env.connect(alice)
    hello_rooms = {r["name"]: r for r in conn.frames[0]["rooms"]}
    assert hello_rooms["staff"]["private"] is True and hello_rooms["staff"]["role"] == "owner"
    assert (await env.rooms.join(alice, "staff")).name == "staff"


async def test_a_public_room_lists_the_callers_role_or_none(env: ChatEnv) -> None:
    alice, bob = await env.user("alice"), await env.user("bob")
    await env.rooms.create(alice, "general")
    bobs = {s.name: s for s in await env.rooms.list_rooms(bob)}
    assert (bobs["general"].private, bobs["general"].role, bobs["general"].member) == (
        False,
        None,
        False,
    )
    await env.rooms.join(bob, "general")
    bobs = {s.name: s for s in await env.rooms.list_rooms(bob)}
    assert bobs["general"].role == "member"


async def test_non_members_cannot_see_or_use_a_private_room(env: ChatEnv) -> None:
    alice, bob = await env.user("alice"), await env.user("bob")
    await env.rooms.create(alice, "staff", None, True)
    a = await env.joined(alice, "staff")
    await env.chat.send(a, "staff", "the secret plan")
    await a.wait_for("message")

    assert "staff" not in names(await env.rooms.list_rooms(bob))
    assert "staff" not in [r["name"] for r in await env.rooms.memberships(bob)]
    b = await env.connect(bob)
    for attempt in (
        env.rooms.open(bob, "staff"),
        env.rooms.join(bob, "staff"),
        env.rooms.history(bob, "staff", None),
        env.chat.post(bob, "staff", "let me in"),
        env.chat.join(b, "staff"),
        env.graph.archive.page(bob, "staff", None, None),
        env.graph.archive.search(bob, "secret", room="staff"),
    ):
        with pytest.raises(ForbiddenError) as refused:
            await attempt
        assert refused.value.code == "forbidden" and refused.value.status == 403
    # Nothing was made: bob is no member, and no message of his was stored.
    assert Membership.of(bob.id, Room.by_name("staff").id) is None
    assert (await env.messages.last_id("staff")) == 1
    assert not b.of_type("joined") and not b.of_type("message")

    # Search over every room leaves it out; its owner finds it.
    await env.graph.archive.archive_once()
    assert (await env.graph.archive.search(bob, "secret")).results == []
    found = await env.graph.archive.search(alice, "secret")
    assert [r["room"] for r in found.results] == ["staff"]


async def test_the_answer_is_that_of_someone_elses_direct_room(env: ChatEnv) -> None:
    """A non-member learns no more than for a room that exists but is not theirs."""
    alice, bob, _ = await env.user("alice"), await env.user("bob"), await env.user("carol")
    await env.rooms.create(alice, "staff", None, True)
    await env.rooms.join(alice, "dm:alice:carol")
    for name in ("staff", "dm:alice:carol"):
        with pytest.raises(ForbiddenError) as refused:
            await env.rooms.open(bob, name)
        assert (refused.value.code, refused.value.status) == ("forbidden", 403)


async def test_a_member_added_in_sql_sees_it_and_a_name_stays_taken(env: ChatEnv) -> None:
    alice, bob = await env.user("alice"), await env.user("bob")
    await env.rooms.create(alice, "staff", None, True)
    await env.run(lambda: Membership.ensure(bob.id, Room.by_name("staff").id, 0))
    listed = {s.name: s for s in await env.rooms.list_rooms(bob)}
    assert (listed["staff"].private, listed["staff"].role) == (True, "member")
    assert (await env.rooms.open(bob, "staff")).name == "staff"
    # Creating a room of a taken name is the one thing that tells a name exists.
    carol = await env.user("carol")
    with pytest.raises(ConflictError):
        await env.rooms.create(carol, "staff", None, True)


@pytest.mark.parametrize("private", [1, 0, "yes", "true", [], {}, 1.0])
async def test_private_must_be_a_boolean(env: ChatEnv, private: object) -> None:
    alice = await env.user("alice")
    with pytest.raises(BadRequestError):
        await env.rooms.create(alice, "general", None, private)
    assert Room.by_name("general") is None


async def test_private_false_or_absent_makes_a_public_room(env: ChatEnv) -> None:
    alice = await env.user("alice")
    for name, private in (("one", False), ("two", None)):
        created = await env.rooms.create(alice, name, None, private)
        assert created.private is False and not Room.by_name(name).is_private
