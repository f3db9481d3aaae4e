"""A ``join`` racing an epoch change (SPEC §8): the join reads the room's history (and
then who is online) while the room starts a new epoch, and the process hears the
``epoch`` event before the join's ``joined`` is out. The socket must still end up in
the new epoch (a ``joined`` of it, with ``reset: true``), never holding the old
epoch's copy while the new epoch's messages arrive. The new epoch is started at each
point of the window (a hook around the real Redis reads), on the real Redis."""

from __future__ import annotations

import asyncio

import pytest

from tests.helpers import sent

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("window", ["history", "online"])
@pytest.mark.parametrize("others", [False, True], ids=["alone", "with-others"])
async def test_a_join_that_reads_the_room_while_its_epoch_moves_ends_in_the_new_one(
    app, monkeypatch, window, others
):
    graph = app.server.controllers
    hub = graph.chat._hub
    # ``others``: another socket of this process is in the room (its epoch is known here).
    alice = await app.client("alice", join="lobby" if others else None)
    for i in range(3):
        await sent(alice, f"m{i}", f"c{i}")
    old_epoch = (await graph.messages.heads(["lobby"]))["lobby"][1]

    heard = asyncio.Event()  # this process handled the new epoch's event
    handle_epoch = hub._new_epoch

    async def new_epoch(event):
        await handle_epoch(event)
        heard.set()

    monkeypatch.setattr(hub, "_new_epoch", new_epoch)
    # The join's read at ``window`` returns what Redis held, then the epoch moves (a
    # failover to a replica that had 3 of 10 published ids) and is heard here, all
    # before the join goes on.
    target = graph.messages if window == "history" else graph.presence
    read = getattr(target, window)
    armed = [True]

    async def in_the_window(*args, **kwargs):
        result = await read(*args, **kwargs)
        if armed and armed.pop():
            await graph.rooms.epochs.went_back("lobby", 10)
            await asyncio.wait_for(heard.wait(), 5)
        return result

    bob = await app.client("bob", join=None)
    monkeypatch.setattr(target, window, in_the_window)
    joined = await bob.join("lobby")
    assert not armed  # the window was hit
    new = (await graph.messages.heads(["lobby"]))["lobby"][1]
    assert new != old_epoch
    if joined["epoch"] != new:  # the old epoch's window went out: a reset must follow
        joined = await bob.next("joined", epoch=new)
        assert joined["reset"] is True
    assert joined["messages"] == []  # the new epoch's window: empty, ids above 10

    # The new epoch's messages come as usual, once each, above what was published.
    assert await sent(alice, "after", "a1") == 11
    message = await bob.next("message")
    assert (message["id"], message["text"]) == (11, "after")
    await bob.nothing("joined", wait=0.2)
    await bob.nothing("message", wait=0.1)
