"""An archiver pass over many rooms at once (a batch of every room a round, rooms'
batches sharing SQL transactions, the watermarks raised in one pipeline), on SQLite
and PostgreSQL: every room complete, gaps counted per room, nothing advanced past a
failed transaction, Redis losing its scripts, and the lag it reports."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from chatroom.controllers import archive as archive_module
from chatroom.controllers.errors import BadRequestError
from chatroom.models.archive import ArchivedMessage
from tests.controllers import test_archive
from tests.controllers.test_archive import ArchiveEnv

# The fixtures of test_archive.py: a database per backend, and the archive's parts.
archive_db = test_archive.archive_db
make_archive = test_archive.make_archive

pytestmark = pytest.mark.timeout(120)


async def all_archived(env: ArchiveEnv) -> dict[str, list[int]]:
    def rows() -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        query = ArchivedMessage.select(ArchivedMessage.room_name, ArchivedMessage.message_id)
        for name, message_id in query.tuples():
            found.setdefault(name, []).append(message_id)
        return {name: sorted(ids) for name, ids in found.items()}

    return await env.run(rows)


async def watermark(env: ArchiveEnv, room: str) -> int | None:
    mark = await env.redis.get(env.keys.archived(room))
    return None if mark is None else int(mark)


async def test_one_pass_archives_rooms_of_every_size_completely(make_archive, monkeypatch):
    # batch=7 a room a round, and transactions of at most 10 rows: rooms of 0, 1, 7,
    # 8 and 40 messages take 1 to 6 rounds and share transactions.
    monkeypatch.setattr(archive_module, "ARCHIVE_TRANSACTION_ROWS", 10)
    env = await make_archive(history_size=5)
    sizes = {"lobby": 40, "r1": 1, "r7": 7, "r8": 8, "empty": 0}
    for name, count in sizes.items():
        if name != "lobby":
            await env.public_room(name)
        await env.send(name, count)
    assert await env.archive.archive_once() == sum(sizes.values())
    archived = await all_archived(env)
    for name, count in sizes.items():
        assert archived.get(name, []) == list(range(1, count + 1)), name
        assert await watermark(env, name) == count  # no message: a watermark of 0 (issue 17)
        assert await env.log_length(name) == min(count, 5)
    assert (await env.archive.measure_lag()).messages == 0
    assert await env.archive.archive_once() == 0  # nothing new: nothing copied again


async def test_a_gap_in_one_room_is_counted_there_and_the_others_are_whole(make_archive):
    env = await make_archive(history_size=5, backlog=20)
    await env.public_room("calm")
    await env.send("lobby", 3)
    await env.send("calm", 2)
    await env.archive.archive_once()
    await env.send("lobby", 47)  # past the cap of 20: 27 trimmed unarchived
    await env.send("calm", 15)  # within it
    await env.archive.archive_once()
    archived = await all_archived(env)
    assert archived["lobby"] == [1, 2, 3, *range(31, 51)]
    assert archived["calm"] == list(range(1, 18))
    lost = env.metrics.registry.get_sample_value("chatroom_archive_lost_messages_total")
    assert lost == 27


async def test_a_failed_transaction_raises_no_watermark_and_loses_nothing(make_archive):
    env = await make_archive(history_size=5)
    await env.public_room("broken")
    await env.send("lobby", 4)
    await env.send("broken", 3)
    # A frame SQL refuses (no user: a NOT NULL column) in one room of the pass.
    log = env.keys.log("broken")
    good = await env.redis.lindex(log, 1)
    bad = orjson.loads(good)
    del bad["user"]
    await env.redis.lset(log, 1, orjson.dumps(bad))
    with pytest.raises(Exception):  # noqa: B017 - the database's own error, per backend
        await env.archive.archive_once()
    assert await all_archived(env) == {}  # the rooms shared the transaction
    # Set to the archive's newest (0) before the copy, never raised by the failed one.
    assert (await watermark(env, "lobby"), await watermark(env, "broken")) == (0, 0)
    assert await env.log_length("broken") == 3 and await env.log_length("lobby") == 4
    await env.redis.lset(log, 1, good)  # repaired: the next pass copies everything
    assert await env.archive.archive_once() == 7
    assert await all_archived(env) == {"lobby": [1, 2, 3, 4], "broken": [1, 2, 3]}


async def test_redis_losing_its_scripts_does_not_stop_the_archiver(make_archive):
    env = await make_archive()
    await env.send("lobby", 10)
    await env.redis.script_flush()  # as after a restart of Redis
    assert await env.archive.archive_once() == 10
    await env.redis.script_flush()
    assert (await env.archive.measure_lag()).messages == 0
    await env.send("lobby", 2)
    assert await env.archive.archive_once() == 2
    assert await env.archived_ids() == list(range(1, 13))


async def test_the_lag_counts_every_room_and_the_oldest_unarchived_message(make_archive):
    env = await make_archive(history_size=5)
    await env.public_room("quiet")
    await env.public_room("never")  # no message at all, no watermark
    await env.send("lobby", 6)
    await env.archive.archive_once()
    before = time.time()
    await env.send("lobby", 4)
    await env.send("quiet", 3)  # no watermark yet: all 3 wait
    lag = await env.archive.measure_lag()
    assert lag.messages == 7
    assert 0 <= lag.seconds <= time.time() - before + 1
    sample = env.metrics.registry.get_sample_value
    assert sample("chatroom_archive_lag_messages") == 7
    await env.archive.archive_once()
    assert (await env.archive.measure_lag()).messages == 0


async def test_an_import_with_nul_in_a_text_is_refused_like_a_send(make_archive):
    # SQL takes the batch apart from JSON, where SQLite would cut a text at NUL and
    # PostgreSQL refuses it: refused up front, as a send is.
    env = await make_archive()
    await env.public_room("imported")
    line = orjson.dumps({"id": 1, "user": "alice", "text": "a\x00b", "ts": 1.0}).decode()
    with pytest.raises(BadRequestError, match="line 1: text must not contain NUL"):
        await env.archive.import_messages("imported", [line])
    assert await all_archived(env) == {}


async def test_without_archiving_the_lag_is_measured_when_asked_and_stop_ends_a_loop(
    make_archive,
):
    env = await make_archive()
    await env.send("lobby", 12)
    assert (await env.archive.fresh_lag()).messages == 12  # --archiver off: no loop
    assert await env.archived_ids() == []
    assert await env.redis.get(env.keys.archive_lock("archiver")) is None  # never taken
    archiver = env.another_archiver()
    working = asyncio.create_task(archiver.run())
    while await env.redis.get(env.keys.archived("lobby")) != b"12":
        await asyncio.sleep(0.02)
    assert await env.redis.get(env.keys.archive_lock("archiver")) is not None
    while archiver.lag.measured == 0 or archiver.lag.messages:  # the pass ends measuring
        await asyncio.sleep(0.02)
    archiver.stop()
    await asyncio.wait_for(working, 0.3)  # woken: not the rest of its 0.5 s sleep
    assert await env.redis.get(env.keys.archive_lock("archiver")) is None  # released
    assert await env.archived_ids() == list(range(1, 13))
