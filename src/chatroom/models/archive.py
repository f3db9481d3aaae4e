"""The SQL archive of every message (SPEC §7): the table, its search indexes, and the
Redis side of archiving (what is not archived yet, the per-room watermark, the lock).

Redis holds the newest messages of a room as a list of ``message`` frames with
consecutive ids; ``archived_message`` holds every message that was copied out of
it, one row per (room, id). The watermark ``{room}:archived`` is the highest id
known to be in SQL with every smaller id before it; the send script never trims a
message above it (see ``models/messages.py``), so Redis drops nothing the archive
lacks. The watermark can always be derived again from SQL (``max(message_id)``).

Search uses each database's own index: SQLite FTS5 with the trigram tokenizer
(terms of 3+ characters; shorter ones are checked with LIKE), PostgreSQL
``pg_trgm`` GIN on ``lower(text)`` with LIKE (and a GIN index of each text's
character bigrams for 2-character terms), MariaDB/MySQL LIKE (MariaDB has no
ngram parser; see docs/archive.md).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import orjson
import peewee
import redis.asyncio as aioredis

from chatroom.models.database import BaseModel
from chatroom.models.keys import RedisKeys
from chatroom.models.membership import Membership
from chatroom.models.messages import history_item
from chatroom.models.room import Room

T = TypeVar("T")

#: The fields of a stored message that have columns; everything else a later feature
#: adds to a message (edited, deleted, reactions, reply_to, mentions, files) is kept
#: in ``extra`` as JSON, so the archive stores it without a migration.
COLUMN_FIELDS = ("room", "id", "user", "text", "ts")
#: Fields of a stored frame that are not the message's content: never archived.
TRANSIENT_FIELDS = ("type", "client_id")
#: FTS5's trigram tokenizer indexes 3-character substrings; shorter terms use LIKE.
TRIGRAM = 3
#: PostgreSQL indexes each text's distinct 2-character substrings for
#: the terms ``pg_trgm`` cannot index.
BIGRAM = 2
#: The LIKE escape character: one that needs no escaping in any SQL dialect's literal.
LIKE_ESCAPE = "!"


class ArchivedMessage(BaseModel):
    """One archived message; ``(room, message_id)`` is unique, ``pk`` is archive order."""

    pk = peewee.BigAutoField()
    room = peewee.ForeignKeyField(Room, on_delete="CASCADE", index=False)
    room_name = peewee.CharField(max_length=80)
    message_id = peewee.BigIntegerField()
    user = peewee.CharField(max_length=80)
    user_key = peewee.CharField(max_length=80, index=True)
    text = peewee.TextField()
    ts = peewee.DoubleField(index=True)
    #: Bumped by every edit/delete/reaction; an update only replaces an older revision.
    rev = peewee.IntegerField(default=0)
    extra = peewee.TextField(default="{}")

    class Meta:
        table_name = "archived_message"
        indexes = ((("room", "message_id"), True),)

    def item(self) -> dict:
        """The message as history returns it (``room``, ``id``, ``user``, ``text``, ``ts``, ...)."""
        extra = orjson.loads(self.extra) if self.extra and self.extra != "{}" else {}
        return {
            "room": self.room_name,
            "id": self.message_id,
            "user": self.user,
            "text": self.text,
            "ts": self.ts,
            **extra,
        }


def row_values(room_id: int, item: dict, rev: int = 0) -> dict:
    """The column values of a history item (the JSON of a stored message)."""
    extra = {k: v for k, v in item.items() if k not in COLUMN_FIELDS and k not in TRANSIENT_FIELDS}
    return {
        "room": room_id,
        "room_name": item["room"],
        "message_id": int(item["id"]),
        "user": item["user"],
        "user_key": str(item["user"]).lower(),
        "text": item.get("text") or "",
        "ts": float(item["ts"]),
        "rev": rev,
        "extra": orjson.dumps(extra).decode() if extra else "{}",
    }


# -- schema ---------------------------------------------------------------------

_SQLITE_FTS = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS archived_message_fts USING fts5("
    "text, content='archived_message', content_rowid='pk', tokenize='trigram')",
    "CREATE TRIGGER IF NOT EXISTS archived_message_ai AFTER INSERT ON archived_message BEGIN "
    "INSERT INTO archived_message_fts(rowid, text) VALUES (new.pk, new.text); END",
    "CREATE TRIGGER IF NOT EXISTS archived_message_ad AFTER DELETE ON archived_message BEGIN "
    "INSERT INTO archived_message_fts(archived_message_fts, rowid, text) "
    "VALUES ('delete', old.pk, old.text); END",
    "CREATE TRIGGER IF NOT EXISTS archived_message_au AFTER UPDATE OF text ON archived_message "
    "BEGIN INSERT INTO archived_message_fts(archived_message_fts, rowid, text) "
    "VALUES ('delete', old.pk, old.text); "
    "INSERT INTO archived_message_fts(rowid, text) VALUES (new.pk, new.text); END",
]

_POSTGRESQL_TRIGRAM = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS archived_message_text_trgm "
    "ON archived_message USING gin (lower(text) gin_trgm_ops)",
]


def create_archive_tables(db: peewee.Database, _migrator: object = None) -> None:
    """Migration 2: the ``archived_message`` table and its database's search index."""
    db.create_tables([ArchivedMessage])
    if isinstance(db, peewee.SqliteDatabase):
        statements = _SQLITE_FTS
    elif isinstance(db, peewee.PostgresqlDatabase):
        statements = _POSTGRESQL_TRIGRAM
    else:  # MySQL/MariaDB: LIKE over the table (see docs/archive.md)
        statements = []
    for statement in statements:
        db.execute_sql(statement)


