"""Files below the HTTP layer (issue 15): both storage backends against real stores
(a directory; moto's S3 server on a loopback port), release, garbage collection,
names, sniffing and the multipart reader."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from chatroom.controllers.errors import BadRequestError
from chatroom.controllers.multipart import MultipartFileReader, boundary_of
from chatroom.models import Room
from chatroom.models.file_storage import DirectoryStorage, S3Storage
from chatroom.models.files import File, clean_name, sniff_type
from tests.files_helpers import files_on_disk, multipart, png, upload, uploaded
from tests.helpers import body

BUCKET = "chatroom-test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint():
    """moto's standalone S3 server (a real S3 HTTP API) on a free loopback port."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_url(s3_endpoint, monkeypatch):
    """A fresh bucket; the URL of a prefix in it, as --files-url takes it."""
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    bucket = f"{BUCKET}-{time.monotonic_ns()}"
    client.create_bucket(Bucket=bucket)
    yield f"s3://{bucket}/uploads?endpoint={s3_endpoint}&region=us-east-1"


@pytest.fixture(params=["directory", "s3"])
def storage(request, tmp_path):
    if request.param == "directory":
        return DirectoryStorage(tmp_path / "files")
    return S3Storage(request.getfixturevalue("s3_url"), tmp_path / "staging")


KEY = "a" * 64


def test_a_backend_stores_reads_ranges_lists_and_deletes(storage, tmp_path):
    source = tmp_path / "source"
    source.write_bytes(b"0123456789" * 10_000)
    assert not storage.exists(KEY)
    storage.put(KEY, source)
    storage.put(KEY, source)  # the same key again: nothing changes
    assert storage.exists(KEY) and storage.size(KEY) == 100_000
    assert b"".join(storage.read(KEY)) == source.read_bytes()
    assert b"".join(storage.read(KEY, 5, 15)) == b"5678901234"
    assert b"".join(storage.read(KEY, 99_998)) == b"89"
    assert [(o.key, o.size) for o in storage.objects()] == [(KEY, 100_000)]
    storage.delete(KEY)
    storage.delete(KEY)  # gone already: not an error
    assert not storage.exists(KEY) and list(storage.objects()) == []


@pytest.mark.parametrize("key", ["../../etc/passwd", "A" * 64, "a" * 63, "a" * 64 + "/x", ""])
def test_a_key_never_names_a_path(tmp_path, key):
    with pytest.raises(ValueError):
        DirectoryStorage(tmp_path).exists(key)


def test_directory_objects_are_private(tmp_path):
    source = tmp_path / "source"
    source.write_bytes(b"x")
    store = DirectoryStorage(tmp_path / "files")
    store.put(KEY, source)
    (stored,) = files_on_disk(tmp_path / "files")
    assert stored.stat().st_mode & 0o777 == 0o600
    assert stored.parent.stat().st_mode & 0o777 == 0o700


# -- through the running server, on S3 -----------------------------------------------


async def test_uploads_and_serving_work_on_s3(app_factory, s3_url, tmp_path):
    app = await app_factory(files_url=s3_url)
    token = await app.api.user("alice")
    content = png(900, 450)
    file = await uploaded(app, token, content, "s3.png")
    served = await app.api.request("GET", file["url"], token=token)
    assert served.body == content
    part = await app.api.request("GET", file["url"], token=token, headers={"Range": "bytes=1-3"})
    assert part.code == 206 and part.body == content[1:4]
    thumb = await app.api.request("GET", file["url"] + "?thumb=1", token=token)
    assert thumb.code == 200 and thumb.headers["Content-Type"] == "image/jpeg"
    storage = app.server.chat.files.storage
    assert len(list(storage.objects())) == 2  # the image and its thumbnail
    assert await app.server.chat.files.release([file["id"]]) == 1
    assert list(storage.objects()) == []
    # Nothing stays behind locally either.
    assert files_on_disk(app.server.config.effective_files_dir) == []


# -- release and gc ------------------------------------------------------------------


async def test_release_keeps_bytes_another_file_still_uses(app):
    token = await app.api.user("alice")
    files = app.server.chat.files
    first = await uploaded(app, token, png(500, 500), "one.png")
    second = await uploaded(app, token, png(500, 500), "two.png")
    assert len(list(files.storage.objects())) == 2  # one image, one thumbnail
    assert await files.release([first["id"]]) == 1
    assert len(list(files.storage.objects())) == 2
    assert (await app.api.request("GET", first["url"], token=token)).code == 404
    assert (await app.api.request("GET", second["url"], token=token)).code == 200
    assert await files.release([second["id"], first["id"], 5]) == 1
    assert list(files.storage.objects()) == []
    assert await files.release([]) == 0


