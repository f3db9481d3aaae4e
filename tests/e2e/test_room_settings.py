"""Room moderation in real Chromium (issue 13, SPEC §6): a private room with its lock,
invisible to others until the owner adds them from the settings panel (with username
suggestions), a moderator made there who mutes a third person (whose composer says
why the send is refused), deletes others' messages, bans (the banned page shows the
removed notice), the audit log, Esc, and deleting the room."""

from __future__ import annotations

from playwright.async_api import expect


async def create_private(person, name: str) -> None:
    page = person.page
    await page.get_by_label("New room").fill(name)
    await page.get_by_label("Private: only the members you add see it").check()
    await page.get_by_role("button", name="Create").click()
    await page.wait_for_url(f"{person.base_url}/rooms/{name}")
    await person.connected()


async def open_settings(person):
    page = person.page
    await page.get_by_role("button", name="Room settings").click()
    panel = page.get_by_role("dialog", name="Settings of #team")
    await expect(panel).to_be_visible()
    return panel


async def test_private_room_moderation_story(people):
    alice, bob, carol = await people(), await people(), await people()
    await alice.register("alice")
    await bob.register("bob")
    await carol.register("carol")
    await create_private(alice, "team")
    lock = alice.page.locator('#room-list li[data-room="team"] .lock')
    await expect(lock).to_have_attribute("aria-label", "Private room")

    # bob cannot see it: not in his list, and its page is refused.
    await expect(bob.page.locator('#room-list li[data-room="team"]')).to_have_count(0)
    refused = await bob.page.goto(bob.base_url + "/rooms/team")
    assert refused.status == 403
    bob.errors.clear()  # the browser logs the refused page itself

    # alice adds bob and carol (the suggestions come from GET /api/users), makes bob moderator.
    panel = await open_settings(alice)
    box = panel.get_by_label("Add member")
    await box.fill("bo")
    await expect(alice.page.locator('#rs-user-options option[value="bob"]')).to_have_count(1)
    await box.fill("bob")
    await box.press("Enter")
    await expect(panel.locator('#rs-members li[data-user="bob"]')).to_be_visible()
    await box.fill("carol")
    await box.press("Enter")
    await expect(panel.locator('#rs-members li[data-user="carol"]')).to_be_visible()
    await panel.get_by_label("Role of bob").select_option("moderator")
    await expect(panel.locator("#rs-status")).to_have_text("Saved.")
    await alice.page.keyboard.press("Escape")
    await expect(panel).to_be_hidden()
    await expect(alice.page.get_by_role("button", name="Room settings")).to_be_focused()

    await bob.page.goto(bob.base_url + "/rooms/team")
    await bob.connected()
    await expect(bob.page.locator('#room-list li[data-room="team"] .lock')).to_have_count(1)
    await carol.page.goto(carol.base_url + "/rooms/team")
    await carol.connected()
    await carol.say("first from carol")
    mine = carol.page.locator("#messages li.message[data-id]").filter(has_text="first from carol")
    await expect(mine).to_have_count(1)

    # bob, a moderator, sees "delete" on carol's message and mutes her for an hour.
    theirs = bob.page.locator("#messages li.message[data-id]").filter(has_text="first from carol")
    await theirs.hover()
    await expect(theirs.get_by_role("button", name="Delete")).to_be_visible()
    panel = await open_settings(bob)
    await panel.get_by_role("button", name="Mute carol").click()
    await expect(panel.locator('#rs-members li[data-user="carol"] .rs-muted')).to_be_visible()
    await carol.say("second from carol")
    notice = carol.page.locator("#composer-notice")
    await expect(notice).to_have_text("You are muted in this room: you can read but not post.")

    # bob bans carol: her page says so, the room leaves her list, the box is disabled.
    await panel.get_by_role("button", name="Ban carol").click()
    await expect(notice).to_contain_text("You are banned from #team.")
    await expect(carol.page.get_by_label("Message")).to_be_disabled()
    await expect(carol.page.locator('#room-list li[data-room="team"]')).to_have_count(0)
    await expect(panel.locator('#rs-bans li[data-user="carol"]')).to_be_visible()

    # The audit log lists what was done, newest first.
    actions = panel.locator("#rs-audit li")
    await expect(actions.first).to_have_attribute("data-action", "ban")
    logged = [await li.get_attribute("data-action") for li in await actions.all()]
    assert logged[:3] == ["ban", "mute", "role"] and "add_member" in logged, logged

    # alice deletes the room: both pages are told.
    panel = await open_settings(alice)
    await panel.get_by_role("button", name="Delete the room").click()
    await panel.get_by_role("button", name="Delete", exact=True).click()
    await expect(alice.page.locator("#composer-notice")).to_contain_text("#team was deleted.")
    await expect(bob.page.locator("#composer-notice")).to_contain_text("#team was deleted.")
    await expect(bob.page.get_by_role("button", name="Room settings")).to_be_hidden()
