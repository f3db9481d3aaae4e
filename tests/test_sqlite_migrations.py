"""Schema migrations on SQLite keep every row: a column added to a table that others
point at (with ON DELETE CASCADE) must not take their rows with it."""

from __future__ import annotations

from playhouse import migrate as pw_migrate

from chatroom.models import Membership, Room, Session, open_database
from chatroom.models.database import MIGRATIONS, SchemaVersion, database, migrate_schema


def test_adding_user_role_keeps_memberships_and_sessions(tmp_path):
    """Regression: SQLite adds a NOT NULL column by rebuilding the table (copy, DROP TABLE,
    rename); with foreign keys on, the DROP of the old ``user`` table cascaded to every
    membership and session, so migration 5 emptied both on upgrade."""
    handle = open_database(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        migrator = pw_migrate.SchemaMigrator.from_database(handle)
        database.create_tables([SchemaVersion])
        for step in MIGRATIONS[:4]:
            step(handle, migrator)
        pw_migrate.migrate(migrator.drop_column("user", "role"))  # as 0.1 made it
        SchemaVersion.create(id=1, version=4)
        sql = handle.execute_sql
        sql(
            "INSERT INTO user (id, name, name_key, password_hash, created, disabled) "
            "VALUES (1, 'old', 'old', 'x', '2025-01-01', 0)"
        )
        room = Room.create(name="lobby")
        Membership.create(user=1, room=room, last_read_id=7)
        Session.create(token_hash="h", user=1)

        migrate_schema(handle)

        (membership,) = Membership.select()
        assert (membership.user_id, membership.room_id, membership.last_read_id) == (1, 1, 7)
        assert Session.select().count() == 1
        assert sql("PRAGMA foreign_keys").fetchone() == (1,)  # on again afterwards
    finally:
        handle.close()