# The distinct 2-character substrings of lower(text): what
# ``chatroom_bigrams(text) @> ARRAY['会议']`` finds through a GIN index (pg_trgm needs
# 3 characters; pg_bigm is not packaged with Debian's PostgreSQL).
_POSTGRESQL_BIGRAMS = [
    "CREATE OR REPLACE FUNCTION chatroom_bigrams(t text) RETURNS text[] "
    "LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$ "
    "SELECT coalesce(array_agg(DISTINCT substr(lower(t), i, 2)), '{}') "
    "FROM generate_series(1, char_length(t) - 1) AS i $$",
    "CREATE INDEX IF NOT EXISTS archived_message_text_bigrams "
    "ON archived_message USING gin (chatroom_bigrams(text))",
]


def create_bigram_index(db: peewee.Database, _migrator: object = None) -> None:
    """Migration 4: on PostgreSQL, the index of 2-character terms (elsewhere nothing:
    SQLite checks them on the trigram candidates or the time index, MariaDB scans)."""
    if isinstance(db, peewee.PostgresqlDatabase):
        for statement in _POSTGRESQL_BIGRAMS:
            db.execute_sql(statement)


# -- writes ---------------------------------------------------------------------


def store_batch(room_id: int, items: list[dict]) -> int:
    """Insert the items; ones already archived are left as they are. Idempotent.

    One transaction: after a crash either the whole batch is in SQL or none of it.
    Returns the number of items given (not how many were new).
    """
    if not items:
        return 0
    rows = [row_values(room_id, item) for item in items]
    with _write_transaction():
        for start in range(0, len(rows), 200):
            ArchivedMessage.insert_many(rows[start : start + 200]).on_conflict_ignore().execute()
    return len(items)


def apply_update(room_id: int, item: dict, rev: int) -> bool:
    """Rewrite one message's row with a newer revision (an edit, a delete, a reaction).

    Inserts the row when the archiver has not copied it yet, so either order of
    "archiver copies" and "update arrives" ends with the newest revision (the
    archiver's insert leaves an existing row alone). An older or equal ``rev``
    changes nothing. Returns True when this call wrote the row.
    """
    values = row_values(room_id, item, rev)
    where = (ArchivedMessage.room == room_id) & (ArchivedMessage.message_id == values["message_id"])
    with _write_transaction():
        current = ArchivedMessage.select(ArchivedMessage.rev).where(where).first()
        if current is None:
            return ArchivedMessage.insert(values).on_conflict_ignore().execute() is not None
        if current.rev >= rev:
            return False
        changes = {k: v for k, v in values.items() if k not in ("room", "message_id")}
        return bool(
            ArchivedMessage.update(changes).where(where & (ArchivedMessage.rev < rev)).execute()
        )


def reconnecting(fn: Callable[..., T], *args: object) -> T:
    """``fn(*args)``; when the database connection failed, this thread's connection is
    dropped first, so the next call connects again (the database restarted)."""
    try:
        return fn(*args)
    except (peewee.OperationalError, peewee.InterfaceError):
        db = _bound_database()
        if not db.in_transaction():
            try:
                db.close()
            except Exception:  # the connection is already unusable: forget it
                db._state.reset()
        raise


def _bound_database() -> peewee.Database:
    """The database the models are bound to (behind the deferred proxy)."""
    db = ArchivedMessage._meta.database
    return db.obj if isinstance(db, peewee.DatabaseProxy) else db


def _write_transaction():
    """A transaction that takes the write lock at once (SQLite: no upgrade deadlock)."""
    db = _bound_database()
    if isinstance(db, peewee.SqliteDatabase):
        return db.atomic("IMMEDIATE")
    return db.atomic()


