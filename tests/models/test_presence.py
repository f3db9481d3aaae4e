"""PresenceRepository against a real redis-server: entries per connection, expiry, sweep."""

from __future__ import annotations

import time

import pytest
import redis.asyncio as aioredis

from chatroom.models import PresenceRepository, RedisKeys


@pytest.fixture
def presence(redis_client: aioredis.Redis) -> PresenceRepository:
    return PresenceRepository(redis_client, RedisKeys())


async def test_a_user_is_online_while_any_connection_is(presence: PresenceRepository) -> None:
    assert await presence.enter("lobby", "Alice", "c1") is True
    assert await presence.enter("lobby", "Alice", "c2") is False
    assert await presence.enter("lobby", "bob", "c3") is True
    assert await presence.online("lobby") == ["Alice", "bob"]
    assert await presence.leave("lobby", "Alice", "c1") is False
    assert await presence.online("lobby") == ["Alice", "bob"]
    assert await presence.leave("lobby", "Alice", "c2") is True
    assert await presence.online("lobby") == ["bob"]
    assert await presence.leave("lobby", "Alice", "c2") is False  # already gone
    assert await presence.online("elsewhere") == []


async def test_entering_again_on_the_same_connection_is_not_news(
    presence: PresenceRepository,
) -> None:
    assert await presence.enter("lobby", "alice", "c1") is True
    assert await presence.enter("lobby", "alice", "c1") is False
    assert await presence.leave("lobby", "alice", "c1") is True


async def test_sweep_reports_users_whose_entries_expired_once(
    presence: PresenceRepository, redis_client: aioredis.Redis
) -> None:
    await presence.enter("lobby", "alice", "live")
    await presence.enter("lobby", "bob", "live")
    # A connection of a process that died: its entry was not refreshed in time.
    key = RedisKeys().online("lobby")
    await redis_client.zadd(key, {"carol\ndead": time.time() - 1, "alice\ndead": time.time() - 1})
    await redis_client.sadd(RedisKeys().presence_rooms(), "lobby")
    assert await presence.online("lobby") == ["alice", "bob"]
    assert await presence.sweep() == [("lobby", "carol")]  # alice is still online elsewhere
    assert await presence.sweep() == []


async def test_refresh_reports_entries_that_were_swept(
    presence: PresenceRepository, redis_client: aioredis.Redis
) -> None:
    await presence.enter("lobby", "alice", "c1")
    await presence.enter("lobby", "bob", "c2")
    await redis_client.zrem(RedisKeys().online("lobby"), "bob\nc2")  # swept meanwhile
    missing = await presence.refresh([("lobby", "alice", "c1"), ("lobby", "bob", "c2")])
    assert missing == [("lobby", "bob", "c2")]
    # refresh never re-adds (it may race a leave); the caller restores live ones.
    assert await presence.online("lobby") == ["alice"]
    assert await presence.restore("lobby", "bob", "c2") is True
    assert await presence.online("lobby") == ["alice", "bob"]
    assert await presence.refresh([]) == []


async def test_refresh_does_not_bring_back_an_entry_that_left(
    presence: PresenceRepository,
) -> None:
    await presence.enter("lobby", "alice", "c1")
    await presence.leave("lobby", "alice", "c1")
    assert await presence.refresh([("lobby", "alice", "c1")]) == [("lobby", "alice", "c1")]
    assert await presence.online("lobby") == []
