"""The SQL archive (SPEC §7) at the controller layer, on SQLite and PostgreSQL (and
MariaDB for search): archiving, the trim that never drops unarchived messages,
crashes, concurrent archivers, paging, search, updates, retention, export/import."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from chatroom.config import Config
from chatroom.controllers import Account, BlockingRunner, RoomController
from chatroom.controllers.archive import ArchiveController
from chatroom.controllers.errors import BadRequestError, ConflictError, ForbiddenError
from chatroom.metrics import Metrics
from chatroom.models import MessageRepository, RedisKeys, Room, User, open_database
from chatroom.models.archive import ArchivedMessage
from chatroom.models.archive_state import ArchiveState
from chatroom.server import initialise_database, make_redis
from tests.helpers import temporary_database

pytestmark = pytest.mark.timeout(120)


class ArchiveEnv:
    """One process's archive parts on the test's Redis and a database of its own."""

    def __init__(self, redis_url: str, history_size: int, backlog: int, retention: float) -> None:
        self.redis = make_redis(redis_url)
        self.run = BlockingRunner(4)
        self.keys = RedisKeys()
        self.messages = MessageRepository(
            self.redis, self.keys, history_size, archive_backlog=backlog
        )
        self.rooms = RoomController(self.run, self.messages)
        self.metrics = Metrics()
        self.state = ArchiveState(self.redis, self.keys)
        self.archive = ArchiveController(
            self.run, self.state, self.messages, self.rooms, self.metrics, retention, batch=7
        )

    def another_archiver(self, batch: int = 7) -> ArchiveController:
        return ArchiveController(
            self.run, self.state, self.messages, self.rooms, Metrics(), batch=batch
        )

    async def close(self) -> None:
        await self.redis.aclose()
        await self.redis.connection_pool.disconnect()
        self.run.shutdown()

    async def send(self, room: str, count: int, user: str = "alice", text: str = "m{}") -> None:
        for n in range(count):
            await self.messages.append(room, user, text.format(n + 1))

    async def archived_ids(self, room: str = "lobby") -> list[int]:
        def ids() -> list[int]:
            query = ArchivedMessage.select(ArchivedMessage.message_id).where(
                ArchivedMessage.room_name == room
            )
            return sorted(row.message_id for row in query)

        return await self.run(ids)

    async def log_length(self, room: str = "lobby") -> int:
        return int(await self.redis.llen(self.keys.log(room)))

    async def account(self, name: str) -> Account:
        def row() -> Account:
            user = User.create(name=name, name_key=name.lower(), password_hash="x")
            from chatroom.models import Membership

            Membership.ensure(user.id, Room.by_name("lobby").id, 0)
            return Account(user.id, user.name, user.created)

        return await self.run(row)

    async def existing(self, name: str) -> Account:
        user = await self.run(User.by_name, name)
        return Account(user.id, user.name, user.created)

    async def public_room(self, name: str) -> None:
        await self.run(lambda: Room.create(name=name))


def _database_url(kind: str, config: Config):
    if kind == "sqlite":
        return contextlib.nullcontext(None)
    return temporary_database(kind)


@pytest.fixture(params=["sqlite", "postgresql"])
def archive_db(request, config: Config):
    """A migrated database (SQLite, PostgreSQL) bound to the models; yields its URL."""
    with _database_url(request.param, config) as url:
        config = config.replace(database_url=url)
        initialise_database(config)
        handle = open_database(config.effective_database_url)
        yield config.effective_database_url
        handle.close()


@pytest.fixture
async def make_archive(archive_db, redis_url):
    made: list[ArchiveEnv] = []

    async def build(history_size: int = 5, backlog: int = 0, retention: float = 0.0):
        env = ArchiveEnv(redis_url, history_size, backlog, retention)
        made.append(env)
        return env

    yield build
    for env in made:
        await env.close()


async def test_redis_keeps_every_unarchived_message_then_the_archive_has_them(make_archive):
    env = await make_archive(history_size=5)
    await env.send("lobby", 30)
    assert await env.log_length() == 30  # 0.1 trimmed to 5 here: 25 lost for good
    assert await env.archive.archive_once() == 30
    assert await env.archived_ids() == list(range(1, 31))
    assert await env.log_length() == 5  # archived: trimmed back to history-size
    assert int(await env.redis.get(env.keys.archived("lobby"))) == 30
    await env.send("lobby", 3)
    assert await env.log_length() == 5
    assert await env.archive.archive_once() == 3
    history = await env.messages.history("lobby")
    assert [m["id"] for m in history.decoded()] == [29, 30, 31, 32, 33]


async def test_paging_reaches_message_one_from_redis_and_the_archive(make_archive):
    env = await make_archive(history_size=5)
    alice = await env.account("alice")
    await env.send("lobby", 23)
    await env.archive.archive_once()
    await env.send("lobby", 4)  # 24..27: only in Redis (not archived yet)
    seen: list[int] = []
    before = None
    while True:
        page = await env.archive.page(alice, "lobby", before, 6)
        ids = [orjson.loads(item)["id"] for item in page.items]
        assert ids == sorted(ids)
        seen = ids + seen
        if not page.more:
            break
        before = ids[0]
    assert seen == list(range(1, 28))
    newest = await env.archive.page(alice, "lobby", None, 3)
    assert [orjson.loads(i)["id"] for i in newest.items] == [25, 26, 27]
    beyond = await env.archive.page(alice, "lobby", 10**12, 2)
    assert [orjson.loads(i)["id"] for i in beyond.items] == [26, 27]
    first = await env.archive.page(alice, "lobby", 2, 50)
    assert ([orjson.loads(i)["id"] for i in first.items], first.more) == ([1], False)
    for bad in ("0", "-1", "x", "1.5", str(2**60)):
        with pytest.raises(BadRequestError):
            await env.archive.page(alice, "lobby", bad, None)
    for bad in ("0", "201", "abc", ""):
        with pytest.raises(BadRequestError):
            await env.archive.page(alice, "lobby", None, bad)


async def test_paging_a_backlog_that_is_only_in_redis(make_archive):
    env = await make_archive(history_size=5)
    alice = await env.account("alice")
    await env.send("lobby", 12)  # never archived: Redis holds all 12
    page = await env.archive.page(alice, "lobby", 8, 3)
    assert ([orjson.loads(i)["id"] for i in page.items], page.more) == ([5, 6, 7], True)


async def test_a_crash_between_commit_and_watermark_leaves_no_duplicate(make_archive):
    env = await make_archive()
    await env.send("lobby", 20)
    window = await env.state.retained("lobby", 0, 9)
    room_id = await env.run(lambda: Room.by_name("lobby").id)
    from chatroom.models.archive import parse_items
    from chatroom.models.archive_insert import store_batch

    await env.run(store_batch, room_id, parse_items(window.items))  # committed, then "killed"
    assert await env.redis.get(env.keys.archived("lobby")) is None
    await env.archive.archive_once()
    assert await env.archived_ids() == list(range(1, 21))


async def test_two_archivers_at_once_copy_each_message_once(make_archive):
    env = await make_archive()
    await env.send("lobby", 40)
    await env.public_room("general")
    await env.send("general", 25, user="bob")
    one, two = env.another_archiver(batch=3), env.another_archiver(batch=5)
    await asyncio.gather(one.archive_once(), two.archive_once(), env.send("lobby", 10))
    await one.archive_once()
    assert await env.archived_ids() == list(range(1, 51))
    assert await env.archived_ids("general") == list(range(1, 26))


async def test_the_watermark_is_derived_from_sql_when_redis_lost_it(make_archive):
    env = await make_archive()
    await env.send("lobby", 10)
    await env.archive.archive_once()
    await env.redis.delete(env.keys.archived("lobby"))
    await env.send("lobby", 5)
    await env.archive.archive_once()
    assert await env.archived_ids() == list(range(1, 16))
    assert int(await env.redis.get(env.keys.archived("lobby"))) == 15


async def test_the_backlog_cap_bounds_redis_and_counts_what_was_lost(make_archive):
    env = await make_archive(history_size=5, backlog=20)
    await env.send("lobby", 3)
    await env.archive.archive_once()
    await env.send("lobby", 47)  # the archiver is "stalled": 47 > the cap of 20
    assert await env.log_length() == 20
    await env.archive.archive_once()
    assert await env.archived_ids() == [1, 2, 3, *range(31, 51)]
    lost = env.metrics.registry.get_sample_value("chatroom_archive_lost_messages_total")
    assert lost == 27


async def test_retained_messages_without_a_watermark_are_archived_on_first_start(make_archive):
    # A 0.1 data dir: Redis retains the newest messages and there is no watermark.
    env = await make_archive(history_size=5, backlog=8)
    await env.send("lobby", 12)
    assert await env.log_length() == 8
    await env.archive.archive_once()
    assert await env.archived_ids() == list(range(5, 13))
    lost = env.metrics.registry.get_sample_value("chatroom_archive_lost_messages_total")
    assert lost == 0  # never promised: they were gone before the archive existed


async def test_updates_rewrite_the_archived_row_in_either_order(make_archive):
    env = await make_archive()
    alice = await env.account("alice")
    await env.send("lobby", 2, text="original {}")
    await env.archive.archive_once()
    base = {"user": "alice", "ts": time.time()}
    assert await env.archive.apply_update("lobby", 1, {**base, "text": "edited", "edited": 1}, 1)
    assert not await env.archive.apply_update("lobby", 1, {**base, "text": "stale"}, 1)
    # Deleted: the text is gone from SQL and from search.
    deleted = {**base, "text": "", "deleted": True}
    assert await env.archive.apply_update("lobby", 2, deleted, 3)
    # An update that arrives before the archiver copied the message.
    await env.send("lobby", 1, text="third")
    assert await env.archive.apply_update("lobby", 3, {**base, "text": "third edited"}, 1)
    await env.archive.archive_once()
    first = await env.run(lambda: ArchivedMessage.get(message_id=1))
    assert (first.text, orjson.loads(first.extra), first.rev) == ("edited", {"edited": 1}, 1)
    assert await env.run(lambda: ArchivedMessage.get(message_id=2).text) == ""
    assert await env.run(lambda: ArchivedMessage.get(message_id=3).text) == "third edited"
    assert (await env.archive.search(alice, "original")).results == []
    assert not await env.archive.apply_update("no-such-room", 1, deleted, 1)


async def test_retention_deletes_from_sql_and_redis(make_archive):
    env = await make_archive(history_size=50, retention=1.0)
    await env.send("lobby", 10)
    await env.archive.archive_once()
    deleted = await env.archive.retention_once(now=time.time() + 2 * 86400)
    assert deleted == 10
    assert await env.archived_ids() == []
    assert await env.log_length() == 0
    # One process per interval: another pass right away finds the lock taken.
    await env.send("lobby", 1)
    assert await env.archive.retention_once(now=time.time() + 2 * 86400) == 0


async def test_export_then_import_into_an_empty_room_only(make_archive):
    env = await make_archive(history_size=3)
    await env.send("lobby", 8, text="héllo {} \u202e")
    await env.archive.archive_once()
    await env.send("lobby", 2)
    exported = await env.archive.export("lobby")
    assert [m["id"] for m in exported] == list(range(1, 11))
    assert all("client_id" not in m for m in exported)
    lines = [orjson.dumps(m).decode() for m in exported]
    with pytest.raises(ConflictError):
        await env.archive.import_messages("lobby", lines)
    await env.public_room("copy")
    assert await env.archive.import_messages("copy", lines) == 10
    copied = await env.archive.export("copy")
    assert [(m["id"], m["text"], m["ts"]) for m in copied] == [
        (m["id"], m["text"], m["ts"]) for m in exported
    ]
    await env.messages.append("copy", "alice", "after the import")
    assert await env.messages.last_id("copy") == 11
    await env.public_room("bad")
    for bad in ("nope", "[1]", '{"id": 1}', '{"id": 1, "user": "a b", "text": "", "ts": 1}'):
        with pytest.raises(BadRequestError):
            await env.archive.import_messages("bad", [bad])
    with pytest.raises(BadRequestError):
        await env.archive.import_messages("bad", [lines[0], lines[0]])


# -- search, on every database --------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
async def searchable(request, config, redis_url):
    """An archive with a few messages in two public rooms and a direct room."""
    with _database_url(request.param, config) as url:
        config = config.replace(database_url=url)
        initialise_database(config)
        handle = open_database(config.effective_database_url)
        env = ArchiveEnv(redis_url, 5, 0, 0.0)
        try:
            await env.public_room("general")
            await env.run(lambda: Room.create(name="dm:bob:carol", is_direct=True))
            for name in ("alice", "bob", "carol"):
                await env.account(name)
            texts = [
                ("lobby", "alice", "The Quick brown FOX"),
                ("lobby", "bob", "明天的会议改到下午三点"),
                ("lobby", "alice", '100% sure: it\'s a_b "quoted" NEAR x* -y'),
                ("general", "bob", "quick lunch? 会议 after"),
                ("dm:bob:carol", "bob", "secret quick plan 会议"),
                ("lobby", "carol", "Ünïcödé ÉCOLE straße"),
            ]
            for room, user, text in texts:
                await env.messages.append(room, user, text)
            await env.archive.archive_once()
            yield env
        finally:
            await env.close()
            handle.close()


def _texts(found) -> list[str]:
    return [r["text"] for r in found.results]


async def test_search_every_term_case_insensitive_newest_first(searchable):
    env = searchable
    alice = await env.existing("alice")
    found = await env.archive.search(alice, "QUICK")
    assert _texts(found) == ["quick lunch? 会议 after", "The Quick brown FOX"]
    assert set(found.results[0]) == {"room", "id", "user", "text", "ts"}
    assert _texts(await env.archive.search(alice, "fox quick")) == ["The Quick brown FOX"]
    assert _texts(await env.archive.search(alice, "fox lunch")) == []
    assert _texts(await env.archive.search(alice, "ox")) == ["The Quick brown FOX"]


async def test_search_finds_two_character_chinese_terms(searchable):
    env = searchable
    alice = await env.existing("alice")
    assert _texts(await env.archive.search(alice, "会议")) == [
        "quick lunch? 会议 after",
        "明天的会议改到下午三点",
    ]
    assert _texts(await env.archive.search(alice, "下午三点 会议")) == ["明天的会议改到下午三点"]
    assert _texts(await env.archive.search(alice, "点")) == ["明天的会议改到下午三点"]


async def test_search_scope_and_filters(searchable):
    env = searchable
    alice = await env.existing("alice")
    bob = await env.existing("bob")
    from chatroom.models import Membership

    await env.run(lambda: Membership.ensure(bob.id, Room.by_name("dm:bob:carol").id, 0))
    assert "secret quick plan 会议" not in _texts(await env.archive.search(alice, "quick"))
    assert "secret quick plan 会议" in _texts(await env.archive.search(bob, "quick"))
    with pytest.raises(ForbiddenError):
        await env.archive.search(alice, "quick", room="dm:bob:carol")
    assert _texts(await env.archive.search(alice, "quick", room="general")) == [
        "quick lunch? 会议 after"
    ]
    assert _texts(await env.archive.search(alice, "quick", user="ALICE")) == ["The Quick brown FOX"]
    page = await env.archive.search(alice, "会议", limit="1")
    assert (len(page.results), page.more) == (1, True)
    older = await env.archive.search(alice, "会议", room="lobby", before="2")
    assert _texts(older) == []
    with pytest.raises(BadRequestError):
        await env.archive.search(alice, "会议", before="2")


async def test_search_treats_wildcards_quotes_and_operators_as_text(searchable):
    env = searchable
    alice = await env.existing("alice")
    hostile = ["100%", "%", "_", "a_b", '"quoted"', "NEAR", "x*", "-y", "it's", "'", '"']
    for q in hostile:
        found = _texts(await env.archive.search(alice, q))
        assert found == ['100% sure: it\'s a_b "quoted" NEAR x* -y'], q
    for q in ["'; DROP TABLE archived_message; --", "NEAR(quick fox)", "quick OR fox", "a%b", "**"]:
        assert _texts(await env.archive.search(alice, q)) == [], q
    assert _texts(await env.archive.search(alice, "école STRASSE straße")) == []
    assert _texts(await env.archive.search(alice, "école ünïcödé")) == ["Ünïcödé ÉCOLE straße"]
    for bad in ("", "   ", "x" * 201, None, 5, "\ud800"):
        with pytest.raises(BadRequestError):
            await env.archive.search(alice, bad)
    assert (await env.archive.search(alice, "x" * 200)).results == []


# -- a process killed mid-batch -----------------------------------------------------

_KILLED_ARCHIVER = """
import asyncio, sys
from chatroom.controllers import BlockingRunner
from chatroom.controllers.archive import ArchiveController
from chatroom.models import MessageRepository, RedisKeys, open_database
from chatroom.models.archive_state import ArchiveState
from chatroom.server import make_redis

