"""[issue 17] With one Redis, each room's events go on the room's own channel
(``--pubsub-channels rooms``, the default): a process receives only the events of
the rooms it has members in, joins wait for the room's subscription, and a room's
last member leaving lets go of it. ``--pubsub-channels one`` keeps the one channel."""

from __future__ import annotations

import asyncio

from chatroom.config import Config
from chatroom.controllers import SendLimits
from chatroom.models import RedisKeys

KEYS = RedisKeys()


async def numsub(env, channel: str) -> int:
    [(_channel, count)] = await env.redis.pubsub_numsub(channel)
    return count


async def test_a_process_receives_only_the_rooms_it_has_members_in(make_env) -> None:
    here, there = await make_env(), await make_env()  # two processes, one Redis
    alice = await here.user("alice")
    bob = await here.user("bob")
    carol = await there.user("carol")
    await there.rooms.create(carol, "other")
    bob_conn = await here.joined(bob)
    carol_conn = await there.joined(carol, "other")
    assert await numsub(here, KEYS.room_events("lobby")) == 1  # "there" has no member
    assert await numsub(here, KEYS.room_events("other")) == 1
    sender = await here.joined(alice)
    await here.chat.send(sender, "lobby", "hello")
    await bob_conn.wait_for("message")
    await there.sync("other", carol_conn)
    assert [f["type"] for f in carol_conn.frames[1:]].count("message") == 0
    # The one channel carries control events only: no room's event goes there.
    assert await numsub(here, KEYS.events()) == 2


async def test_the_last_member_leaving_lets_go_of_the_room(make_env) -> None:
    env = await make_env()
    env.chat._hub.channels._linger = 0  # no page-reload grace in this test
    bob = await env.user("bob")
    conn = await env.joined(bob)
    assert await numsub(env, KEYS.room_events("lobby")) == 1
    await env.chat.leave(conn, "lobby")
    for _ in range(250):
        if await numsub(env, KEYS.room_events("lobby")) == 0:
            break
        await asyncio.sleep(0.02)
    assert await numsub(env, KEYS.room_events("lobby")) == 0
    again = await env.joined(bob)  # joins again: subscribed again before its history
    sender = await env.joined(await env.user("alice"))
    await env.chat.send(sender, "lobby", "back")
    await again.wait_for("message")


async def test_concurrent_joins_of_a_new_room_see_every_message(make_env) -> None:
    """Many first joins at once while messages flow: each join waited for the room's
    subscription, so none misses a message between its history and the live stream."""
    env = await make_env(limits=SendLimits(burst=100, per_second=100))
    alice = await env.user("alice")
    sender = await env.joined(alice)
    users = [await env.user(f"u{n}") for n in range(20)]

    async def send_many() -> None:
        for n in range(30):
            await env.chat.send(sender, "lobby", f"m{n}")
            await asyncio.sleep(0)

    sending = asyncio.create_task(send_many())
    conns = await asyncio.gather(*(env.joined(user) for user in users))
    await sending
    await env.sync("lobby", *conns)
    for conn in conns:
        joined = next(f for f in conn.frames if f["type"] == "joined")
        ids = [m["id"] for m in joined["messages"]]
        ids += [f["id"] for f in conn.frames if f["type"] == "message"]
        assert ids == list(range(1, 31)), ids


async def test_one_channel_still_delivers(make_env) -> None:
    env = await make_env(pubsub_channels="one")
    bob = await env.joined(await env.user("bob"))
    sender = await env.joined(await env.user("alice"))
    await env.chat.send(sender, "lobby", "hi")
    await bob.wait_for("message")
    assert await numsub(env, KEYS.room_events("lobby")) == 0
    assert await numsub(env, KEYS.events()) == 1


def test_which_redis_gets_channels_per_room() -> None:
    assert Config().room_pubsub  # the embedded Redis
    assert Config(redis_url="redis://127.0.0.1:6379/0").room_pubsub
    assert Config(redis_url="redis+sentinel://127.0.0.1:26379/chat").room_pubsub
    assert not Config(redis_url="redis+cluster://127.0.0.1:7000").room_pubsub  # shards
    assert not Config(pubsub_channels="one").room_pubsub
