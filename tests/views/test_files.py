"""Files and images through the real server (SPEC §9, issue 15): upload, send, serve."""

from __future__ import annotations

import asyncio
import io

import pytest
from PIL import Image

from tests.files_helpers import (
    files_on_disk,
    jpeg_with_gps,
    multipart,
    png,
    png_bomb,
    raw_request,
    read_response,
    upload,
    upload_head,
    uploaded,
    wait_until_empty,
)
from tests.helpers import body


def stored_objects(files_dir):
    return [p for p in files_on_disk(files_dir) if p.parent.name != "tmp"]


@pytest.fixture
def files_dir(config):
    return config.data_dir / "files"


async def fetch(app, url: str, token: str | None, headers: dict | None = None):
    return await app.api.request("GET", url, token=token, headers=headers or {})


# -- upload and serve ------------------------------------------------------------


async def test_a_raw_png_upload_is_201_with_its_file_object_and_served_inline(app):
    token = await app.api.user("alice")
    content = png(40, 30)
    file = await uploaded(app, token, content, "shot.png")
    assert set(file) == {"id", "name", "size", "type", "url", "width", "height"}
    assert file["name"] == "shot.png" and file["size"] == len(content)
    assert file["type"] == "image/png" and (file["width"], file["height"]) == (40, 30)
    assert file["url"] == f"/files/{file['id']}/shot.png"
    served = await fetch(app, file["url"], token)
    assert served.code == 200 and served.body == content
    headers = served.headers
    assert headers["Content-Type"] == "image/png"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Security-Policy"] == "sandbox"
    assert headers["Content-Disposition"].startswith("inline;")
    assert headers["Cache-Control"].startswith("private")
    assert headers["ETag"].strip('"') and headers["Accept-Ranges"] == "bytes"


async def test_a_multipart_upload_takes_the_file_part_and_its_name(app):
    token = await app.api.user("alice")
    data, content_type = multipart(b"%PDF-1.4 hello", "report.pdf")
    response = await app.api.request(
        "POST",
        "/api/rooms/lobby/files",
        token=token,
        raw=data,
        headers={"Content-Type": content_type},
    )
    assert response.code == 201, response.body
    file = body(response)["file"]
    assert file["name"] == "report.pdf" and file["type"] == "application/pdf"
    assert file["size"] == len(b"%PDF-1.4 hello") and "width" not in file
    served = await fetch(app, file["url"], token)
    assert served.body == b"%PDF-1.4 hello"
    assert served.headers["Content-Disposition"].startswith("attachment;")


@pytest.mark.parametrize(
    ("content", "real_type"),
    [
        (b"<!DOCTYPE html><script>alert(document.cookie)</script>", "text/html"),
        (
            b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg">'
            b"<script>alert(1)</script></svg>",
            "image/svg+xml",
        ),
        (b"<svg onload=alert(1)>", "image/svg+xml"),
    ],
)
async def test_html_and_svg_named_png_are_attachments_of_their_real_type(app, content, real_type):
    token = await app.api.user("alice")
    file = await uploaded(app, token, content, "cute-cat.png")
    assert file["type"] == real_type and "width" not in file
    served = await fetch(app, file["url"], token)
    assert served.headers["Content-Type"] == real_type
    assert served.headers["Content-Disposition"].startswith("attachment;")
    assert served.headers["Content-Security-Policy"] == "sandbox"
    assert served.headers["X-Content-Type-Options"] == "nosniff"


async def test_the_same_bytes_are_stored_once(app, files_dir):
    token = await app.api.user("alice")
    first = await uploaded(app, token, b"same bytes", "one.txt")
    second = await uploaded(app, token, b"same bytes", "two.txt")
    assert first["id"] != second["id"]
    stored = stored_objects(files_dir)
    assert len(stored) == 1
    assert stored[0].stat().st_mode & 0o777 == 0o600


async def test_concurrent_uploads_all_succeed(app, files_dir):
    token = await app.api.user("alice")
    contents = [f"file number {i}".encode() * 1000 for i in range(6)] + [png()] * 3
    responses = await asyncio.gather(
        *(upload(app, token, c, f"f{i}") for i, c in enumerate(contents))
    )
    assert [r.code for r in responses] == [201] * len(contents)
    ids = {body(r)["file"]["id"] for r in responses}
    assert len(ids) == len(contents)
    stored = stored_objects(files_dir)
    assert len(stored) == 7  # six texts, one PNG (small: its own thumbnail)


# -- images ------------------------------------------------------------------------


