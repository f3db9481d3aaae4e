"""The SQL archive of every message (SPEC §7): the ``archived_message`` table, its
writes (updates from edits, deletes and reactions, retention; the archiver's
batches are ``models/archive_insert.py``) and its reads (paging back, export).

Redis holds the newest messages of a room as a list of ``message`` frames with
consecutive ids; ``archived_message`` holds every message that was copied out of
it, one row per (room, id). The Redis side of archiving (the watermark, the
retained ranges it copies, the locks) is ``models/archive_state.py``; search per
database, with its indexes, is ``models/search.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import orjson
import peewee

from chatroom.models.database import BaseModel
from chatroom.models.room import Room

T = TypeVar("T")

#: The fields of a stored message that have columns; everything else a later feature
#: adds to a message (edited, deleted, reactions, reply_to, mentions, files) is kept
#: in ``extra`` as JSON, so the archive stores it without a migration.
COLUMN_FIELDS = ("room", "id", "user", "text", "ts")
#: Fields of a stored frame that are not the message's content: never archived.
TRANSIENT_FIELDS = ("type", "client_id")


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


def create_archive_table(db: peewee.Database) -> None:
    """Migration 3 (with ``search.create_search_index``): the ``archived_message`` table."""
    db.create_tables([ArchivedMessage])


# -- writes (the archiver's batches: models/archive_insert.py) -------------------


def apply_update(room_id: int, item: dict, rev: int) -> bool:
    """Rewrite one message's row with a newer revision (an edit, a delete, a reaction).

    Inserts the row when the archiver has not copied it yet, so either order of
    "archiver copies" and "update arrives" ends with the newest revision (the
    archiver's insert leaves an existing row alone). An older or equal ``rev``
    changes nothing. Returns True when this call wrote the row.
    """
    values = row_values(room_id, item, rev)
    where = (ArchivedMessage.room == room_id) & (ArchivedMessage.message_id == values["message_id"])
    with write_transaction():
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
        db = bound_database()
        if not db.in_transaction():
            try:
                db.close()
            except Exception:  # the connection is already unusable: forget it
                db._state.reset()
        raise


def bound_database() -> peewee.Database:
    """The database the models are bound to (behind the deferred proxy)."""
    db = ArchivedMessage._meta.database
    return db.obj if isinstance(db, peewee.DatabaseProxy) else db


def write_transaction():
    """A transaction of the archive's writes. On SQLite it takes the write lock at once
    (no upgrade deadlock): every SQLite transaction does, ``open_database`` opens it
    with ``lock_type="IMMEDIATE"``."""
    return bound_database().atomic()


def newest_archived_in(room_id: peewee.Node) -> peewee.Select:
    """The highest archived id of the room ``room_id`` names (an outer query's room id
    column), as a correlated subquery: an index lookup per row."""
    return ArchivedMessage.select(peewee.fn.MAX(ArchivedMessage.message_id)).where(
        ArchivedMessage.room == room_id
    )


def newest_archived_ids(room_ids: list[int]) -> dict[int, int]:
    """The watermark as SQL knows it: each room's highest archived id (0 for none), in
    one query (an index lookup each)."""
    if not room_ids:
        return {}
    outer = Room.alias("r")
    newest = newest_archived_in(outer.id)
    query = outer.select(outer.id, newest).where(outer.id.in_(room_ids)).tuples()
    return {room_id: int(top or 0) for room_id, top in query}


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


def archived_item(room_id: int, message_id: int) -> tuple[dict, int] | None:
    """One archived message as history returns it, and the rev its content reflects
    (the newer of the row's last update and the stored frame's own); None if absent."""
    row = ArchivedMessage.get_or_none(
        (ArchivedMessage.room == room_id) & (ArchivedMessage.message_id == message_id)
    )
    if row is None:
        return None
    item = row.item()
    rev = item.get("rev")
    return item, max(row.rev, rev if isinstance(rev, int) else 0)


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


def parse_items(items: Iterable[bytes]) -> list[dict]:
    """Stored frames (JSON) as dicts."""
    return [orjson.loads(item) for item in items]
