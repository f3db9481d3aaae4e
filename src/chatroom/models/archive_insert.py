"""The archiver's batch insert (SPEC §7): stored message frames into
``archived_message`` with as little Python per message as each database allows.

The archiver runs in a serving process, where every microsecond of Python holds
the GIL its event loop needs (docs/performance.md). So a batch goes to SQL as
what Redis holds: one JSON array of the stored frames, and the database takes it
apart in one statement, ``INSERT ... SELECT`` over the array's elements (SQLite
``json_each``, PostgreSQL ``jsonb_array_elements``): no per-message parse, dict or
ORM row in Python, and (SQLite) one flush of the FTS5 index per batch instead of
one per row. MySQL/MariaDB, and a SQLite built without JSON functions, get the
frames parsed in Python and inserted as plain tuples in multi-row statements.
Whatever the path, a row holds what ``archive.row_values`` gives for the frame.
"""

from __future__ import annotations

import functools
import sqlite3

import orjson
import peewee

from chatroom.models.archive import (
    COLUMN_FIELDS,
    TRANSIENT_FIELDS,
    bound_database,
    row_values,
    write_transaction,
)

#: The columns a batch fills, in the order of ``_values``.
_COLUMNS = ("room_id", "room_name", "message_id", "user", "user_key", "text", "ts", "rev", "extra")
#: The JSON keys that are not ``extra``: columns, and transient fields of a frame.
_NOT_EXTRA = COLUMN_FIELDS + TRANSIENT_FIELDS
#: Rows per statement on the tuple path (9 parameters each: SQLite before 3.32 allows 999).
_ROWS_PER_STATEMENT = 100

_SQLITE_INSERT = (
    "INSERT INTO archived_message ({columns}) "
    "SELECT ?, json_extract(value, '$.room'), json_extract(value, '$.id'), "
    "json_extract(value, '$.user'), lower(json_extract(value, '$.user')), "
    "coalesce(json_extract(value, '$.text'), ''), json_extract(value, '$.ts'), 0, "
    "json_remove(value, {not_extra}) "
    # Not OR IGNORE, which would drop a malformed frame silently (a NULL in a NOT NULL
    # column); "WHERE true": the upsert clause after a SELECT needs one (SQLite's docs).
    "FROM json_each(?) WHERE true ORDER BY key ON CONFLICT DO NOTHING"
).format(
    columns=", ".join(f'"{c}"' for c in _COLUMNS),
    not_extra=", ".join(f"'$.{k}'" for k in _NOT_EXTRA),
)

_POSTGRESQL_INSERT = (
    "INSERT INTO archived_message ({columns}) "
    "SELECT %s, m->>'room', (m->>'id')::bigint, m->>'user', lower(m->>'user'), "
    "coalesce(m->>'text', ''), (m->>'ts')::float8, 0, (m - {not_extra})::text "
    "FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS e(m, n) ORDER BY n "
    "ON CONFLICT DO NOTHING"
).format(
    columns=", ".join(f'"{c}"' for c in _COLUMNS),
    not_extra="ARRAY[{}]".format(", ".join(f"'{k}'" for k in _NOT_EXTRA)),
)


@functools.cache
def sqlite_has_json() -> bool:
    """Whether the SQLite this Python links has the JSON functions (built in since 3.38,
    an option before)."""
    try:
        sqlite3.connect(":memory:").execute(
            "SELECT json_remove(value, '$.a') FROM json_each('[{\"a\": 1}]')"
        ).fetchall()
    except sqlite3.OperationalError:
        return False
    return True


def store_frames(room_id: int, frames: bytes | str) -> None:
    """Insert ``frames``, a JSON array of stored message frames (the ``message``
    frames Redis holds, or history items), as rows of the room ``room_id``; rows
    already archived (same room and id) are left alone. Idempotent.

    One transaction: after a crash either the whole batch is in SQL or none of it.
    """
    store_rooms([(room_id, frames)])


def store_rooms(batches: list[tuple[int, bytes | str]]) -> None:
    """``store_frames`` for several rooms (room id, frames), in one transaction."""
    db = bound_database()
    with write_transaction():
        for room_id, frames in batches:
            _insert(db, room_id, frames.decode() if isinstance(frames, bytes) else frames)


def _insert(db: peewee.Database, room_id: int, frames: str) -> None:
    if isinstance(db, peewee.PostgresqlDatabase):
        db.execute_sql(_POSTGRESQL_INSERT, (room_id, frames))
    elif isinstance(db, peewee.SqliteDatabase) and sqlite_has_json():
        db.execute_sql(_SQLITE_INSERT, (room_id, frames))
    else:
        insert_rows(db, [_values(room_id, item) for item in orjson.loads(frames)])


def store_batch(room_id: int, items: list[dict]) -> int:
    """Insert history items (dicts), as ``store_frames`` does; how many were given
    (not how many were new)."""
    if items:
        store_frames(room_id, orjson.dumps(items))
    return len(items)


def _values(room_id: int, item: dict) -> tuple:
    values = row_values(room_id, item)
    return tuple(values[k] for k in ("room", *_COLUMNS[1:]))


def insert_rows(db: peewee.Database, rows: list[tuple]) -> None:
    """The tuple path: multi-row ``INSERT`` statements that ignore existing rows."""
    if isinstance(db, peewee.SqliteDatabase):
        verb = "INSERT OR IGNORE"
    elif isinstance(db, peewee.MySQLDatabase):
        verb = "INSERT IGNORE"
    else:
        verb = "INSERT"
    tail = " ON CONFLICT DO NOTHING" if isinstance(db, peewee.PostgresqlDatabase) else ""
    quote = db.quote
    columns = ", ".join(f"{quote[0]}{c}{quote[1]}" for c in _COLUMNS)
    one = "(" + ", ".join([db.param] * len(_COLUMNS)) + ")"
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        chunk = rows[start : start + _ROWS_PER_STATEMENT]
        sql = f"{verb} INTO archived_message ({columns}) VALUES {', '.join([one] * len(chunk))}"
        db.execute_sql(sql + tail, [value for row in chunk for value in row])
