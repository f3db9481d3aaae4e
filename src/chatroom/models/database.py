"""The deferred Peewee database, opening it from a URL, and the schema migrations."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import datetime, timezone

import peewee
from playhouse import migrate as pw_migrate
from playhouse.db_url import connect, parse
from playhouse.shortcuts import ReconnectMixin

#: The one deferred database every model is bound to; ``open_database`` fills it in.
database = peewee.DatabaseProxy()


def utcnow() -> datetime:
    """Now in UTC, without tzinfo (portable across SQLite, PostgreSQL and MySQL)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


class BaseModel(peewee.Model):
    """Base of every table: binds it to the deferred database."""

    class Meta:
        database = database
        legacy_table_names = False


class SchemaVersion(BaseModel):
    """One row: the number of the last migration applied to this database."""

    version = peewee.IntegerField()

    @classmethod
    def current(cls) -> int:
        """The schema version of this database (0: none applied yet)."""
        row = cls.get_or_none(cls.id == 1)
        return 0 if row is None else row.version


class _Reconnecting(ReconnectMixin):
    """Opens a new connection when the server has ended the old one (a restart, a
    failover, ``pg_terminate_backend``, MySQL's ``KILL`` or ``wait_timeout``).

    Each thread has its own connection; the first statement that finds it dead
    reconnects and runs again, unless it was inside a transaction (the work
    done so far would be lost: that call fails, the next one reconnects).
    Transactions begin with a statement of their own, so a dead connection is
    usually found there, and replaced, before any work.
    """

    reconnect_errors = (
        *ReconnectMixin.reconnect_errors,  # MySQL: 2006, 2013, ...
        (peewee.OperationalError, "server closed the connection unexpectedly"),  # psycopg2
        (peewee.OperationalError, "terminating connection"),
        (peewee.OperationalError, "could not receive data from server"),
        (peewee.OperationalError, "ssl connection has been closed unexpectedly"),
        (peewee.InterfaceError, "connection already closed"),
    )


class ReconnectingPostgresqlDatabase(_Reconnecting, peewee.PostgresqlDatabase):
    """PostgreSQL that survives a server restart."""


class ReconnectingMySQLDatabase(_Reconnecting, peewee.MySQLDatabase):
    """MySQL/MariaDB that survives a server restart or a killed connection."""


#: The class db_url picks for a URL -> the same database that reconnects by itself.
_RECONNECTING: dict[type[peewee.Database], type[peewee.Database]] = {
    peewee.PostgresqlDatabase: ReconnectingPostgresqlDatabase,
    peewee.MySQLDatabase: ReconnectingMySQLDatabase,
}


def open_database(url: str) -> peewee.Database:
    """Open the database at ``url`` (playhouse db_url syntax) and bind the models to it."""
    if url.startswith("sqlite"):
        # WAL lets readers and one writer work at once; the busy timeout makes
        # concurrent writers (threads, processes, the operator CLI) wait, not fail.
        # Transactions begin IMMEDIATE (with the write lock): a deferred one that read
        # first could not upgrade once another connection committed, and would fail
        # at once with "database is locked", busy timeout or not.
        db = connect(
            url,
            pragmas={"journal_mode": "wal", "busy_timeout": 5000, "foreign_keys": 1},
            lock_type="IMMEDIATE",
        )
    else:
        db = connect(url)  # checks the URL and picks the driver; nothing is opened yet
        reconnecting = _RECONNECTING.get(type(db))
        if reconnecting is not None:
            db = reconnecting(**parse(url))
    database.initialize(db)
    return db


def _create_tables(db: peewee.Database, migrator: pw_migrate.SchemaMigrator) -> None:
    from chatroom.models.membership import Membership
    from chatroom.models.room import Room
    from chatroom.models.session import Session
    from chatroom.models.user import User

    db.create_tables([User, Room, Membership, Session])


#: Migration n+1 is MIGRATIONS[n]. Append new ones; never edit an applied one.
#: Later migrations use ``playhouse.migrate`` operations, e.g.
#: ``pw_migrate.migrate(migrator.add_column("room", "archived", BooleanField(default=False)))``.
def _add_files(db: peewee.Database, migrator: pw_migrate.SchemaMigrator) -> None:
    """Issue 15: the ``file`` table of uploads (SPEC §9)."""
    from chatroom.models.files import File

    db.create_tables([File])


def _archive_tables(db: peewee.Database, migrator: pw_migrate.SchemaMigrator) -> None:
    from chatroom.models.archive import create_archive_table
    from chatroom.models.search import create_search_index

    create_archive_table(db)
    create_search_index(db)


def _archive_bigrams(db: peewee.Database, migrator: pw_migrate.SchemaMigrator) -> None:
    from chatroom.models.search import create_bigram_index

    create_bigram_index(db, migrator)


def _site_roles(db: peewee.Database, migrator: pw_migrate.SchemaMigrator) -> None:
    """Issue 13: ``user.role`` and the moderation audit log (SPEC §6)."""
    from chatroom.models.audit import AuditEntry
    from chatroom.models.user import User

    # A new database got the column from migration 1, which creates today's ``user``.
    if "role" not in {column.name for column in db.get_columns("user")}:
        pw_migrate.migrate(migrator.add_column("user", "role", User.role))
    db.create_tables([AuditEntry])


