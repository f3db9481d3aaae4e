"""A script and the ``WAIT``/``WAITAOF`` after it, in one round trip on one connection
to the node that ran it (SPEC §8).

``WAIT`` and ``WAITAOF`` count what the *connection that sent them* wrote. On one
Redis, or a Sentinel-managed master, a pipeline is one connection. A Cluster
client sends a command without keys to a default node, where ``WAIT`` would
guarantee nothing about the room's node; here, in a Cluster, the pair goes to the
node that owns the room's slot, on a plain connection to it (one client per
node, kept), and a ``MOVED`` (the slot migrated) refreshes the slot table and
tries again once.
"""

from __future__ import annotations

import asyncio
import time

import redis.asyncio as aioredis
import redis.asyncio.cluster as aiocluster
import redis.exceptions
from redis.commands.core import AsyncScript

#: A slot that moved (or is moving) to another node: look the node up again.
_MOVED = (
    redis.exceptions.MovedError,
    redis.exceptions.AskError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterDownError,
)
#: How often a script that met a moving slot is sent again (after a fresh slot table).
MOVED_ATTEMPTS = 4
#: Each per-node client's pool: the waits are few (strict sends, archiver passes).
NODE_CONNECTIONS = 16
#: How long a node's count of replicas (``ROLE``) is trusted before it is read again.
REPLICAS_TTL_SECONDS = 5.0


class NodeCalls:
    """Runs ``script`` then a command on the connection of the node holding ``key``."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._nodes: dict[str, aioredis.Redis] = {}
        # id of a node's client -> (replicas attached, when read): see ``replicas_of``.
        self._replicas: dict[int, tuple[int, float]] = {}

    def _client_for(self, key: str) -> aioredis.Redis:
        cluster = self._redis
        if not isinstance(cluster, aiocluster.RedisCluster):
            return cluster
        node = cluster.get_node_from_key(key)
        client = self._nodes.get(node.name)
        if client is None:
            kwargs = cluster.get_connection_kwargs()
            client = self._nodes[node.name] = aioredis.Redis(
                host=node.host,
                port=node.port,
                username=kwargs.get("username"),
                password=kwargs.get("password"),
                socket_timeout=kwargs.get("socket_timeout"),
                socket_connect_timeout=kwargs.get("socket_connect_timeout"),
                max_connections=NODE_CONNECTIONS,
            )
        return client

    async def replicas_of(self, key: str) -> int:
        """How many replicas the master holding ``key`` has attached now (``ROLE``, read
        again after ``REPLICAS_TTL_SECONDS``). A Cluster or Sentinel master may run
        without any: a ``WAIT`` for one would then time out on every call."""
        client = self._client_for(key)
        count, read_at = self._replicas.get(id(client), (0, -REPLICAS_TTL_SECONDS))
        if time.monotonic() - read_at >= REPLICAS_TTL_SECONDS:
            role = await client.execute_command("ROLE")
            count = len(role[2]) if role and role[0] in (b"master", "master") else 0
            self._replicas[id(client)] = (count, time.monotonic())
        return count

    async def call_then(
        self, key: str, script: AsyncScript, keys: list, args: list, *command: object
    ) -> tuple[object, object]:
        """``script(keys, args)`` then ``command``, pipelined on the node of ``key``:
        both replies."""
        for attempt in range(1, MOVED_ATTEMPTS + 1):
            client = self._client_for(key)
            try:
                async with client.pipeline(transaction=False) as pipe:
                    await script(keys=keys, args=args, client=pipe)
                    pipe.execute_command(*command)
                    reply, waited = await pipe.execute()
                return reply, waited
            except _MOVED:
                cluster = self._redis
                if attempt == MOVED_ATTEMPTS or not isinstance(cluster, aiocluster.RedisCluster):
                    raise  # the topology is still changing: the caller retries later
                await asyncio.sleep(0.05 * attempt)
                await cluster.nodes_manager.initialize()
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        """Close the per-node clients (a Cluster's)."""
        for client in self._nodes.values():
            await client.aclose()
        self._nodes.clear()


def node_calls(redis: aioredis.Redis) -> NodeCalls:
    """The ``NodeCalls`` of a client (one per client, closed by ``storage.close_redis``)."""
    calls = getattr(redis, "chatroom_node_calls", None)
    if calls is None:
        calls = NodeCalls(redis)
        redis.chatroom_node_calls = calls
    return calls
