"""ArchiveController: the background archiver, its lag and retention (SPEC §7).

The archiver copies each room's messages above its watermark from Redis to SQL
in batches, then raises the watermark. Every process runs the loop; a Redis lock
with an expiry lets one of them (on any host) do the work at a time, and since
each batch is inserted idempotently (``INSERT ... ON CONFLICT DO NOTHING`` on
``(room, id)``) and the watermark only ever rises to an id whose batch is
committed, two archivers at once (a lock that expired under a slow database), a
process killed mid-batch or a database outage leave neither duplicates nor gaps.
Paging, search, export and import, the reading side, are ``ArchiveReader``
(controllers/archive_reading.py), which this class extends. See docs/archive.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson
import prometheus_client as prom

from chatroom.controllers.archive_reading import (  # noqa: F401 - re-exported for callers
    DEFAULT_LIMIT,
    MAX_LIMIT,
    MAX_QUERY_CHARS,
    ArchiveReader,
    Page,
    SearchResults,
    search_terms,
)
from chatroom.controllers.blocking import BlockingRunner
from chatroom.controllers.rooms import RoomController
from chatroom.metrics import Metrics
from chatroom.models import MessageRepository, Room
from chatroom.models import archive as store
from chatroom.models.archive import ArchiveState

if TYPE_CHECKING:
    from chatroom.controllers.files import FilesController

log = logging.getLogger(__name__)

#: How often the archiver looks for new messages.
ARCHIVE_INTERVAL_SECONDS = 0.5
#: Messages copied per SQL transaction.
ARCHIVE_BATCH = 500
#: The archiver lock's expiry: another process takes over this long after a holder died.
ARCHIVER_LOCK_MS = 15_000
#: Retention runs at most this often (one process across hosts, by its lock's expiry).
RETENTION_INTERVAL_SECONDS = 60.0
#: /healthz calls the archive "behind" when its oldest unarchived message is older.
HEALTHY_LAG_SECONDS = 60.0
#: How often the archiver compares every room's Redis counter with the archive's
#: highest id (rooms with new messages are compared on every pass).
COUNTER_CHECK_SECONDS = 30.0


@dataclass
class ArchiveLag:
    """How far the archive is behind Redis, as last measured."""

    messages: int = 0
    seconds: float = 0.0
    error: str | None = None
    measured: float = 0.0


class ArchiveController(ArchiveReader):
    """Copies messages to the SQL archive, measures its lag and applies retention;
    paging, search, export and import come from ``ArchiveReader``."""

    def __init__(
        self,
        run: BlockingRunner,
        state: ArchiveState,
        messages: MessageRepository,
        rooms: RoomController | None = None,
        metrics: Metrics | None = None,
        retention_days: float = 0.0,
        batch: int = ARCHIVE_BATCH,
    ) -> None:
        super().__init__(run, state, messages, rooms)
        self._retention_days = retention_days
        #: Set by the composition root: retention releases the files of the
        #: messages it deletes (SPEC §9).
        self.files: FilesController | None = None
        self._batch = batch
        self.lag = ArchiveLag()
        self._stopping = False
        registry = (metrics or Metrics()).registry
        self._archived = prom.Counter(
            "chatroom_archived_messages", "Messages this process copied to the SQL archive.",
            registry=registry,
        )  # fmt: skip
        self._lost = prom.Counter(
            "chatroom_archive_lost_messages",
            "Messages trimmed from Redis before the archive had them (the backlog cap).",
            registry=registry,
        )
        self._lag_messages = prom.Gauge(
            "chatroom_archive_lag_messages", "Messages in Redis not yet in the SQL archive.",
            registry=registry,
        )  # fmt: skip
        self._lag_seconds = prom.Gauge(
            "chatroom_archive_lag_seconds", "Age of the oldest message not yet archived.",
            registry=registry,
        )  # fmt: skip
        self._counter_resets = prom.Counter(
            "chatroom_archive_counter_resets",
            "Rooms whose Redis counter was below the archive's highest id (Redis restored "
            "from an older snapshot) and was raised to it.",
            registry=registry,
        )
        self._next_counter_check = 0.0
        self._failures = prom.Counter(
            "chatroom_archive_failures", "Archiver passes that failed (database or Redis down).",
            registry=registry,
        )  # fmt: skip

    # -- the archiver ---------------------------------------------------------------

    async def run(self) -> None:
        """The loop every process runs until cancelled; one process at a time archives."""
        token = ArchiveState.new_token()
        next_retention = 0.0
        try:
            while not self._stopping:
                try:
                    if await self._state.acquire("archiver", token, ARCHIVER_LOCK_MS):
                        await self.archive_once()
                    else:
                        await self.measure_lag()
                    if self._retention_days and time.monotonic() >= next_retention:
                        next_retention = time.monotonic() + RETENTION_INTERVAL_SECONDS
                        await self.retention_once()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the database or Redis is down: retry later
                    self._failures.inc()
                    self.lag.error = f"{type(exc).__name__}: {exc}"[:200]
                    log.warning("archiver pass failed (will retry): %s", self.lag.error)
                await asyncio.sleep(ARCHIVE_INTERVAL_SECONDS)
        finally:
            # Bounded: with Redis hung, shutdown must not wait for it (the lock
            # expires by itself after ARCHIVER_LOCK_MS).
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self._state.release("archiver", token), 1.0)

    def stop(self) -> None:
        """End ``run`` after its current pass (a cancel a library call swallows cannot
        keep it going)."""
        self._stopping = True

    async def _room_ids(self) -> dict[str, int]:
        return await self._sql(lambda: {r.name: r.id for r in Room.select(Room.id, Room.name)})

    async def archive_once(self) -> int:
        """Copy every room's unarchived messages to SQL; how many were copied."""
        room_ids = await self._room_ids()
        positions = await self._state.positions(list(room_ids))
        copied = 0
        check_all = time.monotonic() >= self._next_counter_check
        if check_all:
            self._next_counter_check = time.monotonic() + COUNTER_CHECK_SECONDS
        for name, (seq, mark) in positions.items():
            top = None
            if mark is None:  # a new room, a 0.1 data dir, or Redis lost the key
                top = await self._sql(store.newest_archived_id, room_ids[name])
                mark = await self._state.advance(name, top, self._messages.history_size)
                known = False
            else:
                known = True
            if check_all or seq != mark:
                if top is None:
                    top = await self._sql(store.newest_archived_id, room_ids[name])
                if seq < top:
                    await self._counter_behind(name, top)
                    continue
            if seq > mark:
                copied += await self._archive_room(name, room_ids[name], mark, known)
        self.lag = ArchiveLag(measured=time.time())
        # Every room was archived already: the positions just read tell the lag (0),
        # and an idle pass costs one SQL query and one Redis round trip less.
        idle = all(seq == mark for seq, mark in positions.values())
        await self.measure_lag(positions=positions if idle else None)
        return copied

    async def _archive_room(self, name: str, room_id: int, mark: int, known: bool) -> int:
        copied = 0
        while True:
            window = await self._state.retained(name, mark, self._batch)
            if window.first_retained > mark + 1:
                # Trimmed before they were archived: past --archive-backlog (or, in a
                # data dir from before the archive existed, never archived at all).
                skipped = min(window.first_retained, window.seq + 1) - mark - 1
                if known:
                    self._lost.inc(skipped)
                    log.error("archive: %d messages of %s were trimmed unarchived", skipped, name)
                if not window.items:
                    mark = await self._advance(name, window.first_retained - 1)
                    continue
            if not window.items:
                return copied
            await self._sql(store.store_batch, room_id, store.parse_items(window.items))
            mark = await self._advance(name, window.last)
            copied += len(window.items)
            self._archived.inc(len(window.items))
            if window.last >= window.seq:
                return copied

    async def _counter_behind(self, name: str, top: int) -> None:
        """Redis went back (an older snapshot, or emptied) below the archive: new messages
        would reuse archived ids, which the archive ignores. Raise the counter to the
        archive's highest id so ids never go back (SPEC §8); see docs/archive.md."""
        before = await self._state.raise_counter(name, top)
        if before is None:  # a message arrived meanwhile and the counter caught up
            return
        seq, mark = before
        self._counter_resets.inc()
        # Messages above the old watermark may have reused archived ids: the archive
        # could not keep them. (Some may be the snapshot's copies of archived ones.)
        reused = max(0, seq - mark)
        if reused:
            self._lost.inc(reused)
        log.error(
            "archive: the Redis counter of %s was %d, below the archive's highest id %d "
            "(Redis restored from an older snapshot?); raised it to %d, dropping %d retained "
            "messages above the old watermark %d",
            name, seq, top, top, reused, mark,
        )  # fmt: skip

    async def _advance(self, name: str, archived_id: int) -> int:
        return await self._state.advance(name, archived_id, self._messages.history_size)

    async def measure_lag(self, positions: dict | None = None) -> ArchiveLag:
        """How many messages wait for the archive, and the age of the oldest of them."""
        if positions is None:
            positions = await self._state.positions(list(await self._room_ids()))
        waiting, oldest = 0, math.inf
        for name, (seq, mark) in positions.items():
            behind = seq - (mark or 0)  # no watermark yet: not archived yet
            if behind > 0:
                waiting += behind
                window = await self._state.retained(name, mark or 0, 1)
                if window.items:
                    oldest = min(oldest, orjson.loads(window.items[0])["ts"])
        seconds = max(0.0, time.time() - oldest) if waiting and oldest != math.inf else 0.0
        self.lag = ArchiveLag(waiting, seconds, None, time.time())
        self._lag_messages.set(waiting)
        self._lag_seconds.set(seconds)
        return self.lag

    def health(self) -> str:
        """The ``archive`` detail of /healthz: ok, behind (how far) or the last error."""
        lag = self.lag
        if lag.error:
            return f"error: {lag.error}"
        if lag.seconds > HEALTHY_LAG_SECONDS:
            return f"behind: {lag.messages} messages, oldest {lag.seconds:.0f}s"
        return "ok"

    async def apply_update(self, room: str, message_id: int, item: dict, rev: int) -> bool:
        """Re-write one archived message after an edit, delete or reaction (SPEC §5).

        ``item`` is the message's new stored JSON (a delete: its text empty); ``rev``
        rises with every change. Safe in any order with the archiver: see
        ``models.archive.apply_update``. Returns False for a room that no longer exists.
        """
        room_row = await self._sql(Room.by_name, room)
        if room_row is None:
            return False
        item = {**item, "room": room, "id": message_id}
        return await self._sql(store.apply_update, room_row.id, item, rev)

    # -- retention ------------------------------------------------------------------

    async def retention_once(self, now: float | None = None) -> int:
        """Delete messages older than --retention-days from SQL and Redis; one process
        across hosts per interval (the lock expires, never released). How many SQL rows."""
        if not self._retention_days:
            return 0
        token = ArchiveState.new_token()
        if not await self._state.acquire("retention", token, int(RETENTION_INTERVAL_SECONDS * 900)):
            return 0
        cutoff = (now or time.time()) - self._retention_days * 86400
        deleted = 0
        file_ids: list[str] = []
        while batch := await self._sql(store.delete_older_than, cutoff, 5000, file_ids):
            deleted += batch
            if file_ids and self.files is not None:  # the files go with their messages
                await self.files.release(file_ids)
            file_ids.clear()
        for name in await self._room_ids():
            await self._state.expire(name, cutoff)
        if deleted:
            log.info("retention: deleted %d archived messages", deleted)
        return deleted
