"""Messages people work with, in real Chromium (SPEC §5, issue 12): the toolbar on a
message (hover, keyboard, long press / "⋯" on a phone), inline edit with Enter/Esc and
Up-arrow, delete with a confirmation and the tombstone, replies with the quoted parent
that scrolls to it, reaction chips that toggle, the emoji picker from the keyboard,
mentions (highlight, sidebar count, notification), catch-up after a reconnect, the
Chinese labels and the page without JavaScript."""

from __future__ import annotations

import json
import re

from playwright.async_api import expect

from tests.e2e.test_chat_in_browser import FAKE_NOTIFICATIONS

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


def confirmed(person):
    """The confirmed message items of a person's list."""
    return person.page.locator("#messages li.message[data-id]")


async def said(person, text: str):
    """Say ``text`` and wait until the server confirmed it; its <li>."""
    await person.say(text)
    li = confirmed(person).filter(has_text=text).last
    return await by_id(person, li)


async def wait_seen(person, text: str):
    return await by_id(person, confirmed(person).filter(has_text=text).last)


async def by_id(person, li):
    """``li`` (a confirmed message) found by its id, whatever its text becomes."""
    await expect(li).to_have_attribute("data-id", re.compile(r"^\d+$"))
    mid = await li.get_attribute("data-id")
    return person.page.locator(f'#messages li.message[data-id="{mid}"]')


async def pick_first_emoji(person) -> None:
    picker = person.page.get_by_role("dialog", name="Choose an emoji")
    await picker.locator(".emoji-choice").first.click()


async def two_people(people):
    alice, bob = await people(), await people()
    await alice.register("alice")
    await bob.register("bob")
    return alice, bob


async def test_edit_inline_with_enter_and_esc_and_up_arrow(people):
    alice, bob = await two_people(people)
    await said(alice, "helo world")
    theirs = await wait_seen(bob, "helo world")

    # Up-arrow in the empty message box edits one's last message.
    box = alice.page.get_by_label("Message", exact=True)
    await box.focus()
    await box.press("ArrowUp")
    editor = alice.page.get_by_label("Edit text")
    await expect(editor).to_be_focused()
    await expect(editor).to_have_value("helo world")
    await editor.fill("hello *world*")
    await editor.press("Enter")
    await expect(box).to_be_focused()

    await expect(theirs.locator(".text")).to_have_text("hello world")
    await expect(theirs.locator(".text strong")).to_have_text("world")
    edited = theirs.locator(".edited")
    await expect(edited).to_be_visible()
    await expect(edited).to_have_text("(edited)")
    await expect(edited).to_have_attribute("title", re.compile(r"^edited "))

    # From the toolbar, and Esc cancels.
    mine = confirmed(alice).last
    await mine.hover()
    await mine.get_by_role("button", name="Edit").click()
    await editor.fill("never saved")
    await editor.press("Escape")
    await expect(editor).to_have_count(0)
    await expect(mine.locator(".text")).to_have_text("hello world")

    # Someone else's message has no Edit or Delete.
    await said(bob, "bob's own")
    other = confirmed(alice).filter(has_text="bob's own")
    await other.hover()
    await expect(other.get_by_role("button", name="Reply")).to_be_visible()
    await expect(other.get_by_role("button", name="Edit")).to_be_hidden()
    await expect(other.get_by_role("button", name="Delete")).to_be_hidden()


async def test_delete_asks_first_and_leaves_a_tombstone(people):
    alice, bob = await two_people(people)
    await said(alice, "oops, wrong room")
    await said(alice, "keep this")
    theirs = await wait_seen(bob, "oops, wrong room")
    mine = await by_id(alice, confirmed(alice).filter(has_text="oops, wrong room"))
    await mine.hover()
    await mine.get_by_role("button", name="Delete").click()
    await expect(mine.get_by_text("Delete this message?")).to_be_visible()
    await mine.get_by_role("button", name="Cancel").click()
    await expect(mine.locator(".text")).to_have_text("oops, wrong room")
    await mine.get_by_role("button", name="Delete").click()
    await mine.locator("[data-act=confirm-delete]").click()

    for li in (mine, theirs):
        await expect(li).to_have_class(re.compile(r"\bdeleted\b"))
        await expect(li.locator(".text")).to_have_text("message deleted")
    # The tombstone keeps its place; the next message is still there.
    await expect(confirmed(bob).nth(1).locator(".text")).to_have_text("keep this")
    await theirs.hover()
    await expect(theirs.locator(".message-actions")).to_have_count(0)


