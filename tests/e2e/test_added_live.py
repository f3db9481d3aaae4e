"""[issue 13] Added to a private room, live in real Chromium: the room appears in the
added user's sidebar at once (an `added` frame, not the sidebar's 30 s refresh), with
its lock and a word of notice, and its new messages count as unread there."""

from __future__ import annotations

from playwright.async_api import expect

from tests.e2e.test_message_actions import two_people


async def api(person, method: str, path: str, data: dict) -> int:
    xsrf = await person.page.locator("input[name=_xsrf]").first.input_value()
    response = await person.page.request.fetch(
        person.base_url + path, method=method, data=data, headers={"X-XSRFToken": xsrf}
    )
    return response.status


async def test_an_added_room_appears_in_the_sidebar_at_once(people):
    alice, bob = await two_people(people)
    assert await api(alice, "POST", "/api/rooms", {"name": "team", "private": True}) == 201
    room = bob.page.locator('#room-list li[data-room="team"]')
    await expect(room).to_have_count(0)

    assert await api(alice, "POST", "/api/rooms/team/members", {"user": "bob"}) == 201
    # Well within the sidebar's 30 s refresh: the frame did it.
    await expect(room.locator(".lock")).to_have_count(1, timeout=5_000)
    await expect(bob.page.locator("#alerts")).to_contain_text("You were added to #team.")
    await expect(room.locator(".badge:not(.mention-badge)")).to_be_hidden()

    # bob's page follows the room: a message there counts as unread in his sidebar.
    assert await api(alice, "POST", "/api/rooms/team/messages", {"text": "welcome"}) == 201
    await expect(room.locator(".badge:not(.mention-badge)")).to_have_text("1")