def newest_archived_id(room_id: int) -> int:
    """The watermark as SQL knows it: the room's highest archived id (0 for none)."""
    value = (
        ArchivedMessage.select(peewee.fn.MAX(ArchivedMessage.message_id))
        .where(ArchivedMessage.room == room_id)
        .scalar()
    )
    return int(value or 0)


def delete_older_than(
    cutoff_ts: float, batch: int = 5000, file_ids: list[str] | None = None
) -> int:
    """Delete up to ``batch`` rows older than ``cutoff_ts``; how many went. The ids of
    the files those messages carried are appended to ``file_ids`` (SPEC §9: they go
    with their message)."""
    doomed = ArchivedMessage.select(ArchivedMessage.pk, ArchivedMessage.extra).where(
        ArchivedMessage.ts < cutoff_ts
    )
    rows = list(doomed.limit(batch))
    if not rows:
        return 0
    if file_ids is not None:
        file_ids.extend(uid for row in rows for uid in message_file_ids(row.extra))
    return ArchivedMessage.delete().where(ArchivedMessage.pk.in_([r.pk for r in rows])).execute()


def message_file_ids(extra: str) -> list[str]:
    """The ids of the files in an archived message's ``extra`` JSON (none if it has none)."""
    if not extra or '"files"' not in extra:
        return []
    files = orjson.loads(extra).get("files")
    if not isinstance(files, list):
        return []
    return [f["id"] for f in files if isinstance(f, dict) and isinstance(f.get("id"), str)]


def room_is_empty(room_id: int) -> bool:
    return not ArchivedMessage.select().where(ArchivedMessage.room == room_id).exists()


# -- reads ----------------------------------------------------------------------


def page_before(room_id: int, before: int, count: int) -> list[ArchivedMessage]:
    """Up to ``count`` rows with id < ``before``, newest first."""
    return list(
        ArchivedMessage.select()
        .where((ArchivedMessage.room == room_id) & (ArchivedMessage.message_id < before))
        .order_by(ArchivedMessage.message_id.desc())
        .limit(count)
    )


def export_rows(room_id: int, chunk: int = 1000) -> Iterator[ArchivedMessage]:
    """Every archived row of the room, oldest first, read ``chunk`` rows at a time."""
    after = 0
    while True:
        rows = list(
            ArchivedMessage.select()
            .where((ArchivedMessage.room == room_id) & (ArchivedMessage.message_id > after))
            .order_by(ArchivedMessage.message_id)
            .limit(chunk)
        )
        yield from rows
        if len(rows) < chunk:
            return
        after = rows[-1].message_id


def readable_room_ids(user_id: int) -> peewee.Select:
    """THE access filter of search: the ids of the rooms ``user_id`` may read.

    Public rooms and the user's direct rooms. Private rooms (SPEC §6) add their
    rule here, and only here.
    """
    mine = Membership.select(Membership.room).where(Membership.user == user_id)
    return Room.select(Room.id).where((~Room.is_direct) | (Room.id.in_(mine)))


def _like_pattern(term: str) -> str:
    escaped = (
        term.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )
    return f"%{escaped}%"


def _contains(term: str, indexable: bool = True) -> peewee.Node:
    """``lower(text) LIKE '%term%'`` with every wildcard in ``term`` taken literally.

    ``indexable=False`` (PostgreSQL, terms of 1-2 characters, which ``pg_trgm`` cannot
    index): ``(lower(text) || '')``, so the planner walks the time index newest first
    instead of reading the whole trigram index.
    """
    text = peewee.fn.LOWER(ArchivedMessage.text)
    return peewee.NodeList(
        (
            text if indexable else text.concat(""),
            peewee.SQL("LIKE"),
            _like_pattern(term.lower()),
            peewee.SQL(f"ESCAPE '{LIKE_ESCAPE}'"),
        )
    )


def _fts_phrase(term: str) -> str:
    """``term`` as one FTS5 string: operators (NEAR, *, -, ^, :) inside it are plain text."""
    return '"' + term.replace('"', '""') + '"'


@dataclass(frozen=True)
class SearchQuery:
    """A validated search: terms (all must match), filters and paging."""

    terms: tuple[str, ...]
    user_id: int
    room_id: int | None = None
    user_key: str | None = None
    before: int | None = None
    limit: int = 50


