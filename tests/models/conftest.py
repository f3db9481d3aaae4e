"""Model-layer fixtures: a real Redis client, a message repository, a bound SQLite file."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import peewee
import pytest
import redis.asyncio as aioredis

from chatroom.config import Config
from chatroom.models import MessageRepository, RedisKeys, open_database
from chatroom.server import make_redis


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


@pytest.fixture
def db(database: Config) -> Iterator[peewee.Database]:
    """The models bound to a fresh SQLite file initialised like ``chatroom initdb``."""
    handle = open_database(database.effective_database_url)
    yield handle
    handle.close()