async def test_exif_location_is_stripped_and_orientation_applied(app):
    token = await app.api.user("alice")
    original = jpeg_with_gps(60, 20, orientation=6)
    assert Image.open(io.BytesIO(original)).getexif().get(0x8825)
    file = await uploaded(app, token, original, "holiday.jpg")
    assert (file["width"], file["height"]) == (20, 60)  # rotated upright
    served = await fetch(app, file["url"], token)
    image = Image.open(io.BytesIO(served.body))
    assert image.size == (20, 60)
    assert not image.getexif() and b"Camera Maker" not in served.body
    assert "exif" not in image.info


async def test_a_large_image_gets_a_thumbnail(app):
    token = await app.api.user("alice")
    file = await uploaded(app, token, png(1200, 600), "wide.png")
    thumb = await fetch(app, file["url"] + "?thumb=1", token)
    assert thumb.code == 200 and thumb.headers["Content-Type"] in ("image/jpeg", "image/png")
    assert Image.open(io.BytesIO(thumb.body)).size == (320, 160)
    assert thumb.headers["Content-Disposition"].startswith("inline;")


async def test_a_truncated_png_is_400_and_nothing_is_left(app, files_dir):
    token = await app.api.user("alice")
    content = png(300, 300, (1, 2, 3))
    response = await upload(app, token, content[: len(content) // 2], "half.png")
    assert response.code == 400
    assert "damaged or truncated" in body(response)["error"]["message"]
    assert files_on_disk(files_dir) == []


async def test_a_png_bomb_is_400_before_decoding(app, files_dir):
    token = await app.api.user("alice")
    response = await upload(app, token, png_bomb(), "bomb.png")
    assert response.code == 400
    assert "pixels" in body(response)["error"]["message"]
    assert files_on_disk(files_dir) == []


# -- bad input ----------------------------------------------------------------------


async def test_a_zero_byte_file_is_400(app, files_dir):
    token = await app.api.user("alice")
    response = await upload(app, token, b"", "empty.txt")
    assert response.code == 400 and body(response)["error"]["message"] == "the file is empty"
    assert files_on_disk(files_dir) == []


async def test_the_limit_is_exact_and_one_byte_over_is_413(app_factory, files_dir):
    app = await app_factory(max_upload_bytes=1000)
    token = await app.api.user("alice")
    assert (await upload(app, token, b"a" * 1000, "ok.txt")).code == 201
    stored = files_on_disk(files_dir)
    response = await upload(app, token, b"a" * 1001, "big.txt")
    assert response.code == 413 and body(response)["error"]["code"] == "too_large"
    assert files_on_disk(files_dir) == stored


async def test_a_huge_declared_length_is_refused_before_the_body_is_read(app, files_dir):
    token = await app.api.user("alice")
    # 1 GiB declared, nothing sent: the answer comes from the headers alone.
    reader, writer = await raw_request(app.port, upload_head("lobby", token, 1 << 30))
    status, reply = await read_response(reader)
    writer.close()
    assert status == 413 and reply["error"]["code"] == "too_large"
    assert files_on_disk(files_dir) == []


async def test_a_chunked_body_over_the_limit_is_413_and_removed(app_factory, files_dir):
    app = await app_factory(max_upload_bytes=1000)
    token = await app.api.user("alice")
    chunk = b"a" * 600
    head = upload_head("lobby", token, None, extra="Transfer-Encoding: chunked\r\n")
    piece = b"%x\r\n%b\r\n" % (len(chunk), chunk)
    reader, writer = await raw_request(app.port, head, [piece, piece, b"0\r\n\r\n"])
    status, reply = await read_response(reader)
    writer.close()
    assert status == 413 and reply["error"]["code"] == "too_large"
    await wait_until_empty(files_dir / "tmp")


async def test_a_length_longer_than_the_body_leaves_nothing(app, files_dir):
    token = await app.api.user("alice")
    head = upload_head("lobby", token, 1000)
    reader, writer = await raw_request(app.port, head, [b"x" * 500], close=True)
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert b"201" not in data
    await wait_until_empty(files_dir / "tmp")
    assert files_on_disk(files_dir) == []


async def test_a_multipart_length_shorter_than_the_body_is_400(app, files_dir):
    token = await app.api.user("alice")
    data, content_type = multipart(b"payload " * 100, "cut.txt")
    head = (
        "POST /api/rooms/lobby/files HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(data) - 40}\r\nConnection: close\r\n\r\n"
    ).encode()
    reader, writer = await raw_request(app.port, head, [data])
    status, reply = await read_response(reader)
    writer.close()
    assert status == 400 and "closing boundary" in reply["error"]["message"]
    assert files_on_disk(files_dir) == []


async def test_a_stalled_upload_is_cut_off_and_removed(app_factory, files_dir):
    app = await app_factory(upload_idle_seconds=0.5)
    token = await app.api.user("alice")
    reader, writer = await raw_request(app.port, upload_head("lobby", token, 10_000), [b"x" * 100])
    for _ in range(100):  # the upload is in progress: its temp file exists
        if files_on_disk(files_dir / "tmp"):
            break
        await asyncio.sleep(0.02)
    assert files_on_disk(files_dir / "tmp")
    data = await asyncio.wait_for(reader.read(), 5)  # the server hangs up
    writer.close()
    assert b"201" not in data
    await wait_until_empty(files_dir / "tmp")


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\boot.ini", "boot.ini"),
        ("evil\u202egnp.exe", "evilgnp.exe"),
        ("nul\x00byte.txt", "nul byte.txt"),  # Tornado turns query controls into spaces
        ("  spaced \n name.txt ", "spaced name.txt"),
    ],
)
async def test_hostile_names_are_sanitised(app, name, stored):
    token = await app.api.user("alice")
    file = await uploaded(app, token, b"text", name)
    assert file["name"] == stored


