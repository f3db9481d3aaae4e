"""The login throttle: token buckets and failure counters in Redis, shared by every
process, that slow password guessing (login and registration) and username lookups
without locking the real owner out. The bucket itself is ``models.limits``."""

from __future__ import annotations

import ipaddress

import redis.asyncio as aioredis

from chatroom.models.keys import RedisKeys
from chatroom.models.limits import TAKE_TOKEN_LUA, RedisBuckets

# An address is "known" to an account (it logged in there) while its score is in the future.
_KNOWN_LUA = """
local function is_known(key, tag)
  local t = redis.call('TIME')
  local score = redis.call('ZSCORE', key, tag)
  return score and tonumber(score) > tonumber(t[1])
end
"""

# Before a password is checked. KEYS: fast bucket, this address's failures, slow
# bucket, known addresses. ARGV: fast size, fast rate, slow size, slow rate, address tag.
_ACCOUNT_ATTEMPT_SCRIPT = (
    TAKE_TOKEN_LUA
    + _KNOWN_LUA
    + """
local wait = take_token(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), 0)
if wait > 0 and redis.call('EXISTS', KEYS[2]) == 1 then return wait end
if is_known(KEYS[4], ARGV[5]) then return 0 end
return take_token(KEYS[3], tonumber(ARGV[3]), tonumber(ARGV[4]), 0)
"""
)

# A wrong password. KEYS and ARGV as above, plus ARGV[6]: how long failures are remembered.
_ACCOUNT_FAILED_SCRIPT = (
    TAKE_TOKEN_LUA
    + _KNOWN_LUA
    + """
take_token(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), 1)
if not is_known(KEYS[4], ARGV[5]) then
  take_token(KEYS[3], tonumber(ARGV[3]), tonumber(ARGV[4]), 1)
end
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[6]))
return 0
"""
)

# A right password. KEYS: this address's failures, known addresses.
# ARGV: address tag, how long it stays known, how many addresses are kept.
_ACCOUNT_SUCCEEDED_SCRIPT = """
redis.call('DEL', KEYS[1])
local now = tonumber(redis.call('TIME')[1])
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[2], now + ttl, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(tonumber(ARGV[3]) + 1))
redis.call('EXPIRE', KEYS[2], ttl)
return 0
"""

#: Failures of one address at one account are remembered this long.
FAILURE_MEMORY_SECONDS = 15 * 60
#: An address that logged in to an account is exempt from its slow limit this long.
KNOWN_ADDRESS_SECONDS = 30 * 24 * 3600
#: Known addresses kept per account (the most recent ones).
MAX_KNOWN_ADDRESSES = 20
#: IPv6 clients are keyed by this prefix: one subscriber usually holds a whole /64.
IPV6_PREFIX = 64


def throttle_address(address: str) -> str:
    """The unit a client address is throttled as: an IPv4 address, or an IPv6 /64.

    An IPv4-mapped IPv6 address counts as its IPv4 address. Anything that is not
    an address is kept as it is (it only ever becomes a digest in a key).
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        # From the integer: a scoped address (fe80::1%eth0) has no /64 of its own text.
        return str(ipaddress.IPv6Network((int(ip), IPV6_PREFIX), strict=False))
    return str(ip)


class AuthThrottle:
    """Slows password guessing without locking the real owner out.

    - Every address (an IPv6 /64 counts as one) has a bucket of attempts (login
      and register together).
    - Every account has a fast bucket of *failed* logins. While it is empty, only
      addresses that have not failed at this account may try: the owner, on an
      address with no failures, still gets in; a guesser has to wait.
    - Every account also has a slow bucket of failed logins from addresses that
      never logged in to it. While it is empty, such fresh addresses wait too, so
      rotating addresses buys a guesser no more than its refill rate; addresses
      that logged in to the account in the last 30 days are exempt, so the owner's
      own devices still get in at once.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: RedisKeys,
        per_address: tuple[int, float] = (20, 1 / 3),
        failures_per_account: tuple[int, float] = (10, 1 / 30),
        slow_per_account: tuple[int, float] = (60, 1 / 60),
    ) -> None:
        self._keys = keys
        self._per_address = per_address
        self._per_account = failures_per_account
        self._slow = slow_per_account
        self._buckets = RedisBuckets(redis)
        self._attempt = redis.register_script(_ACCOUNT_ATTEMPT_SCRIPT)
        self._failed = redis.register_script(_ACCOUNT_FAILED_SCRIPT)
        self._succeeded = redis.register_script(_ACCOUNT_SUCCEEDED_SCRIPT)

    def _account_call(self, account: str, address: str) -> tuple[list[str], list]:
        keys = self._keys
        unit = throttle_address(address)
        return (
            [
                keys.auth_failures(account),
                keys.auth_failed(account, unit),
                keys.auth_slow(account),
                keys.auth_known(account),
            ],
            [*self._per_account, *self._slow, keys.address_tag(unit)],
        )

    async def attempt(self, address: str, account: str | None) -> float:
        """Before checking a password: 0.0 if allowed, else seconds to wait.

        ``account`` must be a validated account name (or None: no account limits).
        """
        unit = throttle_address(address)
        wait = await self._buckets.take(self._keys.auth_address(unit), self._per_address)
        if wait or account is None:
            return wait
        keys, args = self._account_call(account, address)
        return int(await self._attempt(keys=keys, args=args)) / 1000

    async def lookup(self, address: str) -> float:
        """Before telling whether a username exists: 0.0 if allowed, else seconds to wait."""
        key = self._keys.lookup_address(throttle_address(address))
        return await self._buckets.take(key, self._per_address)

    async def failed(self, address: str, account: str) -> None:
        keys, args = self._account_call(account, address)
        await self._failed(keys=keys, args=[*args, FAILURE_MEMORY_SECONDS])

    async def succeeded(self, address: str, account: str) -> None:
        unit = throttle_address(address)
        keys = [self._keys.auth_failed(account, unit), self._keys.auth_known(account)]
        args = [self._keys.address_tag(unit), KNOWN_ADDRESS_SECONDS, MAX_KNOWN_ADDRESSES]
        await self._succeeded(keys=keys, args=args)
