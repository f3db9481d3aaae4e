"""[SPEC §8] Starting a room's epoch reads SQL once: the archive's highest id (for the
floor) and the room's highest read marker (for the stale-reads note) come in one query,
one hop to the thread pool; starting many rooms at once (a ``hello`` after a flush)
reads them all in one query, and a room is started once whoever asks for it. Counted
in Peewee's query log, on the real SQLite file and the real Redis."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable
from typing import TypeVar

import pytest

from chatroom.controllers.errors import UnavailableError
from chatroom.models import Membership, Room, User
from chatroom.models.archive_insert import store_batch
from tests.models.test_epoch_start_reads import old_message

T = TypeVar("T")
V = TypeVar("V")


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

    queries, epoch = await sql_queries(caplog, env.rooms.epochs.ensure(lobby.id, "lobby"))
    assert queries == 1 and epoch
    assert await floor_and_note(env, "lobby") == (floor, stale)


async def sql_queries(caplog, started: Awaitable[T]) -> tuple[int, T]:
    """How many SQL queries awaiting ``started`` made (Peewee's query log), and its result."""
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="peewee"):
        result = await started
    return sum(r.name == "peewee" for r in caplog.records), result


async def floor_and_note(env, room: str) -> tuple[int, bool]:
    """The room's counter (its new epoch's ids start after it) and whether the epoch
    noted stale read markers."""
    seq = int(await env.redis.get(env.graph.keys.seq(room)) or 0)
    return seq, bool(await env.redis.exists(env.graph.keys.stale_reads(room)))


async def stored_epochs(env, rooms: Iterable[str]) -> dict[str, str]:
    heads = await env.messages.heads(list(rooms))
    assert all(epoch for _, epoch in heads.values()), heads
    return {room: epoch for room, (_, epoch) in heads.items()}


def many_rooms(count: int) -> dict[str, int]:
    """``count`` rooms (name -> id), each with a member."""
    user = User.create(name="reader", name_key="reader", password_hash="x")
    rooms = {f"r{n}": Room.ensure_public(f"r{n}").id for n in range(count)}
    Membership.insert_many([(user.id, i) for i in rooms.values()], ["user", "room"]).execute()
    return rooms


def pick(rooms: dict[str, V], *numbers: int) -> dict[str, V]:
    return {f"r{n}": rooms[f"r{n}"] for n in numbers}


async def test_starting_fifty_rooms_is_one_sql_query(env, caplog):
    rooms = many_rooms(50)
    expected = {}
    for n, (name, room_id) in enumerate(rooms.items()):
        # Each case of the one-room test above, in turn, with each room's own ids.
        archived, cached, marker = [(0, 0, 5), (6, 0, 5), (3, 7, 5), (0, 0, 0)][n % 4]
        archived, cached, marker = (v and v + 10 * n for v in (archived, cached, marker))
        if archived:
            store_batch(room_id, [old_message(name, archived)])
        Membership.update(last_read_id=marker).where(Membership.room == room_id).execute()
        if cached:
            env.rooms.epochs.note(name, cached)
        floor = max(archived, cached)
        expected[name] = (floor, marker > floor)
    await env.redis.flushall()  # no room has an epoch

    queries, epochs = await sql_queries(caplog, env.rooms.epochs.ensure_all(rooms))
    assert queries == 1
    assert {name: await floor_and_note(env, name) for name in rooms} == expected
    assert epochs == await stored_epochs(env, rooms)


async def test_overlapping_starts_start_each_room_once(env, caplog):
    rooms = many_rooms(10)
    await env.redis.flushall()
    epochs = env.rooms.epochs
    together = asyncio.gather(
        epochs.ensure(rooms["r0"], "r0"),  # r0: one query
        epochs.ensure_all(pick(rooms, 0, 1, 2, 3, 4)),  # waits for r0; r1-r4: one query
        epochs.ensure_all(pick(rooms, 3, 4, 5, 6, 7, 8, 9)),  # r5-r9: one query
        epochs.ensure(rooms["r7"], "r7"),  # waits for r7's start
        epochs.ensure_all(rooms),  # waits for them all
    )
    queries, (first, low, high, seventh, every) = await sql_queries(caplog, together)
    assert queries == 3
    stored = await stored_epochs(env, rooms)
    assert every == stored
    assert (first, seventh) == (stored["r0"], stored["r7"])
    assert low == pick(stored, 0, 1, 2, 3, 4)
    assert high == pick(stored, 3, 4, 5, 6, 7, 8, 9)


async def test_a_cancelled_caller_leaves_the_start_to_the_others(env, caplog):
    rooms = many_rooms(5)
    await env.redis.flushall()
    epochs = env.rooms.epochs

    async def cancelled_and_another() -> str:
        first = asyncio.ensure_future(epochs.ensure_all(rooms))
        await asyncio.sleep(0)  # its rooms are starting
        second = asyncio.ensure_future(epochs.ensure(rooms["r3"], "r3"))
        await asyncio.sleep(0)  # waiting for that start
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        return await second

    queries, epoch = await sql_queries(caplog, cancelled_and_another())
    assert queries == 1
    assert epoch == (await stored_epochs(env, ["r3"]))["r3"]
    assert await epochs.ensure_all(rooms) == await stored_epochs(env, rooms)


async def test_a_failed_read_reaches_every_waiter_and_the_next_start_reads_again(env):
    rooms = many_rooms(5)
    await env.redis.flushall()
    epochs = env.rooms.epochs
    db = Membership._meta.database
    db.execute_sql("ALTER TABLE membership RENAME TO membership_away")  # SQL fails
    try:
        results = await asyncio.gather(
            epochs.ensure_all(rooms),
            epochs.ensure(rooms["r2"], "r2"),
            epochs.ensure_all(pick(rooms, 4)),
            return_exceptions=True,
        )
    finally:
        db.execute_sql("ALTER TABLE membership_away RENAME TO membership")
    assert [type(r) for r in results] == [UnavailableError] * 3
    heads = await env.messages.heads(list(rooms))
    assert all(epoch is None for _, epoch in heads.values())  # none started
    assert await epochs.ensure_all(rooms) == await stored_epochs(env, rooms)
