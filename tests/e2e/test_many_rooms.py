"""A user in more rooms than the join burst (``joins_per_minute``) still follows them all:
the browser joins the rest once the server's ``retry_after`` has passed."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

#: Joins one socket may make at once, then one a second.
BURST = 60
#: More rooms than the burst: the page's room (lobby) and the first 59 are joined at
#: once, the last three after a refused join and its retry_after.
ROOMS = [f"r{n:02}" for n in range(BURST + 2)]


@pytest.fixture
async def app(app_factory):
    return await app_factory(joins_per_minute=BURST, rooms_per_hour=len(ROOMS))


async def test_rooms_past_the_join_burst_are_followed_after_retry_after(people, app):
    alice = await people()
    await alice.register("alice")
    token = await app.api.login("alice")
    for room in ROOMS:
        created = await app.api.request("POST", "/api/rooms", {"name": room}, token=token)
        assert created.code == 201, created.body
    refused: list[str] = []
    alice.page.on(
        "websocket",
        lambda ws: ws.on(
            "framereceived", lambda f: "rate_limited" in str(f) and refused.append(str(f))
        ),
    )
    await alice.page.reload()  # hello now lists every room: more than the burst
    await alice.connected()

    talked_in = [ROOMS[0], *ROOMS[-3:]]
    for room in talked_in:  # a socket per room: bob's sockets have the same join burst
        bob = await app.client("bob", join=room)
        await bob.send(f"hello {room}", room=room)
        await bob.next("ack")
    for room in talked_in:  # every room's badge counts bob's message, the late ones too
        badge = alice.page.locator(f"#room-list li[data-room={room}] .badge")
        await expect(badge).to_have_text("1", timeout=15_000)
    assert refused, "the server never refused a join: the test did not pass the burst"
