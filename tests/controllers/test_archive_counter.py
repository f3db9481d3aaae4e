"""Redis restored from an older snapshot (SPEC §8: ids never go back): its counter falls
below the archive's highest id, and new messages would reuse archived ids, which the
archive ignores. The archiver notices, raises the counter to the archive's highest id,
logs an error and counts it; on the real Redis, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging

import pytest

from tests.controllers import test_archive

# The archive's fixtures: one process's archive parts on SQLite and PostgreSQL.
archive_db = test_archive.archive_db
make_archive = test_archive.make_archive

pytestmark = pytest.mark.timeout(120)


async def snapshot(env, room: str) -> list[bytes | None]:
    """The room's Redis keys as DUMP gives them: what an RDB snapshot holds."""
    keys = [env.keys.seq(room), env.keys.archived(room), env.keys.log(room)]
    return [await env.redis.dump(key) for key in keys]


async def restore(env, room: str, dumps: list[bytes | None]) -> None:
    """Put the keys back as the snapshot had them (a Redis restarted from it)."""
    keys = [env.keys.seq(room), env.keys.archived(room), env.keys.log(room)]
    for key, dumped in zip(keys, dumps, strict=True):
        await env.redis.delete(key)
        if dumped is not None:
            await env.redis.restore(key, 0, dumped)


def counter_resets(env) -> float:
    return env.metrics.registry.get_sample_value("chatroom_archive_counter_resets_total") or 0.0


async def test_a_counter_restored_below_the_archive_is_raised_and_ids_never_go_back(
    make_archive, caplog
):
    env = await make_archive(history_size=5)
    await env.send("lobby", 4)
    await env.archive.archive_once()
    old = await snapshot(env, "lobby")  # seq 4, watermark 4
    await env.send("lobby", 8)
    assert await env.archive.archive_once() == 8
    assert await env.archived_ids() == list(range(1, 13))

    await restore(env, "lobby", old)
    assert await env.messages.last_id("lobby") == 4
    await env.send("lobby", 2, text="after the restore {}")  # ids 5, 6 again
    with caplog.at_level(logging.ERROR, logger="chatroom.controllers.archive"):
        await env.archive.archive_once()
    assert "below the archive's highest id 12" in caplog.text
    assert counter_resets(env) == 1
    assert await env.messages.last_id("lobby") == 12

    # From now on ids continue after the archive's, and the archive keeps them.
    await env.send("lobby", 3, text="later {}")
    assert await env.messages.last_id("lobby") == 15
    # The 3 new ones, and the 2 that reused ids 5 and 6, offered to the archive from the
    # orphans list (SPEC §8) and ignored there: those ids were taken.
    assert await env.archive.archive_once() == 5
    assert await env.archived_ids() == list(range(1, 16))
    history = await env.messages.history("lobby")
    assert [(m["id"], m["text"]) for m in history.decoded()] == [
        (13, "later 1"),
        (14, "later 2"),
        (15, "later 3"),
    ]
    # Nothing further to report once it is repaired.
    await env.archive.archive_once()
    assert counter_resets(env) == 1


async def test_an_emptied_redis_continues_after_the_archive_even_with_no_new_message(
    make_archive,
):
    env = await make_archive(history_size=5)
    await env.send("lobby", 9)
    await env.archive.archive_once()
    await restore(env, "lobby", [None, None, None])  # a Redis that lost everything
    await env.archive.archive_once()  # no message sent yet: still noticed
    assert await env.messages.last_id("lobby") == 9
    assert counter_resets(env) == 1
    await env.send("lobby", 1)
    assert await env.messages.last_id("lobby") == 10
    assert await env.archive.archive_once() == 1
    assert await env.archived_ids() == list(range(1, 11))


async def test_a_restored_counter_is_noticed_by_the_periodic_check(make_archive):
    env = await make_archive(history_size=5)
    await env.send("lobby", 3)
    await env.archive.archive_once()
    old = await snapshot(env, "lobby")
    await env.send("lobby", 3)
    await env.archive.archive_once()
    await restore(env, "lobby", old)  # seq 3 == its watermark 3: nothing to archive
    env.archive._next_counter_check = 0.0  # the 30 s check is due
    await env.archive.archive_once()
    assert await env.messages.last_id("lobby") == 6
    assert counter_resets(env) == 1
