"""The UI in Simplified Chinese: chosen from Accept-Language, or with the switch."""

from __future__ import annotations

from playwright.async_api import expect


async def test_chinese_from_accept_language(people):
    wei = await people(locale="zh-CN")
    page = wei.page
    await page.goto(wei.base_url + "/register")
    await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    await page.get_by_label("用户名").fill("wei")
    await page.get_by_label("密码").fill("correct horse battery")
    await page.get_by_role("button", name="注册").click()
    await page.wait_for_url(wei.base_url + "/")
    await expect(page.locator("#connection-state")).to_have_text("已连接")
    await expect(page.locator("#messages")).to_have_attribute("aria-label", "lobby 的聊天记录")

    box = page.get_by_label("消息")
    await box.fill("你好，世界")
    await page.get_by_role("button", name="发送").click()
    await expect(page.locator("#messages li.message:not(.pending) .text")).to_have_text(
        "你好，世界"
    )
    await expect(page.locator("#messages li.day")).to_have_text("今天")

    # Log out and back in, in Chinese; a wrong password is explained in Chinese.
    await page.get_by_role("button", name="退出").click()
    await page.wait_for_url(wei.base_url + "/login")
    await page.get_by_label("用户名").fill("wei")
    await page.get_by_label("密码").fill("not the password")
    await page.get_by_role("button", name="登录").click()
    await expect(page.get_by_role("alert")).to_have_text("登录失败：用户名或密码错误。")
    wei.errors.clear()  # the 401 of the failed login is expected
    await page.get_by_label("密码").fill("correct horse battery")
    await page.get_by_role("button", name="登录").click()
    await page.wait_for_url(wei.base_url + "/")
    await wei.connected()
    await expect(page.locator("#messages .text")).to_have_text(["你好，世界"])


async def test_language_switch_is_remembered(people):
    alice = await people()
    page = alice.page
    await page.goto(alice.base_url + "/login")
    await page.get_by_role("button", name="中文").click()
    await expect(page.get_by_label("用户名")).to_be_visible()
    await page.locator("#main").get_by_role("link", name="注册").click()
    await page.get_by_label("用户名").fill("alice")
    await page.get_by_label("密码").fill("correct horse battery")
    await page.get_by_role("button", name="注册").click()
    await page.wait_for_url(alice.base_url + "/")
    await expect(page.get_by_role("button", name="发送")).to_be_visible()
    await expect(page.locator("#connection-state")).to_have_text("已连接")

    await page.reload()  # the choice is a cookie, not the browser's language
    await expect(page.get_by_role("button", name="发送")).to_be_visible()

    await page.get_by_role("button", name="English").click()
    await page.wait_for_url(alice.base_url + "/")
    await alice.connected()
    await expect(page.locator("html")).to_have_attribute("lang", "en-US")
    await expect(page.get_by_role("button", name="Send")).to_be_visible()
    await expect(page.get_by_role("button", name="Log out")).to_be_visible()
    await alice.say("back in English")
    await expect(page.locator("#messages .text").last).to_have_text("back in English")
