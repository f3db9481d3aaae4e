"""A reader that stops reading at a normal chat rate is closed with 1013 after
``stall_seconds`` of unacknowledged data, long before its queue could fill."""

from __future__ import annotations

import asyncio

import pytest

from tests.rawws import RawSocket, chatter

pytestmark = pytest.mark.timeout(60)


async def test_a_stalled_reader_at_chat_rates_is_closed_1013(app_factory, caplog):
    caplog.set_level("INFO", logger="chatroom.views.socket")
    # The defaults but a short stall: the 1 MiB queue would take minutes to fill at
    # this rate, and the keepalive would drop the socket only after 25 + 10 s.
    app = await app_factory(send_burst=100_000, stall_seconds=1.0)
    alice = await app.client("alice")
    bob = await app.client("bob")
    stalled = await RawSocket.open(app.port, await app.api.user("stalled"), rcvbuf=4096)
    await stalled.join()  # and never reads again
    await bob.next("presence", user="stalled", state="online")
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with chatter(alice, interval=0.05):  # 20 messages/s of ~15 bytes of text
        offline = await bob.next("presence", timeout=30, user="stalled", state="offline")
    took = loop.time() - started
    stalled.close()
    assert offline["room"] == "lobby"
    # Detected once the kernel buffers fill and a second passes; then the close
    # handshake waits its 5 s. Well under the keepalive's 35 s.
    assert took < 25, took
    # Only the stalled socket: the readers that kept reading were never taken for it.
    assert caplog.text.count("closing a stalled reader") == 1, caplog.text
    assert (await bob.join())["room"] == "lobby"


async def test_readers_that_keep_up_are_never_taken_for_stalled(app_factory, caplog):
    caplog.set_level("INFO", logger="chatroom.views.socket")
    app = await app_factory(send_burst=100_000, stall_seconds=0.2)
    alice = await app.client("alice")
    bob = await app.client("bob")
    async with chatter(alice, interval=0.005), chatter(bob, interval=0.005):
        await asyncio.sleep(3)
    assert "closing a stalled reader" not in caplog.text
    assert "closing a slow consumer" not in caplog.text
