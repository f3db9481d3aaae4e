"""Presence in Redis: which users are online in which room, kept per (user, process).

A room's ``present`` hash maps each online user to the processes that hold at
least one of their sockets in the room (space-separated process tokens), so a
change is written only when a user's first socket on a process joins a room or
their last one leaves it. A process proves it is alive with one key that
expires unless its heartbeat renews it; the entries of a process whose key
expired are swept by whichever process notices first, through the index of
rooms and users that process wrote to.
"""

from __future__ import annotations

import os
import socket

import redis.asyncio as aioredis

from chatroom.models.keys import RedisKeys

#: A process whose liveness key was not renewed for this long is dead (stopped or hung).
ALIVE_TTL_SECONDS = 10.0
#: How long a sweep of a dead process may take before another process may redo it.
SWEEP_LOCK_SECONDS = 60

# KEYS[1]: the room's present hash. ARGV: process token, user.
# Add the process to the user's holders; 1 when the user was offline before.
_ENTER_SCRIPT = """
local held = redis.call('HGET', KEYS[1], ARGV[2])
if not held then
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[1])
  return 1
end
for token in string.gmatch(held, '%S+') do
  if token == ARGV[1] then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[2], held .. ' ' .. ARGV[1])
return 0
"""

# Remove the process from the user's holders; 1 when that made the user offline.
_LEAVE_SCRIPT = """
local held = redis.call('HGET', KEYS[1], ARGV[2])
if not held then return 0 end
local rest, found = {}, false
for token in string.gmatch(held, '%S+') do
  if token == ARGV[1] then found = true else rest[#rest + 1] = token end
end
if not found then return 0 end
if #rest == 0 then
  redis.call('HDEL', KEYS[1], ARGV[2])
  return 1
end
redis.call('HSET', KEYS[1], ARGV[2], table.concat(rest, ' '))
return 0
"""

# A dead process (ARGV[1]) leaves the room: the users it was the last holder of.
_SWEEP_ROOM_SCRIPT = """
local all = redis.call('HGETALL', KEYS[1])
local gone = {}
for i = 1, #all, 2 do
  local rest, found = {}, false
  for token in string.gmatch(all[i + 1], '%S+') do
    if token == ARGV[1] then found = true else rest[#rest + 1] = token end
  end
  if found then
    if #rest == 0 then
      redis.call('HDEL', KEYS[1], all[i])
      gone[#gone + 1] = all[i]
    else
      redis.call('HSET', KEYS[1], all[i], table.concat(rest, ' '))
    end
  end
end
return gone
"""

# KEYS[1]: the user's socket counts (process token -> sockets open there).
# ARGV: process token, limit. Count one more socket unless ``limit`` are open.
_CLAIM_SOCKET_SCRIPT = """
local open = 0
for _, n in ipairs(redis.call('HVALS', KEYS[1])) do open = open + tonumber(n) end
if open >= tonumber(ARGV[2]) then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
return 1
"""

_RELEASE_SOCKET_SCRIPT = """
if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""


def room_member(room: str) -> str:
    """The index entry of a room a process holds presence in."""
    return f"r:{room}"


def user_member(user_id: int) -> str:
    """The index entry of a user whose sockets a process counts."""
    return f"u:{int(user_id)}"


def new_process_token() -> str:
    """A fresh, unguessable identity for one process's presence (never reused)."""
    return os.urandom(8).hex()


