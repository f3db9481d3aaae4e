"""The site admin page and sign-up by invite in real Chromium (SPEC §6): an invite made
on the page registers someone through its link, once; users disabled and promoted from
the keyboard; the page on a phone; in Chinese."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from tests.helpers import PASSWORD

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


@pytest.fixture
async def app(app_factory):
    """The chat with --registration invite, a site admin and a plain user."""
    running = await app_factory(registration="invite", send_burst=100_000)
    await running.server.controllers.admin.create_user("teacher", PASSWORD, admin=True)
    await running.server.controllers.admin.create_user("pupil", PASSWORD)
    return running


def user_row(page, name: str):
    return page.locator(f'#users tr[data-user="{name}"]')


async def test_an_invite_from_the_admin_page_registers_one_person(people):
    teacher = await people()
    await teacher.log_in("teacher")
    page = teacher.page
    await page.get_by_role("link", name="Admin").click()
    await page.wait_for_url(teacher.base_url + "/admin")
    await expect(page.get_by_role("heading", name="Site admin")).to_be_visible()
    await expect(user_row(page, "pupil")).to_contain_text("user")

    await page.get_by_label("Valid for").select_option("86400")
    await page.get_by_role("button", name="Create invite").click()
    link = page.get_by_label("The invite link, shown only this once:")
    await expect(link).to_be_focused()
    url = await link.input_value()
    assert re.fullmatch(re.escape(teacher.base_url) + r"/register\?invite=[A-Za-z0-9_-]{24}", url)
    row = page.locator("#invites tbody tr").first
    await expect(row).to_contain_text("0 of 1 used")
    await expect(row).to_contain_text("active")

    newcomer = await people()
    await newcomer.page.goto(url)
    await expect(newcomer.page.locator("#invite-state")).to_contain_text(
        "Your invite is valid until"
    )
    await expect(newcomer.page.get_by_label("Invite code")).to_have_value(url.split("=", 1)[1])
    await newcomer.page.get_by_label("Username").fill("newcomer")
    await newcomer.page.get_by_label("Password", exact=True).fill(PASSWORD)
    await newcomer.page.get_by_role("button", name="Register").click()
    await newcomer.page.wait_for_url(newcomer.base_url + "/")
    await newcomer.connected()

    late = await people()
    await late.page.goto(url)
    await expect(late.page.locator("#invite-state")).to_contain_text("used up")
    await late.page.get_by_label("Username").fill("late")
    await late.page.get_by_label("Password", exact=True).fill(PASSWORD)
    await late.page.get_by_role("button", name="Register").click()
    await expect(late.page.get_by_role("alert")).to_contain_text(
        "Registering needs a valid invite code"
    )
    late.errors.clear()  # the 403 of the refused form is expected

    await page.reload()
    await expect(page.locator("#invites tbody tr").first).to_contain_text("1 of 1 used")


async def test_users_and_invites_from_the_keyboard(people):
    pupil = await people()
    await pupil.log_in("pupil")
    teacher = await people()
    await teacher.log_in("teacher")
    page = teacher.page
    await page.goto(teacher.base_url + "/admin")
    me = user_row(page, "teacher")
    await expect(me).to_contain_text("(you)")
    await expect(me.get_by_role("button")).to_have_count(0)  # no way to lock oneself out

    disable = page.get_by_role("button", name="Disable pupil")
    await disable.focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#alerts")).to_contain_text("pupil is disabled")
    await expect(user_row(page, "pupil")).to_contain_text("disabled")
    enable = page.get_by_role("button", name="Enable pupil")
    await expect(enable).to_be_focused()
    # The pupil's open page was disconnected and signed out.
    await pupil.page.wait_for_url(re.compile(r"/login"), timeout=15_000)
    pupil.errors.clear()  # the 401 that told the page so

    await page.keyboard.press("Enter")  # Enable
    await expect(user_row(page, "pupil")).to_contain_text("active")
    promote = page.get_by_role("button", name="Make pupil an admin")
    await promote.focus()
    await page.keyboard.press("Enter")
    await expect(user_row(page, "pupil")).to_contain_text("admin")
    await expect(page.get_by_role("button", name="Make pupil a plain user")).to_be_visible()

    # An invite made and revoked with the keyboard only.
    uses = page.get_by_label("Uses")
    await uses.fill("5")
    await uses.press("Enter")
    await expect(page.locator("#invites tbody tr").first).to_contain_text("0 of 5 used")
    revoke = page.locator("#invites tbody tr").first.get_by_role(
        "button", name=re.compile("^Revoke the invite")
    )
    await revoke.focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#invites tbody tr").first).to_contain_text("revoked")
    await expect(page.get_by_role("button", name="Create invite")).to_be_focused()

    # A plain user does not get the page.
    other = await people()
    await other.log_in("pupil")  # an admin now: demote first
    await page.get_by_role("button", name="Make pupil a plain user").click()
    await expect(page.get_by_role("button", name="Make pupil an admin")).to_be_visible()
    await other.page.goto(other.base_url + "/admin")
    await expect(other.page.locator(".error[data-code=forbidden]")).to_be_visible()
    other.errors.clear()


async def test_the_admin_page_on_a_phone_in_chinese(people):
    teacher = await people(locale="zh-CN", **PHONE)
    page = teacher.page
    await page.goto(teacher.base_url + "/login")
    await page.get_by_label("用户名").fill("teacher")
    await page.get_by_label("密码").fill(PASSWORD)
    await page.get_by_role("button", name="登录").click()
    await page.wait_for_url(teacher.base_url + "/")
    await page.goto(teacher.base_url + "/admin")
    await expect(page.get_by_role("heading", name="站点管理")).to_be_visible()
    row = user_row(page, "pupil")
    await expect(row).to_contain_text("用户")
    button = row.get_by_role("button", name="停用 pupil")
    await expect(button).to_be_visible()
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, "nothing sticks out sideways on a phone"
    box = await button.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390
    await button.tap()
    await expect(row).to_contain_text("已停用")
    await page.get_by_role("button", name="创建邀请").tap()
    await expect(page.get_by_label("邀请链接（只显示这一次）：")).to_have_value(
        re.compile("invite=")
    )
