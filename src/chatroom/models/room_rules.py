"""A room's rules in Redis (SPEC §6): who is banned or muted until when, who is staff, and
whether the room is read-only, in one hash in the room's slot, which the send, edit and
react scripts check inside their own atomic step (``CHECK_RULES_LUA``).

SQL is the source of truth (models/moderation.py); this hash is its copy. Fields:

- ``v``: present once the whole rule set was loaded. Without it (a new room, or a
  Redis that lost its data) the scripts refuse with ``RuleStatus.MISSING`` and the
  controller loads the rules from SQL and tries again: nothing is ever let through
  because the rules are missing.
- ``ro`` (``1``: read-only), ``b:<user>`` and ``m:<user>`` (a ban or mute that ends at
  that epoch millisecond; ``0``: never), ``s:<user>`` (``owner`` or ``moderator``).
- ``#<field>``: the room's ``rules_rev`` of the last write of ``<field>``. A write of an
  older rev than the field's is ignored, so writes may land in any order (several
  processes, a reload racing a moderation action) and the newest change wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from string import Template

import redis.asyncio as aioredis

from chatroom.models.keys import RedisKeys


class RuleStatus(IntEnum):
    """What ``check_rules`` says about one user's change to a room."""

    ALLOWED = 0
    BANNED = 1
    MUTED = 2
    READ_ONLY = 3
    #: The hash was never loaded, or was lost: load it from SQL and try again.
    MISSING = 4


class RuleRefused(Exception):
    """A script refused a change because of the room's rules (``status``)."""

    def __init__(self, status: RuleStatus) -> None:
        super().__init__(status.name)
        self.status = status


#: What a change asks of the rules: ``post`` (send, edit, react: bans, mutes and
#: read-only apply), ``access`` (delete: only bans apply), ``none`` (direct rooms).
POST, ACCESS, NONE = "p", "a", "n"


@dataclass(frozen=True)
class RulesCheck:
    """What a script checks before a change: the rules hash (``key``), the user, the
    ``mode`` (``POST``, ``ACCESS`` or ``NONE``) and whether read-only binds them (a site
    admin is ``exempt``)."""

    key: str
    user_key: str
    mode: str = POST
    exempt: bool = False

    def args(self) -> list[str]:
        return [self.user_key, self.mode, "1" if self.exempt else "0"]


# check_rules(key, user key, mode, exempt): a RuleStatus. ``exempt`` ('1') lets a site
# admin post in a read-only room. One HMGET and a TIME: the hot path stays one round trip.
CHECK_RULES_LUA = Template(
    """
local function check_rules(key, user, mode, exempt)
  if mode == 'n' then return $ALLOWED end
  local r = redis.call('HMGET', key, 'v', 'b:' .. user, 'm:' .. user, 'ro', 's:' .. user)
  if not r[1] then return $MISSING end
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if r[2] and (r[2] == '0' or tonumber(r[2]) > now) then return $BANNED end
  if mode == 'p' then
    if r[3] and (r[3] == '0' or tonumber(r[3]) > now) then return $MUTED end
    if r[4] == '1' and not r[5] and exempt ~= '1' then return $READ_ONLY end
  end
  return $ALLOWED
end
"""
).substitute({status.name: int(status) for status in RuleStatus})

# KEYS: the rules hash, the room's seq. ARGV: rev, '1' for a whole rule set (then every
# other field is cleared and ``v`` set), then field, value pairs (value '': delete).
# Replies the room's newest message id: what was stored before the rules took effect.
_WRITE_SCRIPT = """
local rev = tonumber(ARGV[1])
local given = {}
local function put(f, value)
  local old = tonumber(redis.call('HGET', KEYS[1], '#' .. f) or '-1')
  if old > rev then return end
  if value == '' then redis.call('HDEL', KEYS[1], f) else redis.call('HSET', KEYS[1], f, value) end
  redis.call('HSET', KEYS[1], '#' .. f, rev)
end
for i = 3, #ARGV, 2 do
  given[ARGV[i]] = true
  put(ARGV[i], ARGV[i + 1])
end
if ARGV[2] == '1' then
  for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
    local c = string.sub(f, 1, 1)
    if f ~= 'v' and c ~= '#' and not given[f] then put(f, '') end
  end
  redis.call('HSET', KEYS[1], 'v', 1)
end
return tonumber(redis.call('GET', KEYS[2]) or '0')
"""


def ban_field(user_key: str) -> str:
    return f"b:{user_key}"


def mute_field(user_key: str) -> str:
    return f"m:{user_key}"


def staff_field(user_key: str) -> str:
    return f"s:{user_key}"


READ_ONLY_FIELD = "ro"


class RoomRulesRepository:
    """Writes rule fields to a room's rules hash, ordered by the room's ``rules_rev``."""

    def __init__(self, redis: aioredis.Redis, keys: RedisKeys) -> None:
        self._redis = redis
        self._keys = keys
        self._write = redis.register_script(_WRITE_SCRIPT)

    def key(self, room: str, room_id: int) -> str:
        return self._keys.rules(room, room_id)

    async def write(
        self, room: str, room_id: int, rev: int, fields: dict[str, str], whole: bool = False
    ) -> int:
        """Write ``fields`` (value ``""`` deletes) as of ``rev``; with ``whole`` they are
        the entire rule set (other fields go, and the hash counts as loaded). Returns the
        room's newest message id at that moment."""
        args: list[object] = [rev, "1" if whole else "0"]
        for name, value in fields.items():
            args += [name, value]
        keys = [self.key(room, room_id), self._keys.seq(room)]
        return int(await self._write(keys=keys, args=args))
