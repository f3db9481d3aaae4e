"""[issue 13] In real Chromium: a blocked user's @mention in another room raises that
room's unread count but not its "@N" mention badge, live and after a reload (the
server leaves it out of the count too)."""

from __future__ import annotations

from playwright.async_api import expect

from tests.e2e.test_added_live import api
from tests.e2e.test_message_actions import two_people


async def test_a_blocked_users_mention_is_not_counted(people):
    alice, bob = await two_people(people)
    assert await api(alice, "POST", "/api/rooms", {"name": "side"}) == 201
    await alice.page.goto(alice.base_url + "/rooms/side")
    await alice.connected()
    lobby = alice.page.locator('#room-list li[data-room="lobby"]')
    unread, mentioned = lobby.locator(".badge:not(.mention-badge)"), lobby.locator(".mention-badge")

    assert await api(bob, "POST", "/api/rooms/lobby/messages", {"text": "@alice one"}) == 201
    await expect(mentioned).to_have_text("@1")
    assert await api(alice, "POST", "/api/blocks", {"user": "bob"}) == 201
    await alice.page.reload()  # the page learns whom alice blocked with the page
    await alice.connected()
    await expect(mentioned).to_have_text("@1")

    assert await api(bob, "POST", "/api/rooms/lobby/messages", {"text": "@alice two"}) == 201
    await expect(unread).to_have_text("2")
    await expect(mentioned).to_have_text("@1")
    await alice.page.reload()
    await alice.connected()
    await expect(unread).to_have_text("2")
    await expect(mentioned).to_have_text("@1")
