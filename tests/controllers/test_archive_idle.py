"""An idle archiver costs little (issue 17, idle CPU): a room with nothing archived yet
gets a watermark of 0, so a pass does not look its archive up in SQL again."""

from __future__ import annotations

from chatroom.models import archive as store
from tests.controllers import test_archive

# The archive tests' fixtures (a migrated database per backend, an ArchiveEnv).
archive_db = test_archive.archive_db
make_archive = test_archive.make_archive


async def test_rooms_without_messages_are_looked_up_in_sql_once(make_archive, monkeypatch):
    env = await make_archive()
    await env.public_room("quiet")
    lookups: list[int] = []
    real = store.newest_archived_ids

    def counted(room_ids: list[int]) -> dict[int, int]:
        lookups.extend(room_ids)
        return real(room_ids)

    monkeypatch.setattr(store, "newest_archived_ids", counted)
    await env.archive.archive_once()
    first = len(lookups)
    assert first >= 2  # lobby and quiet: no watermark yet
    for room in ("lobby", "quiet"):
        assert await env.redis.get(env.keys.archived(room)) == b"0"
    for _ in range(3):
        await env.archive.archive_once()
    assert len(lookups) == first  # idle passes: Redis only
    # And a message after that is archived as before.
    await env.send("quiet", 3)
    await env.archive.archive_once()
    assert await env.archived_ids("quiet") == [1, 2, 3]
    assert await env.redis.get(env.keys.archived("quiet")) == b"3"


async def test_an_idle_pass_reports_no_lag_and_a_busy_one_measures_afresh(make_archive):
    env = await make_archive()
    await env.archive.archive_once()
    await env.archive.archive_once()  # idle: every room archived
    assert (env.archive.lag.messages, env.archive.lag.seconds) == (0, 0.0)
    await env.send("lobby", 2)
    await env.archive.archive_once()
    assert env.archive.lag.messages == 0
    assert await env.archived_ids() == [1, 2]
