"""Read markers across epochs (SPEC §8): a read marker is an id of one life of the
room's history. When a new epoch's ids start below a marker (the messages above the
archive were lost with Redis, and the process that started the epoch never saw
them), the marker would make the new messages count as read; the archiver lowers
such markers to where the new epoch started. On the real server and the real Redis."""

from __future__ import annotations

import pytest
import redis

from chatroom.models import Membership
from tests.helpers import sent

pytestmark = pytest.mark.timeout(60)


def markers() -> dict[str, int]:
    return {m.user.name: m.last_read_id for m in Membership.select()}


async def test_a_new_epoch_below_a_read_marker_lowers_it(app_factory, redis_url):
    first = await app_factory(send_burst=100_000)
    first.server.controllers.archive.stop()  # nothing reaches the archive before the loss
    alice = await first.client("alice")
    assert [await sent(alice, f"m{i}", f"c{i}") for i in range(5)] == [1, 2, 3, 4, 5]
    await first.server.controllers.chat.read_markers.flush()
    assert markers()["alice"] == 5  # she read her own messages

    with redis.Redis.from_url(redis_url) as client:
        client.flushall()  # the 5 messages are gone: in no archive, in no Redis
    # A process that never saw them starts the new epoch: ids start again at 1.
    second = await app_factory(send_burst=100_000)
    bob = await second.client("bob")
    assert [await sent(bob, f"n{i}", f"d{i}") for i in range(2)] == [1, 2]
    await second.server.controllers.archive.archive_once()

    assert markers()["alice"] == 0  # lowered to where the new epoch started
    again = await first.client("alice", join=None)
    (lobby,) = again.hello["rooms"]
    assert (lobby["last_id"], lobby["unread"]) == (2, 2)  # bob's two are unread
    # Lowering happens once: markers of the new epoch stay where their users put them.
    await second.server.controllers.chat.read_markers.flush()
    await second.server.controllers.archive.archive_once()
    assert markers() == {"alice": 0, "bob": 2}


async def test_an_epoch_that_continues_above_the_markers_keeps_them(app):
    """The usual case (the archive or the process saw every id): nothing to lower."""
    alice = await app.client("alice")
    for i in range(4):
        await sent(alice, f"m{i}", f"c{i}")
    graph = app.server.controllers
    await graph.chat.read_markers.flush()
    await graph.redis.flushall()
    assert await sent(alice, "after", "a1") == 5  # this process saw 1..4
    await graph.archive.archive_once()
    assert markers()["alice"] == 4
    assert await graph.redis.exists(graph.keys.stale_reads("lobby")) == 0  # done with


async def test_a_senders_mark_still_waiting_in_its_process_is_dropped_by_the_new_epoch(
    app_factory, redis_url, monkeypatch
):
    """A sender's read marker waits in its process (up to a presence tick) before it
    reaches SQL. One for a message that Redis then lost must not be written after the
    archiver lowered the room's markers: the process drops it when it hears the epoch."""
    first = await app_factory(send_burst=100_000)
    first.server.controllers.archive.stop()
    buffer = first.server.controllers.chat.read_markers
    flush = buffer.flush

    async def later() -> None:  # the presence tick's flush waits for the test
        pass

    monkeypatch.setattr(buffer, "flush", later)
    alice = await first.client("alice")
    for i in range(5):
        await sent(alice, f"m{i}", f"c{i}")

    with redis.Redis.from_url(redis_url) as client:
        client.flushall()
    second = await app_factory(send_burst=100_000)
    bob = await second.client("bob")
    assert [await sent(bob, f"n{i}", f"d{i}") for i in range(2)] == [1, 2]
    await alice.next("joined", reset=True)  # the first process heard the new epoch
    await second.server.controllers.archive.archive_once()  # lowers what SQL holds
    await flush()  # ... and then the first process's marks go out

    assert markers()["alice"] == 0
    again = await first.client("alice", join=None)
    assert again.hello["rooms"][0]["unread"] == 2


async def test_a_new_rooms_first_epoch_leaves_markers_set_before_the_archivers_pass(app):
    """A new room's first epoch has no lost history, so nothing to lower: a marker
    its users set before the archiver's next pass (here: before any pass) is kept.
    It used to be lowered to 0, the new messages counting as unread again."""
    graph = app.server.controllers
    graph.archive.stop()  # the pass below is the first one after the epoch started
    alice = await app.client("alice")
    for i in range(3):
        await sent(alice, f"m{i}", f"c{i}")
    await graph.chat.read_markers.flush()
    assert markers()["alice"] == 3
    await graph.archive.archive_once()
    assert markers()["alice"] == 3
    assert await graph.redis.exists(graph.keys.stale_reads("lobby")) == 0


async def test_a_new_room_whose_first_epoch_a_send_starts_keeps_its_markers_too(app):
    """The same when the room's first epoch is started by a send, not a join (a post
    through the HTTP API before anyone joined): the send starts it as a join does."""
    graph = app.server.controllers
    graph.archive.stop()
    poster = await graph.auth.register("poster", "a fine long passphrase")
    for i in range(3):
        await graph.chat.post(poster, "lobby", f"m{i}")  # no join: no epoch before it
    assert await graph.redis.exists(graph.keys.stale_reads("lobby")) == 0
    alice = await app.client("alice")
    await alice.send_frame({"type": "read", "room": "lobby", "id": 3})
    await alice.send_frame({"type": "ping"})
    await alice.next("pong")
    await graph.chat.read_markers.flush()
    await graph.archive.archive_once()
    assert markers()["alice"] == 3
