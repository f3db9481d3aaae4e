"""[issue 13] A site role change reaches open sockets: promoting a user (``chatroom users
promote``, the admin page) lets their sockets already open, on every process, post in
read-only rooms at once; demoting takes it away at once. A socket whose session was read
before the change and that is admitted after it gets the new role too."""

from __future__ import annotations

import time

import pytest

from chatroom.controllers.accounts import SessionInfo
from chatroom.controllers.errors import ForbiddenError
from tests.controllers.conftest import ChatEnv, RecordingConnection
from tests.controllers.moderation_helpers import promote


async def news(env: ChatEnv):
    """bob owns the read-only room ``news``; alice (a plain user) and carol are in it."""
    alice, bob, carol = [await env.user(n) for n in ("alice", "bob", "carol")]
    await env.rooms.create(bob, "news")
    await env.graph.moderation.update_room(bob, "news", read_only=True)
    return alice, bob, carol


async def test_promote_and_demote_reach_open_sockets_on_every_process(make_env) -> None:
    here, there = await make_env(), await make_env()
    alice, bob, carol = await news(here)
    near, far = await here.joined(alice, "news"), await there.joined(alice, "news")
    reader = await there.joined(carol, "news")
    for env, conn in ((here, near), (there, far)):
        with pytest.raises(ForbiddenError, match="read-only"):
            await env.chat.send(conn, "news", "not yet")

    await here.admin.set_role("alice", "admin")  # chatroom users promote alice
    await here.sync("news", near)
    await there.sync("news", far, reader)
    assert near.account.is_admin and far.account.is_admin and not reader.account.is_admin
    await here.chat.send(near, "news", "from process one")
    await there.chat.send(far, "news", "from process two")

    admin = await promote(here, bob)  # the admin page's PATCH, by another admin
    await here.graph.site_admin.update_user(admin, "alice", role="user")
    await here.sync("news", near)
    await there.sync("news", far)
    for env, conn in ((here, near), (there, far)):
        assert not conn.account.is_admin
        with pytest.raises(ForbiddenError, match="read-only"):
            await env.chat.send(conn, "news", "not any more")
    texts = [f["text"] for f in reader.of_type("message")]
    assert texts == ["from process one", "from process two"]


async def test_a_socket_admitted_after_a_change_its_session_predates(env: ChatEnv) -> None:
    alice, _bob, carol = await news(env)
    watcher = await env.joined(carol, "news")
    session = SessionInfo(alice, "x" * 64, time.time() + 3600, time.monotonic())
    await env.admin.set_role("alice", "admin")  # after the session was read...
    await env.sync("news", watcher)
    conn = RecordingConnection(alice)  # ...with the role it had then
    env.connections.append(conn)
    await env.chat.connect(conn, session)
    assert conn.account.is_admin
    await env.chat.join(conn, "news")
    await env.chat.send(conn, "news", "announcement")

    # A session read after the change shows what SQL said then (here: a demotion whose
    # event is still on its way): the older change remembered does not override it.
    later = SessionInfo(alice, "y" * 64, time.time() + 3600, time.monotonic())
    fresh = RecordingConnection(alice)
    env.connections.append(fresh)
    await env.chat.connect(fresh, later)
    assert not fresh.account.is_admin


@pytest.mark.parametrize(
    "payload",
    [
        {"user_id": 1, "role": "owner"},
        {"user_id": 1, "role": ["admin"]},
        {"user_id": "1", "role": "admin"},
        {"user_id": True, "role": "admin"},
        {"role": "admin"},
    ],
)
async def test_a_malformed_role_event_changes_nothing(env: ChatEnv, payload: dict) -> None:
    alice = await env.user("alice")
    assert alice.id == 1
    conn = await env.joined(alice)
    await env.events.publish_control("role_changed", **payload)
    await env.sync("lobby", conn)
    assert conn.account.role == "user"
