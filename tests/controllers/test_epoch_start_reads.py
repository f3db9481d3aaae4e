"""[SPEC §8] Starting a room's epoch reads SQL once: the archive's highest id (for the
floor) and the room's highest read marker (for the stale-reads note) come in one query,
one hop to the thread pool. Counted in Peewee's query log, on the real SQLite file."""

from __future__ import annotations

import logging

import pytest

from chatroom.models import Membership, Room
from chatroom.models.archive_insert import store_batch
from tests.models.test_epoch_start_reads import old_message


@pytest.mark.parametrize(
    ("archived", "cached", "marker", "floor", "stale"),
    [
        (0, 0, 5, 0, True),  # the marker names a message of a lost history
        (6, 0, 5, 6, False),  # the archive holds it: ids go on above the archive
        (3, 7, 5, 7, False),  # this process saw id 7: ids go on above it
        (0, 0, 0, 0, False),  # a new room: nothing to lower
    ],
)
async def test_starting_an_epoch_is_one_sql_query(
    env, caplog, archived, cached, marker, floor, stale
):
    await env.user("alice")  # a member of the lobby
    lobby = Room.get(Room.name == "lobby")
    if archived:
        store_batch(lobby.id, [old_message("lobby", archived)])
    Membership.update(last_read_id=marker).where(Membership.room == lobby).execute()
    await env.redis.flushall()  # the lobby has no epoch
    if cached:
        env.rooms.epochs.note("lobby", cached)

    with caplog.at_level(logging.DEBUG, logger="peewee"):
        assert await env.rooms.epochs.ensure(lobby.id, "lobby")
    queries = [r.msg for r in caplog.records if r.name == "peewee"]
    assert len(queries) == 1, queries

    assert int(await env.redis.get(env.graph.keys.seq("lobby")) or 0) == floor
    assert await env.redis.exists(env.graph.keys.stale_reads("lobby")) == int(stale)
