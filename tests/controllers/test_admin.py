"""AdminController with real repositories, and how a running ChatController applies its
control events (a deleted room, a disabled user)."""

from __future__ import annotations

import asyncio

import pytest

from chatroom.cli_output import history_lines
from chatroom.controllers.admin import AdminController
from chatroom.controllers.errors import (
    BadRequestError,
    ConflictError,
    NotFoundError,
    UnauthorizedError,
)
from chatroom.models import RedisKeys
from tests.controllers.conftest import ChatEnv
from tests.helpers import PASSWORD


@pytest.fixture
def admin(env: ChatEnv) -> AdminController:
    return env.admin


async def test_rooms_are_created_listed_and_refused_when_invalid(
    env: ChatEnv, admin: AdminController
) -> None:
    created = await admin.create_room("general", "Talk")
    assert (created.name, created.topic, created.members) == ("general", "Talk", 0)
    alice = await env.user("alice")
    await env.rooms.join(alice, "general")
    await env.messages.append("general", "alice", "hi")
    rooms = {room.name: room for room in await admin.list_rooms()}
    assert set(rooms) == {"general", "lobby"}
    assert (rooms["general"].members, rooms["general"].messages) == (1, 1)
    assert rooms["general"].public()["last_id"] == 1
    with pytest.raises(ConflictError):
        await admin.create_room("general")
    for bad in ("Bad Name", "dm:a:b", ""):
        with pytest.raises(BadRequestError):
            await admin.create_room(bad)


async def test_delete_room_removes_rows_keys_and_live_subscriptions(
    env: ChatEnv, admin: AdminController
) -> None:
    await admin.create_room("doomed")
    alice, bob = await env.user("alice"), await env.user("bob")
    conn = await env.joined(alice, "doomed")
    lobby_conn = await env.joined(bob, "lobby")
    await env.chat.send(conn, "doomed", "last words", "c1")
    await conn.wait_for("message")

    assert await admin.delete_room("doomed") == (1, 1)

    (removed,) = await conn.wait_for("removed")  # issue 13: SPEC §6
    assert removed == {"type": "removed", "room": "doomed", "reason": "deleted"}
    assert not any(key[1] == "doomed" for key in env.chat._access)
    with pytest.raises(NotFoundError):  # no cached access: the send checks SQL again
        await env.chat.send(conn, "doomed", "again")
    assert "doomed" not in {room.name for room in await admin.list_rooms()}
    keys = RedisKeys()
    assert await env.redis.exists(keys.seq("doomed"), keys.log("doomed")) == 0
    assert not [key async for key in env.redis.scan_iter(match=keys.room_keys("doomed"))]
    assert not lobby_conn.of_type("error") and not lobby_conn.of_type("removed")
    assert not conn.closed  # the socket stays; only the room is gone


async def test_delete_room_refuses_lobby_and_unknown_rooms_but_takes_direct_ones(
    env: ChatEnv, admin: AdminController
) -> None:
    with pytest.raises(BadRequestError, match="lobby"):
        await admin.delete_room("lobby")
    with pytest.raises(NotFoundError):
        await admin.delete_room("nowhere")
    alice, _ = await env.user("alice"), await env.user("bob")
    await env.chat.post(alice, "dm:alice:bob", "psst")
    assert await admin.delete_room("dm:alice:bob") == (2, 1)


async def test_disable_revokes_sessions_and_closes_sockets(
    env: ChatEnv, admin: AdminController
) -> None:
    alice, bob = await env.user("alice"), await env.user("bob")
    _, token = await env.auth.login("alice", PASSWORD)
    alice_conn = await env.joined(alice)
    bob_conn = await env.joined(bob)
    await env.chat.send(alice_conn, "lobby", "before")  # caches alice's access

    user, revoked = await admin.disable_user("ALICE")
    assert (user.name, user.disabled, user.sessions, revoked) == ("alice", True, 0, 1)

    for _ in range(100):
        if alice_conn.closed:
            break
        await asyncio.sleep(0.02)
    assert alice_conn.closed == (1008, "account disabled")
    assert not any(key[0] == alice.id for key in env.chat._access)
    assert bob_conn.closed is None
    assert await env.auth.authenticate(token) is None
    with pytest.raises(UnauthorizedError):
        await env.auth.login("alice", PASSWORD)

    assert (await admin.enable_user("alice")).disabled is False
    await env.auth.login("alice", PASSWORD)
    assert await env.auth.authenticate(token) is None  # revoked stays revoked


async def test_users_are_created_listed_and_given_new_passwords(
    env: ChatEnv, admin: AdminController
) -> None:
    created = await admin.create_user("Carol", "a long password")
    assert created.name == "Carol"
    await env.auth.login("carol", "a long password")
    assert [(u.name, u.sessions) for u in await admin.list_users()] == [("Carol", 1)]
    with pytest.raises(ConflictError):
        await admin.create_user("carol", "a long password")
    with pytest.raises(BadRequestError, match="password"):
        await admin.create_user("dave", "short")
    with pytest.raises(BadRequestError, match="username"):
        await admin.create_user("no spaces", "a long password")

    await admin.set_password("carol", "another password")
    await env.auth.login("carol", "another password")
    with pytest.raises(UnauthorizedError):
        await env.auth.login("carol", "a long password")
    with pytest.raises(NotFoundError):
        await admin.set_password("nobody", "another password")
    with pytest.raises(BadRequestError):
        await admin.set_password("carol", "x" * 257)


async def test_history_exports_what_is_retained(env: ChatEnv, admin: AdminController) -> None:
    for i in range(5):
        await env.messages.append("lobby", "alice", f"m{i}", client_id=f"c{i}")
    export = await admin.history("lobby")
    assert [m["id"] for m in export.public()] == [1, 2, 3, 4, 5]
    assert export.public()[0]["text"] == "m0" and export.public()[0]["user"] == "alice"
    assert [m["id"] for m in (await admin.history("lobby", since=3)).public()] == [4, 5]
    first = history_lines(export)[0]
    assert first.startswith("1  ") and first.endswith("  alice: m0")
    with pytest.raises(NotFoundError):
        await admin.history("nowhere")
    with pytest.raises(BadRequestError):
        await admin.history("lobby", since=-1)


async def test_history_lines_escape_control_characters(
    env: ChatEnv, admin: AdminController
) -> None:
    await env.messages.append("lobby", "alice", "two\nlines \x1b[31mred")
    (line,) = history_lines(await admin.history("lobby"))
    assert line.endswith("alice: two\\nlines \\x1b[31mred")


async def test_stats_count_rooms_users_messages_and_live_connections(
    env: ChatEnv, admin: AdminController
) -> None:
    await env.user("alice")
    await admin.create_room("general")
    await env.messages.append("lobby", "alice", "one")
    await env.messages.append("general", "alice", "two")
    stats = await admin.stats()
    assert stats.public() == {
        "rooms": 2,
        "users": 1,
        "messages": 2,
        "processes": 0,
        "connected_clients": None,
        "files": 0,
        "file_bytes": 0,
    }
    await env.presence.register("p1", 3, ttl=30)
    stats = await admin.stats()
    assert (stats.processes, stats.connected_clients) == (1, 3)
    keys = RedisKeys()
    # A stopped process not swept yet: registered, its liveness key expired.
    await env.redis.hset(keys.processes(), "gone", "1@host")
    stats = await admin.stats()
    assert (stats.processes, stats.connected_clients) == (1, 3)
