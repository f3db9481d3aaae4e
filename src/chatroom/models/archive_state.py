"""The Redis side of archiving (SPEC §7): what is not archived yet, the per-room
watermark, retention in Redis (the locks are ``models/archive_locks.py``, what a new
epoch leaves for the archiver ``models/epoch_repair.py``).

The watermark ``{room}:archived`` is the highest id known to be in SQL with every
smaller id before it; the send script never trims a message above it (see
``models/messages.py``), so Redis drops nothing the archive lacks. The watermark
can always be derived again from SQL (``archive.newest_archived_ids``).
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from chatroom.models.archive_locks import ArchiveLocks
from chatroom.models.epoch_repair import EpochRepair
from chatroom.models.events import EventBus
from chatroom.models.keys import RedisKeys
from chatroom.models.messages import history_item
from chatroom.models.replication import node_calls

# The retained messages with ids in (after, after + count], atomically with the
# room's counter. KEYS: seq, log. ARGV: after, count.
# Returns {seq, first retained id, id of the first item, items...}.
_RANGE_SCRIPT = """
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
local len = redis.call('LLEN', KEYS[2])
local first = seq - len + 1
local lo = math.max(first, tonumber(ARGV[1]) + 1)
local hi = math.min(seq, tonumber(ARGV[1]) + tonumber(ARGV[2]))
local out = {seq, first, lo}
if hi >= lo then
  local items = redis.call('LRANGE', KEYS[2], lo - first, hi - first)
  for i = 1, #items do out[#out + 1] = items[i] end
