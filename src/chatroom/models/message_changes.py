"""Edits, deletes and reactions of stored messages in Redis (SPEC §5), and mention counts.

A room's log is a Redis list of ``message`` frames, oldest first, with
consecutive ids, so the message ``id`` is at index ``id - first_id``. A change is
computed in Python from the frame it read, then committed by one script that, in
one atomic step, checks the frame is still the one read (else ``CONFLICT``: read
again and recompute), takes a token from the sender's send bucket, raises the
room's ``rev``, replaces the frame (LSET), records the message's last-change rev
for catch-up (the ``changes`` sorted set), moves its id between the mentioned
users' sets, and publishes the event frame. So concurrent changes from any number
of processes apply one after another, none lost, published in ``rev`` order.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from string import Template

import orjson
import redis.asyncio as aioredis

from chatroom.models.events import EventBus
from chatroom.models.keys import RedisKeys
from chatroom.models.limits import TAKE_TOKEN_LUA, SendRate, SendRateExceeded
from chatroom.models.room_rules import CHECK_RULES_LUA, NONE, RuleRefused, RulesCheck, RuleStatus


class ChangeStatus(IntEnum):
    """What the change script did: the first element of its reply ``{status, value}``."""

    #: Stored and published; value is the room's new rev.
    CHANGED = 1
    #: The message changed since it was read: nothing done; read it again.
    CONFLICT = 2
    #: The message is no longer in the log (trimmed): nothing done.
    GONE = 3
    #: The send bucket is empty: nothing done; value is the wait in milliseconds.
    RATE_LIMITED = 4
    #: [issue 13] The room's rules refuse it: nothing done; value is the RuleStatus.
    REFUSED = 5


# Reads one message of the log by id. KEYS: seq, log. ARGV: id. Replies {seq, frame or false}.
_READ_SCRIPT = """
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
local index = tonumber(ARGV[1]) - (seq - redis.call('LLEN', KEYS[2]) + 1)
if index < 0 then return {seq, false} end
return {seq, redis.call('LINDEX', KEYS[2], index)}
"""

# KEYS: seq, log, rev, changes, rate bucket, the rules hash, then the mention sets: the
# first ARGV[10] of them get the id, the rest lose it. ARGV: id, the frame read, the new
# frame and the event frame (each without its closing brace: the script adds the
# rev), event channel, envelope head, bucket size, refill per second, history size,
# how many mention sets get the id, then the rules check's user key, mode and
# exemption. Replies {ChangeStatus, value}.
_CHANGE_SCRIPT = (
    TAKE_TOKEN_LUA
    + CHECK_RULES_LUA
    + Template(
        """
-- [issue 13] a ban, a mute or read-only refuses the change in this same atomic step.
local refused = check_rules(KEYS[6], ARGV[11], ARGV[12], ARGV[13])
if refused ~= 0 then return {$REFUSED, refused} end
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
local length = redis.call('LLEN', KEYS[2])
local id = tonumber(ARGV[1])
local first = seq - length + 1
local index = id - first
if index < 0 or index >= length then return {$GONE, 0} end
if redis.call('LINDEX', KEYS[2], index) ~= ARGV[2] then return {$CONFLICT, 0} end
local burst, rate = tonumber(ARGV[7]), tonumber(ARGV[8])
if burst > 0 then
  local wait = take_token(KEYS[5], burst, rate, 1)
  if wait > 0 then return {$RATE_LIMITED, wait} end
end
local rev = redis.call('INCR', KEYS[3])
local tail = ',"rev":' .. rev .. '}'
redis.call('LSET', KEYS[2], index, ARGV[3] .. tail)
redis.call('ZADD', KEYS[4], rev, id)
-- Forget the changes of messages no longer in the log, now and then.
if redis.call('ZCARD', KEYS[4]) > length + tonumber(ARGV[9]) then
  for _, member in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do
    if tonumber(member) < first then redis.call('ZREM', KEYS[4], member) end
  end
