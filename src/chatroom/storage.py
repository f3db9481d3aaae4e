"""Reaching the storage a ``Config`` names: the shared Redis client (one Redis, a
Sentinel-managed master, or a Cluster: SPEC §8), the embedded Redis of a running
server, what an external Redis needs for ``--durability strict``, and the database
schema brought up to date.

The serving processes, the operator commands, ``chatroom initdb`` and the tests
all open storage through these functions.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

import redis as sync_redis
import redis.asyncio as aioredis
import redis.asyncio.cluster as aiocluster
import redis.asyncio.sentinel as aiosentinel
import redis.cluster
import redis.sentinel
from redis.backoff import NoBackoff
from redis.retry import Retry

from chatroom.config import Config, ConfigError
from chatroom.datadir import DataDirectory, DataDirError
from chatroom.embedded_redis import EmbeddedRedis
from chatroom.models import migrate_schema, open_database
from chatroom.models.messages import DurabilityWait
from chatroom.redis_urls import RedisTarget, parse_redis_url

#: Each process's pool: at most this many connections (per node, in a Cluster) ...
MAX_CONNECTIONS = 64
#: ... and a command waits this long for a free one before failing.
POOL_TIMEOUT_SECONDS = 5
_SOCKET = {"socket_timeout": 10, "socket_connect_timeout": 5}
#: Sentinels are asked which node is the master: each one gets a short time to answer.
_SENTINEL_SOCKET = {"socket_timeout": 1, "socket_connect_timeout": 1}


class SentinelBlockingPool(aiosentinel.SentinelConnectionPool, aioredis.BlockingConnectionPool):
    """Sentinel's pool (it asks the Sentinels for the master on each new connection,
    and drops idle connections when the master moved) with the waiting behaviour of
    ``BlockingConnectionPool``: a burst queues instead of opening unbounded
    connections."""


class ChatSentinel(aiosentinel.Sentinel):
    """redis-py's Sentinel manager, with ``discover_master`` safe for concurrent callers.

    redis-py's own moves the Sentinel that answered to the front of its list by a
    swap taken across an ``await``: concurrent lookups (every connection being made
    again after a failover) corrupt the list, one Sentinel appearing twice and
    another lost — never asked again and never closed. Here the list is read as a
    snapshot and reordered without an ``await`` in between."""

    async def discover_master(self, service_name: str) -> tuple[str, int]:
        errors = []
        for sentinel in list(self.sentinels):
            try:
                masters = await sentinel.sentinel_masters()
            except (
                sync_redis.ConnectionError,
                sync_redis.ResponseError,
                sync_redis.TimeoutError,
            ) as exc:
                errors.append(f"{sentinel}: {exc!r}")
                continue
            state = masters.get(service_name)
            if state and self.check_master_state(state, service_name):
                if self.sentinels[0] is not sentinel and sentinel in self.sentinels:
                    self.sentinels.remove(sentinel)
                    self.sentinels.insert(0, sentinel)
                return state["ip"], state["port"]
        raise aiosentinel.MasterNotFoundError(
            f"No master found for {service_name!r}: {'; '.join(errors)}"
        )


def make_redis(url: str) -> aioredis.Redis:
    """The shared client: a waiting pool, so a burst queues instead of failing.

    ``redis+sentinel://`` and ``redis+cluster://`` URLs get redis-py's Sentinel and
    Cluster clients (see ``chatroom.redis_urls``); close any of them with
    ``close_redis``.
    """
    target = parse_redis_url(url)
    if target.kind == "sentinel":
        return _sentinel_client(target)
    if target.kind == "cluster":
        return _cluster_client(target)
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=MAX_CONNECTIONS, timeout=POOL_TIMEOUT_SECONDS, **_SOCKET
    )
    return aioredis.Redis(connection_pool=pool)


def _sentinel_client(target: RedisTarget) -> aioredis.Redis:
    sentinel_kwargs = dict(_SENTINEL_SOCKET)
    if target.sentinel_password is not None:
        sentinel_kwargs["password"] = target.sentinel_password
    sentinel = ChatSentinel(
        list(target.nodes),
        sentinel_kwargs=sentinel_kwargs,
        username=target.username,
        password=target.password,
        db=target.db,
        **_SOCKET,
    )
    client = sentinel.master_for(
        target.master,
        redis_class=aioredis.Redis,
        connection_pool_class=SentinelBlockingPool,
        max_connections=MAX_CONNECTIONS,
        timeout=POOL_TIMEOUT_SECONDS,
    )
    client.chatroom_sentinels = list(sentinel.sentinels)  # closed with it (close_redis)
    return client


class WaitingRedisCluster(aiocluster.RedisCluster):
    """redis-py's asyncio RedisCluster whose commands wait for a free connection.

    Its per-node pools raise ``MaxConnectionsError`` past ``max_connections`` instead
    of waiting (the one-node client has ``BlockingConnectionPool``; the cluster has no
    such option): a burst of joins on one process failed with ``unavailable``. At
    most ``max_connections`` commands of this client are in flight, so no node's pool
    runs out; the others wait their turn.
    """

    def __init__(self, *args, max_connections: int, **kwargs) -> None:
        super().__init__(*args, max_connections=max_connections, **kwargs)
        self._in_flight = asyncio.Semaphore(max_connections)

    async def execute_command(self, *args, **kwargs):
        async with self._in_flight:
            return await super().execute_command(*args, **kwargs)


def _cluster_client(target: RedisTarget) -> aiocluster.RedisCluster:
    return WaitingRedisCluster(
        startup_nodes=[aiocluster.ClusterNode(host, port) for host, port in target.nodes],
        username=target.username,
        password=target.password,
        max_connections=MAX_CONNECTIONS,
        **_SOCKET,
    )


async def close_redis(client: aioredis.Redis) -> None:
    """Close a client of ``make_redis`` and every connection it holds (its Sentinels',
    its per-node clients in a Cluster)."""
    calls = getattr(client, "chatroom_node_calls", None)
    if calls is not None:
        await calls.aclose()
    await client.aclose()
    pool = getattr(client, "connection_pool", None)
    if pool is not None:
        await pool.disconnect()
    for sentinel in getattr(client, "chatroom_sentinels", ()):
        await sentinel.aclose()


@contextlib.contextmanager
def _sync_masters(target: RedisTarget) -> Iterator[list[sync_redis.Redis]]:
    """Blocking clients of every master of ``target`` (one, except in a Cluster)."""
    if target.kind == "single":
        with sync_redis.Redis.from_url(target.url, socket_timeout=5) as client:
            yield [client]
    elif target.kind == "sentinel":
        sentinel = redis.sentinel.Sentinel(
            list(target.nodes), sentinel_kwargs=dict(_SENTINEL_SOCKET), socket_timeout=5,
            username=target.username, password=target.password,
        )  # fmt: skip
        with sentinel.master_for(target.master) as client:
            yield [client]
    else:
        nodes = [redis.cluster.ClusterNode(host, port) for host, port in target.nodes]
        with redis.cluster.RedisCluster(
            startup_nodes=nodes, username=target.username, password=target.password,
            socket_timeout=5,
        ) as cluster:  # fmt: skip
            yield [node.redis_connection for node in cluster.get_primaries()]


def _version(client: sync_redis.Redis) -> tuple[int, ...]:
    """The Redis server's version, major and minor."""
    return tuple(int(p) for p in client.info("server")["redis_version"].split(".")[:2])


