"""Room roles and members (SPEC §6) at the controller layer: listing, adding, kicking,
leaving for good, roles and handing ownership over, and what site admins may do — each
rule and each refusal, with real SQLite and Redis."""

from __future__ import annotations

import dataclasses

import pytest

from chatroom.controllers.errors import (
    BadRequestError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
)
from chatroom.models import Membership, Room
from tests.controllers.conftest import ChatEnv
from tests.controllers.moderation_helpers import audit, private_club, promote


def roles(members) -> dict[str, str]:
    return {m.name: m.role for m in members}


async def test_members_are_listed_by_name_with_roles(env: ChatEnv) -> None:
    alice, bob, carol = await private_club(env)
    mod = env.graph.moderation
    members, more = await mod.members(bob, "club")
    assert [m.public() for m in members] == [
        {"name": "alice", "role": "owner", "muted": False, "muted_until": None},
        {"name": "bob", "role": "member", "muted": False, "muted_until": None},
    ]
    assert more is False
    page, _ = await mod.members(alice, "club", "alice")
    assert roles(page) == {"bob": "member"}
    with pytest.raises(ForbiddenError):
        await mod.members(carol, "club")  # private: members only
    lobby, _ = await mod.members(carol, "lobby")  # public: anyone
    assert roles(lobby) == {"alice": "member", "bob": "member", "carol": "member"}
    with pytest.raises(NotFoundError):
        await mod.members(alice, "nowhere")
    for bad in ("Bad Name", "", None, 5, "x" * 100):
        with pytest.raises(BadRequestError):
            await mod.members(alice, bad)
    with pytest.raises(BadRequestError):
        await mod.members(alice, "club", "not a name!")


async def test_owners_and_moderators_add_members_others_cannot(env: ChatEnv) -> None:
    alice, bob, carol = await private_club(env)
    mod = env.graph.moderation
    dave = await env.user("dave")
    with pytest.raises(ForbiddenError):
        await mod.add_member(bob, "club", "carol")  # a member
    with pytest.raises(ForbiddenError):
        await mod.add_member(carol, "club", "carol")  # a stranger adding themself
    await mod.set_role(alice, "club", "bob", "moderator")
    member, created = await mod.add_member(bob, "club", "Carol")
    assert (member.name, member.role, created) == ("carol", "member", True)
    again, created = await mod.add_member(alice, "club", "carol")
    assert (again.name, created) == ("carol", False)
    assert "club" in [s.name for s in await env.rooms.list_rooms(carol)]
    with pytest.raises(NotFoundError):
        await mod.add_member(alice, "club", "nobody")
    for bad in (None, "", "a b", 7, "x" * 33, ["dave"]):
        with pytest.raises(BadRequestError):
            await mod.add_member(alice, "club", bad)
    assert Membership.of(dave.id, Room.by_name("club").id) is None
    assert [a[1] for a in audit()] == ["add_member", "role", "add_member"]


async def test_a_kick_removes_the_member_and_closes_their_delivery(env: ChatEnv) -> None:
    alice, bob, _ = await private_club(env)
    mod = env.graph.moderation
    a, b1, b2 = (
        await env.joined(alice, "club"),
        await env.joined(bob, "club"),
        await env.joined(bob),
    )
    await mod.remove_member(alice, "club", "BOB")
    for conn in (b1, b2):  # every socket of bob's, the one not in the room too
        (removed,) = await conn.wait_for("removed")
        assert removed == {"type": "removed", "room": "club", "reason": "kicked"}
    await env.chat.send(a, "club", "after the kick")
    await env.sync("club", a)
    await env.sync("lobby", b2)  # one channel, in order: the club's message was handled
    assert b1.of_type("message") == [] and b1.frames[-1]["type"] == "removed"
    assert not any(key == (bob.id, "club") for key in env.chat._access)
    with pytest.raises(ForbiddenError):  # private: no way back in but being added
        await env.chat.post(bob, "club", "let me back")
    assert Membership.of(bob.id, Room.by_name("club").id) is None
    assert audit()[0][:4] == ("alice", "kick", "bob", "club")


async def test_kick_refusals(env: ChatEnv) -> None:
    alice, bob, carol = await private_club(env)
    mod = env.graph.moderation
    with pytest.raises(ForbiddenError):
        await mod.remove_member(bob, "club", "alice")  # a member kicks nobody
    await mod.set_role(alice, "club", "bob", "moderator")
    with pytest.raises(ForbiddenError):
        await mod.remove_member(bob, "club", "alice")  # a moderator never an owner
    with pytest.raises(NotFoundError):
        await mod.remove_member(alice, "club", "carol")  # not a member
    with pytest.raises(NotFoundError):
        await mod.remove_member(alice, "club", "nobody")
    with pytest.raises(ForbiddenError):
        await mod.remove_member(carol, "club", "bob")  # a stranger sees no room
    with pytest.raises(NotFoundError):
        await mod.remove_member(alice, "nowhere", "bob")
    await env.rooms.join(alice, "dm:alice:bob")
    for who in ("bob", "alice"):
        with pytest.raises(ForbiddenError):
            await mod.remove_member(alice, "dm:alice:bob", who)
    assert roles((await mod.members(alice, "club"))[0]) == {"alice": "owner", "bob": "moderator"}


