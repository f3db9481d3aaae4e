"""The archive's locks (SPEC §7): one process at a time, on any host, archives or
applies retention. A lock is a Redis key holding its holder's random token, with an
expiry, so that another process takes over when the holder died; only the holder's
token extends or releases it."""

from __future__ import annotations

import secrets

import redis.asyncio as aioredis

from chatroom.models.keys import RedisKeys

#: The locks: who archives, and who applies retention.
ARCHIVER_LOCK = "archiver"
RETENTION_LOCK = "retention"

# Extend (ARGV[2] ms) or release (ARGV[2] = 0) a lock only its holder's token opens.
_LOCK_SCRIPT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if tonumber(ARGV[2]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
else
  redis.call('DEL', KEYS[1])
end
return 1
"""


class ArchiveLocks:
    """Named locks with an expiry (``ARCHIVER_LOCK``, ``RETENTION_LOCK``), held by a token."""

    def __init__(self, redis: aioredis.Redis, keys: RedisKeys) -> None:
        self._redis = redis
        self._keys = keys
        self._lock = redis.register_script(_LOCK_SCRIPT)

    async def acquire(self, name: str, token: str, ttl_ms: int) -> bool:
        """Take the lock ``name`` (or extend it when ``token`` holds it) for ``ttl_ms``."""
        key = self._keys.archive_lock(name)
        if await self._redis.set(key, token, nx=True, px=ttl_ms):
            return True
        return bool(await self._lock(keys=[key], args=[token, ttl_ms]))

    async def release(self, name: str, token: str) -> None:
        """Release the lock ``name`` if ``token`` holds it (else nothing)."""
        await self._lock(keys=[self._keys.archive_lock(name)], args=[token, 0])

    @staticmethod
    def new_token() -> str:
        """A holder's token: random, so that no other process can open its lock."""
        return secrets.token_hex(16)
