"""Model-layer fixtures: a real Redis client and a message repository."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from chatroom.models import MessageRepository, RedisKeys
from chatroom.storage import make_redis


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A client of the private redis-server (flushed for this test), closed afterwards."""
    client = make_redis(redis_url)
    yield client
    await client.aclose()
    await client.connection_pool.disconnect()


@pytest.fixture
def messages(redis_client: aioredis.Redis) -> MessageRepository:
    return MessageRepository(redis_client, RedisKeys(), history_size=100)