async def test_leaving_for_good_and_the_last_owner(env: ChatEnv) -> None:
    alice, bob, _ = await private_club(env)
    mod = env.graph.moderation
    b = await env.joined(bob, "club")
    await mod.remove_member(bob, "club", "bob")
    (removed,) = await b.wait_for("removed")
    assert removed["reason"] == "left"
    with pytest.raises(ForbiddenError):
        await env.rooms.open(bob, "club")
    with pytest.raises(ForbiddenError):  # not in it any more: nothing to see
        await mod.remove_member(bob, "club", "bob")
    with pytest.raises(ConflictError):
        await mod.remove_member(alice, "club", "alice")  # the last owner stays
    await mod.add_member(alice, "club", "bob")
    await mod.set_role(alice, "club", "bob", "owner")  # hand it over...
    await mod.remove_member(alice, "club", "alice")  # ...then leave
    assert roles((await mod.members(bob, "club"))[0]) == {"bob": "owner"}
    assert [a[1] for a in audit()] == ["role", "add_member", "add_member"]  # no "leave"


async def test_roles_owner_only_and_the_last_owner_cannot_step_down(env: ChatEnv) -> None:
    alice, bob, _ = await private_club(env)
    mod = env.graph.moderation
    with pytest.raises(ForbiddenError):
        await mod.set_role(bob, "club", "bob", "owner")
    member = await mod.set_role(alice, "club", "bob", "moderator")
    assert (member.name, member.role) == ("bob", "moderator")
    with pytest.raises(ForbiddenError):  # moderators do not give roles
        await mod.set_role(bob, "club", "bob", "owner")
    for bad in ("admin", "Owner", "", None, 1, ["owner"]):
        with pytest.raises(BadRequestError):
            await mod.set_role(alice, "club", "bob", bad)
    with pytest.raises(NotFoundError):
        await mod.set_role(alice, "club", "carol", "member")  # not a member
    with pytest.raises(ConflictError):
        await mod.set_role(alice, "club", "alice", "moderator")
    await mod.set_role(alice, "club", "bob", "owner")
    assert (await mod.set_role(alice, "club", "alice", "member")).role == "member"
    # alice is a member now: she gives no roles; bob, the owner, may demote himself? no.
    with pytest.raises(ForbiddenError):
        await mod.set_role(alice, "club", "alice", "owner")
    with pytest.raises(ConflictError):
        await mod.set_role(bob, "club", "bob", "member")
    assert [a[4] for a in audit() if a[1] == "role"] == ["member", "owner", "moderator"]


async def test_lobby_and_direct_rooms_have_no_owner(env: ChatEnv) -> None:
    alice, _ = await env.user("alice"), await env.user("bob")
    mod = env.graph.moderation
    with pytest.raises(ForbiddenError):
        await mod.set_role(alice, "lobby", "bob", "moderator")  # nobody owns lobby
    admin = await promote(env, alice)
    await mod.set_role(admin, "lobby", "bob", "moderator")  # site admins moderate it
    with pytest.raises(BadRequestError):
        await mod.set_role(admin, "lobby", "bob", "owner")
    await env.rooms.join(alice, "dm:alice:bob")
    with pytest.raises(ForbiddenError):
        await mod.set_role(admin, "dm:alice:bob", "bob", "moderator")
    with pytest.raises(ForbiddenError):
        await mod.add_member(admin, "dm:alice:bob", "alice")


async def test_site_admins_act_as_owners_except_in_private_rooms_they_are_not_in(
    env: ChatEnv,
) -> None:
    alice, bob, carol = await private_club(env)
    mod = env.graph.moderation
    await env.rooms.create(alice, "general")
    await env.rooms.join(bob, "general")
    admin = await promote(env, carol)
    # The role is read from SQL for each action, not from the account.
    stale = dataclasses.replace(admin, role="user")
    await mod.set_role(stale, "general", "bob", "moderator")
    await mod.remove_member(stale, "general", "alice")  # even an owner
    # A private room carol is not in: no reading, no members, no adding herself.
    for attempt in (
        mod.members(admin, "club"),
        mod.add_member(admin, "club", "carol"),
        mod.remove_member(admin, "club", "bob"),
        mod.set_role(admin, "club", "bob", "owner"),
    ):
        with pytest.raises(ForbiddenError):
            await attempt
    await promote(env, carol, "user")  # demoted: from the next action on
    with pytest.raises(ForbiddenError):
        await mod.remove_member(admin, "general", "bob")
