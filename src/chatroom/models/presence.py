"""Presence in Redis: which users have a live connection in which room, across processes.

Each connection that joined a room holds an entry that expires unless its
process refreshes it, so the users of a crashed process go offline by themselves.
"""

from __future__ import annotations

import os
import socket
import time

import redis.asyncio as aioredis

from chatroom.models.keys import RedisKeys

#: An entry not refreshed for this long is dead (its process stopped or hung).
ENTRY_TTL_SECONDS = 10.0
#: A process's connection count not reported for this long is ignored (it stopped).
PROCESS_TTL_SECONDS = 15.0

# Atomically remove the expired entries of one room and list the live ones.
_SWEEP_SCRIPT = """
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if #expired == 0 then return {{}, {}} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return {expired, redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')}
"""


# Admit one more socket of a user unless they hold ``limit`` live ones already.
# KEYS[1]: the user's sockets. ARGV: connection id, limit, now, expiry.
_CLAIM_SOCKET_SCRIPT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
if not redis.call('ZSCORE', KEYS[1], ARGV[1])
   and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
redis.call('EXPIRE', KEYS[1], math.ceil(ARGV[4] - ARGV[3]) + 1)
return 1
"""


def _member(user: str, conn_id: str) -> str:
    return f"{user}\n{conn_id}"


def _users(members: list[bytes]) -> set[str]:
    return {m.decode().split("\n", 1)[0] for m in members}


class PresenceRepository:
    """Per-connection presence entries, with heartbeats and a sweep for dead ones."""

    def __init__(self, redis: aioredis.Redis, keys: RedisKeys) -> None:
        self._redis = redis
        self._keys = keys
        self._sweep = redis.register_script(_SWEEP_SCRIPT)
        self._claim_socket = redis.register_script(_CLAIM_SOCKET_SCRIPT)

    async def enter(self, room: str, user: str, conn_id: str) -> bool:
        """Record that a connection joined; True when the user was not online there before."""
        key, now = self._keys.online(room), time.time()
        # The room index lives in another cluster slot: not part of the MULTI.
        await self._redis.sadd(self._keys.presence_rooms(), room)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zadd(key, {_member(user, conn_id): now + ENTRY_TTL_SECONDS})
            pipe.zrangebyscore(key, now, "+inf")
            added, live = await pipe.execute()
        mine = _member(user, conn_id).encode()
        # A connection joining again (already present) changes nothing for others.
        return bool(added) and user not in _users([m for m in live if m != mine])

    async def leave(self, room: str, user: str, conn_id: str) -> bool:
        """Remove a connection's entry; True when that was the user's last one in the room."""
        key, now = self._keys.online(room), time.time()
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrem(key, _member(user, conn_id))
            pipe.zrangebyscore(key, now, "+inf")
            removed, live = await pipe.execute()
        return bool(removed) and user not in _users(live)

    async def online(self, room: str) -> list[str]:
        """The users with at least one live connection in the room, sorted."""
        live = await self._redis.zrangebyscore(self._keys.online(room), time.time(), "+inf")
        return sorted(_users(live), key=str.lower)

    async def refresh(self, entries: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
        """Extend the expiry of live (room, user, conn_id) entries in one round trip.

        Only existing entries are extended (a refresh racing a ``leave`` must not
        bring the entry back); the ones already swept away are returned, for the
        caller to ``restore`` if their connection is still there.
        """
        if not entries:
            return []
        expires = time.time() + ENTRY_TTL_SECONDS
        async with self._redis.pipeline(transaction=False) as pipe:
            for room, user, conn_id in entries:
                pipe.zadd(
                    self._keys.online(room), {_member(user, conn_id): expires}, xx=True, ch=True
                )
            for room in {room for room, _, _ in entries}:
                pipe.sadd(self._keys.presence_rooms(), room)
            changed = await pipe.execute()
        return [entry for entry, n in zip(entries, changed, strict=False) if not n]

    async def restore(self, room: str, user: str, conn_id: str) -> bool:
        """Put back a swept entry; True when the user was offline there meanwhile."""
        return await self.enter(room, user, conn_id)

    async def sweep(self) -> list[tuple[str, str]]:
        """Drop expired entries everywhere; the (room, user) pairs that went offline.

        Only the process whose sweep removed an entry reports it, so each
        offline event is announced once.
        """
        gone: list[tuple[str, str]] = []
        now = time.time()
        index = self._keys.presence_rooms()
        for raw_room in await self._redis.smembers(index):
            room = raw_room.decode()
            expired, live = await self._sweep(keys=[self._keys.online(room)], args=[now])
            gone.extend((room, user) for user in _users(expired) - _users(live))
            if expired and not live:
                # Empty now. A connection joining meanwhile re-adds the room in its
                # next heartbeat, so the index stays small without losing a room.
                await self._redis.srem(index, room)
        return gone

    # -- open sockets per user (counted across processes) ---------------------

    async def claim_socket(self, user_id: int, conn_id: str, limit: int) -> bool:
        """Count a new socket of the user: False (nothing counted) if ``limit`` are open.

        Atomic, so sockets opened at the same moment on any process never pass
        the limit together; entries expire unless ``refresh_sockets`` extends them,
        so the sockets of a crashed process stop counting by themselves.
        """
        now = time.time()
        args = [conn_id, limit, now, now + ENTRY_TTL_SECONDS]
        return bool(await self._claim_socket(keys=[self._keys.user_sockets(user_id)], args=args))

    async def release_socket(self, user_id: int, conn_id: str) -> None:
        await self._redis.zrem(self._keys.user_sockets(user_id), conn_id)

    async def refresh_sockets(self, sockets: list[tuple[int, str]]) -> list[tuple[int, str]]:
        """Extend the expiry of live (user id, conn id) entries in one round trip.

        As with ``refresh``, only existing entries are extended; the lost ones are
        returned, for the caller to ``restore_socket`` if still open.
        """
        if not sockets:
            return []
        expires = time.time() + ENTRY_TTL_SECONDS
        async with self._redis.pipeline(transaction=False) as pipe:
            for user_id, conn_id in sockets:
                pipe.zadd(self._keys.user_sockets(user_id), {conn_id: expires}, xx=True, ch=True)
            for user_id in {user_id for user_id, _ in sockets}:
                pipe.expire(self._keys.user_sockets(user_id), int(ENTRY_TTL_SECONDS) + 1)
            changed = await pipe.execute()
        return [entry for entry, n in zip(sockets, changed, strict=False) if not n]

    async def restore_socket(self, user_id: int, conn_id: str) -> None:
        """Count an open socket again whose entry was lost (e.g. Redis restarted empty)."""
        key = self._keys.user_sockets(user_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zadd(key, {conn_id: time.time() + ENTRY_TTL_SECONDS})
            pipe.expire(key, int(ENTRY_TTL_SECONDS) + 1)
            await pipe.execute()

    async def report_connections(self, count: int) -> None:
        """Record how many connections this process holds (``chatroom stats`` sums them)."""
        process = f"{os.getpid()}@{socket.gethostname()}"
        await self._redis.hset(self._keys.processes(), process, f"{count} {time.time():.3f}")

    async def connected_clients(self) -> tuple[int, int]:
        """(processes, connections) of the processes that reported recently.

        Entries older than ``PROCESS_TTL_SECONDS`` belong to stopped processes:
        they are not counted, and removed.
        """
        key, now = self._keys.processes(), time.time()
        processes = connections = 0
        stale = []
        for field, value in (await self._redis.hgetall(key)).items():
            try:
                count, reported = value.split()
                fresh = now - float(reported) <= PROCESS_TTL_SECONDS
                count = int(count)
            except ValueError:
                fresh = False
            if fresh:
                processes += 1
                connections += count
            else:
                stale.append(field)
        if stale:
            await self._redis.hdel(key, *stale)
        return processes, connections