def _room_moderation(db: peewee.Database, migrator: pw_migrate.SchemaMigrator) -> None:
    """Issue 13: private and read-only rooms, room roles, bans and mutes (SPEC §6).

    The creator of an existing room, where still a member, becomes its owner
    (``lobby`` has no creator; direct rooms have no owner).
    """
    from chatroom.models.membership import OWNER, Membership
    from chatroom.models.moderation import RoomBan, RoomMute
    from chatroom.models.room import Room

    # A new database got the columns from migration 1, which creates today's tables.
    room_columns = {column.name for column in db.get_columns("room")}
    steps = [
        migrator.add_column("room", name, getattr(Room, name))
        for name in ("is_private", "read_only", "rules_rev")
        if name not in room_columns
    ]
    if "role" not in {column.name for column in db.get_columns("membership")}:
        steps.append(migrator.add_column("membership", "role", Membership.role))
    if steps:
        pw_migrate.migrate(*steps)
    db.create_tables([RoomBan, RoomMute])
    creators = Room.select(Room.id, Room.created_by).where(
        ~Room.is_direct & Room.created_by.is_null(False)
    )
    with db.atomic():
        for room_id, user_id in creators.tuples():
            mine = (Membership.room == room_id) & (Membership.user == user_id)
            Membership.update(role=OWNER).where(mine).execute()


def _invites_and_blocks(db: peewee.Database, migrator: pw_migrate.SchemaMigrator) -> None:
    """Issue 13: sign-up invite codes and blocked users (SPEC §6)."""
    from chatroom.models.blocks import Block
    from chatroom.models.invites import Invite

    db.create_tables([Invite, Block])  # IF NOT EXISTS: safe whatever its number


MIGRATIONS: list[Callable[[peewee.Database, pw_migrate.SchemaMigrator], None]] = [
    _create_tables,
    _add_files,  # 2: uploaded files (SPEC §9)
    _archive_tables,  # 3: the message archive and its search index (SPEC §7)
    _archive_bigrams,  # 4: PostgreSQL: an index for 2-character search terms
    _site_roles,  # 5: site roles and the audit log (SPEC §6)
    _room_moderation,  # 6: private rooms, room roles, bans and mutes (SPEC §6)
    _invites_and_blocks,  # 7: invite codes and blocked users (SPEC §6)
]

SCHEMA_VERSION = len(MIGRATIONS)


def migrate_schema(db: peewee.Database) -> bool:
    """Bring the schema up to date and make sure ``lobby`` exists.

    Idempotent; keeps all data. Returns True when the database was empty. Each
    migration commits on its own: MySQL commits DDL implicitly, so one big
    transaction would not be one anyway. On SQLite, foreign keys are off meanwhile
    (see ``_migration_lock``).
    """
    from chatroom.models.room import Room

    with _migration_lock(db):
        return _migrate(db, Room)


def _migrate(db: peewee.Database, Room: type) -> bool:
    db.create_tables([SchemaVersion])
    row = SchemaVersion.get_or_none(SchemaVersion.id == 1)
    was_empty = row is None
    current = 0 if row is None else row.version
    migrator = pw_migrate.SchemaMigrator.from_database(db)
    for number, step in enumerate(MIGRATIONS[current:], start=current + 1):
        step(db, migrator)
        _record_version(number)
    Room.ensure_public("lobby", topic="Everyone's room")
    return was_empty


#: Any constant both migrating processes agree on: the lock that serialises them.
_MIGRATION_LOCK_KEY = 0x63686174  # "chat"


@contextlib.contextmanager
def _migration_lock(db: peewee.Database) -> Iterator[None]:
    """Serialise migrations of hosts starting together on one PostgreSQL or MySQL.

    Their ``CREATE ... IF NOT EXISTS`` statements race otherwise. SQLite needs
    none (its file belongs to one data directory, locked by one server), but its
    foreign keys are turned off while the schema changes.
    """
    if isinstance(db, peewee.PostgresqlDatabase):
        db.execute_sql("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK_KEY,))
        try:
            yield
        finally:
            db.execute_sql("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK_KEY,))
    elif isinstance(db, peewee.MySQLDatabase):
        db.execute_sql("SELECT GET_LOCK('chatroom_migrate', 60)")
        try:
            yield
        finally:
            db.execute_sql("SELECT RELEASE_LOCK('chatroom_migrate')")
    elif isinstance(db, peewee.SqliteDatabase):
        # SQLite adds a NOT NULL column by rebuilding the table (playhouse's
        # add_not_null: copy, DROP TABLE, rename). With foreign keys on, that DROP
        # would delete every row pointing at the table by ON DELETE CASCADE: adding
        # ``user.role`` would take every membership and session with it. SQLite's
        # own advice for table rebuilds: foreign keys off, outside any transaction.
        db.execute_sql("PRAGMA foreign_keys = OFF")
        try:
            yield
        finally:
            db.execute_sql("PRAGMA foreign_keys = ON")
    else:
        yield


def _record_version(number: int) -> None:
    # Insert-or-ignore, then update: safe when two processes initialise at once.
    SchemaVersion.insert(id=1, version=number).on_conflict_ignore().execute()
    SchemaVersion.update(version=number).where(SchemaVersion.id == 1).execute()
