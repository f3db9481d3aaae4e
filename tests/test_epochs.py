"""Epochs (SPEC §8): Redis loses a room's history (FLUSHALL, a replica that lagged) and
ids never go back; clients that remember ids of the old history are told to start
again (``joined`` with ``reset: true``). On the real server and the real Redis."""

from __future__ import annotations

import asyncio

import pytest
import redis

from chatroom.models.archive import ArchivedMessage
from chatroom.models.epochs import EPOCH_FRAME_PREFIX, UNKNOWN_FLOOR
from chatroom.models.messages import EpochFloorNeeded
from tests.helpers import connect, sent

pytestmark = pytest.mark.timeout(60)


def flushall(redis_url: str) -> None:
    with redis.Redis.from_url(redis_url) as client:
        client.flushall()


async def join_with(client, room: str, **fields) -> dict:
    await client.send_frame({"type": "join", "room": room, **fields})
    return await client.next("joined")


async def test_a_flushall_starts_a_new_epoch_ids_continue_and_old_epochs_reset(app, redis_url):
    alice = await app.client("alice")
    bob = await app.client("bob")
    old_epoch = alice.hello["rooms"][0]["epoch"]
    ids = [await sent(alice, f"before {i}", f"b{i}") for i in range(5)]
    assert ids == [1, 2, 3, 4, 5]
    for i in range(5):
        await bob.next("message", id=i + 1)

    flushall(redis_url)  # Redis lost everything; SQL still knows the room and the users
    after = await sent(bob, "after the flush", "a1")
    assert after > max(ids)  # ids never go back

    # The live sockets are resynced: the whole (new) window, with the new epoch.
    for client in (alice, bob):
        reset = await client.next("joined", reset=True)
        assert reset["epoch"] != old_epoch
        assert [m["id"] for m in reset["messages"]] in ([], [after])
    new_epoch = reset["epoch"]

    # A client that reconnects remembering the old history gets it reset.
    carol = await app.client("carol", join=None)
    (lobby,) = carol.hello["rooms"]
    assert lobby["epoch"] == new_epoch and lobby["last_id"] == after
    joined = await join_with(carol, "lobby", since=5, epoch=old_epoch)
    assert joined["reset"] is True and joined["epoch"] == new_epoch
    assert joined["gap"] is False and joined["missing"] == 0
    assert [(m["id"], m["text"]) for m in joined["messages"]] == [(after, "after the flush")]

    # The current epoch with ``since``: the usual catch-up, no reset.
    dave = await app.client("dave", join=None)
    joined = await join_with(dave, "lobby", since=after - 1, epoch=new_epoch)
    assert "reset" not in joined and joined["epoch"] == new_epoch
    assert [m["id"] for m in joined["messages"]] == [after]
    # ``since`` without an epoch (a client from before epochs): as before.
    erin = await app.client("erin", join=None)
    joined = await join_with(erin, "lobby", since=after)
    assert "reset" not in joined and joined["messages"] == []


async def test_a_process_that_saw_nothing_continues_after_the_archive(app_factory, redis_url):
    first = await app_factory(send_burst=100_000)
    alice = await first.client("alice")
    for i in range(7):
        await sent(alice, f"m{i}", f"c{i}")
    await first.server.controllers.archive.archive_once()
    assert ArchivedMessage.select().count() == 7

    flushall(redis_url)
    # A second process on the same Redis and database, which never saw the room.
    second = await app_factory(send_burst=100_000)
    bob = await second.client("bob", join=None)
    assert bob.hello["rooms"][0]["last_id"] == 7  # its hello started the epoch at 7
    # Its send needs the floor: read from SQL once, then one round trip as always.
    await bob.join("lobby")
    assert await sent(bob, "hi", "h1") == 8


async def test_a_counter_behind_the_floor_starts_a_new_epoch_on_the_send_path(app):
    """A failover to a replica that lagged: the epoch key survived, the counter went
    back. The sending process knows ids up to 6; its next send starts a new epoch."""
    alice = await app.client("alice")
    for i in range(6):
        await sent(alice, f"m{i}", f"c{i}")
    graph = app.server.controllers
    keys = graph.keys
    old_epoch = (await graph.messages.heads(["lobby"]))["lobby"][1]
    await graph.redis.set(keys.seq("lobby"), 3)  # the replica had only 3 of them
    await graph.redis.ltrim(keys.log("lobby"), 0, 2)
    assert await sent(alice, "after the failover", "f1") == 7
    reset = await alice.next("joined", reset=True)
    assert reset["epoch"] != old_epoch
    assert [m["id"] for m in reset["messages"]] in ([], [7])
    # The 3 messages the replica had, not archived yet, are not lost: the new epoch
    # left them for the archiver, which copies them to SQL.
    graph.archive.stop()
    await graph.archive.archive_once()
    archived = [m.message_id for m in ArchivedMessage.select().order_by(ArchivedMessage.message_id)]
    assert archived[:3] == [1, 2, 3] and archived[-1] == 7
    assert await graph.redis.llen(keys.orphans("lobby")) == 0


