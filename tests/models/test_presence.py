"""PresenceRepository against a real redis-server: entries per (user, process), liveness,
the sweep of a dead process, socket counts."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from chatroom.models import PresenceRepository, RedisKeys
from chatroom.models.presence import room_member, user_member

KEYS = RedisKeys()


@pytest.fixture
def presence(redis_client: aioredis.Redis) -> PresenceRepository:
    return PresenceRepository(redis_client, KEYS)


async def test_a_user_is_online_while_any_process_holds_them(presence: PresenceRepository) -> None:
    assert await presence.enter("lobby", "Alice", "p1") is True
    assert await presence.enter("lobby", "Alice", "p2") is False
    assert await presence.enter("lobby", "bob", "p1") is True
    assert await presence.online("lobby") == ["Alice", "bob"]
    assert await presence.leave("lobby", "Alice", "p1") is False
    assert await presence.online("lobby") == ["Alice", "bob"]
    assert await presence.leave("lobby", "Alice", "p2") is True
    assert await presence.online("lobby") == ["bob"]
    assert await presence.leave("lobby", "Alice", "p2") is False  # already gone
    assert await presence.leave("lobby", "bob", "p9") is False  # never held by p9
    assert await presence.online("lobby") == ["bob"]
    assert await presence.online("elsewhere") == []


async def test_entering_again_from_the_same_process_is_not_news(
    presence: PresenceRepository,
) -> None:
    assert await presence.enter("lobby", "alice", "p1") is True
    assert await presence.enter("lobby", "alice", "p1") is False
    assert await presence.leave("lobby", "alice", "p1") is True


async def test_a_dead_process_is_swept_once_through_its_index(
    presence: PresenceRepository, redis_client: aioredis.Redis
) -> None:
    await presence.register("live", 1, ttl=30)
    await presence.register("dead", 2, ttl=0.2)
    await presence.index("dead", [room_member("lobby"), room_member("dm:a:b"), user_member(7)])
    await presence.index("live", [room_member("lobby"), user_member(7)])
    for room, user, process in [
        ("lobby", "alice", "live"),
        ("lobby", "alice", "dead"),
        ("lobby", "carol", "dead"),
        ("dm:a:b", "a", "dead"),
    ]:
        await presence.enter(room, user, process)
    assert await presence.claim_socket(7, "dead", 3)
    assert await presence.claim_socket(7, "dead", 3)
    assert await presence.claim_socket(7, "live", 3)
    assert not await presence.claim_socket(7, "live", 3)  # 3 open
    assert await presence.connected_clients() == (2, 3)
    assert await presence.dead_processes() == []
    await asyncio.sleep(0.3)
    assert await presence.dead_processes() == ["dead"]
    assert await presence.dead_processes(exclude="dead") == []
    assert await presence.connected_clients() == (1, 1)
    assert await presence.claim_sweep("dead", by="live") is True
    assert await presence.claim_sweep("dead", by="other") is False
    gone = await presence.sweep("dead")
    assert sorted(gone) == [("dm:a:b", "a"), ("lobby", "carol")]  # alice: live holds her
    assert await presence.online("lobby") == ["alice"]
    assert await presence.online("dm:a:b") == []
    assert await presence.claim_socket(7, "live", 3)  # the dead one's sockets are gone
    assert await presence.dead_processes() == []
    assert await redis_client.exists(KEYS.process_index("dead")) == 0
    assert await presence.sweep("dead") == []  # again: nothing, announced once


async def test_heartbeat_never_revives_an_expired_process(
    presence: PresenceRepository, redis_client: aioredis.Redis
) -> None:
    assert await presence.heartbeat("p1", 0, ttl=5) is False  # never registered
    await presence.register("p1", 0, ttl=0.1)
    assert await presence.heartbeat("p1", 4, ttl=5) is True
    assert await redis_client.get(KEYS.process_alive("p1")) == b"4"
    assert 0 < await redis_client.pttl(KEYS.process_alive("p1")) <= 5000
    await redis_client.delete(KEYS.process_alive("p1"))  # expired (a stall, a restart)
    assert await presence.heartbeat("p1", 4, ttl=5) is False
    assert await redis_client.exists(KEYS.process_alive("p1")) == 0


async def test_socket_counts_release_and_repair(
    presence: PresenceRepository, redis_client: aioredis.Redis
) -> None:
    assert await presence.claim_socket(7, "p1", 2)
    assert await presence.claim_socket(7, "p2", 2)
    assert not await presence.claim_socket(7, "p1", 2)
    await presence.release_socket(7, "p2")
    assert await redis_client.hgetall(KEYS.user_sockets(7)) == {b"p1": b"1"}
    await presence.release_socket(7, "p2")  # never below zero: the field goes
    assert await redis_client.hgetall(KEYS.user_sockets(7)) == {b"p1": b"1"}
    await presence.set_sockets(7, "p1", 0)
    assert await redis_client.exists(KEYS.user_sockets(7)) == 0
    await presence.set_sockets(7, "p1", 2)
    assert not await presence.claim_socket(7, "p2", 2)


async def test_hostile_names_stay_in_their_fields(presence: PresenceRepository) -> None:
    """A name with the separator characters of the scripts' values cannot split."""
    # Usernames are validated before they get here; the scripts must not care anyway.
    odd = "a b%S+.*"
    assert await presence.enter("lobby", odd, "p1") is True
    assert await presence.enter("lobby", "b", "p1") is True
    assert await presence.online("lobby") == [odd, "b"]
    assert await presence.leave("lobby", odd, "p1") is True
    assert await presence.online("lobby") == ["b"]
