"""RoomEpochs: each room's id floor as this process knows it, and the epoch started
from it when Redis lost the room's history (SPEC §8, models/epochs.py).

The send path passes the floor it has in memory (no SQL on the hot path): the
highest id this process stored, read, saw published or archived in the room. That lets the send
script see a counter that went back (a failover to a replica that lagged) and
start a new epoch above it at once. A room with no epoch at all (new, or wiped by
a flush) is the one case that needs the archive's own highest id: the script
stores nothing and asks, ``ensure`` reads it from SQL once (with the room's highest
read marker, in the same query), and the send goes again.
"""

from __future__ import annotations

import asyncio

from chatroom.controllers.blocking import BlockingRunner
from chatroom.controllers.errors import storage_guard
from chatroom.models import Membership
from chatroom.models.epochs import UNKNOWN_FLOOR, EpochRepository

#: The most rooms whose floor is kept; past it the cache starts again (a room whose
#: floor is forgotten only costs one SQL read if it ever loses its epoch).
MAX_ROOMS = 100_000


class RoomEpochs:
    """The per-process floors (by room name; a deleted room's is forgotten, and one a
    process missed only makes a new room of that name start above it) and the start
    of a room's epoch."""

    def __init__(self, run: BlockingRunner, repository: EpochRepository) -> None:
        self._run = run
        self._repository = repository
        self._floors: dict[str, int] = {}
        # One start per room at a time in this process: after a flush every client
        # reconnects and joins at once, and they share the one SQL read.
        self._starting: dict[str, asyncio.Future[str]] = {}

    def cached(self, room: str) -> int:
        """The room's floor as this process knows it; ``UNKNOWN_FLOOR`` when it does not."""
        return self._floors.get(room, UNKNOWN_FLOOR)

    def note(self, room: str, message_id: int) -> None:
        """``message_id`` is in use in the room (stored, read, published or archived)."""
        if message_id > self._floors.get(room, 0):
            if len(self._floors) >= MAX_ROOMS and room not in self._floors:
                self._floors.clear()
            self._floors[room] = message_id

    def forget(self, room: str) -> None:
        """The room was deleted: its ids mean nothing any more."""
        self._floors.pop(room, None)

    async def ensure(self, room_id: int, room: str) -> str:
        """The room's epoch; a new one (ids continuing after the floor) if it had none."""
        return (await self.ensure_all({room: room_id}))[room]

    async def ensure_all(self, rooms: dict[str, int]) -> dict[str, str]:
        """``ensure`` for each of ``rooms`` (name -> id): their epochs. The rooms no one
        in this process is starting yet read SQL together, in one query (one hop to
        the pool): after a flush, a ``hello`` finds every room of the user without one."""
        new = {name: room_id for name, room_id in rooms.items() if name not in self._starting}
        if new:
            reads = asyncio.ensure_future(
                self._run(Membership.epoch_start_reads, list(new.values()))
            )
            # Registered before any await: a concurrent ``ensure`` of one of them waits
            # for this start instead of reading SQL again.
            for name, room_id in new.items():
                self._starting[name] = asyncio.ensure_future(self._ensure(room_id, name, reads))
        # A cancelled caller leaves each start to the others.
        starts = [asyncio.shield(self._starting[name]) for name in rooms]
        return dict(zip(rooms, await asyncio.gather(*starts), strict=True))

    async def _ensure(
        self, room_id: int, room: str, reads: asyncio.Future[dict[int, tuple[int, int]]]
    ) -> str:
        try:
            # The floor is the archive's highest id and the cache's; the one query
            # reads the archive's with the room's highest read marker. Its failure
            # reaches the start of every room it was for (and so all their waiters).
            archived, highest_read = (await asyncio.shield(reads))[room_id]
            self.note(room, archived)
            floor = max(archived, self._floors.get(room, 0))
            # A marker above the floor names a message of a lost history: the epoch
            # notes where it starts, for the archiver to lower such markers. None
            # above it (a new room): no note, or the archiver would lower the markers
            # that the first readers set before its next pass.
            stale = highest_read > floor
            with storage_guard():
                return await self._repository.ensure(room, floor, stale_reads=stale)
        finally:
            self._starting.pop(room, None)

    async def went_back(self, room: str, seen: int) -> None:
        """This process saw ids up to ``seen`` in the room, and Redis now holds fewer (a
        failover to a replica that had not received them): a new epoch above them."""
        self.note(room, seen)
        with storage_guard():
            await self._repository.ensure(room, self._floors[room])
