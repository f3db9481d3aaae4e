"""EpochLeftovers: the archiver's part in new epochs (SPEC §8) — it copies the orphans
a new epoch took out of a room's log to SQL, lowers the read markers above a new
epoch's start, and starts a new epoch itself where a room's Redis counter went back
below the archive. The Redis side is ``models/epoch_repair.py``; the archiver
(controllers/archive.py) calls these on each pass."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from chatroom.controllers.archive_metrics import ArchiveMetrics
from chatroom.controllers.epochs import RoomEpochs
from chatroom.models import Membership
from chatroom.models import archive as store
from chatroom.models.archive_insert import store_batch
from chatroom.models.epoch_repair import EpochRepair

log = logging.getLogger("chatroom.controllers.archive")  # the archiver's log lines


class EpochLeftovers:
    """What a new epoch leaves for the archiver, handled on its pass (``sql`` runs a
    call in the archiver's SQL thread pool)."""

    def __init__(
        self,
        sql: Callable[..., Awaitable[Any]],
        repair: EpochRepair,
        metrics: ArchiveMetrics,
        floors: RoomEpochs | None,
        batch: int,
    ) -> None:
        self._sql = sql
        self._repair = repair
        self._metrics = metrics
        #: The process's floors: the send path's, raised by what the archiver copies.
        self._floors = floors
        self._batch = batch

    async def archive_orphans(self, room_ids: dict[str, int]) -> int:
        """Copy every room's orphans (the messages a new epoch took out of its log) to
        SQL; how many."""
        copied = 0
        for name, waiting in (await self._repair.orphan_counts(list(room_ids))).items():
            copied += await self._archive_orphans(name, room_ids[name], waiting)
        return copied

    async def _archive_orphans(self, name: str, room_id: int, waiting: int) -> int:
        copied = 0
        while copied < waiting:
            items = await self._repair.orphans(name, self._batch)
            if not items:
                break
            await self._sql(store_batch, room_id, store.parse_items(items))
            await self._repair.drop_orphans(name, len(items))
            copied += len(items)
            self._metrics.archived.inc(len(items))
        log.warning("archive: copied %d messages of %s left by a new epoch", copied, name)
        return copied

    async def lower_stale_reads(self, rooms: list[str], room_ids: dict[str, int]) -> None:
        """Read markers above the point where a room's new epoch started name messages
        of the lost history: lower them to it, so that the new messages count as
        unread. Idempotent (two archivers at once, or a crash before the note is
        dropped, lower to the same point); a room's markers can only pass that point
        once new messages arrived, which puts the room on the very next pass."""
        stale = await self._repair.stale_reads(rooms)
        if not stale:
            return
        lowered = await self._sql(
            Membership.lower_read_markers, {room_ids[name]: after for name, after in stale.items()}
        )
        for name, after in stale.items():
            await self._repair.reads_lowered(name, after)
        if lowered:
            log.warning("archive: lowered %d read markers above new epochs' starts", lowered)

    async def counter_behind(self, name: str, top: int) -> None:
        """Redis went back (an older snapshot, or emptied) below the archive: new messages
        would reuse archived ids, which the archive ignores. Raise the counter to the
        archive's highest id so ids never go back (SPEC §8); see docs/archive.md."""
        if self._floors is not None:  # and above every id this process saw in the room
            top = max(top, self._floors.cached(name))
        before = await self._repair.raise_counter(name, top)
        if before is None:  # a message arrived meanwhile and the counter caught up
            return
        seq, mark = before
        self._metrics.counter_resets.inc()
        # Messages above the old watermark may have reused archived ids: the archive
        # could not keep them. (Some may be the snapshot's copies of archived ones.)
        reused = max(0, seq - mark)
        if reused:
            self._metrics.lost.inc(reused)
        log.error(
            "archive: the Redis counter of %s was %d, below the archive's highest id %d "
            "(Redis restored from an older snapshot?); raised it to %d, dropping %d retained "
            "messages above the old watermark %d",
            name, seq, top, top, reused, mark,
        )  # fmt: skip
