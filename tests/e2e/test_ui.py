"""The rest of the browser UI: direct messages, the keyboard, the page without
JavaScript, and a phone-sized screen."""

from __future__ import annotations

import re

from playwright.async_api import expect

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


async def test_direct_message_from_the_sidebar_and_the_online_list(people):
    alice, bob = await people(), await people()
    await alice.register("alice")
    await bob.register("Bob")
    page = alice.page
    await page.get_by_label("Chat with").fill("BOB")
    await page.get_by_role("button", name="Open").click()
    await page.wait_for_url(alice.base_url + "/rooms/dm:alice:bob")
    await alice.connected()
    await expect(page.locator("#room-name")).to_have_text("@bob")
    await expect(page.locator("#dm-list li.current a")).to_have_text("@bob")
    await alice.say("psst, Bob")

    # Bob follows Alice's name in the online list to the same conversation.
    await bob.page.locator("#online-list").get_by_role("link", name="alice").click()
    await bob.page.wait_for_url(bob.base_url + "/rooms/dm:alice:bob")
    await bob.connected()
    await expect(bob.page.locator("#messages .text")).to_have_text(["psst, Bob"])
    await bob.say("hi Alice")
    await expect(page.locator("#messages .text").last).to_have_text("hi Alice")


async def test_keyboard_only(people):
    alice = await people()
    await alice.register("alice")
    page = alice.page
    await page.get_by_label("New room").fill("kitchen")
    await page.get_by_label("New room").press("Enter")
    await page.wait_for_url(alice.base_url + "/rooms/kitchen")
    await alice.connected()

    # "/" jumps to the message box; Enter sends; Shift+Enter is a new line.
    await page.locator("body").press("/")
    await expect(page.get_by_label("Message")).to_be_focused()
    await page.keyboard.type("two")
    await page.keyboard.press("Shift+Enter")
    await page.keyboard.type("lines")
    await page.keyboard.press("Enter")
    await expect(page.locator("#messages .text").last).to_have_text("two\nlines")

    # Alt+Up / Alt+Down walk the room list (kitchen, lobby).
    await page.keyboard.press("Alt+ArrowDown")
    await page.wait_for_url(alice.base_url + "/rooms/lobby")
    await alice.connected()
    await page.keyboard.press("Alt+ArrowUp")
    await page.wait_for_url(alice.base_url + "/rooms/kitchen")
    await alice.connected()

    # Tab order starts with a skip link to the message box.
    await page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to the message box")
    await expect(skip).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.get_by_label("Message")).to_be_focused()


async def test_everything_basic_works_without_javascript(people):
    alice = await people()
    await alice.register("alice")
    carol = await people(java_script_enabled=False)
    page = carol.page
    await page.goto(carol.base_url + "/register")
    await page.get_by_label("Username").fill("carol")
    await page.get_by_label("Password").fill("correct horse battery")
    await page.get_by_role("button", name="Register").click()
    await page.wait_for_url(carol.base_url + "/")
    await page.get_by_role("button", name="Log out").click()
    await page.wait_for_url(carol.base_url + "/login")
    await page.get_by_label("Username").fill("carol")
    await page.get_by_label("Password").fill("correct horse battery")
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url(carol.base_url + "/")

    await alice.say("hello from a script-enabled browser")
    # Stored (it has its id) before carol's page asks for the history: ``say`` only
    # types it, and alice's socket may still be connecting (a race under load).
    await expect(alice.page.locator("#messages li[data-id] .text")).to_have_text(
        ["hello from a script-enabled browser"]
    )
    await page.reload()
    await expect(page.locator("#messages .text")).to_have_text(
        ["hello from a script-enabled browser"]
    )
    await page.get_by_label("Message").fill("hello <b>without</b> JavaScript")
    await page.get_by_role("button", name="Send").click()
    await page.wait_for_url(carol.base_url + "/rooms/lobby#latest")
    await expect(page.locator("#messages .text").last).to_have_text(
        "hello <b>without</b> JavaScript"
    )
    await expect(page.locator("#messages .text").last).to_be_in_viewport()
    await expect(page.locator("#messages time").last).to_have_text(re.compile(r"^\d\d:\d\d$"))
    # The people with JavaScript get it live.
    await expect(alice.page.locator("#messages .text").last).to_have_text(
        "hello <b>without</b> JavaScript"
    )

    # A new room and a direct message, with plain forms too.
    await page.get_by_label("New room").fill("plain")
    await page.get_by_role("button", name="Create").click()
    await page.wait_for_url(carol.base_url + "/rooms/plain")
    await page.get_by_label("Chat with").fill("alice")
    await page.get_by_role("button", name="Open").click()
    await page.wait_for_url(carol.base_url + "/rooms/dm:alice:carol")
    await expect(page.locator("#room-name")).to_have_text("@alice")


async def test_phone_screen(people):
    phoebe = await people(**PHONE)
    await phoebe.register("phoebe")
    page = phoebe.page
    box, send = page.get_by_label("Message"), page.get_by_role("button", name="Send")
    await expect(box).to_be_in_viewport()
    await expect(send).to_be_in_viewport()
    await expect(page.locator("#room-list")).to_be_hidden()
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await box.tap()
    await box.fill("from my phone")
    await send.tap()
    await expect(page.locator("#messages li.message:not(.pending) .text")).to_have_text(
        "from my phone"
    )

    # The room list is a drawer behind the "Rooms" button.
    toggle = page.get_by_role("button", name="Rooms")
    await toggle.tap()
    await expect(toggle).to_have_attribute("aria-expanded", "true")
    await expect(page.locator("#room-list")).to_be_in_viewport()
    await page.get_by_label("New room").fill("commute")
    await page.get_by_role("button", name="Create").tap()
    await page.wait_for_url(phoebe.base_url + "/rooms/commute")
    await phoebe.connected()
    await expect(page.locator("#room-list")).to_be_hidden()
    await page.get_by_role("button", name="Rooms").tap()
    await page.locator("#room-list").get_by_role("link", name="lobby").tap()
    await page.wait_for_url(phoebe.base_url + "/rooms/lobby")
    await phoebe.connected()
    await expect(page.locator("#messages .text")).to_have_text(["from my phone"])
