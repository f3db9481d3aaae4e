"""The ``invite`` and ``block`` tables (SPEC §6): their named queries on a real SQLite
file, and a code's last use raced by two threads on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from chatroom.config import Config
from chatroom.models import LOBBY, Block, Invite, InviteUnusable, User, open_database
from chatroom.models.database import utcnow
from chatroom.models.invites import code_digest
from chatroom.storage import initialise_database

CODE = "Zt9aQw3rXb7LmN2pKc5vYh8e"


def later(seconds: float = 3600):
    return utcnow() + timedelta(seconds=seconds)


def make_user(name: str) -> User:
    user = User.register(name, "not-a-real-hash", LOBBY)
    assert user is not None
    return user


@pytest.mark.usefixtures("db")
class TestInvites:
    def test_only_a_digest_and_a_short_prefix_are_stored(self) -> None:
        invite = Invite.issue(CODE, "teacher", 2, later())
        row = Invite.get_by_id(invite.id)
        assert row.code_hash == code_digest(CODE) != CODE
        assert row.prefix == CODE[:4] and (row.uses, row.used) == (2, 0)
        assert CODE not in repr(row.__data__)
        assert row.state() == "active"

    def test_each_use_makes_one_account_until_used_up(self) -> None:
        Invite.issue(CODE, "teacher", 2, later())
        assert Invite.register_user(CODE, "ann", "h", LOBBY).name == "ann"
        assert Invite.usable(CODE) is not None
        assert Invite.register_user(CODE, "ben", "h", LOBBY).name == "ben"
        assert Invite.usable(CODE) is None
        with pytest.raises(InviteUnusable):
            Invite.register_user(CODE, "cat", "h", LOBBY)
        assert User.by_name("cat") is None
        (row,) = Invite.listing()
        assert (row.used, row.state()) == (2, "used_up")

    def test_a_taken_name_gives_the_use_back(self) -> None:
        make_user("ann")
        Invite.issue(CODE, "teacher", 1, later())
        assert Invite.register_user(CODE, "ANN", "h", LOBBY) is None
        assert Invite.get().used == 0, "the use is undone with the account"
        assert Invite.register_user(CODE, "ann2", "h", LOBBY) is not None

    @pytest.mark.parametrize("code", ["", "x", CODE.lower(), CODE + "x", "%", CODE[:-1]])
    def test_an_unknown_code_is_unusable(self, code: str) -> None:
        Invite.issue(CODE, "teacher", 5, later())
        assert Invite.usable(code) is None
        with pytest.raises(InviteUnusable):
            Invite.register_user(code, "ann", "h", LOBBY)

    def test_expired_and_revoked_codes_are_unusable(self) -> None:
        old = Invite.issue("old" + CODE, "t", 5, later(-1))
        assert old.state() == "expired" and Invite.usable("old" + CODE) is None
        with pytest.raises(InviteUnusable):
            Invite.register_user("old" + CODE, "ann", "h", LOBBY)
        live = Invite.issue(CODE, "t", 5, later())
        revoked = Invite.revoke(live.id)
        first = revoked.revoked
        assert revoked.state() == "revoked" and Invite.usable(CODE) is None
        assert Invite.revoke(live.id).revoked == first, "revoking again keeps the first time"
        assert Invite.revoke(99999) is None
        with pytest.raises(InviteUnusable):
            Invite.register_user(CODE, "ann", "h", LOBBY)
        assert User.total() == 0

    def test_listing_is_newest_first_and_bounded(self) -> None:
        for i in range(5):
            Invite.issue(f"{CODE}{i}", "t", 1, later())
        assert [i.prefix for i in Invite.listing(limit=3)] == [CODE[:4]] * 3
        assert [i.id for i in Invite.listing()] == sorted(
            (i.id for i in Invite.listing()), reverse=True
        )


@pytest.mark.usefixtures("db")
class TestBlocks:
    def test_add_remove_and_list(self) -> None:
        alice, bob, carol = make_user("alice"), make_user("Bob"), make_user("carol")
        assert Block.add(alice.id, bob.id) is True
        assert Block.add(alice.id, bob.id) is False, "a second block is the same block"
        assert Block.add(alice.id, carol.id) is True
        assert [name for name, _ in Block.listing(alice.id)] == ["Bob", "carol"]
        assert Block.listing(bob.id) == [] and Block.count_by(alice.id) == 2
        assert Block.remove(alice.id, bob.id) is True
        assert Block.remove(alice.id, bob.id) is False
        assert [name for name, _ in Block.listing(alice.id)] == ["carol"]

    def test_between_says_who_blocked_whom(self) -> None:
        alice, bob = make_user("alice"), make_user("bob")
        assert Block.between(alice.id, "bob") is None
        Block.add(alice.id, bob.id)
        assert Block.between(alice.id, "bob") == "blocker"
        assert Block.between(bob.id, "alice") == "blocked"
        Block.add(bob.id, alice.id)  # both ways: being blocked is what matters
        assert Block.between(alice.id, "bob") == "blocked"
        assert Block.between(alice.id, "nobody") is None

    def test_blocks_go_with_the_account(self) -> None:
        alice, bob = make_user("alice"), make_user("bob")
        Block.add(alice.id, bob.id)
        User.delete_by_id(bob.id)
        assert Block.listing(alice.id) == [] and Block.select().count() == 0


def _race_for_the_last_use(url: str) -> list[object]:
    """Two threads register with one 1-use code at the same moment; what each got."""
    Invite.issue(CODE, "teacher", 1, later())
    barrier = threading.Barrier(2)
    results: list[object] = [None, None]

    def register(i: int) -> None:
        barrier.wait()
        try:
            results[i] = Invite.register_user(CODE, f"racer{i}", "h", LOBBY)
        except InviteUnusable as exc:
            results[i] = exc
        finally:
            Invite._meta.database.close()

    threads = [threading.Thread(target=register, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def _assert_exactly_one_won(results: list[object]) -> None:
    winners = [r for r in results if isinstance(r, User)]
    losers = [r for r in results if isinstance(r, InviteUnusable)]
    assert len(winners) == 1 and len(losers) == 1, results
    assert User.total() == 1 and Invite.get().used == 1


@pytest.mark.parametrize("attempt", range(5))
def test_two_registrations_race_for_a_codes_last_use_on_sqlite(db, attempt) -> None:
    _assert_exactly_one_won(_race_for_the_last_use(str(db.database)))


def test_two_registrations_race_for_a_codes_last_use_on_a_sql_server(sql_url, tmp_path) -> None:
    config = Config(data_dir=tmp_path / "data", database_url=sql_url)
    initialise_database(config)
    handle = open_database(sql_url)
    try:
        for _ in range(3):
            Invite.delete().execute()
            User.delete().execute()
            _assert_exactly_one_won(_race_for_the_last_use(sql_url))
    finally:
        handle.close()


def test_a_database_of_the_previous_schema_gains_both_tables(tmp_path) -> None:
    """The migration on a database made by the migrations before it."""
    from playhouse import migrate as pw_migrate

    from chatroom.models.database import MIGRATIONS, SchemaVersion, database, migrate_schema

    handle = open_database(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        migrator = pw_migrate.SchemaMigrator.from_database(handle)
        database.create_tables([SchemaVersion])
        for step in MIGRATIONS[:-1]:
            step(handle, migrator)
        SchemaVersion.create(id=1, version=len(MIGRATIONS) - 1)
        assert not {"invite", "block"} & set(handle.get_tables())
        migrate_schema(handle)
        assert {"invite", "block"} <= set(handle.get_tables())
        assert SchemaVersion.current() == len(MIGRATIONS)
        Invite.issue(CODE, "t", 1, later())
        assert Invite.register_user(CODE, "ann", "h", LOBBY).name == "ann"
        migrate_schema(handle)  # again: nothing to do, nothing lost
        assert Invite.get().used == 1
    finally:
        handle.close()
