"""The archive in the browser (SPEC §7): scrolling up loads older pages back to message 1
with the scroll position kept; the search box finds a two-character Chinese word and
jumps to it; hostile text in results is shown as text."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import expect

pytestmark = pytest.mark.timeout(120)


async def seed(app, room: str, count: int, text=lambda n: f"message {n}") -> None:
    """``count`` messages from bob in ``room``, then wait until the archive has them."""
    bob = await app.client("bob", join=None)
    if room != "lobby":
        token = await app.api.login("bob")
        created = await app.api.request("POST", "/api/rooms", {"name": room}, token=token)
        assert created.code == 201, created.body
    await bob.join(room)
    for n in range(1, count + 1):
        await bob.send(text(n), room=room, client_id=f"s{n}")
        await bob.next("ack", client_id=f"s{n}")
    archive = app.server.controllers.archive
    for _ in range(100):
        if (await archive.measure_lag()).messages == 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the archiver did not catch up")


async def test_scrolling_up_loads_every_older_page_keeping_the_position(people, app):
    alice = await people(viewport={"width": 1000, "height": 700})
    await alice.register("alice")
    await seed(app, "lobby", 250)
    page = alice.page
    await page.reload()
    await alice.connected()
    items = page.locator("#messages li.message[data-id]")
    await expect(items.last).to_have_attribute("data-id", "250")
    start = int(await items.first.get_attribute("data-id"))
    assert start > 1  # the join brought only the retained history

    for _ in range(20):
        oldest = int(await items.first.get_attribute("data-id"))
        if oldest == 1:
            break
        anchor = page.locator(f'#messages li[data-id="{oldest}"]')
        await page.eval_on_selector("#messages", "el => { el.scrollTop = 0; }")
        await expect(page.locator(f'#messages li[data-id="{max(1, oldest - 1)}"]')).to_have_count(1)
        await expect(page.locator("#messages .loading-older")).to_have_count(0)
        # The message that was at the top is still on screen, where it was: not the new
        # page's first message.
        box = await anchor.bounding_box()
        listbox = await page.locator("#messages").bounding_box()
        assert box["y"] >= listbox["y"] - 5, (box, listbox)
        assert box["y"] < listbox["y"] + listbox["height"], (box, listbox)
    await expect(items.first).to_have_attribute("data-id", "1")
    await expect(page.locator('#messages li[data-id="1"] .text')).to_have_text("message 1")
    ids = [int(i) for i in await items.evaluate_all("els => els.map(e => e.dataset.id)")]
    assert ids == list(range(1, 251))  # every message once, in order
    # The top is reached: scrolling up again asks for nothing more.
    requests: list[str] = []
    page.on("request", lambda r: "/messages?" in r.url and requests.append(r.url))
    await page.eval_on_selector("#messages", "el => { el.scrollTop = 1; el.scrollTop = 0; }")
    await page.wait_for_timeout(300)
    assert requests == []


async def test_search_finds_a_two_character_chinese_word_and_jumps_to_it(people, app):
    wei = await people(locale="zh-CN", viewport={"width": 1000, "height": 700})
    page = wei.page
    await page.goto(wei.base_url + "/register")  # in Chinese: the labels are translated
    await page.get_by_label("用户名").fill("wei")
    await page.get_by_label("密码").fill("correct horse battery")
    await page.get_by_role("button", name="注册").click()
    await wei.connected()
    await seed(app, "lobby", 200, lambda n: "明天下午开会议题是预算" if n == 7 else f"消息 {n}")
    box = page.get_by_role("searchbox", name="搜索")
    await page.keyboard.press("Control+k")
    await expect(box).to_be_focused()
    await box.fill("会议")
    await box.press("Enter")
    result = page.locator("#search-results a.result")
    await expect(result).to_have_count(1)
    await expect(result.locator("mark")).to_have_text("会议")
    await expect(result.locator(".text")).to_have_text("明天下午开会议题是预算")
    await expect(result.locator(".author")).to_have_text("bob")
    await expect(result.locator(".room")).to_have_text("#lobby")
    await box.press("ArrowDown")
    await expect(result).to_be_focused()
    await page.keyboard.press("Enter")
    target = page.locator('#messages li.message.target[data-id="7"]')
    await expect(target).to_have_count(1)
    await expect(target.locator(".text")).to_have_text("明天下午开会议题是预算")
    await expect(target).to_be_in_viewport()
    await expect(page.locator("#search-panel")).to_be_hidden()
    # The page around it came from the archive; newer ones are one button away.
    newer = page.get_by_role("button", name="显示较新的消息")
    await newer.click()  # 51..100, just above the live history
    await expect(page.locator('#messages li[data-id="51"]')).to_have_count(1)
    await newer.click()  # 33..50: the hole is filled, the button gone
    await expect(newer).to_have_count(0)
    ids = await page.locator("#messages li.message[data-id]").evaluate_all(
        "els => els.map(e => Number(e.dataset.id))"
    )
    assert ids == list(range(1, 201))
    # A message from another room opens that room.
    await seed(app, "other", 3, lambda n: f"另一个会议 {n}")
    await box.fill("另一个会议 3")
    await box.press("Enter")
    await page.locator("#search-results a.result").first.click()
    await page.wait_for_url("**/rooms/other#msg-3")
    await expect(page.locator('#messages li.message.target[data-id="3"]')).to_have_count(1)


async def test_hostile_search_text_and_results_are_shown_as_text(people, app):
    alice = await people()
    await alice.register("alice")
    hostile = '<img src=x onerror="window.pwned=1"><b>bold</b> %_ NEAR * "q" -x'
    await seed(app, "lobby", 1, lambda n: hostile)
    page = alice.page
    box = page.get_by_role("searchbox", name="Search")
    await box.fill("<img src=x")
    await box.press("Enter")
    result = page.locator("#search-results a.result")
    await expect(result).to_have_count(1)
    await expect(result.locator(".text")).to_have_text(hostile)
    await expect(result.locator("mark")).to_have_text(["<img", "src=x"])
    assert await result.locator("img, b").count() == 0
    assert await page.evaluate("window.pwned") is None
    for q in ("%_", "NEAR", '"q"', "-x", "*"):
        await box.fill(q)
        await box.press("Enter")
        await expect(result).to_have_count(1)
    await box.fill("zz" * 101)  # over 200 characters: the box stops at 200
    assert len(await box.input_value()) == 200
    await box.fill("nothing like it")
    await box.press("Enter")
    await expect(page.locator("#search-status")).to_have_text("No messages found.")
    await expect(result).to_have_count(0)
    await box.press("Escape")
    await expect(page.locator("#search-panel")).to_be_hidden()
