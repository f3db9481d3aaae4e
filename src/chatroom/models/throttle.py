"""Token buckets and failure counters in Redis, shared by every process: the login and
registration throttles."""

from __future__ import annotations

import redis.asyncio as aioredis

from chatroom.models.keys import RedisKeys
from chatroom.models.token_bucket import TAKE_TOKEN_LUA

# KEYS[1]: the bucket. ARGV: size, refill per second, tokens to take (0 only peeks).
_BUCKET_SCRIPT = (
    TAKE_TOKEN_LUA
    + """
return take_token(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
"""
)

#: Failures of one address at one account are remembered this long.
FAILURE_MEMORY_SECONDS = 15 * 60


class AuthThrottle:
    """Slows password guessing without locking the real owner out.

    - Every address has a bucket of attempts (login and register together).
    - Every account has a bucket of *failed* logins. While it is empty, only
      addresses that have not failed at this account may try: the owner, on an
      address with no failures, still gets in; a guesser has to wait.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: RedisKeys,
        per_address: tuple[int, float] = (20, 1 / 3),
        failures_per_account: tuple[int, float] = (10, 1 / 30),
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._per_address = per_address
        self._per_account = failures_per_account
        self._bucket = redis.register_script(_BUCKET_SCRIPT)

    async def _take(self, key: str, limits: tuple[int, float], take: int = 1) -> float:
        size, rate = limits
        return int(await self._bucket(keys=[key], args=[size, rate, take])) / 1000

    async def attempt(self, address: str, account: str | None) -> float:
        """Before checking a password: 0.0 if allowed, else seconds to wait."""
        wait = await self._take(self._keys.auth_address(address), self._per_address)
        if wait or account is None:
            return wait
        account_wait = await self._take(self._keys.auth_failures(account), self._per_account, 0)
        if account_wait and await self._redis.exists(self._keys.auth_failed(account, address)):
            return account_wait
        return 0.0

    async def failed(self, address: str, account: str) -> None:
        await self._take(self._keys.auth_failures(account), self._per_account)
        key = self._keys.auth_failed(account, address)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.incr(key)
            pipe.expire(key, FAILURE_MEMORY_SECONDS)
            await pipe.execute()

    async def succeeded(self, address: str, account: str) -> None:
        await self._redis.delete(self._keys.auth_failed(account, address))
