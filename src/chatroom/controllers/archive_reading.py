"""ArchiveReader: the reading side of the archive: paging, search, export, import.

Paging back and search read the SQL archive and what Redis still holds above
it, seamlessly (SPEC §7); export and import are the operator's ``chatroom
history --json`` and ``chatroom import``. The writing side (the archiver loop,
lag, retention) is ``ArchiveController`` in controllers/archive.py, which
extends this class. Nothing here imports Tornado.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from chatroom.controllers import validation
from chatroom.controllers.accounts import Account
from chatroom.controllers.blocking import BlockingRunner
from chatroom.controllers.errors import BadRequestError, ConflictError, NotFoundError, storage_guard
from chatroom.controllers.rooms import RoomController
from chatroom.models import MessageRepository, Room
from chatroom.models import archive as store
from chatroom.models.archive_insert import store_batch
from chatroom.models.archive_state import ArchiveState
from chatroom.models.search import SearchQuery, search

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


class ArchiveReader:
    """Pages, searches, exports and imports a room's messages across Redis and SQL."""

    def __init__(
        self,
        run: BlockingRunner,
        state: ArchiveState,
        messages: MessageRepository,
        rooms: RoomController | None = None,
    ) -> None:
        self._run = run
        self._state = state
        self._messages = messages
        self._rooms = rooms

    async def _sql(self, fn, *args):
        """Run ``fn(*args)`` in the SQL thread pool; a connection the database dropped
        (a restart) is closed there, so the next call opens a new one."""
        return await self._run(store.reconnecting, fn, *args)

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

    async def archived_message(self, room_id: int, message_id: int) -> tuple[dict, int] | None:
        """One message as the archive holds it, and the rev its content reflects (SPEC §5:
        changing a message no longer retained in Redis); None when it is not archived."""
        return await self._sql(store.archived_item, room_id, message_id)

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
        rows = await self._sql(search, query)
        results = [
            {"room": r.room_name, "id": r.message_id, "user": r.user, "text": r.text, "ts": r.ts}
            for r in rows[:count]
        ]
        return SearchResults(results, len(rows) > count)

    # -- export and import ----------------------------------------------------------

    async def export(self, room: str, since: int = 0) -> list[dict]:
        """Every message of the room with id > ``since``, oldest first: the archive, and
        what Redis holds. Where both have a message, Redis's copy wins: it is the live
        state, and an edit or reaction reaches the archive a moment later."""
        room_row = await self._sql(Room.by_name, room)
        if room_row is None:
            raise NotFoundError(f"no room {room!r}")
        rows = await self._sql(lambda: [r.item() for r in store.export_rows(room_row.id)])
        rows = [row for row in rows if row["id"] > since]
        retained: dict[int, dict] = {}
        with storage_guard():
            seq, newest = await self._messages.last_id(room), since
            while newest < seq:
                window = await self._state.retained(room, newest, 10_000)
                if not window.items:
                    break
                for item in store.parse_items(window.items):
                    clean = {k: v for k, v in item.items() if k not in store.TRANSIENT_FIELDS}
                    retained[clean["id"]] = clean
                newest = window.last
        archived = {row["id"] for row in rows}
        rows = [retained.get(row["id"], row) for row in rows]
        return rows + [item for i, item in sorted(retained.items()) if i not in archived]

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
            await self._sql(store_batch, room_row.id, items[start : start + 1000])
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
        if "\x00" in text:  # as a send refuses it (and PostgreSQL cannot store it)
            raise BadRequestError("text must not contain NUL")
        if isinstance(ts, bool) or not isinstance(ts, int | float) or not 0 <= ts < 1e11:
            raise BadRequestError("ts must be seconds since 1970")
        if message_id < 1:
            raise BadRequestError("id must be at least 1")
    except BadRequestError as exc:
        raise BadRequestError(f"line {number}: {exc.message}") from None
    extra = {k: v for k, v in item.items() if k not in store.COLUMN_FIELDS}
    return {**extra, "room": room, "id": message_id, "user": user, "text": text, "ts": float(ts)}