end
return out
"""

# The same range for the archiver, as one JSON array of the stored frames (what SQL
# takes apart: models/archive_insert.py), so no frame is handled one by one in Python.
# KEYS: seq, log. ARGV: after, count. Returns {seq, first retained id, id of the first
# frame, how many frames, the array}.
_BATCH_SCRIPT = """
if KEYS[3] then redis.call('SET', KEYS[3], '1', 'PX', 60000) end
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
local len = redis.call('LLEN', KEYS[2])
local first = seq - len + 1
local lo = math.max(first, tonumber(ARGV[1]) + 1)
local hi = math.min(seq, tonumber(ARGV[1]) + tonumber(ARGV[2]))
if hi < lo then return {seq, first, lo, 0, '[]'} end
local items = redis.call('LRANGE', KEYS[2], lo - first, hi - first)
return {seq, first, lo, #items, '[' .. table.concat(items, ',') .. ']'}
"""

# For the lag: the newest id, the watermark (0 for none) and the oldest message above it
# (or ''). KEYS: seq, watermark, log.
_OLDEST_SCRIPT = """
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
local mark = tonumber(redis.call('GET', KEYS[2]) or '0')
local len = redis.call('LLEN', KEYS[3])
local first = seq - len + 1
local at = math.max(first, mark + 1)
if at > seq then return {seq, mark, ''} end
return {seq, mark, redis.call('LINDEX', KEYS[3], at - first) or ''}
"""

# Raise the watermark (never lower it), then trim what the archive no longer needs
# Redis to keep. KEYS: watermark, seq, log. ARGV: archived id, history size.
_ADVANCE_SCRIPT = """
local stored = redis.call('GET', KEYS[1])
local mark = tonumber(stored or '0')
local id = tonumber(ARGV[1])
-- Stored even when it stays 0: a room with nothing archived yet then has a
-- watermark, and the archiver does not look it up in SQL again on every pass.
if id > mark or not stored then
  mark = math.max(id, mark)
  redis.call('SET', KEYS[1], mark)
end
local seq = tonumber(redis.call('GET', KEYS[2]) or '0')
local keep = math.max(tonumber(ARGV[2]), seq - mark)
redis.call('LTRIM', KEYS[3], -keep, -1)
return mark
"""

# Drop the oldest retained messages that are archived and older than a cutoff.
# KEYS: watermark, seq, log. ARGV: cutoff ts. Returns how many were dropped.
_EXPIRE_SCRIPT = """
local mark = tonumber(redis.call('GET', KEYS[1]) or '0')
local seq = tonumber(redis.call('GET', KEYS[2]) or '0')
local len = redis.call('LLEN', KEYS[3])
local first = seq - len + 1
local cutoff = tonumber(ARGV[1])
local drop = 0
while first + drop <= mark and drop < len do
  local item = redis.call('LINDEX', KEYS[3], drop)
  local ok, message = pcall(cjson.decode, item)
  if not ok or type(message.ts) ~= 'number' or message.ts >= cutoff then break end
  drop = drop + 1
end
if drop > 0 then redis.call('LTRIM', KEYS[3], drop, -1) end
return drop
"""

# An imported room continues after its last imported id, if it is still empty.
# KEYS: seq, watermark. ARGV: the last imported id. Returns 1, or 0 when not empty.
_CLAIM_SCRIPT = """
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[1])
return 1
"""

#: How long the archiver waits for a replica to confirm what it is about to archive.
REPLICA_WAIT_MS = 1000


class NotReplicated(Exception):
    """No replica confirmed the messages the archiver read: archive them later."""


@dataclass(frozen=True)
class RetainedRange:
    """Retained messages of a room as history items, oldest first; ``items[0]`` has
    the id ``first``. ``first_retained`` is the oldest id Redis still holds."""

    seq: int
    first_retained: int
    first: int
    items: list[bytes]

    @property
    def last(self) -> int:
        """The id of the newest item (``first - 1`` when there is none)."""
        return self.first + len(self.items) - 1


@dataclass(frozen=True)
class RetainedBatch:
    """What ``RetainedRange`` says, with the frames as one JSON array (``frames``,
    ``count`` of them, the first with the id ``first``), for the SQL insert."""

    seq: int
    first_retained: int
    first: int
    count: int
    frames: bytes

    @property
    def last(self) -> int:
        """The id of the newest frame (``first - 1`` when there is none)."""
        return self.first + self.count - 1


class ArchiveState:
    """The archive's Redis keys: watermarks, the retained ranges it copies, its locks."""

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: RedisKeys,
        events: EventBus | None = None,
        replicas: int = 0,
    ) -> None:
        self._redis = redis
        self._keys = keys
        #: [SPEC §8] Sentinel or Cluster: the archive takes only what a replica has.
        self._replicas = replicas
        #: [SPEC §8] What a new epoch leaves for the archiver (models/epoch_repair.py).
        self.epochs = EpochRepair(redis, keys, events or EventBus(redis, keys))
        #: Who archives, who applies retention: one process at a time.
        self.locks = ArchiveLocks(redis, keys)
        self._range = redis.register_script(_RANGE_SCRIPT)
        self._batch = redis.register_script(_BATCH_SCRIPT)
        self._oldest = redis.register_script(_OLDEST_SCRIPT)
        self._advance = redis.register_script(_ADVANCE_SCRIPT)
        self._expire = redis.register_script(_EXPIRE_SCRIPT)
        self._claim = redis.register_script(_CLAIM_SCRIPT)

    async def positions(self, rooms: list[str]) -> dict[str, tuple[int, int | None]]:
        """Each room's (newest id, watermark or None when it has none yet)."""
        if not rooms:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for room in rooms:
                pipe.get(self._keys.seq(room))
                pipe.get(self._keys.archived(room))
            values = await pipe.execute()
        seqs, marks = values[0::2], values[1::2]
        return {
            room: (int(seq or 0), None if mark is None else int(mark))
            for room, seq, mark in zip(rooms, seqs, marks, strict=True)
        }

    async def retained(self, room: str, after: int, count: int) -> RetainedRange:
        """The retained messages with ids in (after, after + count], as history items
        (paging and export; the archiver reads with ``batches``)."""
        keys = [self._keys.seq(room), self._keys.log(room)]
        seq, first_retained, first, *frames = await self._range(keys=keys, args=[after, count])
        return RetainedRange(
            int(seq), int(first_retained), int(first), [history_item(f) for f in frames]
        )

    async def batches(
        self, after: dict[str, int], count: int, replicated: bool = False
    ) -> dict[str, RetainedBatch]:
        """Per room, the retained messages with ids in (after[room], after[room] + count],
        as one JSON array; one round trip for all the rooms.

        ``replicated`` (SPEC §8, with replicas): only once a replica has them too, each
        room on its own node's connection, else ``NotReplicated``: a message the master
        loses in a failover is never archived, so its sender's retry, stored again on
        the new master, is not a duplicate."""
        keys = self._keys
        calls = [([keys.seq(room), keys.log(room)], [mark, count]) for room, mark in after.items()]
        if replicated and self._replicas:
            replies = [
                await self._replicated_batch(room, *call)
                for room, call in zip(after, calls, strict=True)
            ]
        else:
            replies = await self._each(self._batch, calls)
        return {
            room: RetainedBatch(int(seq), int(first_retained), int(first), int(found), frames)
            for room, (seq, first_retained, first, found, frames) in zip(
                after, replies, strict=True
            )
        }

    async def _replicated_batch(self, room: str, keys: list[str], args: list) -> list:
        calls = node_calls(self._redis)
        if not await calls.replicas_of(keys[0]):
            # A master without replicas (a Cluster or Sentinel set up without them):
            # there is no replica to lag behind it, so nothing to wait for.
            [reply] = await self._each(self._batch, [(keys, args)])
            return reply
        reply, waited = await calls.call_then(
            keys[0], self._batch, [*keys, self._keys.sync(room)], args,
            "WAIT", self._replicas, REPLICA_WAIT_MS,
        )  # fmt: skip
        if int(waited) < self._replicas:
            raise NotReplicated(f"no replica confirmed the messages of {room} in time")
        return reply

    async def advance_all(self, archived: dict[str, int], history_size: int) -> dict[str, int]:
        """``advance`` for several rooms in one round trip; each room's watermark."""
        keys = self._keys
        calls = [
            ([keys.archived(room), keys.seq(room), keys.log(room)], [archived_id, history_size])
            for room, archived_id in archived.items()
        ]
        marks = await self._each(self._advance, calls)
        return {room: int(mark) for room, mark in zip(archived, marks, strict=True)}

    async def oldest_unarchived(self, rooms: list[str]) -> dict[str, tuple[int, int, bytes]]:
        """For the lag: each room's (newest id, watermark, its oldest unarchived frame or
        b"" when none); one round trip."""
        keys = self._keys
        calls = [([keys.seq(room), keys.archived(room), keys.log(room)], []) for room in rooms]
        replies = await self._each(self._oldest, calls)
        return {
            room: (int(seq), int(mark), frame)
            for room, (seq, mark, frame) in zip(rooms, replies, strict=True)
        }

    async def _each(self, script: AsyncScript, calls: list[tuple[list[str], list]]) -> list:
        """``script`` once per (keys, args), pipelined: one round trip (two when Redis has
        lost its scripts, e.g. after a restart)."""
        if not calls:
            return []
        for attempt in (1, 2):
            async with self._redis.pipeline(transaction=False) as pipe:
                for keys, args in calls:
                    pipe.evalsha(script.sha, len(keys), *keys, *args)
                try:
                    return await pipe.execute()
                except NoScriptError:
                    if attempt == 2:
                        raise
            script.sha = await self._redis.script_load(script.script)
        raise AssertionError("unreachable")

    async def advance(self, room: str, archived_id: int, history_size: int) -> int:
        """Raise the room's watermark to ``archived_id`` and trim Redis down to what it
        must still hold; returns the watermark."""
        keys = self._keys
        return int(
            await self._advance(
                keys=[keys.archived(room), keys.seq(room), keys.log(room)],
                args=[archived_id, history_size],
            )
        )

    async def expire(self, room: str, cutoff_ts: float) -> int:
        """Retention: drop the room's archived messages older than ``cutoff_ts`` from Redis."""
        keys = self._keys
        return int(
            await self._expire(
                keys=[keys.archived(room), keys.seq(room), keys.log(room)], args=[cutoff_ts]
            )
        )

    async def claim_imported(self, room: str, last_id: int) -> bool:
        """After an import: the room's counter and watermark become ``last_id``, unless
        a message arrived meanwhile (then False, nothing changed)."""
        keys = self._keys
        return bool(await self._claim(keys=[keys.seq(room), keys.archived(room)], args=[last_id]))
