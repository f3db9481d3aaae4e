"""Files in real Chromium (issue 15): attach, paste a screenshot, drop, progress and
cancel, retry after going offline, thumbnails and chips, keyboard and translation."""

from __future__ import annotations

import base64

from playwright.async_api import expect

from tests.files_helpers import png

#: A DataTransfer holding one File made in the page from base64 bytes.
MAKE_TRANSFER = """([b64, name, type]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const dt = new DataTransfer();
  dt.items.add(new File([bytes], name, { type }));
  return dt;
}"""


async def transfer(page, content: bytes, name: str, kind: str):
    return await page.evaluate_handle(
        MAKE_TRANSFER, [base64.b64encode(content).decode(), name, kind]
    )


async def two(people):
    alice, bob = await people(), await people()
    await alice.register("alice")
    await bob.register("bob")
    return alice, bob


async def test_attach_with_the_button_and_send_an_image_without_text(people):
    alice, bob = await two(people)
    page = alice.page
    attach = page.get_by_role("button", name="Attach files")
    await expect(attach).to_be_visible()
    async with page.expect_file_chooser() as chooser_info:
        await attach.click()
    chooser = await chooser_info.value
    await chooser.set_files(
        files=[{"name": "wide.png", "mimeType": "image/png", "buffer": png(900, 300)}]
    )
    await expect(page.locator("#attachments li[data-state=done]")).to_have_count(1)
    await page.get_by_label("Message").press("Enter")
    await expect(page.locator("#attachments li")).to_have_count(0)
    image = bob.page.locator("#messages .files a.file-image img").last
    await expect(image).to_have_attribute("alt", "wide.png")
    await expect(image).to_have_attribute("width", "320")
    await expect(image).to_have_attribute("height", "107")
    await bob.page.wait_for_function(
        "() => { const i = document.querySelector('#messages .file-image img'); "
        "return i && i.complete && i.naturalWidth === 320; }"
    )
    link = bob.page.locator("#messages .files a.file-image").last
    href = await link.get_attribute("href")
    assert href.startswith("/files/") and href.endswith("/wide.png")
    # Full size in a new tab, served inline.
    async with bob.page.context.expect_page() as opened:
        await link.focus()
        await link.press("Enter")
    full = await opened.value
    await full.wait_for_load_state()
    assert await full.evaluate("() => document.images[0].naturalWidth") == 900


async def test_paste_a_screenshot(people):
    alice, bob = await two(people)
    page = alice.page
    data = await transfer(page, png(50, 40), "image.png", "image/png")
    # Playwright's dispatch_event makes a plain Event for "paste": build the ClipboardEvent.
    await page.locator("#message").evaluate(
        "(box, dt) => box.dispatchEvent(new ClipboardEvent('paste', "
        "{ clipboardData: dt, bubbles: true, cancelable: true }))",
        data,
    )
    item = page.locator("#attachments li[data-state=done]")
    await expect(item).to_have_count(1)
    await expect(item.locator(".file-name")).to_contain_text("screenshot-")
    await alice.say("look")
    message = bob.page.locator("#messages li.message").last
    await expect(message.locator(".text")).to_have_text("look")
    await expect(message.locator(".file-image img")).to_have_attribute("width", "50")


async def test_drop_a_file_and_see_a_chip(people):
    alice, bob = await two(people)
    page = alice.page
    data = await transfer(page, b"%PDF-1.4 report", "report.pdf", "application/pdf")
    await page.dispatch_event("main", "dragover", {"dataTransfer": data})
    await page.dispatch_event("main", "drop", {"dataTransfer": data})
    await expect(page.locator("#attachments li[data-state=done]")).to_have_count(1)
    await page.get_by_role("button", name="Send").click()
    chip = bob.page.locator("#messages .file-chip").last
    await expect(chip.locator(".file-name")).to_have_text("report.pdf")
    await expect(chip.locator(".file-size")).to_have_text("15 B")
    assert (await chip.get_attribute("href")).endswith("/report.pdf")


async def test_cancel_an_upload_in_progress(people):
    alice = await people()
    await alice.register("alice")
    page = alice.page
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("Network.enable")
    await cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 20, "downloadThroughput": -1, "uploadThroughput": 200_000},
    )
    await page.set_input_files(
        "#file-input",
        files=[
            {
                "name": "big.bin",
                "mimeType": "application/octet-stream",
                "buffer": b"\x00\x01" * 2_000_000,
            }
        ],
    )
    uploading = page.locator("#attachments li[data-state=uploading]")
    await expect(uploading.locator("progress")).to_be_visible()
    await uploading.get_by_role("button", name="Cancel the upload of big.bin").click()
    await expect(page.locator("#attachments li")).to_have_count(0)
    await expect(page.locator("#attachments")).to_be_hidden()


async def test_a_failed_upload_retries_when_back_online(people):
    alice, bob = await two(people)
    page = alice.page
    await page.context.set_offline(True)
    await page.set_input_files(
        "#file-input", files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"notes"}]
    )
    await expect(page.locator("#attachments li[data-state=failed]")).to_have_count(1)
    await page.context.set_offline(False)
    await expect(page.locator("#attachments li[data-state=done]")).to_have_count(1)
    await alice.say("my notes")
    await expect(bob.page.locator("#messages .file-chip .file-name").last).to_have_text("notes.txt")
    alice.errors.remove("Failed to load resource: net::ERR_INTERNET_DISCONNECTED")  # expected


async def test_a_file_over_the_limit_is_refused_in_the_page(people):
    alice = await people()
    await alice.register("alice")
    page = alice.page
    await page.evaluate("() => { document.body.dataset.maxUploadBytes = '10'; }")
    # The limit is read at start: reload is not needed, the server refuses too.
    await page.set_input_files(
        "#file-input",
        files=[
            {
                "name": "huge.bin",
                "mimeType": "application/octet-stream",
                "buffer": b"x" * (10 * 1024 * 1024 + 1),
            }
        ],
    )
    await expect(page.locator("#attachments li[data-state=failed]")).to_have_count(1)
    await expect(page.locator("#alerts")).to_contain_text("huge.bin")


async def test_the_file_ui_is_translated(people):
    alice = await people()
    await alice.register("alice")
    await alice.context.add_cookies([{"name": "locale", "value": "zh_CN", "url": alice.base_url}])
    await alice.page.reload()
    await expect(alice.page.get_by_role("button", name="添加文件")).to_be_visible()
    await alice.page.set_input_files(
        "#file-input", files=[{"name": "a.txt", "mimeType": "text/plain", "buffer": b"a"}]
    )
    item = alice.page.locator("#attachments li[data-state=done]")
    await expect(item.locator(".upload-status")).to_have_text("可以发送")
    await expect(item.get_by_role("button", name="移除 a.txt")).to_be_visible()