async def test_reply_quotes_the_parent_and_clicking_it_scrolls_there(people):
    alice, bob = await two_people(people)
    await said(bob, "what time is the meeting?")
    for n in range(25):
        await said(bob, f"filler {n}")
    parent = await wait_seen(alice, "what time is the meeting?")
    await parent.scroll_into_view_if_needed()
    await parent.hover()
    await parent.get_by_role("button", name="Reply").click()
    preview = alice.page.locator("#reply-preview")
    await expect(preview).to_be_visible()
    await expect(preview).to_contain_text("what time is the meeting?")
    await expect(alice.page.get_by_label("Message", exact=True)).to_be_focused()

    # Cancel, then reply for real.
    await preview.get_by_role("button", name="Cancel the reply").click()
    await expect(preview).to_be_hidden()
    await parent.hover()
    await parent.get_by_role("button", name="Reply").click()
    await alice.say("at three")
    await expect(preview).to_be_hidden()

    reply = await wait_seen(bob, "at three")
    quote = reply.locator(".reply-to")
    await expect(quote).to_be_visible()
    await expect(quote.locator(".reply-author")).to_have_text("bob")
    await expect(quote.locator(".reply-text")).to_have_text("what time is the meeting?")
    original = confirmed(bob).filter(has_text="what time is the meeting?").first
    await expect(original).not_to_be_in_viewport()
    await quote.locator(".reply-jump").click()
    await expect(original).to_be_in_viewport()
    await expect(original).to_have_class(re.compile(r"\bflash\b"))


async def test_reactions_toggle_with_counts_and_who_reacted(people):
    alice, bob = await two_people(people)
    await said(bob, "ship it?")
    target = await wait_seen(alice, "ship it?")

    # Keyboard only: focus the "⋯" button, Enter opens the toolbar, → to React,
    # Enter opens the picker, → to the second emoji, Enter picks it.
    more = target.get_by_role("button", name="More actions")
    await more.focus()
    await more.press("Enter")
    await expect(target.get_by_role("button", name="Reply")).to_be_focused()
    await alice.page.keyboard.press("ArrowRight")
    await expect(target.get_by_role("button", name="React")).to_be_focused()
    await alice.page.keyboard.press("Enter")
    picker = alice.page.get_by_role("dialog", name="Choose an emoji")
    await expect(picker).to_be_visible()
    await alice.page.keyboard.press("ArrowRight")
    await expect(picker.locator(".emoji-choice").nth(1)).to_be_focused()
    await alice.page.keyboard.press("Enter")
    await expect(picker).to_have_count(0)
    await expect(more).to_be_focused()

    theirs = confirmed(bob).filter(has_text="ship it?")
    chip = theirs.locator(".reaction[data-emoji='👎']")
    await expect(chip.locator(".count")).to_have_text("1")
    await expect(chip).to_have_attribute("title", "alice")
    await expect(chip).to_have_attribute("aria-pressed", "false")
    await chip.click()  # bob joins in
    await expect(chip.locator(".count")).to_have_text("2")
    await expect(chip).to_have_attribute("title", "alice, bob")
    await expect(chip).to_have_attribute("aria-pressed", "true")
    mine = target.locator(".reaction[data-emoji='👎']")
    await expect(mine).to_have_attribute("title", "alice, bob")
    await expect(mine).to_have_attribute("aria-pressed", "true")
    await mine.click()  # alice takes hers back
    await expect(chip.locator(".count")).to_have_text("1")
    await expect(chip).to_have_attribute("title", "bob")

    # The picker remembers what was used, first.
    await more.focus()
    await more.press("Enter")
    await target.get_by_role("button", name="React").click()
    recent = picker.locator(".recent .emoji-choice")
    await expect(recent).to_have_count(1)
    await expect(recent.first).to_have_text("👎")
    await alice.page.keyboard.press("Escape")
    await expect(picker).to_have_count(0)