async def main(db_url, redis_url):
    open_database(db_url)
    redis = make_redis(redis_url)
    run = BlockingRunner(1)
    messages = MessageRepository(redis, RedisKeys(), 5)
    archive = ArchiveController(run, ArchiveState(redis, RedisKeys()), messages, batch=50)
    print("ready", flush=True)
    while True:
        await archive.archive_once()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def test_an_archiver_killed_mid_batch_leaves_no_gap_and_no_duplicate(
    make_archive, archive_db, redis_url, tmp_path: Path
):
    env = await make_archive()
    await env.send("lobby", 3000)
    script = tmp_path / "archiver.py"
    script.write_text(_KILLED_ARCHIVER)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen(
        [sys.executable, str(script), archive_db, redis_url],
        stdout=subprocess.PIPE,
        env=environment,
    )
    try:
        assert child.stdout.readline().strip() == b"ready"
        deadline = time.monotonic() + 30
        while not len(await env.archived_ids()) > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    partly = await env.archived_ids()
    assert 0 < len(partly) < 3000
    await env.archive.archive_once()
    assert await env.archived_ids() == list(range(1, 3001))


# -- upgrading a 0.1 database in place ----------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "mysql"])
def test_a_01_database_upgrades_in_place(kind, config: Config):
    from playhouse import migrate as pw_migrate

    from chatroom.models.database import MIGRATIONS, SchemaVersion, migrate_schema

    with _database_url(kind, config) as url:
        config = config.replace(database_url=url)
        if url is None:
            config.data_dir.mkdir(parents=True)
        db = open_database(config.effective_database_url)
        try:
            # What 0.1 left: migration 1 only, a room with a user.
            db.create_tables([SchemaVersion])
            MIGRATIONS[0](db, pw_migrate.SchemaMigrator.from_database(db))
            SchemaVersion.create(id=1, version=1)
            Room.create(name="lobby")
            assert not db.table_exists("archived_message")
            assert migrate_schema(db) is False
            assert SchemaVersion.get_by_id(1).version == len(MIGRATIONS)
            assert db.table_exists("archived_message")
            assert Room.by_name("lobby") is not None
            assert migrate_schema(db) is False  # idempotent
        finally:
            db.close()