class PresenceRepository:
    """Room presence, per-user socket counts and process liveness, in Redis.

    Every change is one script on one key; the process ``token`` it is made
    under is the caller's (a process takes a new one when its old one expired).
    """

    def __init__(self, redis: aioredis.Redis, keys: RedisKeys) -> None:
        self._redis = redis
        self._keys = keys
        self._enter = redis.register_script(_ENTER_SCRIPT)
        self._leave = redis.register_script(_LEAVE_SCRIPT)
        self._sweep_room = redis.register_script(_SWEEP_ROOM_SCRIPT)
        self._claim_socket = redis.register_script(_CLAIM_SOCKET_SCRIPT)
        self._release_socket = redis.register_script(_RELEASE_SOCKET_SCRIPT)

    # -- rooms ------------------------------------------------------------------

    async def enter(self, room: str, user: str, process: str) -> bool:
        """Record that ``process`` holds ``user`` in ``room``; True when the user was offline."""
        return bool(await self._enter(keys=[self._keys.present(room)], args=[process, user]))

    async def leave(self, room: str, user: str, process: str) -> bool:
        """``process`` no longer holds ``user`` in ``room``; True when the user went offline."""
        return bool(await self._leave(keys=[self._keys.present(room)], args=[process, user]))

    async def online(self, room: str) -> list[str]:
        """The users some process holds in the room, sorted case-insensitively."""
        users = await self._redis.hkeys(self._keys.present(room))
        return sorted((u.decode() for u in users), key=str.lower)

    # -- open sockets per user (counted across processes) -----------------------

    async def claim_socket(self, user_id: int, process: str, limit: int) -> bool:
        """Count one more socket of the user on ``process``: False (nothing counted) when
        ``limit`` are open on all processes together. Atomic, so sockets opened at
        the same moment anywhere never pass the limit together."""
        key = self._keys.user_sockets(user_id)
        return bool(await self._claim_socket(keys=[key], args=[process, limit]))

    async def release_socket(self, user_id: int, process: str) -> None:
        await self._release_socket(keys=[self._keys.user_sockets(user_id)], args=[process])

    async def set_sockets(self, user_id: int, process: str, count: int) -> None:
        """Set how many sockets of the user ``process`` holds (repair after a failure)."""
        key = self._keys.user_sockets(user_id)
        if count > 0:
            await self._redis.hset(key, process, count)
        else:
            await self._redis.hdel(key, process)

    # -- processes -----------------------------------------------------------------

    async def register(self, process: str, connections: int, ttl: float) -> None:
        """Announce a new process: its liveness key first, then the registry entry (a
        sweeper must never find a registered process that has not lived yet)."""
        keys = self._keys
        await self._redis.set(keys.process_alive(process), connections, px=int(ttl * 1000))
        await self._redis.hset(keys.processes(), process, f"{os.getpid()}@{socket.gethostname()}")

    async def heartbeat(self, process: str, connections: int, ttl: float) -> bool:
        """Renew the process's liveness (with its connection count): the one write of a
        tick. False when the key had expired: the process may have been swept, and
        must take a new token."""
        alive = self._keys.process_alive(process)
        return bool(await self._redis.set(alive, connections, px=int(ttl * 1000), xx=True))

    async def index(self, process: str, members: list[str]) -> None:
        """Record rooms (``room_member``) and users (``user_member``) the process is
        about to write presence or socket counts for: what a sweep of it visits."""
        if members:
            await self._redis.sadd(self._keys.process_index(process), *members)

    async def unindex(self, process: str, members: list[str]) -> None:
        if members:
            await self._redis.srem(self._keys.process_index(process), *members)

    async def dead_processes(self, exclude: str | None = None) -> list[str]:
        """Registered processes whose liveness key expired (one read each)."""
        keys = self._keys
        tokens = [t.decode() for t in await self._redis.hkeys(keys.processes())]
        tokens = [t for t in tokens if t != exclude]
        if not tokens:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for token in tokens:
                pipe.exists(keys.process_alive(token))
            alive = await pipe.execute()
        return [token for token, n in zip(tokens, alive, strict=True) if not n]

    async def claim_sweep(self, process: str, by: str) -> bool:
        """True for the one process that gets to sweep the dead ``process`` now."""
        key = self._keys.process_sweep(process)
        return bool(await self._redis.set(key, by, nx=True, ex=SWEEP_LOCK_SECONDS))

    async def sweep(self, process: str) -> list[tuple[str, str]]:
        """Remove every entry of a dead process; the (room, user) pairs that went offline.

        Each room is one script; the process's index and registry entry go last,
        so a sweeper that dies halfway leaves the rest to the next one.
        """
        keys = self._keys
        gone: list[tuple[str, str]] = []
        members = await self._redis.smembers(keys.process_index(process))
        for raw in members:
            kind, _, name = raw.decode().partition(":")
            if kind == "r":
                users = await self._sweep_room(keys=[keys.present(name)], args=[process])
                gone.extend((name, user.decode()) for user in users)
            elif kind == "u" and name.isdigit():
                await self._redis.hdel(keys.user_sockets(int(name)), process)
        await self._redis.delete(keys.process_index(process), keys.process_alive(process))
        await self._redis.hdel(keys.processes(), process)
        return gone

    async def connected_clients(self) -> tuple[int, int]:
        """(processes, connections) of the processes alive now (``chatroom stats``)."""
        keys = self._keys
        tokens = await self._redis.hkeys(keys.processes())
        if not tokens:
            return 0, 0
        async with self._redis.pipeline(transaction=False) as pipe:
            for token in tokens:
                pipe.get(keys.process_alive(token.decode()))
            counts = await pipe.execute()
        live = [int(c) for c in counts if c is not None and c.isdigit()]
        return len(live), sum(live)
