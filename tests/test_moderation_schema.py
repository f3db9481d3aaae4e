"""Migration 6 (issue 13) on a database an older release made: private/read-only rooms,
room roles, bans and mutes; each existing room's creator, where a member, becomes owner."""

from __future__ import annotations

from playhouse import migrate as pw_migrate

from chatroom.models import Membership, Room, User, open_database
from chatroom.models.database import MIGRATIONS, SchemaVersion, database, migrate_schema
from chatroom.models.moderation import RoomBan, RoomMute


def _old_database(url: str):
    """A database as migrations 1-5 made it before issue 13."""
    handle = open_database(url)
    migrator = pw_migrate.SchemaMigrator.from_database(handle)
    database.create_tables([SchemaVersion])
    for step in MIGRATIONS[:5]:
        step(handle, migrator)
    pw_migrate.migrate(
        migrator.drop_column("room", "is_private"),
        migrator.drop_column("room", "read_only"),
        migrator.drop_column("room", "rules_rev"),
        migrator.drop_column("membership", "role"),
    )
    SchemaVersion.create(id=1, version=5)
    return handle


def test_creators_that_are_members_become_owners(tmp_path):
    handle = _old_database(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        sql = handle.execute_sql
        for n, name in enumerate(("ann", "ben", "cat"), 1):
            sql(
                "INSERT INTO user (id, name, name_key, password_hash, created, disabled, role) "
                f"VALUES ({n}, '{name}', '{name}', 'x', '2025-01-01', 0, 'user')"
            )
        rooms = [
            (1, "lobby", 0, "NULL"),
            (2, "general", 0, "1"),  # ann made it and is a member: owner
            (3, "left", 0, "2"),  # ben made it and left: nobody owns it
            (4, "dm:ann:ben", 1, "1"),  # direct rooms have no owner
        ]
        for room_id, name, direct, creator in rooms:
            sql(
                "INSERT INTO room (id, name, topic, is_direct, created_by_id, created) "
                f"VALUES ({room_id}, '{name}', '', {direct}, {creator}, '2025-01-01')"
            )
        members = [(1, 1), (2, 1), (3, 1), (1, 2), (2, 2), (3, 3), (1, 4), (2, 4)]
        for user_id, room_id in members:
            sql(
                "INSERT INTO membership (user_id, room_id, last_read_id, joined) "
                f"VALUES ({user_id}, {room_id}, 0, '2025-01-01')"
            )

        migrate_schema(handle)

        assert SchemaVersion.current() == len(MIGRATIONS)
        roles = {
            (m.user.name, m.room.name): m.role
            for m in Membership.select(Membership, User, Room).join(User).switch().join(Room)
        }
        assert roles == {
            ("ann", "lobby"): "member",
            ("ben", "lobby"): "member",
            ("cat", "lobby"): "member",
            ("ann", "general"): "owner",
            ("ben", "general"): "member",
            ("cat", "left"): "member",
            ("ann", "dm:ann:ben"): "member",
            ("ben", "dm:ann:ben"): "member",
        }
        assert not any(r.is_private or r.read_only or r.rules_rev for r in Room.select())
        assert RoomBan.select().count() == 0 and RoomMute.select().count() == 0
        migrate_schema(handle)  # again: nothing changes
        assert Membership.select().where(Membership.role == "owner").count() == 1
    finally:
        handle.close()


def test_a_new_database_has_every_table_at_once(tmp_path):
    handle = open_database(f"sqlite:///{tmp_path / 'new.db'}")
    try:
        migrate_schema(handle)
        assert {"room_ban", "room_mute"} <= set(handle.get_tables())
        room_columns = {c.name for c in handle.get_columns("room")}
        assert {"is_private", "read_only", "rules_rev"} <= room_columns
        assert "role" in {c.name for c in handle.get_columns("membership")}
    finally:
        handle.close()
