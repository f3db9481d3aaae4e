"""Ended and expired sessions at the controller level: the ``sessions_ended`` control
event, the race of a handshake with a logout, and the expiry sweep."""

from __future__ import annotations

import asyncio
import dataclasses
import time

from chatroom.controllers import AuthController
from tests.controllers.conftest import FAST_HASHER, ChatEnv, RecordingConnection
from tests.helpers import PASSWORD


async def connect_with(env: ChatEnv, account, session) -> RecordingConnection:
    """A connection registered with the session it authenticated with."""
    conn = RecordingConnection(account)
    env.connections.append(conn)
    await env.chat.connect(conn, session)
    return conn


async def closed(conn: RecordingConnection, timeout: float = 5.0) -> tuple[int, str]:
    deadline = time.monotonic() + timeout
    while conn.closed is None and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert conn.closed is not None, f"{conn!r} stayed open"
    return conn.closed


async def test_a_handshake_that_raced_a_logout_is_refused(env: ChatEnv) -> None:
    auth = AuthController(env.run, FAST_HASHER, events=env.events)
    alice = await env.user("alice")
    _, token = await auth.login("alice", PASSWORD)
    _, other = await auth.login("alice", PASSWORD)
    session = await auth.session(token)  # the handshake looked it up ...
    other_session = await auth.session(other)
    assert session is not None and other_session is not None
    watcher = await env.joined(alice)  # no session: it only shows when the event is in
    await auth.logout(token)  # ... then the logout happened
    await env.sync("lobby", watcher)

    late = await connect_with(env, alice, session)  # ... and only now does it register
    assert late.closed == (1008, "session ended")
    assert not late.frames  # no hello

    fine = await connect_with(env, alice, other_session)
    assert fine.closed is None and fine.frames[0]["type"] == "hello"


async def test_logout_all_refuses_sessions_looked_up_before_it_only(env: ChatEnv) -> None:
    auth = AuthController(env.run, FAST_HASHER, events=env.events)
    alice = await env.user("alice")
    _, token = await auth.login("alice", PASSWORD)
    before = await auth.session(token)
    assert before is not None
    open_one = await connect_with(env, alice, before)

    await auth.logout_all(alice)
    assert await closed(open_one) == (1008, "session ended")

    late = await connect_with(env, alice, before)
    assert late.closed == (1008, "session ended")

    _, fresh_token = await auth.login("alice", PASSWORD)
    after = await auth.session(fresh_token)
    assert after is not None
    fresh = await connect_with(env, alice, after)
    assert fresh.closed is None


async def test_expired_sessions_are_nobody_and_their_sockets_are_swept(env: ChatEnv) -> None:
    auth = AuthController(env.run, FAST_HASHER, session_days=1)
    alice = await env.user("alice")
    _, token = await auth.login("alice", PASSWORD)
    session = await auth.session(token)
    assert session is not None
    assert abs(session.expires - (time.time() + 86400)) < 60
    assert await AuthController(env.run, FAST_HASHER, session_days=1e-9).session(token) is None

    conn = await connect_with(env, alice, dataclasses.replace(session, expires=time.time() + 0.2))
    env.chat.close_expired()
    assert conn.closed is None
    await asyncio.sleep(0.3)
    env.chat.close_expired()
    assert conn.closed == (1008, "session expired")
    conn.closed = None
    env.chat.close_expired()
    assert conn.closed is None  # closed once


async def test_malformed_control_events_are_ignored(env: ChatEnv) -> None:
    alice = await env.user("alice")
    conn = await env.joined(alice)
    for fields in ({"session": 5}, {"user_id": "1"}, {}, {"session": None, "user_id": None}):
        await env.events.publish_control("sessions_ended", **fields)
    await env.sync("lobby", conn)
    assert conn.closed is None


async def test_tokens_longer_than_any_issued_are_not_looked_up(env: ChatEnv) -> None:
    auth = AuthController(env.run, FAST_HASHER)
    assert await auth.session("x" * 129) is None
    assert await auth.session("") is None
    assert await auth.session(None) is None
