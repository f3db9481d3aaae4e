"""ArchiveController: the background archiver, retention, paging and search (SPEC §7).

The archiver copies each room's messages above its watermark from Redis to SQL
in batches, then raises the watermark. Every process runs the loop; a Redis lock
with an expiry lets one of them (on any host) do the work at a time, and since
each batch is inserted idempotently (``INSERT ... ON CONFLICT DO NOTHING`` on
``(room, id)``) and the watermark only ever rises to an id whose batch is
committed, two archivers at once (a lock that expired under a slow database), a
process killed mid-batch or a database outage leave neither duplicates nor gaps.
See docs/archive.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson
import prometheus_client as prom

from chatroom.controllers import validation
from chatroom.controllers.accounts import Account
from chatroom.controllers.blocking import BlockingRunner
from chatroom.controllers.errors import BadRequestError, ConflictError, NotFoundError, storage_guard
from chatroom.controllers.rooms import RoomController
from chatroom.metrics import Metrics
from chatroom.models import MessageRepository, Room
from chatroom.models import archive as store
from chatroom.models.archive import ArchiveState, SearchQuery

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
#: Paging and search page sizes (SPEC §7).
DEFAULT_LIMIT, MAX_LIMIT = 50, 200
#: The longest search text, in code points.
MAX_QUERY_CHARS = 200


@dataclass(frozen=True)
class Page:
    """Messages of a room as history items (JSON bytes), oldest first, and whether
    older ones exist."""

    items: list[bytes]
    more: bool


@dataclass(frozen=True)
class SearchResults:
    """Matching messages, newest first, and whether there are more."""

    results: list[dict]
    more: bool


@dataclass
class ArchiveLag:
    """How far the archive is behind Redis, as last measured."""

    messages: int = 0
    seconds: float = 0.0
    error: str | None = None
    measured: float = 0.0


def _limit(value: object) -> int:
    if value is None:
        return DEFAULT_LIMIT
    number = _integer(value, "limit")
    if not 1 <= number <= MAX_LIMIT:
        raise BadRequestError(f"limit must be an integer in 1..{MAX_LIMIT}")
    return number


def _integer(value: object, name: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 17:
        number = int(value)
    else:
        raise BadRequestError(f"{name} must be an integer")
    return number


def _before(value: object) -> int | None:
    if value is None:
        return None
    number = _integer(value, "before")
    if not 1 <= number <= validation.MAX_ID:
        raise BadRequestError("before must be an integer in 1..2^53")
    return number


def search_terms(q: object) -> tuple[str, ...]:
    """The terms of a search text: 1..200 code points, split on whitespace."""
    if not isinstance(q, str) or not 1 <= len(q) <= MAX_QUERY_CHARS:
        raise BadRequestError(f"q must be text of 1..{MAX_QUERY_CHARS} characters")
    if validation._SURROGATE_RE.search(q) or "\x00" in q:
        raise BadRequestError("q must be valid text")
    terms = tuple(dict.fromkeys(term.lower() for term in q.split()))
    if not terms:
        raise BadRequestError("q must hold at least one term")
    return terms


class ArchiveController:
    """Copies messages to the SQL archive and serves paging, search, export and import."""

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
        self._run = run
        self._state = state
        self._messages = messages
        self._rooms = rooms
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

    async def _sql(self, fn, *args):
        """Run ``fn(*args)`` in the SQL thread pool; a connection the database dropped
        (a restart) is closed there, so the next call opens a new one."""
        return await self._run(store.reconnecting, fn, *args)

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
        for name, (seq, mark) in positions.items():
            if mark is None:  # a new room, a 0.1 data dir, or Redis lost the key
                mark = await self._sql(store.newest_archived_id, room_ids[name])
                mark = await self._state.advance(name, mark, self._messages.history_size)
                known = False
            else:
                known = True
            if seq > mark:
                copied += await self._archive_room(name, room_ids[name], mark, known)
        self.lag = ArchiveLag(measured=time.time())
        await self.measure_lag(positions=None)
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

    # -- reading --------------------------------------------------------------------

    async def page(self, account: Account, room: object, before: object, limit: object) -> Page:
        """The newest ``limit`` messages with id < ``before``, oldest first, from Redis
        or the archive, seamlessly (SPEC §7); the same access rule as history."""
        if self._rooms is None:
            raise RuntimeError("paging needs the RoomController")
        count = _limit(limit)
        upper = _before(before)
        ref = await self._rooms.open(account, room)
        with storage_guard():
            seq = await self._messages.last_id(ref.name)
            upper = seq + 1 if upper is None else min(upper, seq + 1)
            after = max(0, upper - 1 - count)
            window = await self._state.retained(ref.name, after, upper - 1 - after)
        # Redis holds a contiguous run up to the newest id; older ones come from SQL.
        items = window.items
        sql_before = window.first if items else min(upper, window.first_retained)
        need = count - len(items)
        rows = await self._sql(store.page_before, ref.id, sql_before, need + 1)
        older = [orjson.dumps(row.item()) for row in reversed(rows[:need])]
        more = len(rows) > need or bool(items and window.first > window.first_retained)
        return Page(older + items, more)

    async def search(
        self,
        account: Account,
        q: object,
        room: object = None,
        user: object = None,
        limit: object = None,
        before: object = None,
    ) -> SearchResults:
        """Messages holding every term of ``q`` in rooms the caller may read, newest first."""
        if self._rooms is None:
            raise RuntimeError("search needs the RoomController")
        terms = search_terms(q)
        count = _limit(limit)
        upper = _before(before)
        room_id = None
        if room is not None:
            room_id = (await self._rooms.open(account, room)).id
        elif upper is not None:
            raise BadRequestError("before needs room: message ids are per room")
        user_key = None if user is None else validation.username(user).lower()
        query = SearchQuery(terms, account.id, room_id, user_key, upper, count)
        rows = await self._sql(store.search, query)
        results = [
            {"room": r.room_name, "id": r.message_id, "user": r.user, "text": r.text, "ts": r.ts}
            for r in rows[:count]
        ]
        return SearchResults(results, len(rows) > count)

    # -- export and import ----------------------------------------------------------

    async def export(self, room: str, since: int = 0) -> list[dict]:
        """Every message of the room with id > ``since``, oldest first: the archive, then
        what Redis holds above it (not archived yet)."""
        room_row = await self._sql(Room.by_name, room)
        if room_row is None:
            raise NotFoundError(f"no room {room!r}")
        rows = await self._sql(lambda: [r.item() for r in store.export_rows(room_row.id)])
        rows = [row for row in rows if row["id"] > since]
        newest = max([since] + [row["id"] for row in rows])
        with storage_guard():
            seq = await self._messages.last_id(room)
            tail: list[dict] = []
            while newest < seq:
                window = await self._state.retained(room, newest, 10_000)
                if not window.items:
                    break
                tail += [
                    {k: v for k, v in item.items() if k not in store.TRANSIENT_FIELDS}
                    for item in store.parse_items(window.items)
                ]
                newest = window.last
        return rows + tail

    async def import_messages(self, room: str, lines: Iterable[str]) -> int:
        """Load an export (JSON lines) into the empty room ``room``; ids and times kept.

        Refuses a room that has any message, in Redis or the archive. The room's
        counter continues after the highest imported id.
        """
        numbered = enumerate(lines, 1)
        items = [_import_item(number, line, room) for number, line in numbered if line.strip()]
        ids = [item["id"] for item in items]
        if len(set(ids)) != len(ids):
            raise BadRequestError("the export holds the same id twice")
        room_row = await self._sql(Room.by_name, room)
        if room_row is None:
            raise NotFoundError(f"no room {room!r}")
        with storage_guard():
            seq = await self._messages.last_id(room)
        if seq or not await self._sql(store.room_is_empty, room_row.id):
            raise ConflictError(f"the room {room!r} has messages; import only into an empty one")
        items.sort(key=lambda item: item["id"])
        for start in range(0, len(items), 1000):
            await self._sql(store.store_batch, room_row.id, items[start : start + 1000])
        if items:
            with storage_guard():
                if not await self._state.claim_imported(room, items[-1]["id"]):
                    raise ConflictError(f"the room {room!r} got messages during the import")
        return len(items)


def _import_item(number: int, line: str, room: str) -> dict:
    """One line of an export, validated, as a history item of ``room``."""
    try:
        item = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise BadRequestError(f"line {number}: not JSON") from None
    if not isinstance(item, dict):
        raise BadRequestError(f"line {number}: not a JSON object")
    try:
        message_id = validation.message_id(item.get("id"), "id")
        user = validation.username(item.get("user"))
        text = item.get("text")
        ts = item.get("ts")
        if not isinstance(text, str) or validation._SURROGATE_RE.search(text):
            raise BadRequestError("text must be a string")
        if isinstance(ts, bool) or not isinstance(ts, int | float) or not 0 <= ts < 1e11:
            raise BadRequestError("ts must be seconds since 1970")
        if message_id < 1:
            raise BadRequestError("id must be at least 1")
    except BadRequestError as exc:
        raise BadRequestError(f"line {number}: {exc.message}") from None
    extra = {k: v for k, v in item.items() if k not in store.COLUMN_FIELDS}
    return {**extra, "room": room, "id": message_id, "user": user, "text": text, "ts": float(ts)}