def strict_durability_wait(redis_url: str) -> DurabilityWait | None:
    """What each send must wait for under ``--durability strict`` (SPEC §8).

    One Redis: nothing when it fsyncs every write already (``appendonly yes`` +
    ``appendfsync always``), else ``WAITAOF 1 0`` (Redis >= 7.2). With replicas
    (Sentinel, Cluster) a message must also be on a replica: ``WAITAOF 1 1`` on
    Redis >= 7.2, else ``WAIT 1`` on masters that fsync every write. Anything
    else: a ConfigError, at start.
    """
    target = parse_redis_url(redis_url)
    with _sync_masters(target) as masters:
        fsync_always, waitaof = True, True
        for client in masters:
            fsync_always &= (
                client.config_get("appendfsync").get("appendfsync") == "always"
                and client.config_get("appendonly").get("appendonly") == "yes"
            )
            waitaof &= _version(client) >= (7, 2)
    if not target.replicated:
        if fsync_always:
            return None
        if waitaof:
            return DurabilityWait(replicas=0, waitaof=True)
        raise ConfigError(
            "--durability strict needs an external Redis with appendonly yes and appendfsync "
            "always, or Redis >= 7.2 (WAITAOF); this one has neither"
        )
    if waitaof:
        return DurabilityWait(replicas=1, waitaof=True)
    if fsync_always:
        return DurabilityWait(replicas=1, waitaof=False)
    raise ConfigError(
        "--durability strict with replicas needs Redis >= 7.2 (WAITAOF 1 1), or masters "
        "with appendonly yes and appendfsync always (then WAIT 1); these have neither"
    )


def check_sharded_pubsub(redis_url: str) -> None:
    """[issue 16] ``--cluster-pubsub sharded`` needs ``SPUBLISH``: Redis >= 7.0 on every
    master of the cluster; else a ConfigError, at start."""
    with _sync_masters(parse_redis_url(redis_url)) as masters:
        for client in masters:
            if _version(client) < (7, 0):
                raise ConfigError(
                    "--cluster-pubsub sharded needs Redis >= 7.0 on every node (one runs "
                    f"{'.'.join(map(str, _version(client)))}); use --cluster-pubsub classic"
                )


def strict_durability_needs_waitaof(redis_url: str) -> bool:
    """Whether one external Redis needs a wait after each send for ``--durability strict``
    (see ``strict_durability_wait``)."""
    return strict_durability_wait(redis_url) is not None


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
