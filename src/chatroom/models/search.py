"""Search of the SQL archive (SPEC §7), on each database's own index, and the
indexes themselves.

SQLite: FTS5 with the trigram tokenizer (terms of 3+ characters; shorter ones —
a CJK word is often two characters — are checked with LIKE on the trigram
candidates or along the time index). PostgreSQL: ``pg_trgm`` GIN on
``lower(text)`` with LIKE, and a GIN index of each text's character bigrams for
2-character terms. MariaDB/MySQL: LIKE (MariaDB has no ngram parser; see
docs/archive.md). Every search goes through one access filter,
``readable_room_ids``.
"""

from __future__ import annotations

from dataclasses import dataclass

import peewee

from chatroom.models.archive import ArchivedMessage, bound_database
from chatroom.models.membership import Membership
from chatroom.models.moderation import RoomBan
from chatroom.models.room import Room

#: FTS5's trigram tokenizer indexes 3-character substrings; shorter terms use LIKE.
TRIGRAM = 3
#: PostgreSQL indexes each text's distinct 2-character substrings for
#: the terms ``pg_trgm`` cannot index.
BIGRAM = 2
#: The LIKE escape character: one that needs no escaping in any SQL dialect's literal.
LIKE_ESCAPE = "!"


# -- the indexes ----------------------------------------------------------------

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


def create_search_index(db: peewee.Database) -> None:
    """Migration 3 (after ``archive.create_archive_table``): the database's search index."""
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


# -- the query ------------------------------------------------------------------


def readable_room_ids(user_id: int) -> peewee.Select:
    """THE access filter of search: the ids of the rooms ``user_id`` may read.

    Public rooms the user is not banned from, and the user's direct and private
    rooms (SPEC §6: a ban also ends the membership).
    """
    mine = Membership.select(Membership.room).where(Membership.user == user_id)
    banned = RoomBan.select(RoomBan.room).where((RoomBan.user == user_id) & RoomBan.active())
    public = ~Room.is_direct & ~Room.is_private & Room.id.not_in(banned)
    return Room.select(Room.id).where(public | Room.id.in_(mine))


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
    db = bound_database()
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