async def test_a_very_long_name_is_cut_keeping_its_extension(app):
    token = await app.api.user("alice")
    file = await uploaded(app, token, b"text", "n" * 10_000 + ".txt")
    assert len(file["name"]) == 200 and file["name"].endswith("nnn.txt")


@pytest.mark.parametrize("name", ["", "../", "\u202e", "\x00"])
async def test_a_name_that_is_empty_once_cleaned_is_400(app, files_dir, name):
    token = await app.api.user("alice")
    response = await upload(app, token, b"text", name)
    assert response.code == 400 and "name" in body(response)["error"]["message"]
    assert files_on_disk(files_dir / "tmp") == []


async def test_uploads_per_minute_is_429_with_retry_after(app_factory):
    app = await app_factory(uploads_per_minute=2)
    token = await app.api.user("alice")
    for i in range(2):
        assert (await upload(app, token, b"x%d" % i, "x.txt")).code == 201
    response = await upload(app, token, b"x", "x.txt")
    assert response.code == 429 and int(response.headers["Retry-After"]) >= 1
    assert body(response)["error"]["code"] == "rate_limited"


async def test_only_members_may_upload(app):
    alice = await app.api.user("alice")
    carol = await app.api.user("carol")
    await app.api.user("bob")
    assert (await upload(app, carol, b"x", "x.txt", room="dm:alice:bob")).code == 403
    assert (await upload(app, alice, b"x", "x.txt", room="nowhere")).code == 404
    # A public room the user never joined: join first.
    created = await app.api.request("POST", "/api/rooms", {"name": "books"}, token=alice)
    assert created.code == 201
    assert (await upload(app, carol, b"x", "x.txt", room="books")).code == 403
    assert (await upload(app, alice, b"x", "x.txt", room="books")).code == 201


async def test_uploads_need_a_session(app):
    response = await app.api.request(
        "POST",
        "/api/rooms/lobby/files?name=a.txt",
        raw=b"x",
        headers={"Content-Type": "text/plain"},
    )
    assert response.code == 401


# -- serving: access, caching, ranges -----------------------------------------------


async def test_only_readers_of_the_room_get_the_file(app):
    alice = await app.api.user("alice")
    bob = await app.api.user("bob")
    carol = await app.api.user("carol")
    file = await uploaded(app, alice, b"secret plans", "plan.txt", room="dm:alice:bob")
    assert (await fetch(app, file["url"], bob)).body == b"secret plans"
    refused = await fetch(app, file["url"], carol)
    assert refused.code == 403 and b"secret plans" not in refused.body
    assert (await fetch(app, file["url"], None)).code == 403
    assert (await fetch(app, "/files/" + "A" * 22 + "/x", alice)).code == 404


async def test_etag_revalidation_is_304(app):
    token = await app.api.user("alice")
    file = await uploaded(app, token, b"cache me", "c.txt")
    first = await fetch(app, file["url"], token)
    again = await fetch(app, file["url"], token, {"If-None-Match": first.headers["ETag"]})
    assert again.code == 304 and again.body == b""