async def test_gc_removes_unsent_files_and_those_of_deleted_rooms(app):
    alice = await app.client("alice")
    token = await app.api.login("alice")
    files = app.server.chat.files
    sent = await uploaded(app, token, b"sent", "sent.txt")
    unsent = await uploaded(app, token, b"unsent", "unsent.txt")
    created = await app.api.request("POST", "/api/rooms", {"name": "doomed"}, token=token)
    assert created.code == 201
    doomed = await uploaded(app, token, b"doomed", "doomed.txt", room="doomed")
    await alice.send_frame({"type": "send", "room": "lobby", "text": "", "files": [sent["id"]]})
    assert (await alice.answer())["type"] == "ack"
    await alice.send_frame({"type": "send", "room": "doomed", "text": "", "files": [doomed["id"]]})
    assert (await alice.answer())["type"] == "ack"
    # Within the grace period nothing unsent goes...
    report = await files.gc(3600)
    assert report.files == 0 and report.objects == 0
    # ...nor does anything sent, after it; a deleted room's files go at once.
    await files._run(lambda: Room.delete_named("doomed"))
    report = await files.gc(0)
    assert (report.files, report.objects) == (2, 2)
    left = await files._run(lambda: [f.uid for f in File.select()])
    assert left == [sent["id"]]
    assert (await app.api.request("GET", unsent["url"], token=token)).code == 404


async def test_gc_removes_objects_no_file_uses_and_stale_temp_files(app, tmp_path):
    files = app.server.chat.files
    source = tmp_path / "orphan"
    source.write_bytes(b"orphan")
    files.storage.put("b" * 64, source)
    stale = files.storage.staging_dir() / "upload-stale"
    stale.write_bytes(b"half an upload")
    report = await files.gc(0)
    assert report.objects == 1 and report.temp_files == 1
    assert files_on_disk(app.server.config.effective_files_dir) == []


async def test_a_failed_send_frees_its_files(app_factory):
    app = await app_factory(send_burst=1, send_per_second=0.001)
    alice = await app.client("alice")
    token = await app.api.login("alice")
    file = await uploaded(app, token, b"later", "later.txt")
    await alice.send("uses the only token")
    assert (await alice.answer())["type"] == "ack"
    await alice.send_frame({"type": "send", "room": "lobby", "text": "", "files": [file["id"]]})
    assert (await alice.answer())["code"] == "rate_limited"
    row = await app.server.chat.files._run(File.by_uid, file["id"])
    assert row.claim is None and row.message_id is None


# -- names, sniffing, multipart --------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("photo.png", "photo.png"),
        ("../../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\x.doc", "x.doc"),
        ("a\x00b.txt", "ab.txt"),
        ("invoice\u202efdp.exe", "invoicefdp.exe"),
        ("zero\u200bwidth.txt", "zerowidth.txt"),
        ("..", ""),
        ("/", ""),
        ("\u202e\u2066", ""),
        ("名字 .png", "名字 .png"),
    ],
)
def test_clean_name(raw, clean):
    assert clean_name(raw) == clean


def test_a_long_name_keeps_its_extension():
    assert clean_name("x" * 10_000) == "x" * 200
    long = clean_name("y" * 10_000 + ".tar.gz")
    assert len(long) == 200 and long.endswith("y.gz")


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (png(), "image/png"),
        (b"\xff\xd8\xff\xe0xxxx", "image/jpeg"),
        (b"GIF89a....", "image/gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"%PDF-1.7", "application/pdf"),
        (b"  <!doctype HTML><p>x", "text/html"),
        (b"\xef\xbb\xbf<html>", "text/html"),
        (b"<script>alert(1)</script>", "text/html"),
        (b"<?xml version='1.0'?><svg/>", "image/svg+xml"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml"),
        (b"<?xml version='1.0'?><note/>", "application/xml"),
        (b"plain words, \xe4\xbd\xa0\xe5\xa5\xbd", "text/plain"),
        (b"\x00\x01\x02binary", "application/octet-stream"),
    ],
)
def test_sniff_type_reads_the_bytes(head, kind):
    assert sniff_type(head) == kind


def test_the_multipart_reader_takes_the_file_part_in_any_chunking():
    content = bytes(range(256)) * 50 + b"\r\n--xYzBoUnDar"  # a near-boundary inside
    data, content_type = multipart(content, "f.bin")
    boundary = boundary_of(content_type)
    for size in (1, 7, 70, 4096, len(data)):
        reader = MultipartFileReader(boundary)
        out = b"".join(reader.feed(data[i : i + size]) for i in range(0, len(data), size))
        reader.close()
        assert out == content and reader.filename == "f.bin"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'--b\r\nContent-Disposition: form-data; name="other"\r\n\r\nx\r\n--b--\r\n', "no part"),
        (b'--b\r\nContent-Disposition: form-data; name="file"\r\n\r\nx', "closing boundary"),
        (b"garbage" * 5000, "no multipart boundary"),
        (b"--b\r\n" + b"X-Long: " + b"h" * 20_000, "headers are too long"),
        (b"--bXX", "malformed"),
    ],
)
def test_the_multipart_reader_refuses_broken_bodies(data, message):
    reader = MultipartFileReader(b"b")
    with pytest.raises(BadRequestError, match=message):
        reader.feed(data)
        reader.close()


def test_boundary_of():
    assert boundary_of("application/octet-stream") is None
    assert boundary_of('multipart/form-data; boundary="abc"') == b"abc"
    with pytest.raises(BadRequestError):
        boundary_of("multipart/form-data")


async def test_upload_errors_leave_no_temp_file(app, tmp_path):
    token = await app.api.user("alice")
    response = await upload(app, token, b"\x89PNG\r\n\x1a\nbroken", "b.png")
    assert response.code == 400 and body(response)["error"]["code"] == "bad_request"
    assert files_on_disk(Path(app.server.config.effective_files_dir)) == []
