"""SPEC §8 in real Chromium: Redis loses the room (FLUSHALL); a page that was live and a
page that was offline both drop their copy of the room and show its new history, with
no duplicate and no console error. Discourse's message_bus left clients stuck "ahead"
after a flush: this is that case."""

from __future__ import annotations

import redis
from playwright.async_api import expect


async def test_pages_drop_the_old_history_after_a_flush(people, app, redis_url):
    alice, bob = await people(), await people()
    await alice.register("alice")
    await bob.register("bob")
    for text in ("one", "two", "three"):
        await alice.say(text)
    for person in (alice, bob):
        await expect(person.page.locator("#messages .text")).to_have_text(["one", "two", "three"])

    await alice.context.set_offline(True)
    await expect(alice.page.locator("#connection-state")).to_have_attribute("data-state", "offline")
    with redis.Redis.from_url(redis_url) as client:
        client.flushall()
    await bob.say("a new life")

    # Bob's page was live: the server resynced it (joined with reset: true).
    await expect(bob.page.locator("#messages .text")).to_have_text(["a new life"])
    # Alice's page comes back remembering id 3 of the old epoch: reset on its join.
    await alice.context.set_offline(False)
    await alice.connected()
    await expect(alice.page.locator("#messages .text")).to_have_text(["a new life"])
    ids = await alice.page.locator("#messages li[data-id]").evaluate_all(
        "items => items.map(li => Number(li.dataset.id))"
    )
    assert ids == [4]  # ids continue after every id the room had

    # And the room goes on as usual.
    await alice.say("still here")
    for person in (alice, bob):
        await expect(person.page.locator("#messages .text")).to_have_text(
            ["a new life", "still here"]
        )