async def test_mentions_are_highlighted_counted_and_notified(people):
    alice, bob = await two_people(people)
    await bob.context.add_init_script(FAKE_NOTIFICATIONS)
    await bob.page.reload()
    await bob.connected()
    await bob.page.locator("#notify-toggle").click()
    await bob.page.get_by_label("New room").fill("general")
    await bob.page.get_by_role("button", name="Create").click()
    await bob.page.wait_for_url(bob.base_url + "/rooms/general")
    await bob.connected()

    await said(alice, "@bob can you look?")
    await said(alice, "not a mention")
    lobby = bob.page.locator("#room-list li[data-room=lobby]")
    await expect(lobby.locator(".badge:not(.mention-badge)")).to_have_text("2")
    await expect(lobby.locator(".mention-badge")).to_have_text("@1")
    shown = await bob.page.evaluate("window.__notifications")
    assert [n["title"] for n in shown] == ["alice mentioned you in #lobby", "alice in #lobby"]

    await lobby.get_by_role("link").click()
    await bob.connected()
    mentioned = re.compile(r"\bmentioned\b")
    await expect(confirmed(bob).filter(has_text="@bob can you look?")).to_have_class(mentioned)
    await expect(confirmed(bob).filter(has_text="not a mention")).not_to_have_class(mentioned)
    await expect(bob.page.locator("#room-list li[data-room=lobby] .mention-badge")).to_be_hidden()


async def test_reconnect_catches_up_edits_deletes_and_reactions(people):
    alice, bob = await two_people(people)
    for text in ("one", "two", "three"):
        await said(alice, text)
    await wait_seen(bob, "three")
    joins: list[dict] = []
    bob.page.on(
        "websocket",
        lambda ws: ws.on(
            "framesent",
            lambda payload: joins.append(json.loads(payload)) if '"join"' in str(payload) else None,
        ),
    )
    await bob.context.set_offline(True)
    await expect(bob.page.locator("#connection-state")).to_have_attribute("data-state", "offline")

    # While bob is away: an edit, a delete, a reaction and a new message.
    one = confirmed(alice).filter(has_text="one")
    await one.hover()
    await one.get_by_role("button", name="Edit").click()
    await alice.page.get_by_label("Edit text").fill("one, edited")
    await alice.page.get_by_label("Edit text").press("Enter")
    two = confirmed(alice).filter(has_text="two")
    await two.hover()
    await two.get_by_role("button", name="Delete").click()
    await two.locator("[data-act=confirm-delete]").click()
    three = confirmed(alice).filter(has_text="three")
    await three.hover()
    await three.get_by_role("button", name="React").click()
    await (
        alice.page.get_by_role("dialog", name="Choose an emoji")
        .locator(".emoji-choice")
        .first.click()
    )
    await expect(three.locator(".reaction")).to_have_count(1)
    await said(alice, "four")

    await bob.context.set_offline(False)
    await bob.connected()
    await wait_seen(bob, "four")
    lobby_join = [f for f in joins if f.get("room") == "lobby"][-1]
    assert lobby_join["since"] == 3 and isinstance(lobby_join.get("since_rev"), int)

    state = """() => [...document.querySelectorAll('#messages li.message[data-id]')].map((li) => [
      li.dataset.id, li.className.includes('deleted'), li.querySelector('.text').textContent,
      !li.querySelector('.edited').hidden,
      [...li.querySelectorAll('.reaction')].map((c) => [c.dataset.emoji, c.title])])"""
    caught_up = await bob.page.evaluate(state)
    await bob.page.reload()  # a fresh join
    await bob.connected()
    await wait_seen(bob, "four")
    assert caught_up == await bob.page.evaluate(state)
    assert caught_up[0][2] == "one, edited" and caught_up[0][3]
    assert caught_up[1][1] and caught_up[1][2] == "message deleted"
    assert caught_up[2][4] == [["👍", "alice"]]


