"""Rate limits kept in Redis, shared by every process and host.

- ``TAKE_TOKEN_LUA``: the token bucket, as a Lua function every script shares.
- ``RedisBuckets``: one bucket take per call (what the throttles and quotas use).
- ``RoomQuota``: how many rooms one user may create per hour.
- ``ActionQuota``: how often one user may do one kind of thing (block users, make
  invites, moderate rooms): a burst, then so many an hour.
- ``SendRate`` / ``SendRateExceeded``: the per-user, per-room send bucket. The
  check itself runs inside the send script (``models.messages``), so a send
  stays one round trip.

The login throttle is ``models.auth_throttle``. The per-user socket cap counts
live sockets, which expire and are heartbeated like presence entries: it is
``PresenceRepository.claim_socket``.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from chatroom.models.keys import RedisKeys

# Scripts that need a bucket prepend ``TAKE_TOKEN_LUA`` and call
# ``take_token(key, size, rate, take)``: 0 when the tokens were taken (or, with
# ``take`` 0, when one is there), else the wait in milliseconds. The bucket is a
# hash (tokens, ts) on Redis's own clock, so every process and host shares it.
TAKE_TOKEN_LUA = """
local function take_token(key, size, rate, take)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
  local bucket = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(bucket[1]) or size
  local ts = tonumber(bucket[2]) or now
  tokens = math.min(size, tokens + math.max(0, now - ts) * rate)
  if tokens < 1 then return math.ceil((1 - tokens) / rate * 1000) end
  if take > 0 then
    redis.call('HSET', key, 'tokens', string.format('%.6f', tokens - take),
               'ts', string.format('%.6f', now))
    redis.call('EXPIRE', key, math.ceil(size / rate) + 1)
  end
  return 0
end
"""

# KEYS[1]: the bucket. ARGV: size, refill per second, tokens to take (0 only peeks).
_BUCKET_SCRIPT = (
    TAKE_TOKEN_LUA
    + """
return take_token(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
"""
)


class RedisBuckets:
    """Token buckets in Redis (one atomic script per take), shared by every process."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._bucket = redis.register_script(_BUCKET_SCRIPT)

    async def take(self, key: str, limits: tuple[int, float], take: int = 1) -> float:
        """Take ``take`` tokens (0 only peeks): 0.0 if allowed, else seconds to wait."""
        size, rate = limits
        return int(await self._bucket(keys=[key], args=[size, rate, take])) / 1000


class RoomQuota:
    """Rooms one user may create: ``per_hour`` at once, refilled over the hour (Redis)."""

    def __init__(self, redis: aioredis.Redis, keys: RedisKeys, per_hour: int = 10) -> None:
        self._keys = keys
        self._limits = (per_hour, per_hour / 3600)
        self._buckets = RedisBuckets(redis)

    async def take(self, user_id: int) -> float:
        """Count one room creation: 0.0 if allowed, else seconds to wait."""
        return await self._buckets.take(self._keys.room_creations(user_id), self._limits)


class ActionQuota:
    """One kind of a user's actions (``kind``: blocks, invites, moderation): ``burst`` at
    once, refilled at ``per_hour`` an hour (Redis: every process shares it)."""

    def __init__(
        self, redis: aioredis.Redis, keys: RedisKeys, kind: str, burst: int, per_hour: int
    ) -> None:
        self._key = keys.actions(kind)
        self._limits = (burst, per_hour / 3600)
        self._buckets = RedisBuckets(redis)

    async def take(self, user_id: int) -> float:
        """Count one action: 0.0 if allowed, else seconds to wait."""
        return await self._buckets.take(f"{self._key}:{int(user_id)}", self._limits)


@dataclass(frozen=True)
class SendRate:
    """A user's send bucket in one room: ``burst`` sends at once, refilled at ``per_second``."""

    burst: int
    per_second: float


class SendRateExceeded(Exception):
    """The user's token bucket for this room is empty; nothing was stored."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"retry after {retry_after:.3f}s")
        self.retry_after = retry_after


class UploadQuota:
    """Files one user may upload: ``per_minute`` at once, refilled over the minute (Redis)."""

    def __init__(self, redis: aioredis.Redis, keys: RedisKeys, per_minute: int = 20) -> None:
        self._keys = keys
        self._limits = (per_minute, per_minute / 60)
        self._buckets = RedisBuckets(redis)

    async def take(self, user_id: int) -> float:
        """Count one upload: 0.0 if allowed, else seconds to wait."""
        return await self._buckets.take(self._keys.uploads(user_id), self._limits)
