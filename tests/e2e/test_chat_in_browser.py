"""Two people chat in real Chromium: live delivery, literal text, history after reload."""

from __future__ import annotations

from playwright.async_api import expect

XSS = "<img src=x onerror=alert(1)>"


async def test_two_people_chat_live(people):
    alice, bob = await people(), await people()
    await alice.register("alice")
    await bob.register("bob")
    await alice.say("hello bob")
    await expect(bob.page.locator("#messages .text").last).to_have_text("hello bob")
    await bob.say("hi alice")
    await expect(alice.page.locator("#messages .text").last).to_have_text("hi alice")


async def test_hostile_text_is_shown_literally(people):
    alice, bob = await people(), await people()
    await alice.register("alice")
    await bob.register("bob")
    await alice.say(XSS)
    await expect(bob.page.locator("#messages .text").last).to_have_text(XSS)
    assert await bob.page.locator("#messages img").count() == 0


async def test_reload_keeps_history_and_does_not_duplicate(people):
    alice = await people()
    await alice.register("alice")
    for text in ("one", "two", "three"):
        await alice.say(text)
        await expect(alice.page.locator("#messages .text").last).to_have_text(text)
    await alice.page.reload()
    await alice.connected()
    await expect(alice.page.locator("#messages .text")).to_have_text(["one", "two", "three"])
