"""Blocking in real Chromium (SPEC §6): Block from a message's toolbar (keyboard only),
the blocked user's messages hidden behind a "Show" toggle, live and after a reload,
the closed direct conversation, and Unblock."""

from __future__ import annotations

import re

from playwright.async_api import expect

from tests.e2e.test_message_actions import said, two_people, wait_seen

BLOCKED = re.compile(r"\bblocked\b")


async def test_block_hide_show_and_unblock(people):
    alice, bob = await two_people(people)
    await said(bob, "hello from bob")
    target = await wait_seen(alice, "hello from bob")
    await said(alice, "hello from alice")

    # Keyboard only: "⋯", Enter opens the toolbar on Reply, ← wraps to Block bob.
    more = target.get_by_role("button", name="More actions")
    await more.focus()
    await more.press("Enter")
    await expect(target.get_by_role("button", name="Reply")).to_be_focused()
    await alice.page.keyboard.press("ArrowLeft")
    block = target.get_by_role("button", name="Block bob")
    await expect(block).to_be_focused()
    await alice.page.keyboard.press("Enter")

    await expect(target).to_have_class(BLOCKED)
    await expect(target.locator(".blocked-note")).to_contain_text("Message from a user you blocked")
    await expect(target.locator(".text")).to_be_hidden()
    await expect(alice.page.locator("#alerts")).to_contain_text("You blocked bob")
    mine = alice.page.locator("#messages li.message", has_text="hello from alice")
    await expect(mine).not_to_have_class(BLOCKED)

    # "Show" is a checkbox: Space toggles it, and the message with it.
    show = target.get_by_label("Show")
    await show.focus()
    await alice.page.keyboard.press("Space")
    await expect(target.locator(".text")).to_be_visible()
    await expect(target.locator(".text")).to_have_text("hello from bob")
    await alice.page.keyboard.press("Space")
    await expect(target.locator(".text")).to_be_hidden()

    # A live message of bob's is hidden as it arrives; after a reload, from the server.
    await said(bob, "second from bob")
    live = alice.page.locator("#messages li.message", has_text="second from bob")
    await expect(live).to_have_class(BLOCKED)
    await expect(live.locator(".text")).to_be_hidden()
    await alice.page.reload()
    await alice.connected()
    hidden = alice.page.locator("#messages li.message.blocked")
    await expect(hidden).to_have_count(2)
    await expect(hidden.locator(".text")).to_have_count(2)
    for i in range(2):
        await expect(hidden.nth(i).locator(".text")).to_be_hidden()
    # bob sees nothing of it in lobby.
    await expect(bob.page.locator("#messages li.message.blocked")).to_have_count(0)

    # The direct conversation is closed both ways.
    await bob.page.goto(bob.base_url + "/rooms/dm:alice:bob")
    await expect(bob.page.locator(".error[data-code=forbidden]")).to_be_visible()
    bob.errors.clear()  # the 403 of that page is expected

    # Unblock from the toolbar: everything shows again.
    first = alice.page.locator("#messages li.message", has_text="hello from bob")
    await first.locator(".more").click()
    await first.get_by_role("button", name="Unblock bob").click()
    await expect(alice.page.locator("#messages li.message.blocked")).to_have_count(0)
    await expect(first.locator(".text")).to_be_visible()
    await bob.page.goto(bob.base_url + "/rooms/dm:alice:bob")
    await bob.connected()
    await said(bob, "friends again")


async def test_a_blocked_users_socket_in_the_dm_is_refused_in_the_page(people):
    alice, bob = await two_people(people)
    await bob.page.goto(bob.base_url + "/rooms/dm:alice:bob")
    await bob.connected()
    await said(bob, "before the block")
    response = await alice.page.request.post(
        alice.base_url + "/api/blocks",
        data={"user": "bob"},
        headers={"X-XSRFToken": await alice.page.locator("input[name=_xsrf]").first.input_value()},
    )
    assert response.status == 201
    await bob.say("after the block")
    failed = bob.page.locator("#messages li.message.failed", has_text="after the block")
    await expect(failed).to_be_visible()
    await expect(failed.locator(".status")).to_contain_text("not sent")
