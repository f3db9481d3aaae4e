"""[issue 13] The room settings panel on a phone (390x844, touch) in real Chromium: it
opens within the screen, mutes a member, and Esc closes it with the focus back on its
button."""

from __future__ import annotations

from playwright.async_api import expect

from tests.e2e.test_added_live import api

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


async def test_room_settings_on_a_phone(people):
    alice, bob = await people(**PHONE), await people()
    await alice.register("alice")
    await bob.register("bob")
    assert await api(alice, "POST", "/api/rooms", {"name": "team", "private": True}) == 201
    assert await api(alice, "POST", "/api/rooms/team/members", {"user": "bob"}) == 201
    page = alice.page
    await page.goto(alice.base_url + "/rooms/team")
    await alice.connected()

    toggle = page.get_by_role("button", name="Room settings")
    await toggle.tap()
    panel = page.get_by_role("dialog", name="Settings of #team")
    await expect(panel).to_be_visible()
    box = await panel.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    mute = panel.get_by_role("button", name="Mute bob")
    await mute.scroll_into_view_if_needed()
    await mute.tap()
    await expect(panel.locator('#rs-members li[data-user="bob"] .rs-muted')).to_be_visible()
    await expect(panel.locator("#rs-status")).to_contain_text("bob")
    # The list was drawn again: the focus is where it was, on what Mute became.
    await expect(panel.get_by_role("button", name="Unmute bob")).to_be_focused()

    await page.keyboard.press("Escape")
    await expect(panel).to_be_hidden()
    await expect(toggle).to_be_focused()