def search(query: SearchQuery) -> list[ArchivedMessage]:
    """Up to ``limit + 1`` matching rows, newest first (so the caller can tell ``more``)."""
    db = _bound_database()
    model = ArchivedMessage
    sqlite = isinstance(db, peewee.SqliteDatabase)
    # On SQLite, a unary + keeps the planner off the (room, id) index for the access
    # filter, so it walks the ts index newest first and stops at ``limit`` matches
    # instead of collecting and sorting every match of every readable room.
    room = peewee.NodeList((peewee.SQL("+"), model.room), glue="") if sqlite else model.room
    where = room.in_(readable_room_ids(query.user_id))
    if query.room_id is not None:
        where &= model.room == query.room_id
    if query.user_key is not None:
        where &= model.user_key == query.user_key
    if query.before is not None:
        where &= model.message_id < query.before
    long_terms = [t for t in query.terms if len(t) >= TRIGRAM]
    if sqlite and long_terms:
        match = " ".join(_fts_phrase(t) for t in long_terms)
        where &= model.pk.in_(
            peewee.SQL(
                "(SELECT rowid FROM archived_message_fts WHERE archived_message_fts MATCH ?)",
                [match],
            )
        )
        # The trigram index matched these (case-insensitively, any script); LIKE only
        # the short terms it cannot index.
        like_terms = [t for t in query.terms if len(t) < TRIGRAM]
    else:
        like_terms = list(query.terms)
    postgresql = isinstance(db, peewee.PostgresqlDatabase)
    for term in like_terms:
        where &= _contains(term, indexable=not (postgresql and len(term) < TRIGRAM))
        if postgresql and len(term) == BIGRAM:
            # The bigram index finds the rows; the LIKE above stays as the exact check.
            # The planner picks it or the time index by how common the bigram is.
            bigrams = peewee.fn.chatroom_bigrams(model.text)
            where &= peewee.NodeList((bigrams, peewee.SQL("@> ARRAY[%s]::text[]", [term.lower()])))
    return list(
        model.select()
        .where(where)
        .order_by(model.ts.desc(), model.pk.desc())
        .limit(query.limit + 1)
    )


# -- the Redis side ---------------------------------------------------------------

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

# Redis went back (restored from an older snapshot, or emptied) below what SQL holds:
# the counter and watermark become the archive's highest id, so ids never go back, and
# the retained messages (archived ones, and ones reusing archived ids that the archive
# would ignore) are dropped. KEYS: seq, watermark, log. ARGV: the highest archived id.
# Returns {the counter before, the watermark before}, or {} when the counter is not behind.
_RAISE_SCRIPT = """
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
local top = tonumber(ARGV[1])
if seq >= top then return {} end
local mark = tonumber(redis.call('GET', KEYS[2]) or '0')
redis.call('SET', KEYS[1], top)
redis.call('SET', KEYS[2], top)
redis.call('DEL', KEYS[3])
return {seq, mark}
"""

# Extend (ARGV[2] ms) or release (ARGV[2] = 0) a lock only its holder's token opens.
_LOCK_SCRIPT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if tonumber(ARGV[2]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
else
  redis.call('DEL', KEYS[1])
end
return 1
"""


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


class ArchiveState:
    """The archive's Redis keys: watermarks, the retained ranges it copies, its locks."""

    def __init__(self, redis: aioredis.Redis, keys: RedisKeys) -> None:
        self._redis = redis
        self._keys = keys
        self._range = redis.register_script(_RANGE_SCRIPT)
        self._advance = redis.register_script(_ADVANCE_SCRIPT)
        self._expire = redis.register_script(_EXPIRE_SCRIPT)
        self._lock = redis.register_script(_LOCK_SCRIPT)
        self._claim = redis.register_script(_CLAIM_SCRIPT)
        self._raise = redis.register_script(_RAISE_SCRIPT)

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
        """The retained messages with ids in (after, after + count], as history items."""
        seq, first_retained, first, *frames = await self._range(
            keys=[self._keys.seq(room), self._keys.log(room)], args=[after, count]
        )
        return RetainedRange(
            int(seq), int(first_retained), int(first), [history_item(f) for f in frames]
        )

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

    async def raise_counter(self, room: str, archived_id: int) -> tuple[int, int] | None:
        """When the room's counter is below ``archived_id`` (the archive's highest id):
        counter and watermark become ``archived_id`` and the retained list is dropped;
        returns (counter, watermark) as they were. None when the counter was not behind."""
        keys = self._keys
        before = await self._raise(
            keys=[keys.seq(room), keys.archived(room), keys.log(room)], args=[archived_id]
        )
        return (int(before[0]), int(before[1])) if before else None

    async def acquire(self, name: str, token: str, ttl_ms: int) -> bool:
        """Take the lock ``name`` (or extend it when ``token`` holds it) for ``ttl_ms``."""
        key = self._keys.archive_lock(name)
        if await self._redis.set(key, token, nx=True, px=ttl_ms):
            return True
        return bool(await self._lock(keys=[key], args=[token, ttl_ms]))

    async def release(self, name: str, token: str) -> None:
        await self._lock(keys=[self._keys.archive_lock(name)], args=[token, 0])

    @staticmethod
    def new_token() -> str:
        return secrets.token_hex(16)


def parse_items(items: Iterable[bytes]) -> list[dict]:
    return [orjson.loads(item) for item in items]
