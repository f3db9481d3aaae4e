"""The models' named queries that the controllers call instead of inline Peewee
statements: each against a temp SQLite file initialised like ``chatroom initdb``."""

from __future__ import annotations

import secrets

import pytest

from chatroom.models import LOBBY, Membership, Room, SchemaVersion, Session, User
from chatroom.models.database import SCHEMA_VERSION

pytestmark = pytest.mark.usefixtures("db")


def make_user(name: str) -> User:
    user = User.register(name, "not-a-real-hash", LOBBY)
    assert user is not None
    return user


def live_sessions(user: User) -> int:
    return Session.live_counts([user.id]).get(user.id, 0)


def test_register_joins_the_lobby_and_refuses_a_taken_name() -> None:
    alice = make_user("Alice")
    assert Membership.read_markers(alice) == {LOBBY: 0}
    assert User.register("ALICE", "another-hash", LOBBY) is None
    assert User.total() == 1


def test_create_public_makes_the_creator_a_member_in_one_transaction() -> None:
    alice = make_user("alice")
    room = Room.create_public("general", "Talk", alice.id, last_read_id=7)
    assert room is not None and (room.topic, room.created_by_id) == ("Talk", alice.id)
    assert Membership.read_markers(alice.id) == {"general": 7, LOBBY: 0}
    assert Room.create_public("general", "Other") is None
    # A creator who does not exist (a foreign key): refused, and nothing is left behind.
    assert Room.create_public("orphan", "", creator=99999) is None
    assert Room.by_name("orphan") is None
    assert Room.create_public("quiet", "") is not None
    assert Room.listing()[-1].member_count == 0


def test_listing_counts_members_and_shows_direct_rooms_to_their_members_only() -> None:
    alice, bob = make_user("alice"), make_user("bob")
    Room.create_public("general", "", alice.id)
    Room.open_direct("dm:alice:bob", ("alice", "bob"), alice.id)
    everything = {r.name: r.member_count for r in Room.listing()}
    assert everything == {"dm:alice:bob": 2, "general": 1, LOBBY: 2}
    assert [r.name for r in Room.listing(bob.id)] == ["dm:alice:bob", "general", LOBBY]
    carol = make_user("carol")
    assert [r.name for r in Room.listing(carol)] == ["general", LOBBY]
    assert sorted(Room.names()) == ["dm:alice:bob", "general", LOBBY]


def test_open_direct_creates_once_and_needs_both_users() -> None:
    alice, bob = make_user("alice"), make_user("bob")
    assert Room.open_direct("dm:alice:nobody", ("alice", "nobody"), alice.id) is None
    assert Room.by_name("dm:alice:nobody") is None
    first = Room.open_direct("dm:alice:bob", ("alice", "bob"), alice.id)
    again = Room.open_direct("dm:alice:bob", ("alice", "bob"), bob.id)
    assert first is not None and first.is_direct and again.id == first.id
    assert first.created_by_id == alice.id
    note = Room.open_direct("dm:alice:alice", ("alice", "alice"), alice.id)
    assert {r.name: r.member_count for r in Room.listing(alice)}["dm:alice:alice"] == 1
    assert note is not None


def test_delete_named_removes_the_room_and_its_memberships() -> None:
    alice = make_user("alice")
    Room.create_public("general", "", alice.id)
    assert Room.delete_named("general") == 1
    assert Room.by_name("general") is None
    assert Membership.read_markers(alice) == {LOBBY: 0}
    assert Room.delete_named("general") is None


def test_password_change_and_disable_revoke_every_session() -> None:
    alice, bob = make_user("alice"), make_user("bob")
    for user in (alice, alice, bob):
        Session.record(secrets.token_urlsafe(32), user.id)
    assert User.change_password(alice.id, "new-hash") == 2
    assert User.by_name("alice").password_hash == "new-hash"
    assert (live_sessions(alice), live_sessions(bob)) == (0, 1)
    User.set_password_hash(bob.id, "rehashed")
    assert User.by_name("bob").password_hash == "rehashed" and live_sessions(bob) == 1
    assert User.disable(bob.id) == 1
    assert User.by_name("bob").disabled and live_sessions(bob) == 0
    User.enable(bob.id)
    assert not User.by_name("bob").disabled and live_sessions(bob) == 0


def test_user_listing_is_by_name_and_can_be_narrowed() -> None:
    bob, alice = make_user("bob"), make_user("Alice")
    assert [u.name for u in User.listing()] == ["Alice", "bob"]
    assert [u.name for u in User.listing([bob.id, 99999])] == ["bob"]
    assert [u.id for u in User.listing([])] == []
    assert alice.id != bob.id


def test_schema_version_current() -> None:
    assert SchemaVersion.current() == SCHEMA_VERSION
