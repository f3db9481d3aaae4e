"""[issue 13] A mention by a user one blocked does not count toward one's unread mentions
(the ``mentions`` of ``hello`` and ``GET /api/rooms``, SPEC §5.3 and §6), from the moment
of the block on every process, and counts again once it is lifted; the message itself
still names the user (its text does). Mentions made before the block still count."""

from __future__ import annotations

from tests.controllers.conftest import ChatEnv


async def mentions(env: ChatEnv, account, room: str = "lobby") -> int:
    rooms = {r["name"]: r for r in await env.rooms.memberships(account)}
    return rooms[room]["mentions"]


async def test_a_blocked_users_mentions_do_not_count(make_env) -> None:
    here, there = await make_env(), await make_env()
    alice, bob, carol = [await here.user(n) for n in ("alice", "bob", "carol")]
    watchers = [await env.joined(carol) for env in (here, there)]

    await there.chat.post(alice, "lobby", "@bob @carol before")  # caches: nobody blocks alice
    assert await mentions(here, bob) == 1
    await here.graph.blocks.block(bob, "alice")  # through the other process
    await here.sync("lobby", watchers[0])
    await there.sync("lobby", watchers[1])  # the blocks_changed event is applied there

    during = await there.chat.post(alice, "lobby", "@bob @carol during")
    item = (await there.messages.history("lobby")).decoded()[-1]
    assert item["id"] == during and item["mentions"] == ["bob", "carol"]  # as the text says
    assert await mentions(here, bob) == 1  # only the one from before the block
    assert await mentions(here, carol) == 2
    # An edit that adds the mention while blocked does not count either.
    plain = await there.chat.post(alice, "lobby", "no one")
    await there.chat.change(alice, "lobby", "edit", plain, "now @bob")
    assert await mentions(here, bob) == 1

    await here.graph.blocks.unblock(bob, "alice")
    await here.sync("lobby", watchers[0])
    await there.sync("lobby", watchers[1])
    await there.chat.post(alice, "lobby", "@bob after")
    assert await mentions(here, bob) == 2
