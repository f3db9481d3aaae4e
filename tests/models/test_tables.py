"""Peewee tables against a temp SQLite file initialised like ``chatroom initdb``."""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

import peewee
import pytest

from chatroom.config import Config
from chatroom.models import Membership, Room, SchemaVersion, Session, User, migrate_schema
from chatroom.models.database import SCHEMA_VERSION
from chatroom.storage import initialise_database

pytestmark = pytest.mark.usefixtures("db")


def make_user(name: str) -> User:
    return User.create(name=name, name_key=name.lower(), password_hash="not-a-real-hash")


def test_initialise_reports_an_empty_database_once(tmp_path: Path) -> None:
    config = Config(data_dir=tmp_path / "fresh")
    assert initialise_database(config) is True
    assert initialise_database(config) is False
    assert (tmp_path / "fresh" / "chatroom.db").is_file()


def test_migrate_schema_is_idempotent_and_keeps_data(db: peewee.Database) -> None:
    alice = make_user("Alice")
    room = Room.create(name="kept", topic="t", created_by=alice)
    Membership.create(user=alice, room=room, last_read_id=7)
    assert migrate_schema(db) is False
    assert migrate_schema(db) is False
    assert [(v.version) for v in SchemaVersion.select()] == [SCHEMA_VERSION]
    assert Room.select().where(Room.name == "lobby").count() == 1
    assert User.by_name("alice").name == "Alice"
    assert Membership.of(alice, Room.by_name("kept")).last_read_id == 7


def test_initialise_again_keeps_data(database: Config) -> None:
    make_user("alice")
    assert initialise_database(database) is False
    assert User.by_name("alice") is not None
    assert Room.select().where(Room.name == "lobby").count() == 1


def test_lobby_exists_after_initialisation() -> None:
    lobby = Room.by_name("lobby")
    assert lobby is not None and not lobby.is_direct


def test_user_by_name_is_case_insensitive() -> None:
    make_user("MixedCase.Name")
    for spelling in ("MixedCase.Name", "mixedcase.name", "MIXEDCASE.NAME"):
        user = User.by_name(spelling)
        assert user is not None and user.name == "MixedCase.Name"
    assert User.by_name("nobody") is None


def test_name_key_is_unique() -> None:
    make_user("alice")
    with pytest.raises(peewee.IntegrityError):
        make_user("ALICE")
    assert User.select().count() == 1


def test_membership_ensure_is_idempotent() -> None:
    alice = make_user("alice")
    room = Room.create(name="general")
    first, created = Membership.ensure(alice, room, 5)
    assert created is True and first.last_read_id == 5
    again, created = Membership.ensure(alice.id, room.id, 42)
    assert created is False and again.id == first.id and again.last_read_id == 5
    assert Membership.select().where(Membership.room == room).count() == 1


def test_membership_is_unique_per_user_and_room() -> None:
    alice = make_user("alice")
    room = Room.create(name="general")
    Membership.create(user=alice, room=room)
    with pytest.raises(peewee.IntegrityError):
        Membership.create(user=alice, room=room)


def test_mark_read_only_moves_forward() -> None:
    alice, bob = make_user("alice"), make_user("bob")
    room = Room.create(name="general")
    Membership.ensure(alice, room, 0)
    Membership.ensure(bob, room, 0)

    def marker(user: User) -> int:
        return Membership.of(user, room).last_read_id

    Membership.mark_read(alice.id, room.id, 10)
    assert marker(alice) == 10
    Membership.mark_read(alice.id, room.id, 3)
    assert marker(alice) == 10
    Membership.mark_read(alice.id, room.id, 10)
    assert marker(alice) == 10
    Membership.mark_read(alice.id, room.id, 11)
    assert marker(alice) == 11
    assert marker(bob) == 0


def test_for_user_and_visible_to() -> None:
    alice, bob = make_user("alice"), make_user("bob")
    general = Room.create(name="general")
    dm = Room.create(name="dm:alice:bob", is_direct=True)
    Room.create(name="dm:bob:carol", is_direct=True)
    for room in (general, dm):
        Membership.ensure(alice, room, 0)
    assert [m.room.name for m in Membership.for_user(alice)] == ["dm:alice:bob", "general"]
    assert [r.name for r in Room.visible_to(alice)] == ["dm:alice:bob", "general", "lobby"]
    assert [r.name for r in Room.visible_to(bob)] == ["general", "lobby"]
    counts = Room.member_counts()
    assert counts[general.id] == 1 and counts[dm.id] == 1
    assert Room.by_name("lobby").id not in counts


def test_session_record_authenticate_revoke() -> None:
    alice = make_user("alice")
    first, second = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    Session.record(first, alice.id)
    Session.record(second, alice.id)
    assert Session.user_for_token(first).id == alice.id
    assert Session.user_for_token("not-a-token") is None
    assert Session.revoke(first) is True
    assert Session.revoke(first) is False
    assert Session.user_for_token(first) is None
    # Revoking one login leaves the other signed in.
    assert Session.user_for_token(second).id == alice.id


def test_disabled_user_token_authenticates_to_none() -> None:
    alice = make_user("alice")
    token = secrets.token_urlsafe(32)
    Session.record(token, alice.id)
    User.update(disabled=True).where(User.id == alice.id).execute()
    assert Session.user_for_token(token) is None


def test_only_a_sha256_of_the_token_is_stored(database: Config, db: peewee.Database) -> None:
    alice = make_user("alice")
    token = secrets.token_urlsafe(32)
    Session.record(token, alice.id)
    digest = hashlib.sha256(token.encode()).hexdigest()
    assert Session.get(Session.user == alice).token_hash == digest
    db.close()  # flush to the file(s); WAL may keep the rows in chatroom.db-wal
    files = sorted(database.data_dir.glob("chatroom.db*"))
    contents = b"".join(path.read_bytes() for path in files)
    assert digest.encode() in contents
    assert token.encode() not in contents
