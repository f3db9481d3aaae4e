"""Epochs (SPEC §8): which life of a room's Redis history a client's ids belong to.

Every room keeps an ``epoch`` string next to its counter (``{room}:epoch``, in the
room's slot). Redis can lose a room's keys — a ``FLUSHALL``, a failover to a
replica that lagged, an AOF lost with its disk — and then the counter is gone or
behind. Whoever touches the room next (a send, a join, the archiver) finds the
epoch missing, or the counter below the *floor* (the highest id known to be used:
the SQL archive's, and what this process has seen), and starts a new epoch in
one script: the counter rises to the floor, so ids continue after every id the
archive holds, the retained list (whose ids no longer line up) is dropped, the
epoch is set, and an ``epoch`` event goes out on the bus so that each process
resyncs its sockets in that room (``joined`` with ``reset: true``).

``START_EPOCH_LUA`` is the one definition of that step; the send script
(``models.messages``), ``EpochRepository.ensure`` and the archiver's repair
(``models.archive``) all include it.
"""

from __future__ import annotations

import secrets

import orjson
import redis.asyncio as aioredis

from chatroom.models.events import EventBus, encode_envelope
from chatroom.models.keys import RedisKeys

#: The floor of a room whose floor this process does not know: the send script then
#: stores nothing when the epoch is missing and asks for it (SQL is not on its path).
UNKNOWN_FLOOR = -1

# start_epoch(seq, watermark, log, changes, epoch key, orphans, stale reads, floor,
# epoch, channel, event): when the counter is below the floor, raise it (and the
# watermark) to the floor; the retained messages the archive may not have yet (ids
# above the watermark) move to the orphans list, which the archiver copies to SQL, and
# the retained list and the change index, whose ids no longer line up with the
# counter, are dropped. Then set the epoch, note where its ids start (the archiver
# lowers read markers above that point: they name messages of the lost history;
# k_stale false: no marker can be above it, nothing to note) and publish the event.
# Returns the counter as it was.
START_EPOCH_LUA = """
local function start_epoch(k_seq, k_mark, k_log, k_changes, k_epoch, k_orphans, k_stale,
                           floor, epoch, channel, event)
  local seq = tonumber(redis.call('GET', k_seq) or '0')
  if k_stale then redis.call('SET', k_stale, math.max(seq, floor)) end
  if seq < floor then
    local mark = tonumber(redis.call('GET', k_mark) or '0')
    if seq > mark then
      local items = redis.call('LRANGE', k_log, mark - seq, -1)
      for i = 1, #items, 1000 do
        redis.call('RPUSH', k_orphans, unpack(items, i, math.min(i + 999, #items)))
      end
    end
    redis.call('SET', k_seq, floor)
    redis.call('DEL', k_log, k_changes)
    if mark < floor then redis.call('SET', k_mark, floor) end
  end
  redis.call('SET', k_epoch, epoch)
  redis.call('PUBLISH', channel, event)
  return seq
end
"""

# Start a new epoch when the room has none or its counter is below the floor;
# else nothing. KEYS: seq, watermark, log, changes, epoch, orphans, stale reads.
# ARGV: floor, new epoch, channel, event, and '0' when no read marker is above the
# floor (no stale-reads note: a new room). Returns the room's epoch.
_ENSURE_SCRIPT = (
    START_EPOCH_LUA
    + """
local current = redis.call('GET', KEYS[5])
local floor = tonumber(ARGV[1])
if current and tonumber(redis.call('GET', KEYS[1]) or '0') >= floor then return current end
local k_stale = KEYS[7]
if ARGV[5] == '0' then k_stale = false end
start_epoch(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], k_stale, floor, ARGV[2],
            ARGV[3], ARGV[4])
return ARGV[2]
"""
)


def new_epoch() -> str:
    """A fresh epoch: 16 hex digits, unguessable, so no two lives of a room share one."""
    return secrets.token_hex(8)


def epoch_event(room: str, epoch: str) -> bytes:
    """The bus envelope that tells every process ``room`` has a new ``epoch``."""
    frame = orjson.dumps({"type": "epoch", "room": room, "epoch": epoch})
    return encode_envelope(room, 0, "", frame)


#: What an ``epoch`` event's frame starts with (``FanoutHub`` never relays it).
EPOCH_FRAME_PREFIX = b'{"type":"epoch",'


def epoch_keys(keys: RedisKeys, room: str) -> list[str]:
    """The keys ``start_epoch`` takes, in its order."""
    return [
        keys.seq(room),
        keys.archived(room),
        keys.log(room),
        keys.changes(room),
        keys.epoch(room),
        keys.orphans(room),
        keys.stale_reads(room),
    ]


class EpochRepository:
    """Reads rooms' epochs and starts a new one where a room has lost its history."""

    def __init__(self, redis: aioredis.Redis, keys: RedisKeys, events: EventBus) -> None:
        self._redis = redis
        self._keys = keys
        self._events = events
        self._ensure = redis.register_script(events.script(_ENSURE_SCRIPT))

    async def ensure(self, room: str, floor: int, stale_reads: bool = True) -> str:
        """The room's epoch, after starting a new one if it had none or its counter was
        below ``floor`` (the highest id known to be used in the room).

        ``stale_reads`` False: no read marker of the room is above ``floor`` (a new
        room), so the new epoch leaves the archiver no markers to lower."""
        epoch = new_epoch()
        channel, event = self._events.room_channel(room), epoch_event(room, epoch)
        current = await self._ensure(
            keys=epoch_keys(self._keys, room),
            args=[floor, epoch, channel, event, "1" if stale_reads else "0"],
        )
        return current.decode() if isinstance(current, bytes) else str(current)

    async def current(self, rooms: list[str]) -> dict[str, str | None]:
        """Each room's epoch as stored (None where it has none yet)."""
        if not rooms:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for room in rooms:
                pipe.get(self._keys.epoch(room))
            values = await pipe.execute()
        return {room: v.decode() if v else None for room, v in zip(rooms, values, strict=True)}