async def test_chinese_labels(people):
    wei = await people(locale="zh-CN")
    page = wei.page
    await page.goto(wei.base_url + "/register")
    await page.get_by_label("用户名").fill("wei")
    await page.get_by_label("密码").fill("correct horse battery")
    await page.get_by_role("button", name="注册").click()
    await page.wait_for_url(wei.base_url + "/")
    await wei.connected()
    await page.get_by_label("消息", exact=True).fill("你好")
    await page.get_by_label("消息", exact=True).press("Enter")
    li = confirmed(wei).last
    await expect(li).to_have_attribute("data-id", re.compile(r"^\d+$"))
    await li.hover()
    for label in ("回复", "回应", "编辑", "删除"):
        await expect(li.get_by_role("button", name=label, exact=True)).to_be_visible()
    await expect(li.get_by_role("button", name="更多操作")).to_be_attached()
    await li.get_by_role("button", name="回应", exact=True).click()
    await expect(page.get_by_role("dialog", name="选择表情")).to_be_visible()
    await page.keyboard.press("Escape")
    await li.hover()
    await li.get_by_role("button", name="删除", exact=True).click()
    await expect(li.get_by_text("删除这条消息？")).to_be_visible()
    await li.get_by_role("button", name="取消", exact=True).click()
    await page.get_by_label("消息", exact=True).press("ArrowUp")
    await expect(page.get_by_label("编辑文字")).to_be_focused()
    await expect(li.get_by_text("Enter 保存，Esc 取消。")).to_be_visible()


async def test_phone_actions_from_the_visible_button(people):
    alice, bob = await people(**PHONE), await people()
    await alice.register("alice")
    await bob.register("bob")
    await said(bob, "from the desk")
    li = await wait_seen(alice, "from the desk")
    more = li.get_by_role("button", name="More actions")
    await expect(more).to_be_visible()  # no hover on a phone
    await more.tap()
    reply = li.get_by_role("button", name="Reply")
    await expect(reply).to_be_in_viewport()
    await reply.tap()
    await expect(alice.page.locator("#reply-preview")).to_be_in_viewport()
    assert await alice.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


async def test_the_page_without_javascript_shows_changes_read_only(people, browser, app):
    alice, bob = await two_people(people)
    await said(bob, "parent message")
    parent = await wait_seen(alice, "parent message")
    await parent.hover()
    await parent.get_by_role("button", name="Reply").click()
    await said(alice, "a reply")
    await parent.hover()
    await parent.get_by_role("button", name="React").click()
    await (
        alice.page.get_by_role("dialog", name="Choose an emoji")
        .locator(".emoji-choice")
        .first.click()
    )
    await said(alice, "to be deleted")
    await alice.page.get_by_label("Message", exact=True).press("ArrowUp")
    await alice.page.get_by_label("Edit text").fill("edited text")
    await alice.page.get_by_label("Edit text").press("Enter")
    gone = await said(alice, "gone")
    await gone.hover()
    await gone.get_by_role("button", name="Delete").click()
    await gone.locator("[data-act=confirm-delete]").click()
    await expect(gone).to_have_class(re.compile(r"\bdeleted\b"))

    context = await browser.new_context(java_script_enabled=False)
    try:
        page = await context.new_page()
        await page.goto(app.base_url + "/login")
        await page.get_by_label("Username").fill("bob")
        await page.get_by_label("Password").fill("correct horse battery")
        await page.get_by_role("button", name="Log in").click()
        items = page.locator("#messages li.message")
        await expect(items.filter(has_text="a reply").locator(".reply-text")).to_have_text(
            "parent message"
        )
        chip = items.filter(has_text="parent message").first.locator(".reaction")
        await expect(chip).to_have_attribute("title", "alice")
        await expect(items.filter(has_text="edited text").locator(".edited")).to_be_visible()
        await expect(items.last.locator(".text")).to_have_text("message deleted")
        await expect(items.last).to_have_class(re.compile(r"\bdeleted\b"))
    finally:
        await context.close()