end
local adds = tonumber(ARGV[10])
for i = 7, #KEYS do
  if i < 7 + adds then redis.call('ZADD', KEYS[i], id, id) else redis.call('ZREM', KEYS[i], id) end
end
redis.call('PUBLISH', ARGV[5], ARGV[6] .. ARGV[4] .. tail)
return {$CHANGED, rev}
"""
    ).substitute({status.name: int(status) for status in ChangeStatus})
)


@dataclass(frozen=True)
class StoredFrame:
    """One message as the log holds it: its frame bytes and decoded fields."""

    raw: bytes
    item: dict


@dataclass(frozen=True)
class Change:
    """A change to commit: the new message fields and the event frame (both without
    ``rev``, which the script adds), and the mention sets to add to / remove from."""

    item: dict
    event: dict
    mention_adds: tuple[str, ...] = ()
    mention_removes: tuple[str, ...] = ()


def _open(frame: dict) -> bytes:
    """The JSON of ``frame`` without its closing brace, for the script to append ``rev``."""
    return orjson.dumps({k: v for k, v in frame.items() if k != "rev"})[:-1]


class MessageChangeRepository:
    """Reads one stored message and commits changes to it; counts unread mentions."""

    def __init__(
        self, redis: aioredis.Redis, keys: RedisKeys, history_size: int, events: EventBus
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._history_size = history_size
        self._events = events
        self._read = redis.register_script(_READ_SCRIPT)
        self._change = redis.register_script(_CHANGE_SCRIPT)

    def mention_key(self, room: str, user_key: str) -> str:
        """The set of ids of the room's messages that mention ``user_key``."""
        return self._keys.mentions(room, user_key)

    async def read(self, room: str, message_id: int) -> tuple[int, StoredFrame | None]:
        """The room's newest id and the stored message ``message_id`` (None: not in Redis)."""
        keys = self._keys
        seq, raw = await self._read(keys=[keys.seq(room), keys.log(room)], args=[message_id])
        if not raw or not 1 <= message_id <= int(seq):
            return int(seq), None
        return int(seq), StoredFrame(raw, orjson.loads(raw))

    async def commit(
        self,
        room: str,
        user_key: str,
        read: StoredFrame,
        change: Change,
        rate: SendRate,
        rules: RulesCheck | None = None,
    ) -> tuple[ChangeStatus, int]:
        """Commit ``change`` if the message is still ``read``: (status, the new rev).

        ``SendRateExceeded`` when the user's send bucket of the room is empty;
        ``RuleRefused`` when the room's ``rules`` refuse it (issue 13).
        """
        keys = self._keys
        before, after = self._events.message_envelope(room)
        mention_keys = [self.mention_key(room, u) for u in change.mention_adds]
        mention_keys += [self.mention_key(room, u) for u in change.mention_removes]
        status, value = await self._change(
            keys=[
                keys.seq(room),
                keys.log(room),
                keys.rev(room),
                keys.changes(room),
                keys.send_rate(room, user_key),
                rules.key if rules is not None else keys.rules(room, 0),
                *mention_keys,
            ],
            args=[
                int(change.item["id"]),
                read.raw,
                _open(change.item),
                _open(change.event),
                self._events.channel,
                before + after,  # an event of no message id: never deduplicated by id
                rate.burst,
                rate.per_second,
                self._history_size,
                len(change.mention_adds),
                *(rules.args() if rules is not None else ["", NONE, "0"]),
            ],
        )
        if status == ChangeStatus.RATE_LIMITED:
            raise SendRateExceeded(int(value) / 1000)
        if status == ChangeStatus.REFUSED:
            raise RuleRefused(RuleStatus(int(value)))
        return ChangeStatus(status), int(value)

    async def mention_counts(self, user_key: str, read_marks: dict[str, int]) -> dict[str, int]:
        """Per room: how many messages after the read mark mention the user."""
        if not read_marks:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for room, mark in read_marks.items():
                pipe.zcount(self.mention_key(room, user_key), f"({mark}", "+inf")
            counts = await pipe.execute()
        return {room: int(n) for room, n in zip(read_marks, counts, strict=True)}