async def test_range_requests(app):
    token = await app.api.user("alice")
    content = bytes(range(256)) * 40
    file = await uploaded(app, token, content, "data.bin")
    part = await fetch(app, file["url"], token, {"Range": "bytes=10-19"})
    assert part.code == 206 and part.body == content[10:20]
    assert part.headers["Content-Range"] == f"bytes 10-19/{len(content)}"
    tail = await fetch(app, file["url"], token, {"Range": "bytes=-5"})
    assert tail.code == 206 and tail.body == content[-5:]
    rest = await fetch(app, file["url"], token, {"Range": f"bytes={len(content) - 3}-"})
    assert rest.body == content[-3:]
    past = await fetch(app, file["url"], token, {"Range": f"bytes={len(content)}-"})
    assert past.code == 416 and past.headers["Content-Range"] == f"bytes */{len(content)}"
    several = await fetch(app, file["url"], token, {"Range": "bytes=0-1,5-6"})
    assert several.code == 200 and several.body == content
    stale = await fetch(app, file["url"], token, {"Range": "bytes=0-1", "If-Range": '"old"'})
    assert stale.code == 200 and stale.body == content


# -- messages with files ---------------------------------------------------------------


async def test_a_message_with_files_and_no_text_reaches_the_room(app):
    alice = await app.client("alice")
    bob = await app.client("bob")
    token = await app.api.login("alice")
    file = await uploaded(app, token, png(), "pic.png")
    await alice.send_frame(
        {"type": "send", "room": "lobby", "text": "", "files": [file["id"]], "client_id": "c1"}
    )
    ack = await alice.answer()
    assert ack["type"] == "ack", ack
    message = await bob.next("message")
    assert message["text"] == "" and message["files"] == [file]
    history = body(await app.api.request("GET", "/api/rooms/lobby/messages", token=token))
    assert history["messages"][-1]["files"] == [file]
    # A retry of the same send is deduplicated, files and all.
    await alice.send_frame(
        {"type": "send", "room": "lobby", "text": "", "files": [file["id"]], "client_id": "c1"}
    )
    again = await alice.answer()
    assert again["type"] == "ack" and again["id"] == ack["id"]
    # Sending the same file in another message is refused.
    await alice.send_frame({"type": "send", "room": "lobby", "text": "x", "files": [file["id"]]})
    assert (await alice.answer())["code"] == "conflict"


async def test_send_refuses_files_of_another_user_or_room_and_too_many(app):
    alice = await app.client("alice")
    token_a = await app.api.login("alice")
    token_b = await app.api.user("bob")
    bobs = await uploaded(app, token_b, b"bob's", "b.txt")
    elsewhere = await uploaded(app, token_a, b"dm", "d.txt", room="dm:alice:bob")
    mine = [await uploaded(app, token_a, b"%d" % i, f"{i}.txt") for i in range(11)]

    async def send(files, text=""):
        await alice.send_frame({"type": "send", "room": "lobby", "text": text, "files": files})
        return await alice.answer()

    assert "not one you uploaded" in (await send([bobs["id"]]))["message"]
    assert "another room" in (await send([elsewhere["id"]]))["message"]
    assert "at most 10" in (await send([f["id"] for f in mine]))["message"]
    assert (await send([]))["code"] == "bad_request"
    assert (await send(["../../etc"]))["code"] == "bad_request"
    assert (await send([mine[0]["id"], mine[0]["id"]]))["code"] == "bad_request"
    ok = await send([f["id"] for f in mine[:10]], text="ten files")
    assert ok["type"] == "ack"
    message = await alice.next("message", id=ok["id"])
    assert len(message["files"]) == 10


async def test_text_is_still_required_without_files(app):
    alice = await app.client("alice")
    await alice.send_frame({"type": "send", "room": "lobby", "text": ""})
    assert (await alice.answer())["code"] == "bad_request"


async def test_the_page_without_javascript_shows_thumbnails_and_file_links(app):
    from tests.helpers import PASSWORD, Browser

    alice = await app.client("alice")
    token = await app.api.login("alice")
    image = await uploaded(app, token, png(640, 320), "wide.png")
    doc = await uploaded(app, token, b"%PDF-1.4 x", "<img src=x onerror=alert(1)>.pdf")
    await alice.send_frame(
        {"type": "send", "room": "lobby", "text": "", "files": [image["id"], doc["id"]]}
    )
    assert (await alice.answer())["type"] == "ack"
    browser = Browser(app)
    await browser.post_form("/login", {"username": "alice", "password": PASSWORD})
    page = (await browser.get("/")).body.decode()
    assert f'<a class="file-image" href="{image["url"]}"' in page
    assert f'<img src="{image["url"]}?thumb=1" alt="wide.png" width="320" height="160"' in page
    assert f'<a class="file-chip" href="{doc["url"]}" download>' in page
    assert "&lt;img src=x onerror=alert(1)&gt;.pdf" in page and "<img src=x" not in page
    assert '<span class="file-size">10 B</span>' in page
