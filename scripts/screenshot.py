"""Take docs/screenshot.png: a real `chatroom serve`, three people, a few messages.

    .venv/bin/python scripts/screenshot.py [--out docs/screenshot.png] [--phone PATH]
                                           [--actions docs/message-actions.png]
                                           [--settings docs/room-settings.png]

Starts `chatroom serve` on a temporary data directory and a free port (embedded
Redis, SQLite), registers users through the browser UI, exchanges a few
messages (one in Chinese) and saves a 1280x800 screenshot of one user's window.
Uses the same Playwright + Debian Chromium setup as tests/e2e/.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

PASSWORD = "correct horse battery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_healthy(base_url: str, server: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"chatroom serve exited with {server.returncode}")
        try:
            with urllib.request.urlopen(base_url + "/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("chatroom serve did not become healthy")


async def register(browser, base_url: str, name: str, locale: str = "en-US", **options):
    context = await browser.new_context(locale=locale, timezone_id="Europe/London", **options)
    page = await context.new_page()
    await page.goto(base_url + "/register")
    await page.locator("#username").fill(name)
    await page.locator("#password").fill(PASSWORD)
    await page.locator("main form button[type=submit]").click()
    await page.wait_for_url(base_url + "/")
    await page.wait_for_selector("#connection-state[data-state=connected]")
    return page


async def say(page, text: str, shown: str | None = None) -> None:
    """Send ``text`` and wait until it is confirmed (``shown``: its rendered text)."""
    await page.locator("#message").fill(text)
    await page.locator("#message").press("Enter")
    item = page.locator("#messages li.message:not(.pending)", has_text=shown or text)
    await item.last.wait_for()


async def go(page, path: str, base_url: str) -> None:
    await page.goto(base_url + path)
    await page.wait_for_selector("#connection-state[data-state=connected]")


async def message_actions(browser, base_url: str, path: Path) -> None:
    """The message actions of SPEC §5 (docs/ui.md): a reply with its quoted parent,
    reactions, an edit, a tombstone, text markup, and the toolbar on hover."""
    viewport = {"width": 900, "height": 560}
    carol = await register(browser, base_url, "carol", viewport=viewport)
    dan = await register(browser, base_url, "dan")
    await go(carol, "/rooms/release", base_url)
    await go(dan, "/rooms/release", base_url)
    await say(dan, "Is *1.2* tagged? The notes are at https://example.com/notes", "tagged")
    parent = dan.locator("#messages li.message", has_text="tagged").last
    await say(carol, "Tagged `v1.2.0` with the wrong notes", "wrong notes")
    await carol.locator("#message").press("ArrowUp")
    await carol.locator(".edit-box").fill("Tagged `v1.2.0` — _with the notes_ ✅")
    await carol.locator(".edit-box").press("Enter")
    await say(carol, "sorry, wrong room")
    oops = carol.locator("#messages li.message", has_text="wrong room").last
    await oops.hover()
    await oops.locator("[data-act=delete]").click()
    await oops.locator("[data-act=confirm-delete]").click()
    await parent.hover()
    await parent.locator("[data-act=reply]").click()
    await say(dan, "Thanks! ~Shipping tomorrow~ Shipping today @carol", "Shipping today")
    tagged = carol.locator("#messages li.message", has_text="v1.2.0").last
    for page, emoji in ((carol, "🎉"), (dan, "🎉"), (dan, "🚀")):
        item = page.locator("#messages li.message", has_text="v1.2.0").last
        await item.hover()
        await item.locator("[data-act=react]").click()
        await page.locator(f".emoji-picker .all .emoji-choice[data-emoji='{emoji}']").click()
    await tagged.locator(".reaction[data-emoji='🚀']").wait_for()
    await carol.locator("#messages li.message.mentioned").wait_for()
    await carol.locator("#messages li.message", has_text="Shipping today").last.hover()
    await carol.screenshot(path=str(path))
    print(f"saved {path}")


async def room_settings(browser, base_url: str, path: Path) -> None:
    """The room settings panel (issue 13, docs/ui.md) open on a phone: the topic, the
    members with their roles, a muted one, the audit log."""
    context = await browser.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="en-US",
        timezone_id="Europe/London",
    )
    page = await context.new_page()
    await page.goto(base_url + "/login")
    await page.locator("#username").fill("alice")
    await page.locator("#password").fill(PASSWORD)
    await page.locator("main form button[type=submit]").click()
    await page.wait_for_selector("#connection-state[data-state=connected]")
    xsrf = await page.locator("input[name=_xsrf]").first.input_value()
    for method, route, data in [
        ("POST", "/api/rooms", {"name": "team", "private": True, "topic": "The 1.2 release"}),
        ("POST", "/api/rooms/team/members", {"user": "bob"}),
        ("POST", "/api/rooms/team/members", {"user": "wei"}),
        ("PUT", "/api/rooms/team/members/bob", {"role": "moderator"}),
        ("POST", "/api/rooms/team/mutes", {"user": "wei", "seconds": 3600}),
    ]:
        response = await page.request.fetch(
            base_url + route, method=method, data=data, headers={"X-XSRFToken": xsrf}
        )
        assert response.status in (200, 201), (route, response.status)
    await go(page, "/rooms/team", base_url)
    await page.get_by_role("button", name="Room settings").click()
    await page.locator('#rs-members li[data-user="wei"] .rs-muted').wait_for()
    await page.locator("#rs-audit li[data-action]").first.wait_for()
    await page.screenshot(path=str(path))
    print(f"saved {path}")


async def take(
    base_url: str,
    out: Path,
    phone: Path | None,
    actions: Path | None = None,
    settings: Path | None = None,
) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        viewport = {"width": 1280, "height": 800}
        alice = await register(browser, base_url, "alice", viewport=viewport)
        bob = await register(browser, base_url, "bob")
        wei = await register(browser, base_url, "wei", locale="zh-CN")

        # A couple of rooms, so the sidebar has something to show.
        for name in ("design", "release"):
            await alice.locator("#new-room").fill(name)
            await alice.locator("#create-room button").click()
            await alice.wait_for_url(f"{base_url}/rooms/{name}")
        await go(alice, "/rooms/lobby", base_url)

        await say(bob, "Morning all ☕")
        await say(wei, "早上好！")
        await say(alice, "Morning! Is the 1.2 release still on for today?")
        await say(bob, "Yes. Tagging it after lunch, the changelog is up for review.")
        await say(wei, "我这边的测试都通过了，可以发布。🎉")
        await say(alice, "Great work, thanks both!")
        await say(alice, "I'll write the announcement.")
        notes = "Release notes draft:\n- Chinese UI\n- desktop notifications\n- works offline"
        await say(wei, notes)
        await say(bob, "Shipping it at 14:00 then.")

        # An unread badge elsewhere and a direct message from bob.
        await go(bob, "/rooms/design", base_url)
        await say(bob, "New icons are in the shared folder")
        await say(bob, "Feedback welcome")
        await go(bob, "/rooms/dm:alice:bob", base_url)
        await say(bob, "Lunch at 12?")
        await go(bob, "/rooms/lobby", base_url)

        await go(alice, "/rooms/lobby", base_url)  # shows the new direct message too
        await alice.wait_for_selector("#room-list li[data-room=design] .badge:not([hidden])")
        await alice.locator("#message").type("Sounds good, I'll be ", delay=10)
        for _ in range(10):  # "bob is typing…" (the server relays it once per 2 s)
            await bob.locator("#message").type("o", delay=50)
            if await alice.locator("#typing").text_content():
                break
            await asyncio.sleep(0.5)
        await alice.mouse.move(1, 1)
        out.parent.mkdir(parents=True, exist_ok=True)
        await alice.screenshot(path=str(out))
        print(f"saved {out}")

        if phone is not None:
            small = await browser.new_context(
                viewport={"width": 390, "height": 844},
                device_scale_factor=2,
                is_mobile=True,
                has_touch=True,
                locale="zh-CN",
                timezone_id="Asia/Shanghai",
            )
            page = await small.new_page()
            await page.goto(base_url + "/login")
            await page.locator("#username").fill("wei")
            await page.locator("#password").fill(PASSWORD)
            await page.locator("main form button[type=submit]").click()
            await page.wait_for_selector("#connection-state[data-state=connected]")
            await page.screenshot(path=str(phone))
            print(f"saved {phone}")
        if actions is not None:
            await message_actions(browser, base_url, actions)
        if settings is not None:
            await room_settings(browser, base_url, settings)
        await browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshot.png")
    parser.add_argument("--phone", type=Path, default=None, help="also a 390x844 phone shot")
    parser.add_argument("--actions", type=Path, default=None, help="also the message actions")
    parser.add_argument(
        "--settings", type=Path, default=None, help="also the room settings panel on a phone"
    )
    args = parser.parse_args()
    if CHROMIUM is None:
        raise SystemExit("chromium is not installed (apt-get install chromium)")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data_dir:
        command = [sys.executable, "-m", "chatroom", "serve", "--data-dir", data_dir]
        server = subprocess.Popen([*command, "--port", str(port)], stdout=subprocess.DEVNULL)
        try:
            wait_until_healthy(base_url, server)
            asyncio.run(take(base_url, args.out, args.phone, args.actions, args.settings))
        finally:
            server.terminate()
            server.wait(timeout=15)


if __name__ == "__main__":
    main()
