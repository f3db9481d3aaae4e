"""What a new epoch leaves for the archiver (SPEC §8), on the Redis side: the
counter's repair when Redis went back below the archive, the orphans (messages a new
epoch took out of the log before the archive had them) and the stale read markers
(markers above the point where the new epoch's ids start).

A new epoch starts in one script (``START_EPOCH_LUA``, ``models/epochs.py``), from
whichever process touches the room first; it records its leftovers in the room's own
keys, so that they do not depend on that process living on, or on any process
hearing the ``epoch`` event: the archiver (one process at a time) finds them on its
next pass.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from chatroom.models.epochs import START_EPOCH_LUA, epoch_event, epoch_keys, new_epoch
from chatroom.models.events import EventBus
from chatroom.models.keys import RedisKeys
from chatroom.models.messages import history_item

# Redis went back (restored from an older snapshot, or emptied) below what SQL holds:
# the room starts a new epoch (models/epochs.py): the counter and watermark become the
# archive's highest id, so ids never go back, and the retained messages (archived ones,
# and ones reusing archived ids that the archive would ignore) are dropped.
# KEYS: seq, watermark, log, changes, epoch, orphans, stale reads. ARGV: the highest
# archived id, a new epoch, the channel, the epoch event. Returns {the counter before,
# the watermark before}, or {} when the counter is not behind.
_RAISE_SCRIPT = (
    START_EPOCH_LUA
    + """
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
local top = tonumber(ARGV[1])
if seq >= top then return {} end
local mark = tonumber(redis.call('GET', KEYS[2]) or '0')
start_epoch(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], top, ARGV[2],
            ARGV[3], ARGV[4])
return {seq, mark}
"""
)

# The stale read markers above ARGV[1] are lowered: forget the note, unless a newer
# epoch replaced it meanwhile (its markers are lowered on the next pass). KEYS: stale reads.
_LOWERED_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""


class EpochRepair:
    """The archiver's side of new epochs: the counter's repair, orphans, stale reads."""

    def __init__(self, redis: aioredis.Redis, keys: RedisKeys, events: EventBus) -> None:
        self._redis = redis
        self._keys = keys
        self._events = events
        self._raise = redis.register_script(events.script(_RAISE_SCRIPT))
        self._lowered = redis.register_script(_LOWERED_SCRIPT)

    async def raise_counter(self, room: str, archived_id: int) -> tuple[int, int] | None:
        """When the room's counter is below ``archived_id`` (the archive's highest id):
        counter and watermark become ``archived_id`` and the retained list is dropped;
        returns (counter, watermark) as they were. None when the counter was not behind.
        The room starts a new epoch (SPEC §8), announced on the bus."""
        epoch = new_epoch()
        before = await self._raise(
            keys=epoch_keys(self._keys, room),
            args=[archived_id, epoch, self._events.room_channel(room), epoch_event(room, epoch)],
        )
        return (int(before[0]), int(before[1])) if before else None

    async def orphan_counts(self, rooms: list[str]) -> dict[str, int]:
        """How many messages wait in each room's orphans list (SPEC §8): those a new
        epoch took out of the log before they were archived. Rooms with none are left out."""
        if not rooms:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for room in rooms:
                pipe.llen(self._keys.orphans(room))
            counts = await pipe.execute()
        return {room: int(n) for room, n in zip(rooms, counts, strict=True) if n}

    async def orphans(self, room: str, count: int) -> list[bytes]:
        """The oldest ``count`` orphans of the room, as history items."""
        frames = await self._redis.lrange(self._keys.orphans(room), 0, count - 1)
        return [history_item(f) for f in frames]

    async def drop_orphans(self, room: str, count: int) -> None:
        """The oldest ``count`` orphans are archived (a new epoch only appends)."""
        await self._redis.ltrim(self._keys.orphans(room), count, -1)

    async def stale_reads(self, rooms: list[str]) -> dict[str, int]:
        """Each room whose newest epoch's read markers are not lowered yet, with the id
        its ids start after: a marker above it names a message of the lost history.
        One round trip; rooms without are left out."""
        if not rooms:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for room in rooms:
                pipe.get(self._keys.stale_reads(room))
            values = await pipe.execute()
        return {room: int(v) for room, v in zip(rooms, values, strict=True) if v is not None}

    async def reads_lowered(self, room: str, after: int) -> None:
        """The markers of ``room`` above ``after`` are lowered (in SQL): drop the note,
        unless a newer epoch wrote its own meanwhile."""
        await self._lowered(keys=[self._keys.stale_reads(room)], args=[after])
