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

A message trimmed from the log but kept in the SQL archive is changed the same
way, with its own script: the new frame goes to a key of its own
(``archived_change``) instead of the log, which is the message's truth until the
SQL archive has the change; then that key keeps, for ``SETTLED_TTL_SECONDS``, the
rev SQL has, so a change computed from a copy of SQL read before that write is
refused as ``STALE`` and read again, never lost.
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
    #: An archived message: the copy read from SQL is older than a change Redis knows
    #: of (SQL is being written): nothing done; read again shortly.
    STALE = 5


#: How long the key of an archived message's change keeps the rev SQL has after SQL
#: has it: far longer than any change takes between reading SQL and committing.
SETTLED_TTL_SECONDS = 600


# Reads one message of the log by id. KEYS: seq, log. ARGV: id. Replies {seq, frame or false}.
_READ_SCRIPT = """
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
local index = tonumber(ARGV[1]) - (seq - redis.call('LLEN', KEYS[2]) + 1)
if index < 0 then return {seq, false} end
return {seq, redis.call('LINDEX', KEYS[2], index)}
"""

# KEYS: seq, log, rev, changes, rate bucket, then the mention sets: the first
# ARGV[10] of them get the id, the rest lose it. ARGV: id, the frame read, the new
# frame and the event frame (each without its closing brace: the script adds the
# rev), event channel, envelope head, bucket size, refill per second, history size,
# how many mention sets get the id. Replies {ChangeStatus, value}.
_CHANGE_SCRIPT = TAKE_TOKEN_LUA + Template(
    """
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
for i = 6, #KEYS do
  if i < 6 + adds then redis.call('ZADD', KEYS[i], id, id) else redis.call('ZREM', KEYS[i], id) end
end
redis.call('PUBLISH', ARGV[5], ARGV[6] .. ARGV[4] .. tail)
return {$CHANGED, rev}
"""
).substitute({status.name: int(status) for status in ChangeStatus})


# A change of a message only in the archive. KEYS: seq, log, rev, changes, rate
# bucket, the message's archived_change key. ARGV: id, "frame" or "sql" (what the
# change was computed from), the frame read or the rev of the SQL copy read, the new
# frame and the event frame (without closing braces), event channel, envelope head,
# bucket size, refill per second. Replies {ChangeStatus, value}.
_ARCHIVED_CHANGE_SCRIPT = TAKE_TOKEN_LUA + Template(
    """
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
local id = tonumber(ARGV[1])
if id > seq or id >= seq - redis.call('LLEN', KEYS[2]) + 1 then return {$CONFLICT, 0} end
local current = redis.call('GET', KEYS[6])
if ARGV[2] == 'frame' then
  if current ~= ARGV[3] then return {$CONFLICT, 0} end
else
  if current and string.sub(current, 1, 1) == '{' then return {$CONFLICT, 0} end
  local base = tonumber(ARGV[3])
  if current and tonumber(current) > base then return {$STALE, 0} end
  if tonumber(redis.call('ZSCORE', KEYS[4], id) or '0') > base then return {$STALE, 0} end
end
local burst, rate = tonumber(ARGV[8]), tonumber(ARGV[9])
if burst > 0 then
  local wait = take_token(KEYS[5], burst, rate, 1)
  if wait > 0 then return {$RATE_LIMITED, wait} end
end
local rev = redis.call('INCR', KEYS[3])
local tail = ',"rev":' .. rev .. '}'
redis.call('SET', KEYS[6], ARGV[4] .. tail)
redis.call('PUBLISH', ARGV[6], ARGV[7] .. ARGV[5] .. tail)
return {$CHANGED, rev}
"""
).substitute({status.name: int(status) for status in ChangeStatus})

# SQL has an archived message's change: its key keeps only the rev, for a while.
# KEYS: the archived_change key. ARGV: the frame SQL got, its rev, the ttl in seconds.
_SETTLE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3]))
  return 1
end
return 0
"""


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


@dataclass(frozen=True)
class ArchivedCopy:
    """An archived message as a change was computed from it: the pending frame of an
    earlier change (``raw``), or the SQL copy (``raw`` empty) and the rev it reflects."""

    item: dict
    raw: bytes = b""
    version: int = 0


def _open(frame: dict) -> bytes:
    """The JSON of ``frame`` without its closing brace, for the script to append ``rev``."""
    return orjson.dumps({k: v for k, v in frame.items() if k != "rev"})[:-1]


def with_rev(item: dict, rev: int) -> bytes:
    """The frame a script stores for ``item`` at ``rev`` (``_open`` plus the rev tail)."""
    return _open(item) + b',"rev":%d}' % rev


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
        self._archived_change = redis.register_script(_ARCHIVED_CHANGE_SCRIPT)
        self._settle = redis.register_script(_SETTLE_SCRIPT)

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
        self, room: str, user_key: str, read: StoredFrame, change: Change, rate: SendRate
    ) -> tuple[ChangeStatus, int]:
        """Commit ``change`` if the message is still ``read``: (status, the new rev).

        ``SendRateExceeded`` when the user's send bucket of the room is empty.
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
            ],
        )
        if status == ChangeStatus.RATE_LIMITED:
            raise SendRateExceeded(int(value) / 1000)
        return ChangeStatus(status), int(value)

    async def pending_archived(self, room: str, message_id: int) -> bytes | None:
        """The frame of an archived message's change that SQL may not have yet (None:
        SQL's copy is the message)."""
        value = await self._redis.get(self._keys.archived_change(room, message_id))
        return value if value and value.startswith(b"{") else None

    async def commit_archived(
        self, room: str, user_key: str, read: ArchivedCopy, change: Change, rate: SendRate
    ) -> tuple[ChangeStatus, int]:
        """Commit ``change`` of a message only in the archive if it is still ``read``:
        (status, the new rev). No mention sets move: they hold retained messages only."""
        keys = self._keys
        mid = int(change.item["id"])
        before, after = self._events.message_envelope(room)
        status, value = await self._archived_change(
            keys=[
                keys.seq(room),
                keys.log(room),
                keys.rev(room),
                keys.changes(room),
                keys.send_rate(room, user_key),
                keys.archived_change(room, mid),
            ],
            args=[
                mid,
                "frame" if read.raw else "sql",
                read.raw or read.version,
                _open(change.item),
                _open(change.event),
                self._events.channel,
                before + after,
                rate.burst,
                rate.per_second,
            ],
        )
        if status == ChangeStatus.RATE_LIMITED:
            raise SendRateExceeded(int(value) / 1000)
        return ChangeStatus(status), int(value)

    async def settle_archived(self, room: str, item: dict, rev: int) -> bool:
        """SQL has ``item`` at ``rev``: unless a newer change came meanwhile, its key
        keeps only the rev (for ``SETTLED_TTL_SECONDS``)."""
        key = self._keys.archived_change(room, int(item["id"]))
        frame = with_rev(item, rev)
        return bool(await self._settle(keys=[key], args=[frame, rev, SETTLED_TTL_SECONDS]))

    async def mention_counts(self, user_key: str, read_marks: dict[str, int]) -> dict[str, int]:
        """Per room: how many messages after the read mark mention the user."""
        if not read_marks:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for room, mark in read_marks.items():
                pipe.zcount(self.mention_key(room, user_key), f"({mark}", "+inf")
            counts = await pipe.execute()
        return {room: int(n) for room, n in zip(read_marks, counts, strict=True)}
