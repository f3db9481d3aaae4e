"""ArchiveController: the background archiver, its lag and retention (SPEC §7).

The archiver copies each room's messages above its watermark from Redis to SQL
in batches, then raises the watermark. Every process that archives runs the loop;
a Redis lock with an expiry lets one of them (on any host) do the work at a time,
and since each batch is inserted idempotently (``INSERT ... ON CONFLICT DO NOTHING``
on ``(room, id)``) and the watermark only ever rises to an id whose batch is
committed, two archivers at once (a lock that expired under a slow database), a
process killed mid-batch or a database outage leave neither duplicates nor gaps.
A process that does not archive (``--archiver process`` or ``off``) runs no loop:
it measures the lag when /metrics or /healthz asks (``fresh_lag``).
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

from chatroom.controllers.archive_epochs import EpochLeftovers
from chatroom.controllers.archive_metrics import ArchiveMetrics
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
from chatroom.models.archive_insert import store_rooms
from chatroom.models.archive_locks import ARCHIVER_LOCK, RETENTION_LOCK, ArchiveLocks
from chatroom.models.archive_state import ArchiveState

if TYPE_CHECKING:
    from chatroom.controllers.files import FilesController

log = logging.getLogger(__name__)

#: How often the archiver looks for new messages.
ARCHIVE_INTERVAL_SECONDS = 0.5
#: Messages of one room read from Redis at a time.
ARCHIVE_BATCH = 500
#: A transaction takes rooms' batches until it holds this many messages (so that the
#: SQLite write lock is held briefly; per-transaction costs are shared by many rooms).
ARCHIVE_TRANSACTION_ROWS = 2000
#: The archiver lock's expiry: another process takes over this long after a holder died.
ARCHIVER_LOCK_MS = 15_000
#: Retention runs at most this often (one process across hosts, by its lock's expiry).
RETENTION_INTERVAL_SECONDS = 60.0
#: A process without the loop measures the lag when asked, at most this often (several
#: scrapes or health checks at once share one measurement): as fresh as the loop's.
LAG_FRESH_SECONDS = ARCHIVE_INTERVAL_SECONDS
#: How long such a measurement may take before /healthz reports it as failed.
LAG_MEASURE_TIMEOUT_SECONDS = 2.0
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
        #: True while ``run`` runs: its passes measure the lag, ``fresh_lag`` need not.
        self._looping = False
        #: The on-demand measurement in flight, which concurrent callers share.
        self._measuring: asyncio.Future[None] | None = None
        self._stopping = False
        self._stopped = asyncio.Event()
        #: The archiver lock's token while ``run`` runs: a long pass keeps extending it.
        self._token: str | None = None
        self._metrics = ArchiveMetrics(metrics)
        self._next_counter_check = 0.0
        self._locks = state.locks
        floors = rooms.epochs if rooms is not None else None
        self._leftovers = EpochLeftovers(self._sql, state.epochs, self._metrics, floors, batch)

    # -- the archiver ---------------------------------------------------------------

    async def run(self) -> None:
        """The loop of a process that archives (``--archiver on``, ``chatroom archive``),
        until ``stop`` (or cancelled): it takes part in archiving and retention (one
        process at a time works, by a lock), and measures the lag on every pass."""
        token = self._token = ArchiveLocks.new_token()
        next_retention = 0.0
        self._looping = True
        try:
            while not self._stopping:
                try:
                    if await self._locks.acquire(ARCHIVER_LOCK, token, ARCHIVER_LOCK_MS):
                        await self.archive_once()
                    else:
                        await self.measure_lag()
                    if self._retention_days and time.monotonic() >= next_retention:
                        next_retention = time.monotonic() + RETENTION_INTERVAL_SECONDS
                        await self.retention_once()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the database or Redis is down: retry later
                    self._metrics.failures.inc()
                    self.lag.error = f"{type(exc).__name__}: {exc}"[:200]
                    log.warning("archiver pass failed (will retry): %s", self.lag.error)
                with contextlib.suppress(asyncio.TimeoutError):  # woken early by stop()
                    await asyncio.wait_for(self._stopped.wait(), ARCHIVE_INTERVAL_SECONDS)
        finally:
            self._token = None
            self._looping = False
            # Bounded: with Redis hung, shutdown must not wait for it (the lock
            # expires by itself after ARCHIVER_LOCK_MS).
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self._locks.release(ARCHIVER_LOCK, token), 1.0)

    def stop(self) -> None:
        """End ``run`` after the batches in hand are committed and their watermarks
        raised (a cancel a library call swallows cannot keep it going)."""
        self._stopping = True
        self._stopped.set()

    async def _room_ids(self) -> dict[str, int]:
        return await self._sql(lambda: dict(Room.select(Room.name, Room.id).tuples()))

    async def archive_once(self) -> int:
        """Copy every room's unarchived messages to SQL; how many were copied.

        A pass costs a fixed number of round trips whatever the number of rooms (one
        Redis pipeline to read a batch of each room, SQL transactions of many rooms'
        batches, one pipeline to raise their watermarks), and no Python per message:
        the frames go to SQL as one JSON array (models/archive_insert.py).
        """
        room_ids = await self._room_ids()
        positions = await self._state.positions(list(room_ids))
        check_all = time.monotonic() >= self._next_counter_check
        if check_all:
            self._next_counter_check = time.monotonic() + COUNTER_CHECK_SECONDS
        orphaned = await self._leftovers.archive_orphans(room_ids)  # SPEC §8
        # The archive's highest id: the watermark of a room without one (a new room, a
        # 0.1 data dir, or Redis lost the key), and the counter's check (see below).
        checked = [n for n, (seq, mark) in positions.items() if check_all or seq != mark]
        tops: dict[str, int] = {}
        if checked:
            newest = await self._sql(store.newest_archived_ids, [room_ids[n] for n in checked])
            tops = {name: newest.get(room_ids[name], 0) for name in checked}
            await self._leftovers.lower_stale_reads(checked, room_ids)  # SPEC §8
        unknown = {n: tops[n] for n, (_seq, mark) in positions.items() if mark is None}
        marks = await self._state.advance_all(unknown, self._messages.history_size)
        pending: dict[str, int] = {}
        for name, (seq, mark) in positions.items():
            mark = marks.get(name, mark)
            if name in tops and seq < tops[name]:
                await self._leftovers.counter_behind(name, tops[name])
            elif seq > mark:
                pending[name] = mark
        copied = orphaned + await self._copy(pending, set(pending) - set(unknown), room_ids)
        self.lag = ArchiveLag(measured=time.time())
        await self.measure_lag(list(room_ids))
        return copied

    async def _copy(self, pending: dict[str, int], known: set[str], room_ids: dict) -> int:
        """Copy the messages above each room's watermark (``pending``), a batch of every
        room a round; a gap in a room that had a watermark (``known``) counts as lost."""
        copied = 0
        while pending:  # a round at least: what was read is stored even when stopping
            windows = await self._state.batches(pending, self._batch, replicated=True)
            ready, gaps = {}, {}
            for name, window in windows.items():
                mark = pending[name]
                if window.first_retained > mark + 1:
                    # Trimmed before they were archived: past --archive-backlog (or, in
                    # a data dir from before the archive existed, never archived at all).
                    skipped = min(window.first_retained, window.seq + 1) - mark - 1
                    if name in known:
                        self._metrics.lost.inc(skipped)
                        log.error(
                            "archive: %d messages of %s were trimmed unarchived", skipped, name
                        )
                    if not window.count:
                        gaps[name] = window.first_retained - 1
                if window.count:
                    ready[name] = window
            group: list[tuple[int, bytes]] = []
            rows = 0
            for name, window in ready.items():  # whole rooms' batches per transaction
                group.append((room_ids[name], window.frames))
                rows += window.count
                if rows >= ARCHIVE_TRANSACTION_ROWS:
                    await self._sql(store_rooms, group)
                    group, rows = [], 0
            if group:
                await self._sql(store_rooms, group)
            raised = {**gaps, **{name: window.last for name, window in ready.items()}}
            marks = await self._state.advance_all(raised, self._messages.history_size)
            for name, window in ready.items():
                if self._rooms is not None:  # SPEC §8: the send path's floor for the room
                    self._rooms.epochs.note(name, window.last)
                copied += window.count
                self._metrics.archived.inc(window.count)
            pending = {n: m for n, m in marks.items() if m < windows[n].seq}
            if self._stopping:
                break
            if pending and not await self._still_ours():
                break  # a backlog outlasted the lock, and another process took over
        return copied

    async def _still_ours(self) -> bool:
        """Extend the archiver lock during a long pass; False if another process holds it."""
        token = self._token
        return token is None or await self._locks.acquire(ARCHIVER_LOCK, token, ARCHIVER_LOCK_MS)

    async def measure_lag(self, rooms: list[str] | None = None) -> ArchiveLag:
        """How many messages wait for the archive, and the age of the oldest of them
        (whichever process archives: this reads Redis, one round trip)."""
        if rooms is None:
            rooms = list(await self._room_ids())
        heads = await self._state.oldest_unarchived(rooms)
        waiting, oldest = 0, math.inf
        for seq, mark, frame in heads.values():
            if seq > mark:  # no watermark yet (0): not archived yet
                waiting += seq - mark
                if frame:
                    oldest = min(oldest, orjson.loads(frame)["ts"])
        seconds = max(0.0, time.time() - oldest) if waiting and oldest != math.inf else 0.0
        self.lag = ArchiveLag(waiting, seconds, None, time.time())
        self._metrics.lag_messages.set(waiting)
        self._metrics.lag_seconds.set(seconds)
        return self.lag

    async def fresh_lag(self) -> ArchiveLag:
        """The lag for /metrics and /healthz (its gauges set): the loop's last measure
        where ``run`` runs, else measured now unless it was within LAG_FRESH_SECONDS.

        Callers at once share one measurement; a failed one (Redis or the database
        down, or slower than LAG_MEASURE_TIMEOUT_SECONDS) is kept in ``lag.error``.
        """
        if self._looping or time.time() - self.lag.measured < LAG_FRESH_SECONDS:
            return self.lag
        if self._measuring is None:
            self._measuring = asyncio.ensure_future(self._measure_now())
            self._measuring.add_done_callback(self._measured)
        # Shielded: one caller that goes away does not cancel the others' measurement.
        await asyncio.shield(self._measuring)
        return self.lag

    async def _measure_now(self) -> None:
        try:
            await asyncio.wait_for(self.measure_lag(), LAG_MEASURE_TIMEOUT_SECONDS)
        except Exception as exc:  # reported by /healthz, not raised to the scrape
            self._metrics.failures.inc()
            error = "timed out" if isinstance(exc, asyncio.TimeoutError) else str(exc)
            self.lag.error = f"{type(exc).__name__}: {error}"[:200]
            # A failure is fresh too: an outage does not send every request to storage.
            self.lag.measured = time.time()
            log.warning("archive lag not measured: %s", self.lag.error)

    def _measured(self, _future: asyncio.Future) -> None:
        self._measuring = None

    async def health(self) -> str:
        """The ``archive`` detail of /healthz (``fresh_lag``): ok, behind (how far) or
        the last error."""
        lag = await self.fresh_lag()
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
        token = ArchiveLocks.new_token()
        if not await self._locks.acquire(
            RETENTION_LOCK, token, int(RETENTION_INTERVAL_SECONDS * 900)
        ):
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
