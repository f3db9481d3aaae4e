"""Reaching the storage a ``Config`` names: the shared Redis client, what an external
Redis needs for ``--durability strict``, and the database schema brought up to date.

The serving processes, the operator commands, ``chatroom initdb`` and the tests
all open storage through these functions.
"""

from __future__ import annotations

import redis as sync_redis
import redis.asyncio as aioredis

from chatroom.config import Config, ConfigError
from chatroom.datadir import DataDirectory
from chatroom.models import migrate_schema, open_database


def make_redis(url: str) -> aioredis.Redis:
    """The shared client: a waiting pool, so a burst queues instead of failing."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=64, timeout=5, socket_timeout=10, socket_connect_timeout=5
    )
    return aioredis.Redis(connection_pool=pool)


def strict_durability_needs_waitaof(redis_url: str) -> bool:
    """How an external Redis can honour ``--durability strict``.

    False: it fsyncs every write already (``appendfsync always``). True: it has
    WAITAOF (Redis >= 7.2), run after each send. Neither: a ConfigError.
    """
    with sync_redis.Redis.from_url(redis_url, socket_timeout=5) as client:
        if (
            client.config_get("appendfsync").get("appendfsync") == "always"
            and client.config_get("appendonly").get("appendonly") == "yes"
        ):
            return False
        version = tuple(int(p) for p in client.info("server")["redis_version"].split(".")[:2])
    if version >= (7, 2):
        return True
    raise ConfigError(
        "--durability strict needs an external Redis with appendonly yes and appendfsync "
        "always, or Redis >= 7.2 (WAITAOF); this one has neither"
    )


def initialise_database(config: Config) -> bool:
    """Create or migrate the schema; True when the database was empty."""
    if config.database_url is None:
        DataDirectory(config.data_dir).create()
    db = open_database(config.effective_database_url)
    try:
        return migrate_schema(db)
    finally:
        db.close()
