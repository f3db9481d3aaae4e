"""Presence costs what changes (issue 17, target 2): Redis writes per first-in / last-out
of a user on a process, one write per heartbeat, and a dead process swept by liveness.

Writes are counted with the real Redis's ``INFO commandstats`` (commands run by
scripts count too), never timed.
"""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from chatroom.models import RedisKeys
from tests.controllers.conftest import ChatEnv

#: The commands that change data (every one chatroom's presence and socket caps use).
WRITES = {
    "hset",
    "hdel",
    "hincrby",
    "sadd",
    "srem",
    "set",
    "del",
    "unlink",
    "zadd",
    "zrem",
    "zremrangebyscore",
    "expire",
    "pexpire",
}
SOCKETS, ROOMS = 20, 50


async def command_calls(redis: aioredis.Redis) -> dict[str, int]:
    stats = await redis.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


async def writes_during(redis: aioredis.Redis, action) -> int:
    await redis.config_resetstat()
    await action()
    calls = await command_calls(redis)
    return sum(n for name, n in calls.items() if name in WRITES)


def presence_of(conn, user: str) -> list[str]:
    return [f["state"] for f in conn.of_type("presence") if f["user"] == user]


async def test_one_users_sockets_and_rooms_cost_rooms_not_sockets_times_rooms(
    env: ChatEnv,
) -> None:
    alice = await env.user("alice")
    rooms = ["lobby"] + [f"room{i}" for i in range(1, ROOMS)]
    for room in rooms[1:]:
        await env.admin.create_room(room)
    conns = []

    async def connect_all() -> None:
        for _ in range(SOCKETS):
            conn = await env.connect(alice)
            for room in rooms:
                await env.chat.join(conn, room)
            conns.append(conn)

    # The rooms' epochs (SPEC §8) are made by their first join: one of bob's, first.
    bob = await env.connect(await env.user("bob"))
    for room in rooms:
        await env.chat.join(bob, room)
    await bob.wait_for("joined", ROOMS)
    await env.chat.disconnect(bob)
    connect_writes = await writes_during(env.redis, connect_all)
    for conn in conns:
        await conn.wait_for("joined", ROOMS)
    # Per room: the entry and the process's index; per socket: its count; the
    # process's registration. Per-socket-per-room entries would be 1,000+.
    assert connect_writes <= 2 * ROOMS + 2 * SOCKETS + 4, connect_writes
    loop = env.chat.presence_loop
    await loop.tick()  # the first tick may tidy what the connects left
    heartbeat_writes = await writes_during(env.redis, loop.tick)
    assert heartbeat_writes <= 2, heartbeat_writes  # the liveness key; nothing per socket
    for room in (rooms[0], rooms[-1]):
        assert await env.presence.online(room) == ["alice"]

    async def close_all_but_one() -> None:
        for conn in conns[1:]:
            await env.chat.disconnect(conn)

    # Closing 19 of 20 sockets changes nobody's presence: only the socket counts.
    assert await writes_during(env.redis, close_all_but_one) <= SOCKETS
    assert await env.presence.online(rooms[-1]) == ["alice"]
    last = await writes_during(env.redis, lambda: env.chat.disconnect(conns[0]))
    assert last <= ROOMS + 2, last
    assert await env.presence.online(rooms[-1]) == []


async def test_a_process_that_dies_without_cleanup_goes_offline_when_its_liveness_expires(
    make_env,
) -> None:
    one, two = await make_env(), await make_env()
    two.chat.presence_loop.local.alive_ttl = 0.5  # the dying process's liveness key
    alice, bob = await one.user("alice"), await one.user("bob")
    a1 = await one.joined(alice)
    b1, b2 = await two.joined(bob), await two.joined(bob)
    await one.sync("lobby", a1)
    assert presence_of(a1, "bob") == ["online"]
    assert await one.presence.online("lobby") == ["alice", "bob"]
    keys = RedisKeys()
    assert await one.redis.hgetall(keys.user_sockets(bob.id)) != {}
    await one.chat.presence_loop.tick()
    await one.sync("lobby", a1)
    assert presence_of(a1, "bob") == ["online"]  # alive still: not swept

    # Process two stops without a word (no leave, no heartbeat): once its
    # liveness key has expired, the next tick of process one sweeps it.
    dead_token = two.chat.presence_loop.local.token
    await asyncio.sleep(0.7)
    await one.chat.presence_loop.tick()
    await one.sync("lobby", a1)
    assert presence_of(a1, "bob") == ["online", "offline"]
    assert await one.presence.online("lobby") == ["alice"]
    assert await one.redis.hgetall(keys.user_sockets(bob.id)) == {}  # bob may reconnect
    assert not await one.redis.hexists(keys.processes(), dead_token)
    assert await one.redis.exists(keys.process_index(dead_token)) == 0
    # Swept once: a later tick announces nothing more.
    await one.chat.presence_loop.tick()
    await one.sync("lobby", a1)
    assert presence_of(a1, "bob") == ["online", "offline"]
    del b1, b2


async def test_a_stalled_process_comes_back_under_a_new_token(make_env) -> None:
    """Swept while stalled: on its next heartbeat it finds its key gone, takes a new
    token and announces its users again; nothing of the old one is left."""
    one, two = await make_env(), await make_env()
    alice, bob = await one.user("alice"), await one.user("bob")
    a1 = await one.joined(alice)
    b1 = await two.joined(bob)
    local = two.chat.presence_loop.local
    old = local.token
    keys = RedisKeys()
    await one.redis.delete(keys.process_alive(old))  # expired while two stalled
    await one.chat.presence_loop.tick()  # one sweeps it: bob offline
    await one.sync("lobby", a1)
    assert presence_of(a1, "bob") == ["online", "offline"]
    await two.chat.presence_loop.tick()  # two wakes up
    assert local.token != old
    await one.sync("lobby", a1)
    assert presence_of(a1, "bob") == ["online", "offline", "online"]
    assert await one.presence.online("lobby") == ["alice", "bob"]
    assert await one.redis.hgetall(keys.user_sockets(bob.id)) == {local.token.encode(): b"1"}
    await two.chat.disconnect(b1)
    await one.sync("lobby", a1)
    assert presence_of(a1, "bob")[-1] == "offline"
    assert await one.presence.online("lobby") == ["alice"]


async def test_many_sockets_of_many_users_join_and_close_at_once(env: ChatEnv) -> None:
    """Concurrent joins and closes of the same users on one process end consistent."""
    users = [await env.user(f"user{i}") for i in range(5)]
    watcher = await env.joined(await env.user("watcher"))
    conns = [await env.connect(u) for u in users for _ in range(4)]
    await asyncio.gather(*(env.chat.join(c, "lobby") for c in conns))
    assert await env.presence.online("lobby") == [
        "user0",
        "user1",
        "user2",
        "user3",
        "user4",
        "watcher",
    ]
    # Close half while the other half joins again, all at once.
    await asyncio.gather(
        *(env.chat.disconnect(c) for c in conns[::2]),
        *(env.chat.join(c, "lobby") for c in conns[1::2]),
    )
    assert len(await env.presence.online("lobby")) == 6
    await asyncio.gather(*(env.chat.disconnect(c) for c in conns[1::2]))
    await env.chat.presence_loop.tick()
    await env.sync("lobby", watcher)
    assert await env.presence.online("lobby") == ["watcher"]
    for user in users:
        assert presence_of(watcher, user.name) == ["online", "offline"]
    for user in users:
        assert await env.redis.exists(RedisKeys().user_sockets(user.id)) == 0
