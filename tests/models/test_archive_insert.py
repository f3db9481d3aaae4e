"""The archiver's batch insert (models/archive_insert.py) on every database and path:
a row holds exactly what ``row_values`` makes of the frame, whatever the frame
carries (quotes, escapes, emoji, control characters, SQL, odd keys), a batch is
idempotent, never overwrites a newer row and is all or nothing."""

from __future__ import annotations

import contextlib

import orjson
import peewee
import pytest

from chatroom.models import Room, archive_insert, migrate_schema, open_database
from chatroom.models.archive import ArchivedMessage, apply_update, row_values
from chatroom.models.archive_insert import store_batch, store_frames
from chatroom.models.search import SearchQuery, search
from tests.helpers import temporary_database

ROW_FIELDS = ("room_name", "message_id", "user", "user_key", "text", "ts", "rev")


@pytest.fixture(params=["sqlite", "sqlite-tuples", "postgresql", "mysql"])
def room_id(request, tmp_path, monkeypatch):
    """A migrated database of the kind (``sqlite-tuples``: a SQLite without JSON
    functions, which takes the tuple path) with the room ``lobby``; yields its id."""
    kind = request.param
    if kind == "sqlite-tuples":
        monkeypatch.setattr(archive_insert, "sqlite_has_json", lambda: False)
    if kind.startswith("sqlite"):
        made = contextlib.nullcontext(f"sqlite:///{tmp_path / 'archive.db'}")
    else:
        made = temporary_database(kind)
    with made as url:
        db = open_database(url)
        migrate_schema(db)
        yield Room.ensure_public("lobby").id
        db.close()


def frame(message_id: int, text: str = "hi", **extra: object) -> bytes:
    item = {"type": "message", "room": "lobby", "id": message_id, "user": "Alice"}
    item.update(text=text, ts=1733360000.123456 + message_id, client_id=f"c{message_id}")
    return orjson.dumps({**item, **extra, "rev": message_id})


HOSTILE = [
    frame(1, 'quotes \' " and \\ backslashes \\" \\u0041'),
    frame(2, "emoji 😀 𝄞 and 中文会议 and é", reply_to={"id": 1, "user": "bob", "text": "q"}),
    frame(3, "control \u0001\u001f\t\n\r and \u2028\u2029 and \u007f"),
    frame(4, "'); DROP TABLE archived_message; --", mentions=["bob", "carol"]),
    frame(5, '{"type": "message", "text": "json inside"}', reactions={"👍": ["a"], "'": ["b"]}),
    frame(6, "", deleted=True),
    frame(7, "x" * 5000, edited=1733360100.5, files=[{"id": "f1", "name": "a b.txt"}]),
    frame(8, "odd keys", **{"a.b": 1, "$": 2, "text.x": 3, "'k'": "v", "ключ": [1.5e-7, None]}),
    frame(9, "%_ NEAR * - LIKE", nested={"deep": {"deeper": [True, False, {"x": ""}]}}),
    orjson.dumps({"type": "message", "room": "lobby", "id": 10, "user": "Bob", "ts": 1700000000}),
]


def rows() -> list[ArchivedMessage]:
    return list(ArchivedMessage.select().order_by(ArchivedMessage.message_id))


def expected(room_id: int, raw: bytes) -> dict:
    return row_values(room_id, orjson.loads(raw))


def test_each_row_is_what_row_values_makes_of_its_frame(room_id):
    store_frames(room_id, b"[" + b",".join(HOSTILE) + b"]")
    stored = rows()
    assert len(stored) == len(HOSTILE)
    for row, raw in zip(stored, HOSTILE, strict=True):
        want = expected(room_id, raw)
        assert row.room_id == room_id
        assert {f: getattr(row, f) for f in ROW_FIELDS} == {f: want[f] for f in ROW_FIELDS}
        assert orjson.loads(row.extra) == orjson.loads(want["extra"])
        assert isinstance(row.ts, float)
    assert ArchivedMessage.table_exists()  # the text that looks like SQL stayed text


def test_an_empty_array_and_history_items_without_type(room_id):
    store_frames(room_id, "[]")
    items = [orjson.loads(raw) for raw in HOSTILE[:3]]
    for item in items:
        del item["type"]
    assert store_batch(room_id, items) == 3
    assert store_batch(room_id, []) == 0
    assert [row.item()["text"] for row in rows()] == [item["text"] for item in items]


def test_a_batch_again_changes_nothing_and_never_overwrites_a_newer_row(room_id):
    batch = b"[" + b",".join(HOSTILE) + b"]"
    store_frames(room_id, batch)
    edited = {**orjson.loads(HOSTILE[0]), "text": "edited", "edited": 1.0}
    assert apply_update(room_id, edited, 50)
    store_frames(room_id, batch)  # the archiver again (a crash before the watermark)
    stored = rows()
    assert [row.message_id for row in stored] == list(range(1, 11))
    assert (stored[0].text, stored[0].rev) == ("edited", 50)


def test_a_row_written_first_by_an_update_is_left_alone(room_id):
    early = {**orjson.loads(HOSTILE[1]), "text": "changed before archiving"}
    assert apply_update(room_id, early, 99)
    store_frames(room_id, b"[" + b",".join(HOSTILE[:3]) + b"]")
    assert [(row.message_id, row.rev) for row in rows()] == [(1, 0), (2, 99), (3, 0)]
    assert rows()[1].text == "changed before archiving"


def test_a_batch_that_fails_leaves_nothing(room_id):
    broken = b"[" + HOSTILE[0] + b"," + orjson.dumps({"type": "message", "id": 2}) + b"]"
    with pytest.raises((peewee.IntegrityError, KeyError, TypeError)):
        store_frames(room_id, broken)  # no user: the NOT NULL column refuses the row
    assert rows() == []


def test_stored_frames_are_found_by_search(room_id):
    store_frames(room_id, b"[" + b",".join(HOSTILE) + b"]")
    from chatroom.models import User

    user = User.create(name="reader", name_key="reader", password_hash="x")
    for term, ids in (("会议", [2]), ("drop", [4]), ("json", [5])):
        found = search(SearchQuery((term,), user.id, limit=10))
        assert [row.message_id for row in found] == ids, term
