"""Removals racing a join (SPEC §6): whatever point of a ``join`` a kick lands on, the
removed user ends up outside the room — no ``joined`` after ``removed``, no message
from the room afterwards, not listed online."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from chatroom.controllers.errors import ForbiddenError
from tests.controllers.conftest import FRAME_TIMEOUT, ChatEnv
from tests.controllers.moderation_helpers import private_club
from tests.controllers.test_chat import PausingPresence


def after_removed(frames: list[dict]) -> list[dict]:
    kinds = [f["type"] for f in frames]
    assert "removed" in kinds, kinds
    return frames[kinds.index("removed") + 1 :]


async def outside(env: ChatEnv, conn, alice) -> None:
    """``conn`` (bob's) gets nothing more from ``club``, and bob is not online there."""
    watcher = await env.joined(alice, "club")
    await env.chat.send(watcher, "club", "after the kick")
    await env.sync("club", watcher)
    await env.sync("lobby", conn)  # one channel, in order: the club's message was handled
    late = [f for f in after_removed(conn.frames) if f.get("room") == "club"]
    assert late == [], late
    assert "bob" not in await env.presence.online("club")


@pytest.mark.parametrize("pause_in", ["enter", "online"])
async def test_a_kick_while_a_join_reads_the_history(make_env, pause_in) -> None:
    env = await make_env(presence=PausingPresence)
    alice, bob, _ = await private_club(env)
    conn = await env.joined(bob)  # in lobby, for the sync
    env.presence.pause_in = pause_in
    join = asyncio.create_task(env.chat.join(conn, "club"))
    await asyncio.wait_for(env.presence.paused.wait(), FRAME_TIMEOUT)
    await env.graph.moderation.remove_member(alice, "club", "bob")
    await conn.wait_for("removed")
    env.presence.resume.set()
    await asyncio.wait_for(join, FRAME_TIMEOUT)
    assert not [f for f in after_removed(conn.frames) if f["type"] == "joined"]
    await outside(env, conn, alice)


@pytest.mark.parametrize("yields", range(0, 24, 2))
async def test_a_kick_at_any_point_of_a_join(env: ChatEnv, yields: int) -> None:
    alice, bob, _ = await private_club(env)
    conn = await env.joined(bob)
    join = asyncio.create_task(env.chat.join(conn, "club"))
    for _ in range(yields):
        await asyncio.sleep(0)
    await env.graph.moderation.remove_member(alice, "club", "bob")
    await conn.wait_for("removed")
    with contextlib.suppress(ForbiddenError):  # the room check ran after the kick
        await asyncio.wait_for(join, FRAME_TIMEOUT)
    assert not [f for f in after_removed(conn.frames) if f["type"] == "joined"]
    await outside(env, conn, alice)
