"""Reaching the storage a ``Config`` names: the shared Redis client, the embedded Redis
of a running server, what an external Redis needs for ``--durability strict``, and the
database schema brought up to date.

The serving processes, the operator commands, ``chatroom initdb`` and the tests
all open storage through these functions.
"""

from __future__ import annotations

import time

import redis as sync_redis
import redis.asyncio as aioredis
from redis.backoff import NoBackoff
from redis.retry import Retry

from chatroom.config import Config, ConfigError
from chatroom.datadir import DataDirectory, DataDirError
from chatroom.embedded_redis import EmbeddedRedis
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


#: How long an operator command or an archiver waits for the Redis of a server that
#: holds the data directory (it may be starting).
RUNNING_REDIS_WAIT_SECONDS = 5.0


def running_server_redis(embedded: EmbeddedRedis) -> str:
    """The URL of the embedded Redis a running server started (``embedded`` is not ours)."""
    deadline = time.monotonic() + RUNNING_REDIS_WAIT_SECONDS
    while True:
        try:
            with sync_redis.Redis(
                unix_socket_path=str(embedded.socket_path),
                socket_timeout=1,
                retry=Retry(NoBackoff(), 0),  # this loop retries, without redis-py's backoff
            ) as client:
                if client.ping():
                    return embedded.url
        except (sync_redis.ConnectionError, sync_redis.TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise DataDirError(
                f"a chatroom server is using {embedded.data_dir}, but no Redis answers on "
                f"{embedded.socket_path}; if that server uses --redis-url, pass the same one"
            )
        time.sleep(0.05)


def initialise_database(config: Config) -> bool:
    """Create or migrate the schema; True when the database was empty."""
    if config.database_url is None:
        DataDirectory(config.data_dir).create()
    db = open_database(config.effective_database_url)
    try:
        return migrate_schema(db)
    finally:
        db.close()