async def test_a_process_that_saw_more_than_redis_holds_starts_a_new_epoch(app):
    """Its subscription drops, and Redis comes back with fewer messages than were
    published (a failover to a replica that lagged): on resubscribing, the process
    starts a new epoch above what it saw, and resyncs its sockets."""
    alice = await app.client("alice")
    for i in range(5):
        await sent(alice, f"m{i}", f"c{i}")
    graph = app.server.controllers
    keys = graph.keys
    await graph.redis.set(keys.seq("lobby"), 3)
    await graph.redis.ltrim(keys.log("lobby"), 0, 2)
    await graph.redis.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    reset = await alice.next("joined", reset=True)
    assert reset["messages"] == []
    assert await graph.messages.last_id("lobby") == 5  # above every id it published
    assert await sent(alice, "next", "n1") == 6


async def test_concurrent_first_sends_after_a_flush_share_one_epoch(app, redis_url):
    clients = [await app.client(f"user{i}") for i in range(4)]
    for i in range(3):
        await sent(clients[0], f"m{i}", f"c{i}")
    flushall(redis_url)
    await asyncio.gather(*(c.send(f"from {c.name}", client_id="x") for c in clients))
    answers = [await c.answer() for c in clients]
    ids = sorted(a["id"] for a in answers)
    assert ids == [4, 5, 6, 7]
    epochs = set()
    for client in clients:
        epochs.add((await client.next("joined", reset=True))["epoch"])
        await client.nothing("joined", wait=0.2, reset=True)  # one reset each, no more
    assert len(epochs) == 1


async def test_the_send_script_asks_for_the_floor_of_a_room_without_epoch(app):
    messages = app.server.controllers.messages
    for floor in (UNKNOWN_FLOOR, 50):  # what one process saw is not enough: the archive
        with pytest.raises(EpochFloorNeeded):
            await messages.append("lobby", "alice", "x", floor=floor, floor_checked=False)
    assert await messages.last_id("lobby") == 0  # nothing stored
    stored = await messages.append("lobby", "alice", "x", floor=41)  # checked with SQL
    assert stored.id == 42
    # With an epoch, the floor this process knows is the usual one round trip.
    unchecked = {"floor_checked": False}
    assert (await messages.append("lobby", "alice", "y", floor=UNKNOWN_FLOOR, **unchecked)).id == 43
    assert (await messages.append("lobby", "alice", "z", floor=40, **unchecked)).id == 44


async def test_the_epoch_event_is_not_relayed_to_sockets(app, redis_url):
    alice = await app.client("alice")
    await sent(alice, "one", "c1")
    flushall(redis_url)
    await sent(alice, "two", "c2")
    await alice.next("joined", reset=True)
    await alice.nothing("epoch")
    assert not any(f["type"] == "epoch" for f in alice.unread)
    assert EPOCH_FRAME_PREFIX.startswith(b'{"type":"epoch"')


@pytest.mark.parametrize(
    "epoch", [17, "", "x" * 65, ["a"], {"e": 1}, True], ids=lambda e: repr(e)[:12]
)
async def test_a_malformed_epoch_is_a_bad_request_and_the_socket_stays(app, epoch):
    alice = await app.client("alice", join=None)
    await alice.send_frame({"type": "join", "room": "lobby", "since": 0, "epoch": epoch})
    error = await alice.next("error")
    assert error["code"] == "bad_request"
    joined = await join_with(alice, "lobby", since=0, epoch="\u202e" + "z" * 63)  # any 64
    assert joined["reset"] is True  # another epoch than the room's: the whole window


async def test_hostile_joins_with_old_epochs_cost_one_window_each(app):
    """Many sockets re-joining with a wrong epoch at once: each gets the window, no more."""
    alice = await app.client("alice")
    for i in range(3):
        await sent(alice, f"m{i}", f"c{i}")
    token = await app.api.user("mallory")
    sockets = [await connect(app.ws_url, token) for _ in range(5)]
    try:
        for ws in sockets:
            for _ in range(3):
                await ws.write_message('{"type":"join","room":"lobby","since":1,"epoch":"old"}')
        for ws in sockets:
            resets = 0
            while resets < 3:
                frame = await asyncio.wait_for(ws.read_message(), 5)
                if '"type":"joined"' in frame:
                    assert '"reset":true' in frame and '"id":3' in frame
                    resets += 1
    finally:
        for ws in sockets:
            ws.close()
