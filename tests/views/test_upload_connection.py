"""An upload body longer than its Content-Length (issue 15): the stored file is what
was declared, and the bytes after it are never read as a second request."""

from __future__ import annotations

import asyncio

import pytest

from chatroom.models.files import File
from tests.files_helpers import multipart, raw_request, upload_head
from tests.helpers import READ_TIMEOUT, body

pytestmark = pytest.mark.timeout(60)


def smuggled(token: str, method: str, path: str, payload: bytes = b"") -> bytes:
    """A complete, valid-looking request that follows the declared body."""
    return (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload


async def one_response_then_eof(reader: asyncio.StreamReader) -> tuple[int, dict, bytes]:
    """The first response (status, headers), and whatever came after it until the
    server closed the connection (a server that keeps it open times out here)."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
    lines = head.decode("latin-1").split("\r\n")
    fields = (line.partition(":") for line in lines[1:] if line)
    headers = {name.strip().lower(): value.strip() for name, _, value in fields}
    length = int(headers.get("content-length", "0"))
    await asyncio.wait_for(reader.readexactly(length), READ_TIMEOUT)
    try:
        rest = await asyncio.wait_for(reader.read(), 3.0)
    except TimeoutError:
        rest = b"<connection left open>"
    return int(lines[0].split(" ", 2)[1]), headers, rest


async def room_names(app, token: str) -> set[str]:
    response = await app.api.request("GET", "/api/rooms", token=token)
    assert response.code == 200  # a smuggled logout did not end the session
    rooms = body(response)["rooms"]
    return {room["name"] if isinstance(room, dict) else room for room in rooms}


async def test_bytes_after_a_raw_upload_are_never_run_as_a_request(app):
    token = await app.api.user("alice")
    declared = b"hello"
    tail = smuggled(token, "POST", "/api/rooms", b'{"name": "smuggled"}')
    tail += smuggled(token, "POST", "/api/logout")
    reader, writer = await raw_request(
        app.port, upload_head("lobby", token, len(declared), "five.txt"), [declared + tail]
    )
    status, headers, rest = await one_response_then_eof(reader)
    writer.close()
    assert status == 201
    assert headers.get("connection", "").lower() == "close"
    assert rest == b""  # no second response: the connection was closed
    # Neither leftover request ran: no room, and the session still works.
    assert "smuggled" not in await room_names(app, token)
    # The stored file is what the Content-Length declared.
    rows = await app.server.chat.files._run(lambda: [(f.name, f.size) for f in File.select()])
    assert rows == [("five.txt", len(declared))]


async def test_bytes_after_a_refused_multipart_upload_are_never_run(app):
    token = await app.api.user("alice")
    data, content_type = multipart(b"payload " * 100, "cut.txt")
    cut = len(data) - 40  # the declared body lacks the closing boundary: 400
    head = (
        "POST /api/rooms/lobby/files HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {cut}\r\n\r\n"
    ).encode()
    tail = smuggled(token, "POST", "/api/rooms", b'{"name": "smuggled"}')
    reader, writer = await raw_request(app.port, head, [data[:cut] + b"\r\n\r\n" + tail])
    status, headers, rest = await one_response_then_eof(reader)
    writer.close()
    assert status == 400 and headers.get("connection", "").lower() == "close"
    assert rest == b""
    assert "smuggled" not in await room_names(app, token)


async def test_an_upload_answers_connection_close(app):
    token = await app.api.user("alice")
    reader, writer = await raw_request(app.port, upload_head("lobby", token, 3), [b"abc"])
    status, headers, rest = await one_response_then_eof(reader)
    writer.close()
    assert status == 201 and headers.get("connection", "").lower() == "close" and rest == b""
