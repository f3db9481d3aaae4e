"""The room-access cache's versioned invalidation, as a running ChatController applies
it from control events on the real event bus (what moderation will publish)."""

from __future__ import annotations

import pytest

from chatroom.controllers.errors import NotFoundError
from tests.controllers.conftest import ChatEnv


async def test_an_access_version_on_the_bus_drops_every_older_check(env: ChatEnv) -> None:
    alice, bob = await env.user("alice"), await env.user("bob")
    a, b = await env.joined(alice), await env.joined(bob)
    await env.chat.send(a, "lobby", "hi")
    await env.chat.post(bob, "dm:alice:bob", "psst")
    assert {(alice.id, "lobby"), (bob.id, "lobby"), (bob.id, "dm:alice:bob")} <= set(
        env.chat._access
    )

    await env.events.publish_control("access_changed", access_version=7)
    await env.sync("lobby", a, b)  # the control event was applied before the marker

    assert list(env.chat._access) == []
    assert env.chat._access.version == 7
    await env.chat.send(a, "lobby", "checked again")  # one SQL check, cached anew
    assert list(env.chat._access) == [(alice.id, "lobby")]
    assert not a.closed and not b.closed  # nothing else happened to the sockets


async def test_an_old_or_repeated_version_drops_nothing(env: ChatEnv) -> None:
    alice = await env.user("alice")
    a = await env.joined(alice)
    await env.events.publish_control("access_changed", access_version=3)
    await env.sync("lobby", a)
    await env.chat.send(a, "lobby", "cached under version 3")
    for version in (3, 2, 0):
        await env.events.publish_control("access_changed", access_version=version)
    await env.sync("lobby", a)
    assert list(env.chat._access) == [(alice.id, "lobby")]
    assert env.chat._access.version == 3


async def test_a_room_deleted_event_may_carry_a_version(env: ChatEnv) -> None:
    alice = await env.user("alice")
    a = await env.joined(alice)
    await env.events.publish_control("room_deleted", room="nowhere", access_version=2)
    await env.sync("lobby", a)
    assert env.chat._access.version == 2
    assert list(env.chat._access) == []  # lobby's check was older: dropped too


@pytest.mark.parametrize(
    "payload",
    [
        {"access_version": "9"},
        {"access_version": True},
        {"access_version": 9.5},
        {"access_version": None},
        {"access_version": [9]},
    ],
)
async def test_a_malformed_version_is_ignored(env: ChatEnv, payload: dict) -> None:
    alice = await env.user("alice")
    a = await env.joined(alice)
    await env.chat.send(a, "lobby", "cached")
    await env.events.publish_control("access_changed", **payload)
    await env.sync("lobby", a)
    assert env.chat._access.version == 0
    assert list(env.chat._access) == [(alice.id, "lobby")]
    await env.chat.send(a, "lobby", "still works")


async def test_named_invalidation_still_refuses_a_deleted_room(env: ChatEnv) -> None:
    await env.admin.create_room("doomed")
    alice = await env.user("alice")
    conn = await env.joined(alice, "doomed")
    await env.chat.send(conn, "doomed", "cached")
    await env.admin.delete_room("doomed")
    await conn.wait_for("removed")  # issue 13: SPEC §6 (was an error not_found)
    assert (alice.id, "doomed") not in env.chat._access
    with pytest.raises(NotFoundError):
        await env.chat.send(conn, "doomed", "again")
